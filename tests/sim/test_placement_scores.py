"""GetSpotPlacementScores on the simulator: 1..10 per zone or Region, fewer than three types
always low, a zone whose spot capacity is gone scores 1, top 10 only."""

from __future__ import annotations

from ecsspot.sim import Simulator

TYPES = ["m5.large", "m5a.large", "m6i.large"]


def test_zones_are_scored_1_to_10_best_first(sim: Simulator) -> None:
    scores = sim.client("ec2").get_spot_placement_scores(InstanceTypes=TYPES, TargetCapacity=10, SingleAvailabilityZone=True)["SpotPlacementScores"]
    zone_ids = {z.zone_id for z in sim.world.ec2.describe_availability_zones()}
    assert {s["AvailabilityZoneId"] for s in scores} <= zone_ids and 1 <= len(scores) <= 10
    assert all(1 <= s["Score"] <= 10 and s["Region"] == sim.region for s in scores)
    assert [s["Score"] for s in scores] == sorted((s["Score"] for s in scores), reverse=True)
    assert len({s["Score"] for s in scores}) > 1  # the market's pools differ by zone


def test_fewer_than_three_types_score_low_and_a_market_without_capacity_scores_1(sim: Simulator) -> None:
    ec2 = sim.client("ec2")
    assert ec2.get_spot_placement_scores(InstanceTypes=TYPES[:2], TargetCapacity=1)["SpotPlacementScores"] == [{"Region": sim.region, "Score": 1}]
    assert ec2.get_spot_placement_scores(InstanceTypes=TYPES, TargetCapacity=1)["SpotPlacementScores"][0]["Score"] > 1
    sim.world.market.set_capacity(False)
    assert {s["Score"] for s in ec2.get_spot_placement_scores(InstanceTypes=TYPES, TargetCapacity=1, SingleAvailabilityZone=True)["SpotPlacementScores"]} == {1}
    assert ec2.get_spot_placement_scores(InstanceTypes=TYPES, TargetCapacity=1, RegionNames=["eu-west-1"])["SpotPlacementScores"] == []
