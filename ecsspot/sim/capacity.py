"""ECS cluster auto scaling: capacity providers' managed scaling and managed termination protection.

Imitates https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-auto-scaling.html:
every minute, for each Auto Scaling group capacity provider with managed scaling ENABLED,

    CapacityProviderReservation = M / N x 100

where N is the group's running instances and M the instances needed: those running a task, plus
enough for the tasks the scheduler could not place for lack of room (PROVISIONING). With N = 0
and tasks waiting the metric is 200. A target tracking policy then sets the group's desired
capacity to ceil(M x 100 / targetCapacity): at once when that is more (the high alarm needs one
datapoint; the step is bounded by minimum/maximumScalingStepSize), and only after 15 minutes of
lower values when it is less (the low alarm needs 15 datapoints).

Managed termination protection keeps scale-in protection on every instance that runs a non-daemon
task and takes it off the others, so Auto Scaling only ever scales in empty instances
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-termination-protection.html).

With ``keeps_daemon_only=True`` (the Simulator's ``protection_keeps_daemon_only``) it imitates
what aws/containers-roadmap#2814 reports with CloudTrail evidence: ECS protects instances when it
places tasks but never calls SetInstanceProtection(False) once only daemon tasks are left, so
such instances stay protected indefinitely (ecsspot's protection reconciler is the remedy).

Off unless the Simulator is made with ``managed_scaling=True``: tests that size groups by hand
would otherwise have ECS undo it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ecsspot.sim import instancetypes

if TYPE_CHECKING:
    from ecsspot.sim.world import World

#: The target tracking policy's low alarm: 15 one-minute datapoints below target.
SCALE_IN_AFTER = 15 * 60.0
PERIOD = 60.0


def provider_group_name(provider: Any) -> str:
    """The Auto Scaling group name of a capacity provider ("" when it has none)."""
    settings = getattr(provider, "auto_scaling_group_provider", None) or {}
    return (settings.get("autoScalingGroupArn") or "").split("autoScalingGroupName/")[-1]


class ClusterAutoScaling:
    def __init__(self, world: World, *, enabled: bool, keeps_daemon_only: bool = False) -> None:
        self.world = world
        self.enabled = enabled
        self.keeps_daemon_only = keeps_daemon_only
        self._next = 0.0
        self._low_since: dict[str, float] = {}

    def due(self) -> float | None:
        """The next look at the capacity providers (every ``PERIOD``)."""
        return self._next if self.enabled else None

    def tick(self) -> None:
        if not self.enabled:
            return
        now = self.world.now()
        if now < self._next:
            return
        self._next = now + PERIOD
        for provider in list(self.world.ecs.capacity_providers.values()):
            settings = provider.auto_scaling_group_provider or {}
            group = self.world.autoscaling.group(provider_group_name(provider))
            if group is None:
                continue
            if settings.get("managedTerminationProtection") == "ENABLED":
                self._protect(group)
            scaling = settings.get("managedScaling") or {}
            if scaling.get("status") == "ENABLED":
                self._scale(provider.name, group, scaling)

    def _busy(self, group: Any) -> set[str]:
        # "When all non-daemon tasks are stopped on an instance", managed termination protection
        # lets it go (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-termination-protection.html).
        members = {s.instance.id for s in group.instance_states}
        return {r.instance_id for r in self.world.scheduler.live() if not r.daemon and r.instance_id in members}

    def _daemon_hosts(self, group: Any) -> set[str]:
        members = {s.instance.id for s in group.instance_states}
        return {r.instance_id for r in self.world.scheduler.runs.values() if r.status != "STOPPED" and r.daemon and r.instance_id in members}

    def _protect(self, group: Any) -> None:
        busy = self._busy(group)
        # containers-roadmap#2814: protection is never released from a daemon-only instance.
        stuck = self._daemon_hosts(group) - busy if self.keeps_daemon_only else set()
        for state in group.instance_states:
            want = state.instance.id in busy
            if state.instance.id in stuck and not want:
                continue
            if bool(state.protected_from_scale_in) != want and state.lifecycle_state == "InService":
                state.protected_from_scale_in = want
                self.world.record("ecs.termination_protection", state.instance.id, group=group.name, protected=want)

    def _scale(self, name: str, group: Any, scaling: dict[str, Any]) -> None:
        world = self.world
        running = [s for s in group.instance_states if s.lifecycle_state in ("Pending", "Pending:Wait", "Pending:Proceed", "InService")]
        n = len(running)
        busy = len(self._busy(group))
        waiting_cpu, waiting_memory = world.scheduler.unplaced.get(name, (0, 0))
        extra = 0
        if waiting_cpu or waiting_memory:
            size = self._instance_size(group)
            extra = max(math.ceil(waiting_cpu / size.cpu_units), math.ceil(waiting_memory / size.registered_memory_mib), 1)
            extra = max(int(scaling.get("minimumScalingStepSize", 1)), min(extra, int(scaling.get("maximumScalingStepSize", 10_000))))
        needed = busy + extra
        target = int(scaling.get("targetCapacity", 100))
        reservation = 200.0 if n == 0 and needed else (100.0 if n == 0 else needed * 100.0 / n)
        desired = min(max(math.ceil(needed * 100 / target), group.min_size), group.max_size)
        current = group.desired_capacity or 0
        world.record("ecs.capacity_provider_reservation", name, value=round(reservation, 1), needed=needed, running=n)
        if desired > current:
            self._low_since.pop(name, None)
            world.record("ecs.managed_scaling", name, group=group.name, desired=desired, previous=current)
            world.autoscaling.set_desired(group, desired)
        elif desired < current:
            since = self._low_since.setdefault(name, world.now())
            if world.now() - since >= SCALE_IN_AFTER:
                self._low_since.pop(name, None)
                world.record("ecs.managed_scaling", name, group=group.name, desired=desired, previous=current)
                world.autoscaling.set_desired(group, desired)
        else:
            self._low_since.pop(name, None)

    def _instance_size(self, group: Any) -> instancetypes.InstanceType:
        """The smallest type the group launches: enough of them surely fits what waits."""
        policy = getattr(group, "mixed_instances_policy", None) or {}
        overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
        types = [instancetypes.lookup(o["InstanceType"]) for o in overrides if o.get("InstanceType")]
        for o in overrides:
            if o.get("InstanceRequirements"):
                types += instancetypes.matching(o["InstanceRequirements"], ("x86_64", "arm64"))
        return min(types, key=lambda t: t.cpu_units) if types else instancetypes.lookup("m5.large")
