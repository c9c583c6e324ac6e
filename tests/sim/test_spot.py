"""Spot market: the documented on-demand/spot split, types from the overrides, capacity shortages."""

from __future__ import annotations

import pytest

from ecsspot.sim import Simulator, Split, purchase_split
from tests.sim.stack import SPOT_TYPES, launch_template, mixed_group


# https://docs.aws.amazon.com/autoscaling/ec2/userguide/mixed-instances-groups-set-up-overview.html
# "Example: Scaling behavior" table (group sizes 10, 20, 30, 40).
@pytest.mark.parametrize(
    ("base", "percent", "sizes", "on_demand"),
    [
        (10, 50, (10, 20, 30, 40), (10, 15, 20, 25)),
        (0, 0, (10, 20, 30, 40), (0, 0, 0, 0)),
        (0, 60, (10, 20, 30, 40), (6, 12, 18, 24)),
        (0, 100, (10, 20, 30, 40), (10, 20, 30, 40)),
        (12, 0, (10, 20, 30, 40), (10, 12, 12, 12)),
    ],
)
def test_split_matches_the_documented_table(base: int, percent: int, sizes: tuple[int, ...], on_demand: tuple[int, ...]) -> None:
    for size, expected in zip(sizes, on_demand, strict=True):
        assert purchase_split(size, base, percent) == Split(expected, size - expected)


def test_fractions_round_up_in_favour_of_on_demand() -> None:
    # base 1, then 25 % of the 5 above it = 1.25 -> 2 on-demand: 3 on-demand, 3 spot.
    assert purchase_split(6, 1, 25) == Split(3, 3)
    assert purchase_split(3, 0, 10) == Split(1, 2)


def describe(sim: Simulator, group: str) -> tuple[list[dict], dict[str, dict]]:
    instances = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    reservations = sim.client("ec2").describe_instances(InstanceIds=[i["InstanceId"] for i in instances])["Reservations"]
    ec2 = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    return instances, ec2


def test_mixed_group_launches_the_documented_split_with_override_types(sim: Simulator) -> None:
    sim.client("ecs").create_cluster(clusterName="demo")
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-mixed", template, desired=6, base=1, percent=25)

    instances, ec2 = describe(sim, "demo-mixed")
    spot = [i for i in instances if ec2[i["InstanceId"]].get("InstanceLifecycle") == "spot"]
    assert len(instances) == 6 and len(spot) == 3  # moto alone: 2 + 3 instances, none spot
    assert {i["InstanceType"] for i in instances} <= set(SPOT_TYPES)
    assert all(ec2[i["InstanceId"]]["InstanceType"] == i["InstanceType"] for i in instances)
    # Balanced over the three Availability Zones, two each.
    assert sorted(i["AvailabilityZone"] for i in instances) == ["us-east-1a"] * 2 + ["us-east-1b"] * 2 + ["us-east-1c"] * 2
    # On-demand instances follow the prioritized order of the overrides: the first type.
    assert {i["InstanceType"] for i in instances if i not in spot} == {"m5.large"}
    assert all(i["LifecycleState"] == "Pending" for i in instances)
    sim.advance(31)
    instances, ec2 = describe(sim, "demo-mixed")
    assert all(i["LifecycleState"] == "InService" for i in instances)
    assert all(e["State"]["Name"] == "running" for e in ec2.values())


def test_no_spot_capacity_fails_launches_until_capacity_returns(sim: Simulator) -> None:
    template = launch_template(sim, "demo-lt", "demo")
    sim.set_spot_capacity(False, group="demo-spot")
    mixed_group(sim, "demo-spot", template, desired=3)
    assert describe(sim, "demo-spot")[0] == []
    activities = sim.client("autoscaling").describe_scaling_activities(AutoScalingGroupName="demo-spot")["Activities"]
    assert activities[0]["StatusCode"] == "Failed"
    assert "InsufficientInstanceCapacity" in activities[0]["StatusMessage"]

    # Only one pool short: the other override types still launch.
    sim.set_spot_capacity(True, group="demo-spot")
    sim.set_spot_capacity(False, instance_type="m5.large")
    sim.advance(10)
    instances, _ = describe(sim, "demo-spot")
    assert len(instances) == 3 and "m5.large" not in {i["InstanceType"] for i in instances}


def test_same_seed_same_choices() -> None:
    def run() -> list[tuple[str, str]]:
        with Simulator(seed=11) as sim:
            template = launch_template(sim, "demo-lt", "demo")
            mixed_group(sim, "demo-spot", template, desired=8, strategy="lowest-price")
            sim.advance(40)
            return [(r.kind, r.subject) for r in sim.history]

    assert run() == run()


def test_a_raised_on_demand_base_applies_to_new_launches_and_leaves_running_spot_instances(sim: Simulator) -> None:
    """InstancesDistribution: "When scaling out occurs, Amazon EC2 Auto Scaling launches instances
    based on the new settings" — the fallback controller's lever while spot has no capacity."""
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=3)
    sim.advance(31)
    spot_before = {i["InstanceId"] for i in describe(sim, "demo-spot")[0]}
    asg = sim.client("autoscaling")
    sim.set_spot_capacity(False, group="demo-spot")
    asg.set_desired_capacity(AutoScalingGroupName="demo-spot", DesiredCapacity=5)
    sim.advance(30)
    assert len(describe(sim, "demo-spot")[0]) == 3  # the two spot launches keep failing
    failed = asg.describe_scaling_activities(AutoScalingGroupName="demo-spot")["Activities"][0]
    assert failed["StatusCode"] == "Failed" and "Could not launch Spot Instances" in failed["StatusMessage"]

    policy = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-spot"])["AutoScalingGroups"][0]["MixedInstancesPolicy"]
    policy["LaunchTemplate"]["LaunchTemplateSpecification"].pop("LaunchTemplateId", None)
    policy["InstancesDistribution"]["OnDemandBaseCapacity"] = 2
    asg.update_auto_scaling_group(AutoScalingGroupName="demo-spot", MixedInstancesPolicy=policy)
    sim.advance(41)
    instances, ec2 = describe(sim, "demo-spot")
    new = [i for i in instances if i["InstanceId"] not in spot_before]
    assert len(instances) == 5 and all(i["LifecycleState"] == "InService" for i in instances)
    assert [ec2[i["InstanceId"]].get("InstanceLifecycle") for i in new] == [None, None]  # on demand
    assert all(ec2[i].get("InstanceLifecycle") == "spot" for i in spot_before)
