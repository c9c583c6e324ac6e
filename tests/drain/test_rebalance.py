"""Rebalance recommendations on a pool without capacity rebalance (issue 10 item 6)."""

from __future__ import annotations

from ecsspot.sim import Simulator
from tests.drain.conftest import build, rebalance_recommendation


def test_rebalance_leaves_a_managed_scaling_pools_desired_capacity_alone(sim: Simulator) -> None:
    """Raising the desired capacity of a group that ECS managed scaling sizes is undone by managed
    scaling about 15 minutes later: the handler leaves it to managed scaling and says so. (The
    spec's pools have managed scaling on; the simulator's is off here, so the groups keep the
    sizes the fixture set and any change is the handler's.)"""
    stack = build(sim)
    spot = stack.spec.asg_name(stack.spec.pool("spot"))
    assert stack.spec.pool("spot").managed_scaling is not None
    asg = sim.client("autoscaling")
    # As with `capacity_rebalance: false` in the spec (the group is what the handler reads).
    asg.update_auto_scaling_group(AutoScalingGroupName=spot, CapacityRebalance=False)
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[spot])["AutoScalingGroups"]
    victim = sorted(i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService")[0]

    result = stack.manager.handle_event(rebalance_recommendation(sim, victim, "6c000000-0000-4000-8000-000000000001"))

    rebalance = [a for a in result.actions if a.kind == "rebalance"]
    assert [(a.instance_id, a.status) for a in rebalance] == [(victim, "skipped")]
    assert "managed scaling owns" in rebalance[0].reason
    (after,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[spot])["AutoScalingGroups"]
    assert after["DesiredCapacity"] == group["DesiredCapacity"]  # the old code raised it by one
    assert [a.status for a in result.actions if a.kind == "drain"] == ["drained"], result.actions
