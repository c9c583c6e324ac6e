"""TerminateInstanceInAutoScalingGroup may not decrement a group below its MinSize."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ecsspot.sim import Simulator
from tests.sim.stack import launch_template, mixed_group


def test_decrement_below_min_size_is_refused(sim: Simulator) -> None:
    asg = sim.client("autoscaling")
    mixed_group(sim, "g", launch_template(sim, "g-lt", "demo"), desired=2, percent=100)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=2)
    sim.advance(60)
    first, second = (i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"])

    with pytest.raises(ClientError) as info:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert info.value.response["Error"]["Message"].startswith("Currently, desiredSize equals minSize (2).")
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2 and {i["LifecycleState"] for i in group["Instances"]} == {"InService"}

    # Without the decrement it is replaced; with MinSize lowered the decrement is allowed.
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=False)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 2
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=1)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=second, ShouldDecrementDesiredCapacity=True)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 1
