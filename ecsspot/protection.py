"""Protection reconciler: scale-in protection off idle instances, back on busy ones.

ECS managed termination protection is documented to take protection off an instance "when all
non-daemon tasks are stopped" on it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-termination-protection.html),
but it does not reliably do so for instances left running only daemon tasks
(aws/containers-roadmap#2814): such an instance stays protected for ever, managed scaling can
never scale it in and the pool pays for it. The reconciler looks at every instance of ecsspot's
own pools that use managed termination protection:

* one running no task but daemon tasks (or none at all) for longer than ``protection.idle_after``
  loses its protection, so Auto Scaling can take it at the next scale-in;
* one running a non-daemon task and not protected gets it back, so no scale-in lands on its tasks.

"For longer than" needs memory across runs: when each instance was first seen idle is kept in
the state table (one document, written under the ``protection`` lease), so the threshold counts
from the first look by any run, the dry run included. A task that is still stopping (its desired
status already STOPPED) keeps the instance busy: removing protection then would let a scale-in
kill a task that is still answering requests.

Decisions are pure (:func:`decide`); :func:`reconcile` gathers what they need in a constant
number of rounds (group and task describes are batched: 100 tasks, 10 services, 50 instances a
call) and applies them with SetInstanceProtection, at most 50 instance ids a call, as AWS
documents (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html).
Instances of other groups are never touched: each is an ``ignore`` with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Workflow, call, chunks, failed, paginate, settle
from ecsspot.spec import ClusterSpec, duration_seconds, duration_text
from ecsspot.state import CLUSTER_TAG, tags_of

#: SetInstanceProtection: "You can specify up to 50 instances" (API reference above).
PROTECTION_IDS = 50
LEASE = "protection"
LEASE_SECONDS = 120.0
#: Where the first-seen-idle times live in the state table.
MEMORY = ("protection", "idle")

Kind = Literal["unprotect", "protect", "wait", "ignore"]
Status = Literal["planned", "done", "waiting", "ignored", "skipped", "failed"]


@attrs.frozen
class Seen:
    """One instance as the reconciler saw it (the input of :func:`decide`)."""

    instance_id: str
    #: Its Auto Scaling group, if any.
    group: str | None
    #: The ecsspot pool of the group; None when the group is not one of ecsspot's.
    pool: str | None
    protected: bool
    #: The group's view: InService, Pending, Terminating:Wait…
    lifecycle_state: str
    #: ECS's view (ACTIVE, DRAINING), None when the agent has not registered it.
    container_status: str | None
    #: Tasks short of STOPPED that are not daemon tasks (a stopping task counts).
    tasks: int
    daemon_tasks: int
    #: Whether the pool uses managed termination protection (its protection is ecsspot's to reconcile).
    managed: bool = True
    #: Why the instance is not ecsspot's, when it is not.
    foreign: str = ""


@attrs.frozen
class ProtectionAction:
    """One decision about one instance; the JSON unit of ``ecsspot protection``."""

    kind: Kind
    instance_id: str
    status: Status
    reason: str
    group: str | None = None
    pool: str | None = None


@attrs.frozen
class Decisions:
    actions: tuple[ProtectionAction, ...]
    #: Group → instance ids whose protection goes off / on.
    unprotect: Mapping[str, tuple[str, ...]]
    protect: Mapping[str, tuple[str, ...]]
    #: What the state table remembers next: instance → when first seen idle (epoch seconds).
    idle_since: Mapping[str, float]


@attrs.frozen
class ProtectionResult:
    cluster: str
    #: Whether the decisions were carried out (``--apply`` / the scheduled tick).
    applied: bool
    idle_after_seconds: float
    actions: tuple[ProtectionAction, ...]
    #: Whether this run recorded its observations (False when another run held the lease).
    recorded: bool = True

    @property
    def failed(self) -> tuple[ProtectionAction, ...]:
        return tuple(a for a in self.actions if a.status == "failed")


def decide(seen: Sequence[Seen], idle_since: Mapping[str, float], *, now: float, idle_after: float) -> Decisions:
    """Pure: what to do about each instance, and the idle times to remember."""
    actions: list[ProtectionAction] = []
    unprotect: dict[str, list[str]] = {}
    protect: dict[str, list[str]] = {}
    remember: dict[str, float] = {}
    for s in sorted(seen, key=lambda s: s.instance_id):
        if s.pool is None or s.group is None:
            actions.append(ProtectionAction("ignore", s.instance_id, "ignored", s.foreign or "not an instance of an ecsspot pool", s.group))
            continue
        if not s.managed:
            if s.protected:
                why = f"pool {s.pool} does not use managed termination protection: its instances' protection is left as set"
                actions.append(ProtectionAction("ignore", s.instance_id, "ignored", why, s.group, s.pool))
            continue
        if s.lifecycle_state != "InService":
            continue  # on its way in (booting) or out: protection changes nothing useful now
        if s.container_status is None:
            continue  # the agent has not registered it yet: it is about to take tasks
        if s.tasks:
            if not s.protected:
                why = f"runs {s.tasks} non-daemon task(s) unprotected: a scale-in could stop them"
                actions.append(ProtectionAction("protect", s.instance_id, "planned", why, s.group, s.pool))
                protect.setdefault(s.group, []).append(s.instance_id)
            continue
        since = min(idle_since.get(s.instance_id, now), now)
        remember[s.instance_id] = since
        if not s.protected:
            continue
        running = f"only {s.daemon_tasks} daemon task(s)" if s.daemon_tasks else "no task"
        idle = now - since
        if idle >= idle_after:
            why = f"{running} for {duration_text(idle)} (idle_after {duration_text(idle_after)}): protection off so managed scaling can scale it in"
            actions.append(ProtectionAction("unprotect", s.instance_id, "planned", why, s.group, s.pool))
            unprotect.setdefault(s.group, []).append(s.instance_id)
        else:
            why = f"{running} for {duration_text(idle)} of the {duration_text(idle_after)} idle_after"
            actions.append(ProtectionAction("wait", s.instance_id, "waiting", why, s.group, s.pool))
    return Decisions(
        tuple(actions),
        {g: tuple(ids) for g, ids in sorted(unprotect.items())},
        {g: tuple(ids) for g, ids in sorted(protect.items())},
        remember,
    )


# --- gathering -------------------------------------------------------------------------------


def _task_lists(cluster: str) -> tuple[Any, ...]:
    # Desired STOPPED lists the stopping tasks too (and, for a while, stopped ones).
    return tuple(paginate("ecs", "list_tasks", cluster=cluster, desiredStatus=s, PaginationConfig={"PageSize": 100}) for s in ("RUNNING", "STOPPED"))


def observe(spec: ClusterSpec) -> Workflow[tuple[list[Seen], dict[str, float]]]:
    """What :func:`decide` needs: every instance of the cluster's pools and container instances,
    and the remembered idle times, in three rounds whatever the cluster's size."""
    cluster = spec.cluster
    pools = {spec.asg_name(p): p for p in spec.pools}
    groups, listed, running, stopping, memory = yield (
        paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=sorted(pools)),
        paginate("ecs", "list_container_instances", absent=("ClusterNotFoundException",), cluster=cluster),
        *_task_lists(cluster),
        store.get_document_call(spec.table_name, *MEMORY),
    )
    ci_arns = list((listed or {}).get("containerInstanceArns", []))
    task_arns = sorted(set(running.get("taskArns", [])) | set(stopping.get("taskArns", [])))
    ci_calls = tuple(call("ecs", "describe_container_instances", cluster=cluster, containerInstances=b) for b in chunks(ci_arns, 100))
    task_calls = tuple(call("ecs", "describe_tasks", cluster=cluster, tasks=b) for b in chunks(task_arns, 100))
    answers = (yield (*ci_calls, *task_calls)) if ci_calls or task_calls else ()
    container = {
        ci["ec2InstanceId"]: ci for a in answers[: len(ci_calls)] for ci in a.get("containerInstances", ()) if ci.get("status") != "INACTIVE"
    }
    instance_of = {ci["containerInstanceArn"]: iid for iid, ci in container.items()}
    tasks = [t for a in answers[len(ci_calls) :] for t in a.get("tasks", ()) if t.get("lastStatus") != "STOPPED"]

    members: dict[str, tuple[str, Mapping[str, Any]]] = {}
    untagged: dict[str, str] = {}
    for g in groups.get("AutoScalingGroups", ()):
        name = g["AutoScalingGroupName"]
        if tags_of(g.get("Tags")).get(CLUSTER_TAG) != cluster:
            # Named like ours but not tagged for this cluster: someone else's group.
            untagged[name] = f"group {name} is not tagged {CLUSTER_TAG}={cluster}: not ecsspot's"
        for i in g.get("Instances", ()):
            members[i["InstanceId"]] = (name, i)
    foreign_ids = sorted(set(container) - set(members))
    service_names = sorted({t["group"].split(":", 1)[1] for t in tasks if str(t.get("group", "")).startswith("service:")})
    sv_calls = tuple(call("ecs", "describe_services", cluster=cluster, services=b) for b in chunks(service_names, 10))
    asi_calls = tuple(call("autoscaling", "describe_auto_scaling_instances", InstanceIds=b) for b in chunks(foreign_ids, 50))
    answers = (yield (*sv_calls, *asi_calls)) if sv_calls or asi_calls else ()
    daemon = {
        f"service:{s['serviceName']}" for a in answers[: len(sv_calls)] for s in a.get("services", ()) if s.get("schedulingStrategy") == "DAEMON"
    }
    foreign_group = {i["InstanceId"]: i.get("AutoScalingGroupName", "") for a in answers[len(sv_calls) :] for i in a.get("AutoScalingInstances", ())}

    counts: dict[str, list[int]] = {}
    for t in tasks:
        iid = instance_of.get(t.get("containerInstanceArn", ""))
        if iid is not None:
            counts.setdefault(iid, [0, 0])[1 if t.get("group") in daemon else 0] += 1

    seen = []
    for iid, (group, member) in sorted(members.items()):
        pool = None if group in untagged else pools[group]
        ci = container.get(iid)
        n = counts.get(iid, [0, 0])
        seen.append(
            Seen(
                instance_id=iid,
                group=group,
                pool=pool.name if pool else None,
                protected=bool(member.get("ProtectedFromScaleIn")),
                lifecycle_state=member.get("LifecycleState", ""),
                container_status=ci.get("status") if ci else None,
                tasks=n[0],
                daemon_tasks=n[1],
                managed=bool(pool and pool.managed_termination_protection),
                foreign=untagged.get(group, ""),
            )
        )
    for iid in foreign_ids:
        other = foreign_group.get(iid) or None
        why = f"in group {other}, not one of ecsspot's pools" if other else "in no Auto Scaling group ecsspot manages"
        seen.append(Seen(iid, other, None, False, "", container[iid].get("status"), 0, 0, foreign=f"container instance of {cluster} {why}"))
    doc = store.document_of(memory) or {}
    return seen, {str(k): float(v) for k, v in doc.get("idle_since", {}).items()}


# --- the workflow ----------------------------------------------------------------------------


def reconcile(cluster: str, *, owner: str, apply: bool = False, spec: ClusterSpec | None = None) -> Workflow[ProtectionResult]:
    """Decide (and with ``apply``, carry out) protection changes for ``cluster``'s pools.

    Works from the settings ``apply`` recorded (``spec`` overrides them). Every run records when
    it first saw each instance idle, under the ``protection`` lease; a dry run that finds the
    lease held decides from what is recorded and writes nothing, an applying one is a
    :class:`~ecsspot.errors.ConflictError`. A cluster without recorded settings is
    :class:`~ecsspot.errors.NotFoundError`.
    """
    spec = yield from store.recorded_spec(cluster, spec)
    table = spec.table_name
    idle_after = duration_seconds(spec.protection.idle_after)
    now = yield NOW

    def run(recorded: bool) -> Workflow[ProtectionResult]:
        seen, idle_since = yield from observe(spec)
        decisions = decide(seen, idle_since, now=now, idle_after=idle_after)
        actions = list(decisions.actions)
        if apply:
            actions = yield from _carry_out(decisions)
        if recorded:
            yield from store.put_document(table, *MEMORY, {"idle_since": dict(sorted(decisions.idle_since.items()))}, now=now)
        return ProtectionResult(cluster, apply, idle_after, tuple(actions), recorded)

    return (yield from store.under_lease(cluster, table, LEASE, owner, now=now, ttl=LEASE_SECONDS, needed=apply, body=run))


def _carry_out(decisions: Decisions) -> Workflow[list[ProtectionAction]]:
    """SetInstanceProtection for each group and direction, 50 ids a call, all in one round; each
    action says how its call went."""
    batches = [(group, False, ids) for group, all_ids in decisions.unprotect.items() for ids in chunks(list(all_ids), PROTECTION_IDS)]
    batches += [(group, True, ids) for group, all_ids in decisions.protect.items() for ids in chunks(list(all_ids), PROTECTION_IDS)]
    if not batches:
        return list(decisions.actions)
    answers = yield settle(
        [call("autoscaling", "set_instance_protection", AutoScalingGroupName=g, InstanceIds=ids, ProtectedFromScaleIn=on) for g, on, ids in batches]
    )
    outcome: dict[str, str | None] = {}
    for (_, _, ids), answer in zip(batches, answers, strict=True):
        for iid in ids:
            outcome[iid] = str(answer) if failed(answer) else None
    out = []
    for a in decisions.actions:
        if a.kind in ("unprotect", "protect"):
            error = outcome.get(a.instance_id)
            a = attrs.evolve(a, status="failed", reason=f"{a.reason}; {error}") if error else attrs.evolve(a, status="done")
        out.append(a)
    return out
