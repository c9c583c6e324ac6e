"""Requests through a load balancer, to count the ones users would see fail.

Each target group with traffic gets ``rps`` requests per virtual second, spread round robin
(the default ``load_balancing.algorithm.type``,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#modify-routing-algorithm)
over the targets the load balancer routes new requests to
(:meth:`~ecsspot.sim.alb.LoadBalancing.routable`: never a ``draining`` or ``unhealthy.draining``
one). A user sees a request fail when

- no target is routable: the load balancer answers HTTP 503 itself (``no_target``);
- its target's instance or task is gone when it arrives (the 502/504 a user sees);
- its target's listener goes away while it is in flight, or the load balancer closes the
  connection under it (``cut``): "If a deregistering target terminates the connection before the
  deregistration delay elapses, the client receives a 500-level error response", and at the end
  of the delay the target is no longer served
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay).

Requests take time: a tick's requests to a target leave evenly spaced over the tick and each is
in flight for ``duration`` seconds. The world changes only at tick boundaries, so a request is
cut exactly when a change at a boundary falls inside its flight.

Keep-alive: a Network Load Balancer balances connections, not requests, and its connection
draining is per connection: "existing connections" of a deregistering target (or one in
``unhealthy.draining``) keep carrying requests until the delay expires
(https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-target-groups.html#deregistration-delay).
For a TCP/TLS group, a ``keep_alive`` share of each tick's requests rides the connections of the
targets that already had traffic, including draining ones; the rest opens new connections to
routable targets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ecsspot.sim.world import World

# A request ending exactly at a tick boundary completed before that boundary's changes.
_EPSILON = 1e-9


@attrs.frozen
class TrafficStats:
    """Requests sent to one target group (or all of them) so far.

    Every sent request is ``succeeded``, ``failed`` or still ``in_flight``; ``no_target`` and
    ``cut`` say why some of the failed ones failed.
    """

    requests: int = 0
    succeeded: int = 0
    #: Every request a user saw fail: a 502/504 from a target that was gone or went away
    #: mid-request, a connection the load balancer closed, and a 503 for no target.
    failed: int = 0
    #: Of ``failed``: found no routable target (HTTP 503 from the load balancer itself).
    no_target: int = 0
    #: Of ``failed``: in flight when its target's task or instance went away or the load
    #: balancer closed the connection (end of the deregistration delay, unhealthy target).
    cut: int = 0
    #: Sent and not yet answered.
    in_flight: int = 0
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
            self.cut + other.cut,
            self.in_flight + other.in_flight,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
        )

    def _failing(self, count: int, now: float, **why: int) -> TrafficStats:
        if not count:
            return self
        return attrs.evolve(
            self,
            failed=self.failed + count,
            first_failure_at=self.first_failure_at if self.first_failure_at is not None else now,
            last_failure_at=now,
            **{k: getattr(self, k) + v for k, v in why.items()},
        )


@attrs.frozen
class Flight:
    """``count`` requests to one target, the i-th sent at ``first_sent + i * spacing``, each
    answered ``duration`` seconds after it was sent."""

    target: tuple[str, int]
    first_sent: float
    spacing: float
    count: int
    duration: float

    def answered_by(self, t: float) -> int:
        """How many of them have been answered at time ``t``."""
        if self.first_sent + self.duration > t + _EPSILON:
            return 0
        if self.spacing <= 0:
            return self.count
        return min(self.count, math.floor((t + _EPSILON - self.first_sent - self.duration) / self.spacing) + 1)

    def after(self, answered: int) -> Flight:
        return attrs.evolve(self, first_sent=self.first_sent + answered * self.spacing, count=self.count - answered)


@attrs.frozen
class Stream:
    """The traffic of one target group."""

    rps: float
    #: How long the target takes to answer one request.
    duration: float
    #: Share of the requests sent over existing connections (TCP/TLS groups only).
    keep_alive: float = 0.0


class Traffic:
    def __init__(self, world: World) -> None:
        self.world = world
        self.streams: dict[str, Stream] = {}
        self.stats: dict[str, TrafficStats] = {}
        #: Requests each target received, per group: what a target's access log would show.
        self.received: dict[str, dict[tuple[str, int], int]] = {}
        self.flights: dict[str, list[Flight]] = {}
        #: Targets holding client connections (keep-alive), per group, in the order they got them.
        self.connected: dict[str, dict[tuple[str, int], None]] = {}
        self._carry: dict[str, float] = {}
        self._cursor: dict[str, int] = {}
        self._pinned_cursor: dict[str, int] = {}

    def start(self, target_group_arn: str, rps: float, *, duration: float | None = None, keep_alive: float = 0.0) -> None:
        """Send ``rps`` requests per second, each taking ``duration`` seconds (default:
        ``Timings.request_duration``); ``keep_alive`` is the share of them sent over existing
        connections, for a TCP or TLS (Network Load Balancer) group."""
        duration = self.world.timings.request_duration if duration is None else float(duration)
        if rps < 0 or duration < 0 or not 0.0 <= keep_alive <= 1.0:
            raise ValueError(f"traffic needs rps >= 0, duration >= 0 and 0 <= keep_alive <= 1 (got {rps}, {duration}, {keep_alive})")
        if keep_alive and not self.world.alb.connection_based(target_group_arn):
            raise ValueError("keep_alive applies to TCP/TLS target groups (a Network Load Balancer balances connections)")
        self.streams[target_group_arn] = Stream(float(rps), duration, float(keep_alive))
        self.stats.setdefault(target_group_arn, TrafficStats())
        self.world.record("traffic.start", target_group_arn, rps=rps, duration=duration, keep_alive=keep_alive)

    def stop(self, target_group_arn: str) -> None:
        """No new requests; the ones in flight still get their answer."""
        self.streams.pop(target_group_arn, None)
        self.world.record("traffic.stop", target_group_arn)

    def totals(self, target_group_arn: str | None = None) -> TrafficStats:
        if target_group_arn is not None:
            return self.stats.get(target_group_arn, TrafficStats())
        total = TrafficStats()
        for stats in self.stats.values():
            total = total + stats
        return total

    def tick(self, seconds: float, *, tick: float | None = None) -> None:
        """Land what has been answered, then send ``seconds`` of requests. A span of several
        ``tick`` s (the world skipping quiet ticks, in which nothing changes) sends what the
        ticks before its last one would have sent, at the times they would have, and lands
        what of it has been answered by now; then the last tick's requests, as a tick does."""
        for tg_arn in list(self.flights):
            self._land(tg_arn)
        earlier = seconds - tick if tick is not None and seconds > tick + _EPSILON else 0.0
        for tg_arn, stream in self.streams.items():
            if earlier:
                self._send(tg_arn, stream, earlier, start=self.world.now() - earlier)
                if tg_arn in self.flights:
                    self._land(tg_arn)
            self._send(tg_arn, stream, seconds - earlier)

    def _land(self, tg_arn: str) -> None:
        """Answer what has been answered by now, and cut what a change at this boundary broke."""
        world = self.world
        now = world.now()
        kept = []
        cut = succeeded = 0
        for flight in self.flights[tg_arn]:
            answered = flight.answered_by(now)
            left = flight.count - answered
            succeeded += answered
            if not left:
                continue
            if world.scheduler.listening(*flight.target) and world.alb.serves_connections(tg_arn, *flight.target):
                kept.append(flight.after(answered) if answered else flight)
                continue
            cut += left
        stats = self.stats[tg_arn]
        stats = attrs.evolve(stats, succeeded=stats.succeeded + succeeded, in_flight=stats.in_flight - succeeded - cut)
        self.stats[tg_arn] = stats._failing(cut, now, cut=cut)
        if cut:
            world.record("traffic.failed", tg_arn, requests=cut, why="cut in flight")
        if kept:
            self.flights[tg_arn] = kept
        else:
            del self.flights[tg_arn]

    def _send(self, tg_arn: str, stream: Stream, seconds: float, *, start: float | None = None) -> None:
        """``seconds`` of requests, sent from ``start`` (default: now) on."""
        world = self.world
        due = self._carry.get(tg_arn, 0.0) + stream.rps * seconds
        count = int(due)
        self._carry[tg_arn] = due - count
        if count == 0:
            return
        now = world.now()
        stats = attrs.evolve(self.stats[tg_arn], requests=self.stats[tg_arn].requests + count)
        # In registration order: the simulator's own decisions, so the same seed gives the
        # same split whatever ids moto hands out.
        routable = [(t.id, t.port) for t in world.alb.routable(tg_arn)]
        connected = self.connected.setdefault(tg_arn, {})
        for key in [k for k in connected if not world.alb.serves_connections(tg_arn, *k)]:
            del connected[key]
        pinned_to = list(connected)
        pinned = int(count * stream.keep_alive) if pinned_to else 0
        fresh = count - pinned
        sends = self._round_robin(self._pinned_cursor, tg_arn, pinned_to, pinned)
        if routable:
            sends += self._round_robin(self._cursor, tg_arn, routable, fresh)
        else:
            stats = stats._failing(fresh, now, no_target=fresh)
        gone = flying = 0
        received = self.received.setdefault(tg_arn, {})
        for key, sent in sends:
            received[key] = received.get(key, 0) + sent
            if stream.keep_alive:
                connected.setdefault(key, None)
            if not world.scheduler.listening(*key):
                gone += sent
                continue
            self.flights.setdefault(tg_arn, []).append(Flight(key, now if start is None else start, seconds / sent, sent, stream.duration))
            flying += sent
        self.stats[tg_arn] = attrs.evolve(stats, in_flight=stats.in_flight + flying)._failing(gone, now)
        if gone or (fresh and not routable):
            world.record("traffic.failed", tg_arn, requests=gone + (0 if routable else fresh), of=count)

    @staticmethod
    def _round_robin(cursors: dict[str, int], tg_arn: str, targets: list[tuple[str, int]], count: int) -> list[tuple[tuple[str, int], int]]:
        """Every target gets count // n, the next count % n (from the cursor on) one more."""
        if not targets or not count:
            return []
        cursor = cursors.get(tg_arn, 0) % len(targets)
        share, extra = divmod(count, len(targets))
        cursors[tg_arn] = cursor + extra
        out = []
        for offset, key in enumerate(targets):
            sent = share + (1 if (offset - cursor) % len(targets) < extra else 0)
            if sent:
                out.append((key, sent))
        return out
