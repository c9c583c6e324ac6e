"""A refresh under ECS managed scaling: the capacity a batch adds looks idle to ECS's target
tracking (its low alarm fires after 15 quiet minutes), which would scale it in while the refresh
still counts on it. The refresh holds the group's MinSize at the raised count during a batch."""

from __future__ import annotations

from typing import Any

from ecsspot.sim import Simulator, scenario
from ecsspot.sim.capacity import SCALE_IN_AFTER
from tests.refresh.stack import OTHER_IMAGES


def test_refresh_holds_its_capacity_against_managed_scaling() -> None:
    with Simulator(seed=7, managed_scaling=True) as sim:
        stack = scenario.build(sim, scenario.DemoConfig(tasks=8))
        autoscaling = sim.client("autoscaling")
        spot = stack.spec.asg_name(stack.spec.pool("spot"))
        provider = stack.spec.capacity_provider_name(stack.spec.pool("spot"))
        before = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[spot])["AutoScalingGroups"][0]
        # Spare capacity, idle for 14 minutes: ECS's low alarm is due within the refresh's first batch.
        autoscaling.set_desired_capacity(AutoScalingGroupName=spot, DesiredCapacity=before["DesiredCapacity"] + 2)
        quiet_from = sim.now()
        sim.advance(14 * 60)
        # Another ECS-optimized image (listing all of moto's takes seconds).
        image = sim.client("ssm").get_parameter(Name=OTHER_IMAGES[0])["Parameter"]["Value"]
        held: list[tuple[int, int]] = []

        def watch(progress: Any) -> None:
            batch = next((p["batch"] for p in progress["pools"] if p["pool"] == "spot"), None) or {}
            if batch.get("step") in ("wait_new", "drain"):
                group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[spot])["AutoScalingGroups"][0]
                held.append((group["MinSize"], batch["desired"]))

        start = sim.now()
        result = stack.manager.refresh(stack.cluster, ami=image, on_progress=watch)

        assert result.status == "done", result.reason
        assert sim.traffic_stats(stack.target_group_arn).failed == 0
        # The pressure was real: below target for 15 minutes, running into the refresh.
        low = [r for r in sim.records("ecs.capacity_provider_reservation", provider) if quiet_from < r.time <= start + 120]
        assert low and all(r.detail["value"] < 100 for r in low) and low[-1].time - low[0].time >= SCALE_IN_AFTER - 60
        # ...and held off: during every batch the group could not shrink below what it counted on.
        assert held and all(minimum == desired for minimum, desired in held)
        after = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[spot])["AutoScalingGroups"][0]
        assert (after["MinSize"], after["MaxSize"]) == (before["MinSize"], before["MaxSize"])  # restored
