"""Application Load Balancer target groups: registration keyed by (id, port), health, draining.

moto keys a target group's targets by id only (a second port replaces the first), reports every
registered target ``healthy`` at once and drops a deregistered one at once. Here each
(id, port) target goes ``initial`` -> ``healthy`` after HealthyThresholdCount consecutive
passing checks, ``unhealthy`` after UnhealthyThresholdCount failing ones, and ``draining`` for
the group's ``deregistration_delay.timeout_seconds`` before it is gone
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay).
A check passes when something listens behind the target: a live task bound to that host port
(or, for an ``ip`` target, the awsvpc task owning that address), or, for an instance port no task
ever used, a running instance.

A draining target gets no new requests and stays ``draining`` for the whole delay: "If a
deregistering target has no in-flight requests and no active connections, Elastic Load Balancing
immediately completes the deregistration process, without waiting for the deregistration delay
to elapse. However, even though target deregistration is complete, the status of the target is
displayed as draining until the deregistration delay timeout expires." (same page). What is still
in flight on it when the delay expires is cut (:mod:`ecsspot.sim.traffic`).

Network Load Balancer groups (TCP, TLS, UDP, TCP_UDP) terminate the connections of a target that
turns ``unhealthy``, unless ``target_health_state.unhealthy.connection_termination.enabled`` is
``false``; then a failing target is ``unhealthy.draining`` for
``target_health_state.unhealthy.draining_interval_seconds`` ("targets do not receive new
connections but retain established connections"), back to ``healthy`` if it recovers, else
``unhealthy`` with its connections terminated
(https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health.html#unhealthy-target-connection-termination).
Those attributes "are supported only by Network Load Balancers" (TargetGroupAttribute in the
ELBv2 API reference): :meth:`LoadBalancing.check_attributes` refuses them on other groups the
way ModifyTargetGroupAttributes does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ecsspot.sim.world import World

INITIAL, HEALTHY, UNHEALTHY, DRAINING, UNUSED = "initial", "healthy", "unhealthy", "draining", "unused"
UNHEALTHY_DRAINING = "unhealthy.draining"
#: Protocols of Network Load Balancer target groups: they balance connections, not requests.
CONNECTION_PROTOCOLS = frozenset({"TCP", "TLS", "UDP", "TCP_UDP"})
TERMINATION = "target_health_state.unhealthy.connection_termination.enabled"
DRAINING_INTERVAL = "target_health_state.unhealthy.draining_interval_seconds"
_REASONS = {
    INITIAL: ("Elb.InitialHealthChecking", "Initial health checks in progress"),
    UNHEALTHY: ("Target.FailedHealthChecks", "Health checks failed"),
    UNHEALTHY_DRAINING: ("Target.FailedHealthChecks", "Health checks failed"),
    DRAINING: ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
    UNUSED: ("Target.NotRegistered", "Target is not registered to the target group"),
}


def _health_status(target_id: str, port: int, health_port: Any, state: str, reason: str | None = None, description: str | None = None) -> Any:
    """moto's DescribeTargetHealth entry. moto annotates its ``port`` as str, yet passes the
    registered int port itself (the API's ``Port`` is an integer): called through ``Any``."""
    from moto.elbv2.models import FakeHealthStatus

    status: Any = FakeHealthStatus
    return status(target_id, port, health_port, state, reason, description)


@attrs.frozen
class Target:
    """One registered (id, port) of a target group and its health-check progress."""

    group_arn: str
    id: str
    port: int
    state: str
    since: float
    next_check: float
    passes: int = 0
    failures: int = 0
    drained_at: float | None = None
    #: End of ``unhealthy.draining``.
    unhealthy_at: float | None = None


class LoadBalancing:
    def __init__(self, world: World) -> None:
        self.world = world
        self.targets: dict[str, dict[tuple[str, int], Target]] = {}
        #: Per group, how many times what DescribeTargetHealth shows of it changed (a target
        #: added, removed or in another state): the seam shares answers between changes.
        self._revisions: dict[str, int] = {}

    def revision(self, tg_arn: str) -> int:
        """Moves on whenever DescribeTargetHealth of the group would answer differently."""
        return self._revisions.get(tg_arn, 0)

    def _changed(self, tg_arn: str) -> None:
        self._revisions[tg_arn] = self._revisions.get(tg_arn, 0) + 1

    def _group_targets(self, tg: Any) -> dict[tuple[str, int], Target]:
        return self.targets.setdefault(tg.arn, {})

    @staticmethod
    def _key(tg: Any, target: Mapping[str, Any]) -> tuple[str, int]:
        return str(target["Id"]), int(target.get("Port") or tg.port)

    def register(self, tg: Any, targets: Iterable[Mapping[str, Any]]) -> None:
        """RegisterTargets: all or nothing; re-registering a draining target revives it. A target
        is an instance id in an ``instance`` group and an IP address in an ``ip`` group
        (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#target-type)."""
        from moto.elbv2.exceptions import InvalidTargetError, TargetNotRunning

        keys = [self._key(tg, t) for t in targets]
        kind = getattr(tg, "target_type", "instance") or "instance"
        for target_id, _ in keys:
            if kind in ("instance", "ip") and target_id.startswith("i-") != (kind == "instance"):
                raise InvalidTargetError()
            if target_id.startswith("i-") and not self.world.instance_running(target_id):
                raise TargetNotRunning(instance_id=target_id)
        registered = self._group_targets(tg)
        now = self.world.now()
        interval = float(tg.health_check_interval_seconds)
        for key in keys:
            current = registered.get(key)
            if current is not None and current.state != DRAINING:
                continue
            registered[key] = Target(tg.arn, key[0], key[1], INITIAL, now, now + interval)
            self._changed(tg.arn)
            self.world.record("target.state", f"{key[0]}:{key[1]}", target_group=tg.name, state=INITIAL)

    def deregister(self, tg: Any, targets: Iterable[Mapping[str, Any]], *, missing_ok: bool = False) -> None:
        """DeregisterTargets: validated before anything changes (moto removes the earlier
        targets and then fails on an unregistered one)."""
        from moto.elbv2.exceptions import InvalidTargetError

        registered = self._group_targets(tg)
        keys = [self._key(tg, t) for t in targets]
        missing = [k for k in keys if k not in registered]
        if missing and not missing_ok:
            raise InvalidTargetError()
        delay = float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
        now = self.world.now()
        for key in keys:
            current = registered.get(key)
            if current is None or current.state == DRAINING:
                continue
            registered[key] = attrs.evolve(current, state=DRAINING, since=now, drained_at=now + delay, unhealthy_at=None)
            self._changed(tg.arn)
            self.world.record("target.state", f"{key[0]}:{key[1]}", target_group=tg.name, state=DRAINING, until=now + delay)

    def health(self, tg: Any, targets: Iterable[Mapping[str, Any]] | None) -> list[Any]:
        """DescribeTargetHealth: every registered (and draining) target, or the ones asked for;
        an asked-for id without a port matches each of its registered ports."""
        registered = self._group_targets(tg)
        health_port = tg.health_check_port
        if not targets:
            found = list(registered.values())
            return [self._status(t, health_port) for t in found]
        out: list[Any] = []
        for asked in targets:
            if asked.get("Port") is None:
                found = [t for (target_id, _), t in registered.items() if target_id == asked["Id"]]
            else:
                one = registered.get(self._key(tg, asked))
                found = [one] if one else []
            if found:
                out.extend(self._status(t, health_port) for t in found)
            else:
                reason, description = _REASONS[UNUSED]
                out.append(_health_status(asked["Id"], asked.get("Port") or tg.port, health_port, UNUSED, reason, description))
        return out

    def _status(self, target: Target, health_port: Any) -> Any:
        if target.state == HEALTHY:
            return _health_status(target.id, target.port, health_port, HEALTHY)
        reason, description = _REASONS[target.state]
        return _health_status(target.id, target.port, health_port, target.state, reason, description)

    def check_attributes(self, tg: Any, attributes: Mapping[str, Any]) -> None:
        """ModifyTargetGroupAttributes: the unhealthy-target attributes only on Network Load
        Balancer groups (AWS answers InvalidConfigurationRequest "The provided target group
        attribute is not supported", as seen by hashicorp/terraform-provider-aws#7047), a draining
        interval of 0-360000 s and only with connection termination off (TargetGroupAttribute)."""
        from moto.elbv2.exceptions import InvalidConfigurationRequest

        if TERMINATION not in attributes and DRAINING_INTERVAL not in attributes:
            return
        if (tg.protocol or "") not in CONNECTION_PROTOCOLS:
            raise InvalidConfigurationRequest("The provided target group attribute is not supported")
        # Termination "can't be enabled for UDP and TCP_UDP target groups": off there by default.
        default = "false" if tg.protocol in ("UDP", "TCP_UDP") else "true"
        termination = str(attributes.get(TERMINATION, tg.attributes.get(TERMINATION, default))).lower()
        if termination not in ("true", "false"):
            raise InvalidConfigurationRequest(f"'{TERMINATION}' must be true or false")
        if termination == "true" and tg.protocol in ("UDP", "TCP_UDP"):
            raise InvalidConfigurationRequest(f"'{TERMINATION}' cannot be enabled for {tg.protocol} target groups")
        interval = str(attributes.get(DRAINING_INTERVAL, tg.attributes.get(DRAINING_INTERVAL, "0")))
        if not interval.isdigit() or int(interval) > 360000:
            raise InvalidConfigurationRequest(f"'{DRAINING_INTERVAL}' must be between 0 and 360000 seconds")
        # Both ways: turning termination back on under an interval is refused too
        # (kubernetes-sigs/aws-load-balancer-controller#4648).
        if int(interval) and termination != "false":
            raise InvalidConfigurationRequest(f"'{DRAINING_INTERVAL}' can only be configured when '{TERMINATION}' is false")

    def connection_based(self, tg_arn: str) -> bool:
        tg = self.world.elbv2.target_groups.get(tg_arn)
        return tg is not None and (tg.protocol or "") in CONNECTION_PROTOCOLS

    def serves_connections(self, tg_arn: str, target_id: str, port: int) -> bool:
        """Whether the load balancer still carries existing connections to the target: not once
        it is gone (end of the deregistration delay), nor, in a Network Load Balancer group, once
        it is ``unhealthy`` (its connections terminated)."""
        state = self.state(tg_arn, target_id, port)
        if state == UNUSED:
            return False
        return not (state == UNHEALTHY and self.connection_based(tg_arn))

    def state(self, tg_arn: str, target_id: str, port: int) -> str:
        target = self.targets.get(tg_arn, {}).get((target_id, int(port)))
        return target.state if target else UNUSED

    def routable(self, tg_arn: str) -> list[Target]:
        """Where the load balancer sends new requests: the healthy targets, or, "if a target
        group contains only unhealthy registered targets", all of those (fail open). Never a
        ``draining`` target, nor an ``unhealthy.draining`` one while any target is healthy."""
        targets = [t for t in self.targets.get(tg_arn, {}).values() if t.state != DRAINING]
        healthy = [t for t in targets if t.state == HEALTHY]
        return healthy or [t for t in targets if t.state in (UNHEALTHY, UNHEALTHY_DRAINING)]

    def due(self) -> float | None:
        """The earliest time a tick can change what a target shows: a health check that can
        move its state (not one of a healthy target something listens behind, nor of an
        unhealthy one nothing does), the end of a deregistration delay or of unhealthy.draining."""
        world = self.world
        groups = world.elbv2.target_groups
        due: float | None = None
        for tg_arn, registered in self.targets.items():
            if tg_arn not in groups:
                return world.now()
            for (target_id, port), target in registered.items():
                if target.state == DRAINING:
                    when = target.drained_at if target.drained_at is not None else world.now()
                elif target.state == UNHEALTHY_DRAINING:
                    when = min(target.next_check, target.unhealthy_at if target.unhealthy_at is not None else world.now())
                elif target.state in (HEALTHY, UNHEALTHY) and world.scheduler.listening(target_id, port) == (target.state == HEALTHY):
                    continue
                else:
                    when = target.next_check
                due = when if due is None else min(due, when)
        return due

    def tick(self) -> None:
        world = self.world
        now = world.now()
        groups = world.elbv2.target_groups
        for tg_arn in list(self.targets):
            tg = groups.get(tg_arn)
            if tg is None:
                del self.targets[tg_arn]
                self._changed(tg_arn)
                continue
            registered = self.targets[tg_arn]
            interval = float(tg.health_check_interval_seconds)
            healthy_after = int(tg.healthy_threshold_count)
            unhealthy_after = int(tg.unhealthy_threshold_count)
            # Off unless connection termination is: AWS refuses an interval with termination on.
            unhealthy_draining = (
                float(tg.attributes.get(DRAINING_INTERVAL, 0))
                if (tg.protocol or "") in CONNECTION_PROTOCOLS and str(tg.attributes.get(TERMINATION, "")).lower() != "true"
                else 0.0
            )
            for key, target in list(registered.items()):
                if target.state == DRAINING:
                    if now >= (target.drained_at or now):
                        del registered[key]
                        self._changed(tg_arn)
                        world.record("target.state", f"{key[0]}:{key[1]}", target_group=tg.name, state=UNUSED)
                    continue
                state, unhealthy_at = target.state, target.unhealthy_at
                if state == UNHEALTHY_DRAINING and now >= (unhealthy_at or now):
                    state, unhealthy_at = UNHEALTHY, None
                if now >= target.next_check:
                    alive = world.scheduler.listening(key[0], key[1])
                    passes = target.passes + 1 if alive else 0
                    failures = 0 if alive else target.failures + 1
                    next_check = target.next_check + interval
                    # After a span of quiet ticks (see due()) the checks in it changed nothing:
                    # the next one keeps the target's phase.
                    if next_check <= now:
                        next_check += interval * math.ceil((now - next_check) / interval + 1e-9)
                    if alive and state != HEALTHY and passes >= healthy_after:
                        state, unhealthy_at = HEALTHY, None
                    elif not alive and state in (INITIAL, HEALTHY) and failures >= unhealthy_after:
                        if state == HEALTHY and unhealthy_draining > 0:
                            state, unhealthy_at = UNHEALTHY_DRAINING, now + unhealthy_draining
                        else:
                            state = UNHEALTHY
                else:
                    passes, failures, next_check = target.passes, target.failures, target.next_check
                if (state, passes, failures, next_check) == (target.state, target.passes, target.failures, target.next_check):
                    continue
                registered[key] = attrs.evolve(
                    target,
                    state=state,
                    passes=passes,
                    failures=failures,
                    next_check=next_check,
                    unhealthy_at=unhealthy_at,
                    since=now if state != target.state else target.since,
                )
                if state != target.state:
                    self._changed(tg_arn)
                    world.record("target.state", f"{key[0]}:{key[1]}", target_group=tg.name, state=state)
