"""ECS managed instance draining: ECS's own hook on the group, drained and completed by ECS."""

from __future__ import annotations

from typing import Any

from ecsspot.sim import Simulator
from ecsspot.sim.draining import HOOK_NAME
from tests.sim.stack import build_stack, capacity_provider, container_instances, tasks_of


def _associate(sim: Simulator, **provider: Any) -> None:
    """The stack's group as a capacity provider of the cluster (managed draining as given)."""
    asg = sim.client("autoscaling")
    ecs = sim.client("ecs")
    if provider:
        arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot"])["AutoScalingGroups"][0]["AutoScalingGroupARN"]
        ecs.create_capacity_provider(name="demo-spot", autoScalingGroupProvider={"autoScalingGroupArn": arn, **provider})
    else:
        capacity_provider(sim, "demo-spot", "demo-spot")
    ecs.put_cluster_capacity_providers(cluster="demo", capacityProviders=["demo-spot"], defaultCapacityProviderStrategy=[])


def _hooks(sim: Simulator) -> dict[str, dict[str, Any]]:
    answer = sim.client("autoscaling").describe_lifecycle_hooks(AutoScalingGroupName="demo-spot")
    return {h["LifecycleHookName"]: h for h in answer["LifecycleHooks"]}


def _instance_with_task(sim: Simulator) -> str:
    [task] = tasks_of(sim, "demo")
    arn = task["containerInstanceArn"]
    return next(ci["ec2InstanceId"] for ci in container_instances(sim, "demo") if ci["containerInstanceArn"] == arn)


def _lifecycle(sim: Simulator, instance_id: str) -> str:
    answer = sim.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return answer[0]["LifecycleState"] if answer else "gone"


def test_a_provider_on_a_cluster_gets_ecs_hook_by_default(sim: Simulator) -> None:
    build_stack(sim, instances=1, with_load_balancer=False)
    _associate(sim)
    [provider] = sim.client("ecs").describe_capacity_providers(capacityProviders=["demo-spot"])["capacityProviders"]
    assert provider["autoScalingGroupProvider"]["managedDraining"] == "ENABLED"  # the AWS default
    sim.advance(1)
    hook = _hooks(sim)[HOOK_NAME]
    assert (hook["LifecycleTransition"], hook["HeartbeatTimeout"], hook["DefaultResult"]) == (
        "autoscaling:EC2_INSTANCE_TERMINATING",
        3600,
        "CONTINUE",
    )


def test_managed_draining_disabled_means_no_hook_and_turning_it_off_removes_it(sim: Simulator) -> None:
    build_stack(sim, instances=1, with_load_balancer=False)
    _associate(sim, managedDraining="DISABLED")
    sim.advance(5)
    assert HOOK_NAME not in _hooks(sim)
    ecs = sim.client("ecs")
    ecs.update_capacity_provider(name="demo-spot", autoScalingGroupProvider={"managedDraining": "ENABLED"})
    sim.advance(1)
    assert HOOK_NAME in _hooks(sim)
    ecs.update_capacity_provider(name="demo-spot", autoScalingGroupProvider={"managedDraining": "DISABLED"})
    sim.advance(1)
    assert HOOK_NAME not in _hooks(sim)


def test_ecs_drains_the_instance_and_lets_it_go_once_its_tasks_have_stopped(sim: Simulator) -> None:
    """A scale-in (here TerminateInstanceInAutoScalingGroup) holds the instance in
    Terminating:Wait; ECS sets it DRAINING, the service moves its task, and only once the old
    task is STOPPED does ECS complete its hook and the instance terminate."""
    build_stack(sim, instances=2, tasks=1, delay=30, boot=90)
    _associate(sim)
    sim.advance(1)
    doomed = _instance_with_task(sim)
    sim.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=doomed, ShouldDecrementDesiredCapacity=False)
    assert _lifecycle(sim, doomed) == "Terminating:Wait"
    sim.advance(10)
    [ci] = [c for c in container_instances(sim, "demo") if c["ec2InstanceId"] == doomed]
    assert ci["status"] == "DRAINING"
    assert _lifecycle(sim, doomed) == "Terminating:Wait"  # its task is still there
    sim.advance(240)
    assert _lifecycle(sim, doomed) == "gone"
    history = sim.history
    completed = next(r for r in history if r.kind == "asg.lifecycle_complete" and r.subject == doomed and r.detail["hook"] == HOOK_NAME)
    stopped = [r.time for r in history if r.kind == "task.status" and r.detail.get("instance_id") == doomed and r.detail.get("status") == "STOPPED"]
    assert stopped and max(stopped) <= completed.time
    assert completed.detail["result"] == "CONTINUE"
    # The service's task runs elsewhere.
    [task] = tasks_of(sim, "demo")
    assert task["lastStatus"] == "RUNNING"


def test_another_hook_on_the_same_transition_is_waited_for_too(sim: Simulator) -> None:
    build_stack(sim, instances=1, with_load_balancer=False)
    _associate(sim)
    asg = sim.client("autoscaling")
    asg.put_lifecycle_hook(
        AutoScalingGroupName="demo-spot", LifecycleHookName="mine", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=600
    )
    sim.advance(1)
    [instance] = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot"])["AutoScalingGroups"][0]["Instances"]]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=True)
    sim.advance(30)
    # ECS has completed its own (nothing ran there); the instance still waits for "mine".
    assert any(r.kind == "asg.lifecycle_complete" and r.detail["hook"] == HOOK_NAME for r in sim.history)
    assert _lifecycle(sim, instance) == "Terminating:Wait"
    asg.complete_lifecycle_action(AutoScalingGroupName="demo-spot", LifecycleHookName="mine", InstanceId=instance, LifecycleActionResult="CONTINUE")
    sim.advance(1)
    assert _lifecycle(sim, instance) in ("Terminating:Proceed", "gone")


def test_ecs_keeps_its_hook_alive_while_tasks_cannot_move(sim: Simulator) -> None:
    """Nowhere to put the task (one instance, maximumPercent 100): the instance stays DRAINING,
    ECS records heartbeats, and the hook outlives its 3600 s timeout."""
    build_stack(sim, instances=1, tasks=1, minimum=100, maximum=100, with_load_balancer=False, boot=90)
    _associate(sim)
    sim.advance(1)
    doomed = _instance_with_task(sim)
    sim.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=doomed, ShouldDecrementDesiredCapacity=False)
    sim.advance(2 * 3600)
    assert _lifecycle(sim, doomed) == "Terminating:Wait"
    assert any(r.kind == "asg.lifecycle_heartbeat" and r.detail["hook"] == HOOK_NAME for r in sim.history)
    assert not any(r.kind == "asg.lifecycle_timeout" for r in sim.history)


def test_a_hook_whose_provider_left_the_cluster_waits_out_its_timeout(sim: Simulator) -> None:
    """Nothing completes ECS's hook once its provider is off the cluster: the instance is held
    for the hook's 3600 s heartbeat timeout, then terminates (default result CONTINUE)."""
    build_stack(sim, instances=1, with_load_balancer=False)
    _associate(sim)
    sim.advance(1)
    ecs = sim.client("ecs")
    ecs.put_cluster_capacity_providers(cluster="demo", capacityProviders=[], defaultCapacityProviderStrategy=[])
    asg = sim.client("autoscaling")
    assert HOOK_NAME in _hooks(sim)
    [instance] = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot"])["AutoScalingGroups"][0]["Instances"]]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=True)
    sim.advance(3590)
    assert _lifecycle(sim, instance) == "Terminating:Wait"
    sim.advance(20)
    assert _lifecycle(sim, instance) in ("Terminating:Proceed", "gone")
    timeout = next(r for r in sim.history if r.kind == "asg.lifecycle_timeout")
    assert (timeout.detail["hook"], timeout.detail["result"]) == (HOOK_NAME, "CONTINUE")
