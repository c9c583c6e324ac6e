"""EventBridge: simulated AWS events reach Lambda handlers (in-process) and SQS queues through rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecsspot.sim import LambdaContext, Simulator
from tests.sim.stack import launch_template, mixed_group

EVENTS = Path(__file__).resolve().parent.parent / "events"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ecsspot-interruption"


def rule(sim: Simulator, name: str, pattern: dict[str, Any], *targets: str, enabled: bool = True) -> None:
    events = sim.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED" if enabled else "DISABLED")
    events.put_targets(Rule=name, Targets=[{"Id": str(i), "Arn": arn} for i, arn in enumerate(targets)])


def spot_group(sim: Simulator, desired: int = 2) -> None:
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=desired)
    sim.advance(31)


def test_spot_warning_reaches_lambda_and_sqs_in_the_real_shape(sim: Simulator) -> None:
    spot_group(sim)
    queue_url = sim.client("sqs").create_queue(QueueName="interruptions")["QueueUrl"]
    queue_arn = sim.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    received: list[tuple[dict[str, Any], LambdaContext]] = []
    sim.register_lambda(FUNCTION_ARN, lambda event, context: received.append((event, context)))
    rule(sim, "spot", {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}, FUNCTION_ARN, queue_arn)
    rule(sim, "off", {"source": ["aws.ec2"]}, FUNCTION_ARN, enabled=False)

    victim = sim.spot_instances()[0]
    sim.interrupt([victim])
    sim.advance(0)
    assert received == []  # the event comes Timings.spot_warning_lag after the notice
    sim.advance(sim.timings.spot_warning_lag)

    [(event, context)] = received
    recorded = json.loads((EVENTS / "spot-interruption-warning.json").read_text())
    assert list(event) == list(recorded) and list(event["detail"]) == list(recorded["detail"])
    assert event["detail"] == {"instance-id": victim, "instance-action": "terminate"}
    assert event["time"] == sim.world.iso() and context.function_name == "ecsspot-interruption"
    assert 899_000 < context.get_remaining_time_in_millis() <= 900_000
    assert "Messages" not in sim.client("sqs").receive_message(QueueUrl=queue_url)  # EventBridge → SQS takes time
    sim.advance(1)
    [message] = sim.client("sqs").receive_message(QueueUrl=queue_url)["Messages"]
    body = json.loads(message["Body"])
    assert body["id"] == event["id"] and body["detail"] == event["detail"] and body["time"] == event["time"]


@pytest.mark.parametrize("server", [False, True], ids=["in-process", "server"])
def test_lifecycle_handler_completes_the_action_through_the_api(server: bool) -> None:
    """The handler runs outside the world's lock, so it can call AWS (over HTTP too, from the
    thread that advances the world) and sleep on the clock."""
    with Simulator(seed=7, server=server) as sim:
        _lifecycle_handler_scenario(sim)


def _lifecycle_handler_scenario(sim: Simulator) -> None:
    spot_group(sim, 1)
    asg = sim.client("autoscaling")
    asg.put_lifecycle_hook(AutoScalingGroupName="demo-spot", LifecycleHookName="drain",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=3600)

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        sim.clock.sleep(30)  # drain work takes a while; the world moves meanwhile
        detail = event["detail"]
        asg.complete_lifecycle_action(AutoScalingGroupName=detail["AutoScalingGroupName"], LifecycleHookName=detail["LifecycleHookName"],
                                      LifecycleActionToken=detail["LifecycleActionToken"], LifecycleActionResult="CONTINUE")

    sim.register_lambda("ecsspot-drain", handler)
    rule(sim, "hooks", {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"]},
         "arn:aws:lambda:us-east-1:123456789012:function:ecsspot-drain")
    start = sim.now()
    asg.set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=0)
    sim.advance(1)
    assert sim.now() - start == 30  # the handler slept 30 s: the world moved with it
    [terminated] = sim.records("ec2.state")[-1:]
    assert terminated.detail == {"state": "terminated"} and terminated.time == start + 30
    assert [i.error for i in sim.invocations] == [None]


def test_failing_handler_is_retried_twice_and_put_events_lambda_targets_work(sim: Simulator) -> None:
    calls: list[float] = []

    def broken(event: dict[str, Any], context: LambdaContext) -> None:
        calls.append(sim.now())
        raise RuntimeError("boom")

    sim.register_lambda("broken", broken)
    rule(sim, "custom", {"source": ["my.app"]}, "arn:aws:lambda:us-east-1:123456789012:function:broken")
    # moto's put_events raises NotImplementedError for a Lambda target.
    sim.client("events").put_events(Entries=[{"Source": "my.app", "DetailType": "thing", "Detail": "{}"}])
    start = sim.now()
    sim.advance(200)
    assert [t - start for t in calls] == [0, 60, 180]
    assert [(i.attempt, i.error) for i in sim.invocations] == [(0, "RuntimeError: boom"), (1, "RuntimeError: boom"), (2, "RuntimeError: boom")]


def test_hundreds_of_sleeping_invocations_run_side_by_side(sim: Simulator) -> None:
    """Each invocation sleeps on the clock ten times: all 300 run at once, as concurrent Lambda
    invocations do, each finishing ten virtual seconds after the event (nested in one another's
    sleeps they overflowed the stack, and the first one waited for all the later ones)."""
    finished: dict[str, float] = {}

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        for _ in range(10):
            sim.clock.sleep(1)
        finished[event["detail"]["n"]] = sim.now()

    sim.register_lambda("sleeper", handler)
    rule(sim, "custom", {"source": ["my.app"]}, "arn:aws:lambda:us-east-1:123456789012:function:sleeper")
    events = sim.client("events")
    for first in range(0, 300, 10):
        entries = [{"Source": "my.app", "DetailType": "thing", "Detail": json.dumps({"n": str(n)})} for n in range(first, first + 10)]
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    start = sim.now()
    sim.advance(0)

    assert [i.error for i in sim.invocations] == [None] * 300
    assert sorted(finished, key=int) == [str(n) for n in range(300)]
    assert set(finished.values()) == {start + 10}
    assert sim.now() == start + 10  # advance(0) returned once every invocation it started had finished


def test_advancing_without_settling_returns_on_time_and_sleeping_invocations_go_on_later(sim: Simulator) -> None:
    """A scenario's steps land when due: ``settle=False`` returns after exactly the time asked,
    leaving a handler that sleeps longer parked; the next advance resumes it on time."""
    finished: list[float] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        sim.clock.sleep(100)
        finished.append(sim.now())

    sim.register_lambda("sleeper", handler)
    rule(sim, "custom", {"source": ["my.app"]}, "arn:aws:lambda:us-east-1:123456789012:function:sleeper")
    sim.client("events").put_events(Entries=[{"Source": "my.app", "DetailType": "thing", "Detail": "{}"}])
    start = sim.now()
    sim.advance(10, settle=False)
    assert sim.now() == start + 10 and finished == [] and not sim.invocations
    sim.advance(60, settle=False)
    assert sim.now() == start + 70 and finished == []
    sim.advance(0)  # settles: runs until the invocation has finished
    assert finished == [start + 100] and sim.now() == start + 100
    assert [i.error for i in sim.invocations] == [None]
