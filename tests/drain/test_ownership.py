"""Issue 9 through the Lambda handler and the public API, on one simulated cluster (built once:
it takes most of the time): two events for one instance in one batch (item 1), owner-idempotent
claims (2), one record's failure alone and handed back early (4), Ctrl-C during a drain (6), SNS
delivery (7), other teams' groups and hooks (9, 10), an unknown instance (11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot import Manager, store
from ecsspot.errors import AccessDeniedError
from ecsspot.handlers import HandlingFailed
from ecsspot.sim import Simulator
from tests.drain.conftest import (
    CallLog,
    build,
    container_instances,
    handlers,
    load,
    rebalance_recommendation,
    spot_instances_with_tasks,
    spot_warning,
    sqs_batch,
)

pytestmark = pytest.mark.slow


def _foreign_group(sim: Simulator) -> tuple[str, str]:
    """Another team's Auto Scaling group in the same account, with one untagged instance."""
    ec2, asg = sim.client("ec2"), sim.client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.create_launch_template(LaunchTemplateName="other-team", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="other-team", MinSize=1, MaxSize=3, DesiredCapacity=1, LaunchTemplate={"LaunchTemplateName": "other-team"}, VPCZoneIdentifier=subnet
    )
    sim.advance(5)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["other-team"])["AutoScalingGroups"][0]
    return group["Instances"][0]["InstanceId"], "other-team"


def _lifecycle(instance_id: str, group: str, hook: str, token: str) -> dict[str, Any]:
    event = load("asg-lifecycle-terminate-eventbridge.json")
    event["id"] = f"evt-{token}"
    event["detail"].update(EC2InstanceId=instance_id, AutoScalingGroupName=group, LifecycleHookName=hook, LifecycleActionToken=token)
    return event


def _sns(event: dict[str, Any]) -> dict[str, Any]:
    payload = load("wrapper-lambda-sns-event-powertools.json")
    payload["Records"][0]["Sns"]["Message"] = json.dumps(event)
    return payload


def test_ownership_and_no_event_lost(sim: Simulator) -> None:
    stack = build(sim, rps=0)
    table = f"ecsspot-{stack.cluster}"
    a, b, c = spot_instances_with_tasks(sim, stack)[:3]
    desired = {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]}

    # Item 1: a rebalance recommendation then the spot warning for one instance, in one batch.
    batch = sqs_batch([("m-rebalance", rebalance_recommendation(sim, a, "evt-r")), ("m-spot", spot_warning(sim, a, "evt-s"))])
    assert handlers(sim, owner="one").interruption(batch, None) == {"batchItemFailures": []}
    assert container_instances(sim, stack.cluster)[a]["status"] == "DRAINING"

    # Item 9: with a default cluster set (as the Terraform module does), an untagged instance of
    # another team's group is not ours: ignored, and that group's desired capacity untouched.
    other, group = _foreign_group(sim)
    log = CallLog()
    h = handlers(sim, default_cluster=stack.cluster, event_handlers=[log.handler()], owner="two")
    response = h.interruption(rebalance_recommendation(sim, other, "evt-foreign"), None)
    (action,) = response["actions"]
    assert action["kind"] == "ignore" and action["instance_id"] == other and group in action["reason"]
    assert sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["DesiredCapacity"] == 1
    assert not [op for op, _ in log.calls if op not in ("DescribeInstances", "BatchGetItem")]

    # Item 10: a terminate lifecycle action of another hook on our own group, and of our hook
    # name on another group: neither is heartbeated nor completed.
    ours = next(g for g in desired if g.startswith(stack.cluster))
    for event in (_lifecycle(b, ours, "ecs-managed-draining-termination-hook", "tok-1"), _lifecycle(other, group, "ecsspot-drain", "tok-2")):
        response = h.interruption(event, None)
        assert [x["kind"] for x in response["actions"]] == ["ignore"], response
    assert not log.of("CompleteLifecycleAction") and not log.of("RecordLifecycleActionHeartbeat")
    assert container_instances(sim, stack.cluster)[b]["status"] == "ACTIVE"

    # Item 7: SNS ignores batchItemFailures, so a failed SNS record fails the invocation.
    def deny(model: Any, **_: Any) -> None:
        if model.name == "UpdateContainerInstancesState":
            raise AccessDeniedError("update_container_instances_state", "AccessDenied", "denied by the test")

    with pytest.raises(HandlingFailed):
        handlers(sim, event_handlers=[("before-call", deny)], owner="three").interruption(_sns(spot_warning(sim, b, "evt-sns")), None)
    # ... and its claim was let go, so Lambda's retry handles it at once.
    assert handlers(sim, owner="four").interruption(_sns(spot_warning(sim, b, "evt-sns")), None) == {"batchItemFailures": []}
    assert container_instances(sim, stack.cluster)[b]["status"] == "DRAINING"

    # Item 4: one record AWS refuses (here DRAINING for instance c) fails alone, and comes back
    # within seconds instead of after the queue's 930 s visibility timeout.
    sqs = sim.client("sqs")
    url = sqs.create_queue(QueueName="ecsspot-interruptions", Attributes={"VisibilityTimeout": "930"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"placeholder {n}")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    d = next(i for i in spot_instances_with_tasks(sim, stack) if i not in (a, b, c))
    arn_c = container_instances(sim, stack.cluster)[c]["containerInstanceArn"]

    def deny_c(params: Any, model: Any, **_: Any) -> None:
        if model.name == "UpdateContainerInstancesState" and arn_c in params.get("containerInstances", ()):
            raise AccessDeniedError("update_container_instances_state", "AccessDenied", "denied by the test")

    batch = sqs_batch([("m-c", spot_warning(sim, c, "evt-c")), ("m-d", spot_warning(sim, d, "evt-d"))])
    for record, message in zip(batch["Records"], received):
        record.update(receiptHandle=message["ReceiptHandle"], eventSourceARN=arn)
    log = CallLog()
    response = handlers(sim, event_handlers=[("before-parameter-build", deny_c), log.handler()], owner="five").interruption(batch, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-c"}]}
    assert container_instances(sim, stack.cluster)[d]["status"] == "DRAINING"
    (change,) = log.of("ChangeMessageVisibilityBatch")
    assert [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in change["Entries"]] == [(received[0]["ReceiptHandle"], 5)]

    m = Manager(region=sim.region, endpoint_url=sim.endpoint_url, clock=sim.clock)
    # Item 2: claiming is idempotent for its owner (botocore retrying a put whose answer was lost).
    now = sim.clock.now()
    first = m.run(store.claim_events(table, ["evt-x:i-0"], "me", now=now, ttl=60))
    again = m.run(store.claim_events(table, ["evt-x:i-0"], "me", now=now, ttl=60))
    other_owner = m.run(store.claim_events(table, ["evt-x:i-0"], "someone", now=now, ttl=60))
    redelivered = m.run(store.claim_events(table, ["evt-x:i-0"], "someone", now=now, ttl=60, deliveries={"evt-x:i-0": ("-", 2)}))
    assert (first, again, other_owner) == ({"evt-x:i-0": "claimed"},) * 2 + ({"evt-x:i-0": "busy"},)
    assert redelivered == {"evt-x:i-0": "claimed"}  # a redelivery of the same message takes it over

    # Item 11: an instance id that does not exist is not found, never "drained".
    result = m.drain(stack.cluster, ["i-0123456789abcdef0"], deadline=30)
    assert [x.status for x in result.actions] == ["not_found"] and result.not_found == ("i-0123456789abcdef0",)

    # Item 6: Ctrl-C while a drain verifies still gives the drain lease back.
    clock = sim.clock

    class CtrlC:
        def now(self) -> float:
            return clock.now()

        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    interrupted = Manager(region=sim.region, endpoint_url=sim.endpoint_url, clock=CtrlC())  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        interrupted.drain(stack.cluster, [c], deadline=60)
    assert m.run(store.read_lease(table, f"drain#{c}")) is None
