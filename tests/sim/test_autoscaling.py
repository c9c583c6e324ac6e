"""Auto Scaling: lifecycle hooks, replacement, scale-in protection, capacity rebalancing, moto's
update and delete bugs."""

from __future__ import annotations

import botocore.exceptions
import pytest

from ecsspot.sim import Simulator
from tests.sim.stack import launch_template, mixed_group


def group_instances(sim: Simulator, name: str = "demo-spot") -> dict[str, str]:
    """instance id -> lifecycle state"""
    groups = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return {i["InstanceId"]: i["LifecycleState"] for i in groups[0]["Instances"]} if groups else {}


def ec2_state(sim: Simulator, instance_id: str) -> str:
    return sim.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def spot_group(sim: Simulator, desired: int, **extra: object) -> str:
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=desired, **extra)
    sim.advance(31)
    return "demo-spot"


def terminate_hook(sim: Simulator, timeout: int, default: str = "CONTINUE") -> None:
    sim.client("autoscaling").put_lifecycle_hook(
        AutoScalingGroupName="demo-spot",
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=timeout,
        DefaultResult=default,
        NotificationMetadata="ecsspot",
    )


def test_terminate_hook_waits_until_its_heartbeat_timeout(sim: Simulator) -> None:
    spot_group(sim, 2)
    terminate_hook(sim, timeout=300, default="ABANDON")
    sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=1)
    waiting = [i for i, s in group_instances(sim).items() if s == "Terminating:Wait"]
    assert len(waiting) == 1
    victim = waiting[0]
    [event] = [e for e in sim.events("EC2 Instance-terminate Lifecycle Action")]
    assert event["detail"]["EC2InstanceId"] == victim and event["detail"]["NotificationMetadata"] == "ecsspot"
    assert set(event["detail"]) == {"LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName", "EC2InstanceId", "LifecycleTransition", "NotificationMetadata"}

    sim.advance(299)
    assert group_instances(sim)[victim] == "Terminating:Wait" and ec2_state(sim, victim) == "running"
    sim.advance(1)
    assert victim not in group_instances(sim) and ec2_state(sim, victim) == "terminated"
    assert [r.detail["result"] for r in sim.records("asg.lifecycle_timeout", victim)] == ["ABANDON"]


def test_complete_lifecycle_action_and_heartbeat(sim: Simulator) -> None:
    spot_group(sim, 2)
    terminate_hook(sim, timeout=100)
    asg = sim.client("autoscaling")
    asg.set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=0)
    first, second = sorted(group_instances(sim))
    sim.advance(90)
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="demo-spot", LifecycleHookName="drain", InstanceId=first)
    sim.advance(20)  # the second one timed out at 100 s; the first got 100 s more at 90 s
    assert group_instances(sim) == {first: "Terminating:Wait"}
    token = next(e["detail"]["LifecycleActionToken"] for e in sim.events("EC2 Instance-terminate Lifecycle Action") if e["detail"]["EC2InstanceId"] == first)
    asg.complete_lifecycle_action(AutoScalingGroupName="demo-spot", LifecycleHookName="drain", LifecycleActionToken=token, LifecycleActionResult="CONTINUE")
    assert group_instances(sim) == {} and ec2_state(sim, first) == "terminated"
    with pytest.raises(botocore.exceptions.ClientError, match="No active Lifecycle Action"):
        asg.complete_lifecycle_action(AutoScalingGroupName="demo-spot", LifecycleHookName="drain", InstanceId=second, LifecycleActionResult="CONTINUE")


def test_launch_hook_holds_instances_in_pending_wait(sim: Simulator) -> None:
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=0)
    asg = sim.client("autoscaling")
    asg.put_lifecycle_hook(AutoScalingGroupName="demo-spot", LifecycleHookName="warm", LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=600)
    asg.set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=1)
    sim.advance(60)
    [(instance, state)] = group_instances(sim).items()
    assert state == "Pending:Wait"
    asg.complete_lifecycle_action(AutoScalingGroupName="demo-spot", LifecycleHookName="warm", InstanceId=instance, LifecycleActionResult="CONTINUE")
    assert group_instances(sim) == {instance: "InService"}


def test_interrupted_instance_is_replaced_after_termination(sim: Simulator) -> None:
    spot_group(sim, 3)
    victim = sim.spot_instances()[0]
    sim.interrupt([victim])
    sim.advance(119)
    assert len(group_instances(sim)) == 3 and victim in group_instances(sim)  # no capacity rebalance: wait
    sim.advance(1)
    instances = group_instances(sim)
    assert victim not in instances and len(instances) == 3
    assert sorted(instances.values()) == ["InService", "InService", "Pending"]


def test_capacity_rebalance_replaces_before_terminating(sim: Simulator) -> None:
    spot_group(sim, 2, CapacityRebalance=True)
    at_risk = sim.spot_instances()[0]
    sim.recommend_rebalance([at_risk])
    instances = group_instances(sim)
    assert len(instances) == 3 and instances[at_risk] == "InService"
    sim.advance(30)  # the replacement is in service: now the at-risk instance goes
    instances = group_instances(sim)
    assert at_risk not in instances and sorted(instances.values()) == ["InService", "InService"]
    assert ec2_state(sim, at_risk) == "terminated"


def test_scale_in_honours_instance_protection(sim: Simulator) -> None:
    spot_group(sim, 4)
    asg = sim.client("autoscaling")
    protected = sorted(group_instances(sim))[:2]
    asg.set_instance_protection(AutoScalingGroupName="demo-spot", InstanceIds=protected, ProtectedFromScaleIn=True)
    asg.set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=1)
    assert sorted(group_instances(sim)) == protected
    assert sim.records("asg.scale_in_blocked", "demo-spot")


def test_update_without_policy_keeps_it_and_force_delete_takes_everything(sim: Simulator) -> None:
    spot_group(sim, 2)
    asg = sim.client("autoscaling")
    asg.update_auto_scaling_group(AutoScalingGroupName="demo-spot", MaxSize=10, DesiredCapacity=4)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot"])["AutoScalingGroups"][0]
    assert group["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    sim.advance(31)
    assert len(sim.spot_instances("demo-spot")) == 4  # still spot: moto would launch on-demand now

    instances = list(group_instances(sim))
    asg.set_instance_protection(AutoScalingGroupName="demo-spot", InstanceIds=instances, ProtectedFromScaleIn=True)
    with pytest.raises(botocore.exceptions.ClientError, match="ResourceInUse"):
        asg.delete_auto_scaling_group(AutoScalingGroupName="demo-spot")
    asg.delete_auto_scaling_group(AutoScalingGroupName="demo-spot", ForceDelete=True)
    assert group_instances(sim) == {}
    assert {ec2_state(sim, i) for i in instances} == {"terminated"}
