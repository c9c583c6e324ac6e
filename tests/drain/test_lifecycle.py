"""The terminate lifecycle hook flow on the simulator: a scale-in picks an instance that runs
tasks behind the ALB; Auto Scaling holds it in Terminating:Wait on ``ecsspot-drain`` (the hook
``ecsspot apply`` creates) and says so on EventBridge; ecsspot's Lambda drains it, heartbeats
while the 300 s deregistration delay runs, and completes the action with CONTINUE only once the
instance's tasks and targets are gone.
"""

from __future__ import annotations

from typing import Any

from ecsspot.sim import Simulator
from tests.drain.conftest import build, first, recording_interruption, spot_instances_with_tasks, targets

HOOK = "ecsspot-drain"


def _scale_in(sim: Simulator, group: str, victim: str) -> float:
    """Scale ``group`` in by one, ``victim`` being its only instance not protected from scale-in;
    when it entered Terminating:Wait."""
    asg = sim.client("autoscaling")
    asg.set_instance_protection(AutoScalingGroupName=group, InstanceIds=[victim], ProtectedFromScaleIn=False)
    desired = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["DesiredCapacity"]
    asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired - 1)
    waiting = first(sim, "asg.lifecycle", victim, state="Terminating:Wait")
    assert waiting is not None
    return waiting


def test_instance_leaves_terminating_wait_only_after_its_tasks_and_targets_are_gone(sim: Simulator) -> None:
    # handle_events wires the Terraform module's rules (spot warning, rebalance, terminate hook)
    # to the interruption Lambda; ours replaces the scenario's so its answers can be read.
    stack = build(sim, deregistration_delay=300, handle_events=True)
    responses = recording_interruption(sim)

    group = stack.spec.asg_name(stack.spec.pool("spot"))
    asg = sim.client("autoscaling")
    hooks = {h["LifecycleHookName"]: h for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]}
    # ECS managed draining's own hook sits beside ours (the spec turns managed draining on).
    assert sorted(hooks) == ["ecs-managed-draining-termination-hook", HOOK]
    hook = hooks[HOOK]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    timeout = hook["HeartbeatTimeout"]
    victim = spot_instances_with_tasks(sim, stack)[0]
    ports = {p for (iid, p) in targets(sim, stack.target_group_arn) if iid == victim}
    assert ports, "the victim serves traffic"

    waiting = _scale_in(sim, group, victim)
    sim.advance(60)  # EventBridge → Lambda; the drain runs on the simulator's clock

    proceed = first(sim, "asg.lifecycle", victim, state="Terminating:Proceed")
    assert proceed is not None, "the lifecycle action was completed"
    assert first(sim, "asg.lifecycle_complete", victim, hook=HOOK, result="CONTINUE") == proceed
    assert not sim.records("asg.lifecycle_timeout", victim)

    # Its tasks stopped and its targets left the target group before it left Terminating:Wait.
    task_records = [r for r in sim.records("task.status") if r.detail.get("instance_id") == victim]
    tasks = {r.subject for r in task_records}
    assert tasks
    stopped = {r.subject: r.time for r in task_records if r.detail.get("status") == "STOPPED"}
    assert set(stopped) == tasks and max(stopped.values()) <= proceed
    for port in ports:
        assert first(sim, "target.state", f"{victim}:{port}", state="draining") == waiting
        gone = first(sim, "target.state", f"{victim}:{port}", state="unused")
        assert gone is not None and waiting + 300 <= gone <= proceed

    # The drain outlasted a third of the heartbeat timeout: heartbeats kept the action alive.
    assert proceed - waiting > timeout / 3
    beats = [r.time for r in sim.records("asg.lifecycle_heartbeat", victim)]
    assert beats and all(waiting < t < proceed for t in beats)

    (detail_type, response), = responses
    assert detail_type == "EC2 Instance-terminate Lifecycle Action"
    assert [(a["kind"], a["instance_id"], a["status"]) for a in response["actions"]] == [
        ("drain", victim, "drained"),
        ("complete_lifecycle_action", victim, "done"),
    ]
    assert response["actions"][1]["reason"] == "CONTINUE: drain verified"
    assert sim.traffic_stats(stack.target_group_arn).failed == 0
    assert first(sim, "ec2.state", victim, state="terminated") == proceed
    print(f"\nlifecycle hook: Terminating:Wait at +0 s, heartbeats at {[round(t - waiting) for t in beats]} s, CONTINUE at +{proceed - waiting:.0f} s (heartbeat timeout {timeout} s)")



def test_a_late_handled_action_gets_its_first_heartbeat_on_the_actions_clock(sim: Simulator) -> None:
    """Issue 10 item 6: the hook's heartbeat timeout runs from when the action began. An event the
    handler takes up 80 s late (queued, retried) must still be heartbeated a third of the timeout
    after the action began, not a third of it after the handler started."""
    from ecsspot.sim import scenario
    from tests.drain.conftest import handlers

    stack = build(sim, deregistration_delay=300, handle_events=True)
    delivered: list[dict[str, Any]] = []
    # The rules deliver to a function that only keeps the event; the handler runs 80 s later.
    sim.register_lambda(scenario.INTERRUPTION_FUNCTION, lambda event, context: delivered.append(event) or {})
    group = stack.spec.asg_name(stack.spec.pool("spot"))
    asg = sim.client("autoscaling")
    (hook,) = [h for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"] if h["LifecycleHookName"] == HOOK]
    victim = spot_instances_with_tasks(sim, stack)[0]
    waiting = _scale_in(sim, group, victim)
    sim.advance(80)
    (event,) = [e for e in delivered if e["detail-type"] == "EC2 Instance-terminate Lifecycle Action"]

    response = handlers(sim).interruption(event, None)

    assert [a["status"] for a in response["actions"]] == ["drained", "done"]
    every = hook["HeartbeatTimeout"] / 3
    beats = [r.time for r in sim.records("asg.lifecycle_heartbeat", victim)]
    assert beats and every <= beats[0] - waiting <= every + 10, (waiting, beats)  # the old code: 80 s later


def test_a_30_second_hook_timeout_is_beaten_every_10_seconds(sim: Simulator) -> None:
    """AWS's shortest heartbeat timeout is 30 s, and the spec allows it (the drain's deadline is
    the same 30 s). Three beats per timeout keep the action alive to the drain's end; with a floor
    of 30 s between beats none went out, and the drain's completion raced the hook's timeout (a
    review found it)."""
    # A 90 s delay cannot fit: the drain runs to its deadline and lets the instance go.
    stack = build(sim, deregistration_delay=90, lifecycle_timeout=30, handle_events=True)
    responses = recording_interruption(sim)
    group = stack.spec.asg_name(stack.spec.pool("spot"))
    asg = sim.client("autoscaling")
    (hook,) = [h for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"] if h["LifecycleHookName"] == HOOK]
    assert hook["HeartbeatTimeout"] == 30
    victim = spot_instances_with_tasks(sim, stack)[0]
    waiting = _scale_in(sim, group, victim)
    sim.advance(120)

    assert not sim.records("asg.lifecycle_timeout", victim)
    # Completed by ecsspot's hook at the drain's deadline (ECS managed draining's own hook may hold
    # the instance longer), each 30 s renewed by a beat before it ran out.
    completed = first(sim, "asg.lifecycle_complete", victim, hook=HOOK, result="CONTINUE")
    assert completed is not None
    beats = [r.time for r in sim.records("asg.lifecycle_heartbeat", victim)]
    gaps = [b - a for a, b in zip([waiting, *beats], [*beats, completed])]
    assert beats and max(gaps) < 30, (waiting, beats, completed)
    (_, response), = responses
    assert [(a["kind"], a["status"]) for a in response["actions"]] == [("drain", "timed_out"), ("complete_lifecycle_action", "done")]
