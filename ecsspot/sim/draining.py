"""ECS managed instance draining: ECS's own termination lifecycle hook, drained by ECS.

Imitates https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-instance-draining.html
and https://docs.aws.amazon.com/AmazonECS/latest/developerguide/enable-managed-instance-draining.html:

* "Managed instance draining is on by default when you create a capacity provider" (a provider
  created without ``managedDraining`` has it ENABLED; the seam sets that default, and applies
  ``managedDraining`` on UpdateCapacityProvider, which moto ignores).
* For a provider with it ENABLED that is associated with a cluster, ECS puts its own lifecycle
  hook on the provider's Auto Scaling group: ``ecs-managed-draining-termination-hook``,
  ``autoscaling:EC2_INSTANCE_TERMINATING``, a 3600 s heartbeat timeout, default result CONTINUE
  (the cluster attachment of type ``managed_draining`` names the hook). Turning managed draining
  off takes the hook away again.
* When the group takes an instance out (scale-in, instance refresh, maximum instance lifetime,
  capacity rebalancing, TerminateInstanceInAutoScalingGroup), ECS sets the container instance
  DRAINING; "the container instance remains in the DRAINING state until either all tasks are
  stopped or 48 hours has passed. Daemon tasks are the last to stop after all replica tasks have
  stopped." ECS then completes its hook with CONTINUE, recording heartbeats meanwhile so the
  3600 s timeout does not cut the drain short.
* Any other hook on the same transition is waited for too: Auto Scaling terminates the instance
  once every hook's action is complete (``ecsspot.sim.autoscaling``).

A hook whose provider is no longer associated with a cluster (or no longer exists) is left on the
group, and nothing completes it: the instance waits out the 3600 s heartbeat timeout. AWS does not
document the hook's removal on disassociation, and users report exactly this hour-long wait after
taking the provider away first (a Terraform destroy held in ``Terminating:Wait``; the hook
outliving its provider), so the simulator takes the strict reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecsspot.sim.capacity import provider_group_name

if TYPE_CHECKING:
    from ecsspot.sim.world import World

HOOK_NAME = "ecs-managed-draining-termination-hook"
HEARTBEAT_TIMEOUT = 3600
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
#: ECS records a heartbeat once less than this is left of the hook's timeout.
HEARTBEAT_MARGIN = 300.0


def enabled(provider: Any) -> bool:
    """Whether the capacity provider has managed draining on (the AWS default)."""
    settings = getattr(provider, "auto_scaling_group_provider", None) or {}
    return settings.get("managedDraining", "ENABLED") == "ENABLED"


class ManagedDraining:
    def __init__(self, world: World) -> None:
        self.world = world
        #: lifecycle action token -> when ECS first saw it (ECS reacts after ``ecs_reaction``).
        self._seen: dict[str, float] = {}
        #: lifecycle action tokens ECS has set DRAINING for.
        self._drained: set[str] = set()

    def managed_groups(self) -> dict[str, tuple[str, str]]:
        """Group name → (cluster, provider) for every associated provider with managed draining."""
        ecs = self.world.ecs
        out: dict[str, tuple[str, str]] = {}
        for cluster in ecs.clusters.values():
            if cluster.status != "ACTIVE":
                continue
            for name in cluster.capacity_providers or ():
                provider = ecs.capacity_providers.get(name)
                if provider is not None and enabled(provider) and provider_group_name(provider):
                    out[provider_group_name(provider)] = (cluster.name, provider.name)
        return out

    def due(self) -> float | None:
        """Now while any instance waits on the managed draining hook (ECS acts on it tick by
        tick, as its tasks stop), else nothing."""
        for action in self.world.autoscaling.actions.values():
            if action.hook == HOOK_NAME and action.transition == TERMINATING and action.result is None:
                return self.world.now()
        return None

    def tick(self) -> None:
        world = self.world
        managed = self.managed_groups()
        self._ensure_hooks(managed)
        now = world.now()
        autoscaling = world.autoscaling
        live = set()
        for action in list(autoscaling.actions.values()):
            if action.hook != HOOK_NAME or action.transition != TERMINATING or action.result is not None:
                continue
            live.add(action.token)
            owner = managed.get(action.group)
            if owner is None:
                continue  # nobody drains for a hook whose provider is gone: it times out
            seen = self._seen.setdefault(action.token, now)
            if now - seen < world.timings.ecs_reaction:
                continue
            self._drain(action, owner[0])
        for token in list(self._seen):
            if token not in live:
                del self._seen[token]
        self._drained &= live

    def _ensure_hooks(self, managed: dict[str, tuple[str, str]]) -> None:
        backend = self.world.asg
        for group in managed:
            if group in backend.autoscaling_groups and f"{group}_{HOOK_NAME}" not in backend.lifecycle_hooks:
                backend.create_lifecycle_hook(HOOK_NAME, group, TERMINATING, HEARTBEAT_TIMEOUT, "CONTINUE")
                self.world.record("ecs.managed_draining_hook", group, hook=HOOK_NAME, state="created")
        # Managed draining turned off on a provider still on a cluster: ECS takes its hook away.
        ecs = self.world.ecs
        for provider in ecs.capacity_providers.values():
            group = provider_group_name(provider)
            stale = group and not enabled(provider) and group not in managed and f"{group}_{HOOK_NAME}" in backend.lifecycle_hooks
            if stale and any(provider.name in (c.capacity_providers or ()) for c in ecs.clusters.values() if c.status == "ACTIVE"):
                backend.delete_lifecycle_hook(group, HOOK_NAME)
                self.world.record("ecs.managed_draining_hook", group, hook=HOOK_NAME, state="deleted")

    def _drain(self, action: Any, cluster: str) -> None:
        world = self.world
        autoscaling = world.autoscaling
        node = world.agent.nodes.get(action.instance_id)
        container_instance = world.agent.container_instance(node) if node is not None and node.cluster == cluster else None
        if container_instance is None or container_instance.status == "INACTIVE":
            # Nothing of ECS's runs there: nothing to drain.
            autoscaling.complete(action.group, HOOK_NAME, action.token, None, "CONTINUE")
            return
        if action.token not in self._drained:
            # Once, when ECS takes the action up: set ACTIVE again by someone, the instance stays
            # ACTIVE, takes tasks and holds the hook until they stop (up to 48 hours).
            self._drained.add(action.token)
            if container_instance.status == "ACTIVE":
                container_instance.status = "DRAINING"
                world.record("ecs.status", action.instance_id, status="DRAINING", cause="managed instance draining")
        left = [r for r in world.scheduler.live() if r.instance_id == action.instance_id]
        if not left:
            autoscaling.complete(action.group, HOOK_NAME, action.token, None, "CONTINUE")
        elif action.deadline - world.now() <= HEARTBEAT_MARGIN:
            autoscaling.heartbeat(action.group, HOOK_NAME, action.token, None)
