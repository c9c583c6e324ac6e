"""DescribeSpotPriceHistory answers the simulated market's prices, as AWS documents the window;
instances carry their LaunchTime on the simulated clock."""

from __future__ import annotations

import datetime as dt

from ecsspot.sim import Simulator
from tests.sim.stack import launch_template, mixed_group


def history(sim: Simulator, **params: object) -> list[dict]:
    return list(sim.client("ec2").describe_spot_price_history(**params)["SpotPriceHistory"])


def test_each_pool_answers_its_market_price_in_effect_since_the_world_began(sim: Simulator) -> None:
    sim.advance(3600)
    now = sim.world.datetime()
    points = history(sim, InstanceTypes=["m5.large", "c5.large"], ProductDescriptions=["Linux/UNIX"], StartTime=now - dt.timedelta(minutes=10), EndTime=now)
    zones = {p["AvailabilityZone"] for p in points}
    assert {p["InstanceType"] for p in points} == {"m5.large", "c5.large"} and len(zones) >= 3
    for p in points:
        # The last change before the start time is returned: the price set when the world began.
        assert p["Timestamp"] == sim.world.datetime(sim.world.started_at)
        assert float(p["SpotPrice"]) == sim.world.market.pool(p["InstanceType"], p["AvailabilityZone"]).price
        assert p["ProductDescription"] == "Linux/UNIX"
    # Cheaper than on demand, as the market draws it (30 to 70 % of the list price).
    assert all(float(p["SpotPrice"]) < 0.096 for p in points if p["InstanceType"] == "m5.large")


def test_filters_and_a_window_before_the_world_began(sim: Simulator) -> None:
    one = history(sim, InstanceTypes=["m5.large"], AvailabilityZone="us-east-1b")
    assert [(p["InstanceType"], p["AvailabilityZone"]) for p in one] == [("m5.large", "us-east-1b")]
    filtered = history(sim, Filters=[{"Name": "instance-type", "Values": ["r5.large"]}, {"Name": "availability-zone", "Values": ["us-east-1a"]}])
    assert [(p["InstanceType"], p["AvailabilityZone"]) for p in filtered] == [("r5.large", "us-east-1a")]
    assert history(sim, InstanceTypes=["m5.large"], ProductDescriptions=["Windows"]) == []
    before = sim.world.datetime(sim.world.started_at - 7200)
    assert history(sim, InstanceTypes=["m5.large"], StartTime=before - dt.timedelta(hours=1), EndTime=before) == []


def test_launch_time_is_on_the_simulated_clock(sim: Simulator) -> None:
    sim.advance(5000)
    template = launch_template(sim, "lt-savings", "c")
    mixed_group(sim, "g-savings", template, desired=1)
    sim.advance(120)
    (reservation,) = sim.client("ec2").describe_instances(Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": ["g-savings"]}])["Reservations"]
    launched = reservation["Instances"][0]["LaunchTime"]
    machine = sim.world.machines[reservation["Instances"][0]["InstanceId"]]
    assert launched.timestamp() == int(machine.launched_at) and machine.launched_at > sim.world.started_at + 4000
