"""Requests through a load balancer, to count the ones users would see fail.

Each target group with traffic gets ``rps`` requests per virtual second, spread round robin
(the default ``load_balancing.algorithm.type``,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#modify-routing-algorithm)
over the targets the load
balancer routes to (:meth:`~ecsspot.sim.alb.LoadBalancing.routable`). A request that reaches a
target whose instance or task is gone fails (the 502/504 a user sees); with no routable target
at all it gets a 503.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ecsspot.sim.world import World


@attrs.frozen
class TrafficStats:
    """Requests sent to one target group (or all of them) so far."""

    requests: int = 0
    succeeded: int = 0
    #: Reached a target whose instance or task was gone.
    failed: int = 0
    #: Found no routable target (HTTP 503 from the load balancer itself).
    no_target: int = 0
    first_failure_at: float | None = None
    last_failure_at: float | None = None

    def __add__(self, other: TrafficStats) -> TrafficStats:
        firsts = [t for t in (self.first_failure_at, other.first_failure_at) if t is not None]
        lasts = [t for t in (self.last_failure_at, other.last_failure_at) if t is not None]
        return TrafficStats(
            self.requests + other.requests,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.no_target + other.no_target,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
        )


class Traffic:
    def __init__(self, world: World) -> None:
        self.world = world
        self.rates: dict[str, float] = {}
        self.stats: dict[str, TrafficStats] = {}
        self._carry: dict[str, float] = {}
        self._cursor: dict[str, int] = {}

    def start(self, target_group_arn: str, rps: float) -> None:
        self.rates[target_group_arn] = float(rps)
        self.stats.setdefault(target_group_arn, TrafficStats())
        self.world.record("traffic.start", target_group_arn, rps=rps)

    def stop(self, target_group_arn: str) -> None:
        self.rates.pop(target_group_arn, None)
        self.world.record("traffic.stop", target_group_arn)

    def totals(self, target_group_arn: str | None = None) -> TrafficStats:
        if target_group_arn is not None:
            return self.stats.get(target_group_arn, TrafficStats())
        total = TrafficStats()
        for stats in self.stats.values():
            total = total + stats
        return total

    def tick(self, seconds: float) -> None:
        world = self.world
        for tg_arn, rps in self.rates.items():
            due = self._carry.get(tg_arn, 0.0) + rps * seconds
            count = int(due)
            self._carry[tg_arn] = due - count
            if count == 0:
                continue
            # In registration order: the simulator's own decisions, so the same seed gives the
            # same split whatever ids moto hands out.
            targets = world.alb.routable(tg_arn)
            stats = self.stats[tg_arn]
            if not targets:
                self.stats[tg_arn] = attrs.evolve(stats, requests=stats.requests + count, no_target=stats.no_target + count)
                continue
            # Round robin: every target gets count // n, the next count % n get one more.
            cursor = self._cursor.get(tg_arn, 0) % len(targets)
            share, extra = divmod(count, len(targets))
            failed = 0
            for offset, target in enumerate(targets):
                sent = share + (1 if (offset - cursor) % len(targets) < extra else 0)
                if sent and not world.scheduler.listening(target.id, target.port):
                    failed += sent
            self._cursor[tg_arn] = cursor + extra
            now = world.now()
            self.stats[tg_arn] = attrs.evolve(
                stats,
                requests=stats.requests + count,
                succeeded=stats.succeeded + count - failed,
                failed=stats.failed + failed,
                first_failure_at=stats.first_failure_at if stats.first_failure_at is not None or not failed else now,
                last_failure_at=now if failed else stats.last_failure_at,
            )
            if failed:
                world.record("traffic.failed", tg_arn, requests=failed, of=count)
