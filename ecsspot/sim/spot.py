"""The spot market: purchase options of mixed instances groups, pools, interruptions.

moto launches every instance of a mixed instances policy on demand, with ``InstanceType ""``,
ignores the overrides and rounds the on-demand split wrongly. Here the Auto Scaling module asks
this one which purchase option and which instance type each launch gets, following the
documented rules, and scenario controls decide which spot pools have capacity.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot.sim import instancetypes

if TYPE_CHECKING:
    from ecsspot.sim.world import World

SPOT = "spot"
ON_DEMAND = "on-demand"


@attrs.frozen
class Split:
    """Capacity units on demand and on spot."""

    on_demand: int
    spot: int


def purchase_split(desired: int, base: int, percent_above_base: int) -> Split:
    """The on-demand/spot split of ``desired`` capacity units.

    https://docs.aws.amazon.com/autoscaling/ec2/userguide/mixed-instances-groups-set-up-overview.html
    (Scaling behavior): the base is on-demand first; above it the percentage is converted to
    instances and "if the result creates a fractional number, it rounds up to the next integer
    in favor of On-Demand Instances".
    """
    desired = max(0, desired)
    base_part = min(desired, max(0, base))
    above = desired - base_part
    on_demand_above = -(-above * percent_above_base // 100)  # ceiling, in integers
    return Split(base_part + on_demand_above, above - on_demand_above)


@attrs.frozen
class Override:
    instance_type: str
    weight: int = 1
    #: Position in the overrides list: the priority for ``prioritized`` strategies.
    priority: int = 0
    #: Whether the purchase option may launch it: a type from instance requirements may be
    #: above one option's price protection (``instancetypes.price_protected``).
    on_demand: bool = True
    spot: bool = True


@attrs.frozen
class Distribution:
    """A group's ``InstancesDistribution`` with AWS's defaults filled in."""

    on_demand_base: int = 0
    on_demand_percent: int = 100
    on_demand_strategy: str = "prioritized"
    spot_strategy: str = "lowest-price"
    spot_pools: int = 2

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> Distribution:
        # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html
        data = data or {}
        return cls(
            on_demand_base=int(data.get("OnDemandBaseCapacity") or 0),
            on_demand_percent=int(data.get("OnDemandPercentageAboveBaseCapacity", 100)),
            on_demand_strategy=str(data.get("OnDemandAllocationStrategy") or "prioritized"),
            spot_strategy=str(data.get("SpotAllocationStrategy") or "lowest-price"),
            spot_pools=int(data.get("SpotInstancePools") or 2),
        )


@attrs.frozen
class Pool:
    """One spot capacity pool (instance type in an Availability Zone), with seeded figures."""

    instance_type: str
    availability_zone: str
    #: Relative depth of spare capacity, 0..1: what ``capacity-optimized`` looks at.
    depth: float
    price: float


class SpotMarket:
    """Purchase-option decisions, capacity per pool, interruption notices."""

    def __init__(self, world: World) -> None:
        self.world = world
        # (group, instance type) -> available, None meaning "any"; the latest matching rule wins.
        self._capacity: dict[tuple[str | None, str | None], bool] = {}

    def set_capacity(self, available: bool, *, group: str | None = None, instance_type: str | None = None) -> None:
        if group is None and instance_type is None:
            self._capacity.clear()
        self._capacity.pop((group, instance_type), None)
        self._capacity[(group, instance_type)] = available
        self.world.record(
            "spot.capacity", group or "*", instance_type=instance_type or "*", available=available
        )

    def has_capacity(self, group: str | None, instance_type: str) -> bool:
        for (rule_group, rule_type), available in reversed(self._capacity.items()):
            if rule_group in (None, group) and rule_type in (None, instance_type):
                return available
        return True

    def pool(self, instance_type: str, availability_zone: str) -> Pool:
        # Seeded per pool rather than drawn from the shared stream, so a pool's figures do not
        # depend on the order in which pools are first looked at.
        rng = random.Random(f"{self.world.seed}/{instance_type}/{availability_zone}")
        on_demand = instancetypes.lookup(instance_type).on_demand_price
        return Pool(instance_type, availability_zone, rng.random(), round(on_demand * (0.3 + 0.4 * rng.random()), 4))

    def choose(
        self,
        *,
        group: str,
        overrides: Iterable[Override],
        availability_zone: str,
        lifecycle: str,
        distribution: Distribution,
        in_use: Mapping[str, int],
    ) -> Override | None:
        """The override to launch next, or None when no spot pool has capacity.

        Strategies as in
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/allocation-strategies.html;
        ``in_use`` counts the group's running instances per type, which ``lowest-price`` spreads
        evenly over its N cheapest pools.
        """
        candidates = [o for o in overrides if (o.on_demand if lifecycle == ON_DEMAND else o.spot)]
        if not candidates:
            return None
        if lifecycle == ON_DEMAND:
            if distribution.on_demand_strategy == "lowest-price":
                return min(candidates, key=lambda o: (instancetypes.lookup(o.instance_type).on_demand_price / o.weight, o.priority))
            return min(candidates, key=lambda o: o.priority)
        available = [o for o in candidates if self.has_capacity(group, o.instance_type)]
        if not available:
            return None
        pools = {o: self.pool(o.instance_type, availability_zone) for o in available}
        strategy = distribution.spot_strategy
        if strategy == "capacity-optimized":
            return max(available, key=lambda o: (pools[o].depth, -o.priority))
        if strategy == "capacity-optimized-prioritized":
            # Priorities are honoured "on a best-effort basis", capacity first: among the
            # deeper half of the pools, the highest priority wins.
            deep = sorted(available, key=lambda o: -pools[o].depth)[: max(1, (len(available) + 1) // 2)]
            return min(deep, key=lambda o: o.priority)
        if strategy == "price-capacity-optimized":
            deep = sorted(available, key=lambda o: -pools[o].depth)[: max(1, (len(available) + 1) // 2)]
            return min(deep, key=lambda o: (pools[o].price / o.weight, o.priority))
        cheapest = sorted(available, key=lambda o: (pools[o].price / o.weight, o.priority))[: max(1, distribution.spot_pools)]
        return min(cheapest, key=lambda o: (in_use.get(o.instance_type, 0), cheapest.index(o)))

    def interrupt(self, instance_ids: Iterable[str]) -> list[str]:
        """EC2 Spot's interruption notice now, its event a little later, the termination after
        two minutes, or sooner.

        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html:
        the notice is "issued two minutes before Amazon EC2 stops or terminates your Spot
        Instance", the notices "are emitted on a best effort basis", and "it is possible that
        your Spot Instance is terminated before the warning can be made available". So the
        "EC2 Spot Instance Interruption Warning" event reaches EventBridge rules
        ``Timings.spot_warning_lag`` after the notice (out of the two minutes), and with
        probability ``Timings.spot_early_termination`` EC2 reclaims the instance at a seeded time
        within the two minutes; a warning whose instance is already gone is never emitted. The
        ECS agent (instance metadata) and Auto Scaling (capacity rebalancing) see the notice
        itself.
        """
        world = self.world
        warned = []
        for instance_id in instance_ids:
            machine = world.machine(instance_id)
            if machine is None or machine.lifecycle != SPOT:
                raise ValueError(f"{instance_id} is not a spot instance the simulator launched")
            if machine.terminated_at is not None or machine.reclaim_at is not None:
                continue
            after = self.reclaim_after(instance_id)
            reclaim_at = world.now() + after
            world.update_machine(instance_id, reclaim_at=reclaim_at)
            world.record("spot.interruption_warning", instance_id, reclaim_at=reclaim_at, early=after < world.timings.spot_warning)
            world.at(world.timings.spot_warning_lag, functools.partial(self._warning_event, machine))
            world.agent.spot_warning(instance_id)
            world.autoscaling.interruption_warning(instance_id)
            world.at(after, functools.partial(self._reclaim, instance_id))
            warned.append(instance_id)
        return warned

    def reclaim_after(self, instance_id: str) -> float:
        """Seconds from the notice to the termination: two minutes, or, early, fewer.

        Seeded per instance (not from the shared stream), so the draw does not depend on how
        many other instances were interrupted first.
        """
        timings = self.world.timings
        rng = random.Random(f"{self.world.seed}/spot-early/{instance_id}")
        if rng.random() < timings.spot_early_termination:
            return round(rng.uniform(0.0, timings.spot_warning), 3)
        return timings.spot_warning

    def _warning_event(self, machine: Any) -> None:
        world = self.world
        current = world.machine(machine.instance_id)
        if current is None or current.terminated_at is not None:
            world.record("spot.warning_lost", machine.instance_id)
            return
        world.events.emit(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            {"instance-id": machine.instance_id, "instance-action": "terminate"},
            resources=[self._instance_arn(machine)],
        )

    def recommend_rebalance(self, instance_ids: Iterable[str]) -> list[str]:
        """An "EC2 Instance Rebalance Recommendation" for each instance (no termination follows).

        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
        """
        world = self.world
        sent = []
        for instance_id in instance_ids:
            machine = world.machine(instance_id)
            if machine is None or machine.lifecycle != SPOT:
                raise ValueError(f"{instance_id} is not a spot instance the simulator launched")
            if not machine.running:
                continue
            world.record("spot.rebalance_recommendation", instance_id)
            world.events.emit(
                "aws.ec2",
                "EC2 Instance Rebalance Recommendation",
                {"instance-id": instance_id},
                resources=[self._instance_arn(machine)],
            )
            world.autoscaling.rebalance_recommendation(instance_id)
            sent.append(instance_id)
        return sent

    def _reclaim(self, instance_id: str) -> None:
        self.world.record("spot.reclaimed", instance_id)
        self.world.terminate_ec2(instance_id)

    def _instance_arn(self, machine: Any) -> str:
        # The real events put the Availability Zone where the region goes and no account.
        return f"arn:aws:ec2:{machine.availability_zone}:instance/{machine.instance_id}"
