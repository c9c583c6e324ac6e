"""Drain watchdog: container instances stuck DRAINING are reported, and optionally set ACTIVE.

A DRAINING instance keeps its service tasks until ECS has placed their replacements elsewhere
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html);
when they cannot be placed (no room, a placement constraint nothing else meets, a capacity
provider that cannot grow) the instance hangs DRAINING, silently, up to the 48 hours after which
ECS managed draining gives up (aws/containers-roadmap#2467). Its services run short all that time.

The watchdog finds every container instance DRAINING for longer than ``watchdog.drain_timeout``
that still has tasks, names them and the services that cannot place theirs (each service's
running/desired counts and its latest "unable to place a task" event), and, when configured,
sets it back to ACTIVE (its targets registered again, the reason recorded in the state table),
so its tasks serve again until there is room. ECS reports no time at which an instance began
draining, so the watchdog remembers when it first saw each one DRAINING (a document in the state
table, under the ``watchdog`` lease): the timeout counts from the first look, at the latest.

It never reactivates an instance that something is taking out on purpose: one whose drain lease
someone else holds (an ``ecsspot drain``, the interruption handler), one marked as going away
(spot warning, terminate hook: :func:`ecsspot.store.doomed`), one its group no longer keeps
``InService`` (a lifecycle hook holds it, Terminating:Wait), one EC2 is stopping or terminating,
or any while a rolling refresh is under way (its lease held, or its progress saved between
Lambda invocations). Instances outside ecsspot's pools are ``ignore``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Workflow, call, chunks, paginate
from ecsspot.spec import ClusterSpec, duration_seconds, duration_text

LEASE = "watchdog"
LEASE_SECONDS = 120.0
#: Where the first-seen-DRAINING times live in the state table.
MEMORY = ("watchdog", "draining")
#: The refresh workflow's lease (ecsspot.refresh.LEASE, not imported: that module is heavy).
REFRESH_LEASE = "refresh"
#: The ECS service event that says a task could not be placed.
UNABLE_TO_PLACE = "was unable to place a task"

Kind = Literal["stuck", "watch", "ignore"]
Status = Literal["waiting", "reported", "reactivated", "kept", "ignored", "skipped", "failed"]


@attrs.frozen
class Draining:
    """One DRAINING container instance as the watchdog saw it (the input of :func:`decide`)."""

    instance_id: str
    container_instance_arn: str
    #: The ecsspot pool of its group; None when it is not an instance of one.
    pool: str | None
    #: Task labels (``id (group, status)``) still desired RUNNING on it, daemon tasks left out.
    tasks: tuple[str, ...] = ()
    #: ``service NAME r/d: latest placement failure`` for each service of those tasks short of desired.
    services: tuple[str, ...] = ()
    #: Why it must not be set ACTIVE (empty: it may be).
    keep: str = ""
    foreign: str = ""


@attrs.frozen
class WatchdogAction:
    """One decision about one DRAINING instance; the JSON unit of ``ecsspot watchdog``."""

    kind: Kind
    instance_id: str
    status: Status
    reason: str
    pool: str | None = None
    draining_seconds: float = 0.0
    tasks: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


@attrs.frozen
class Decisions:
    actions: tuple[WatchdogAction, ...]
    #: Instance → container instance ARN, for those to set ACTIVE.
    reactivate: Mapping[str, str]
    #: What the state table remembers next: instance → when first seen DRAINING.
    draining_since: Mapping[str, float]


@attrs.frozen
class WatchdogResult:
    cluster: str
    drain_timeout_seconds: float
    reactivate: bool
    actions: tuple[WatchdogAction, ...]
    recorded: bool = True

    @property
    def stuck(self) -> tuple[WatchdogAction, ...]:
        return tuple(a for a in self.actions if a.kind == "stuck")


def is_stale(since: float, now: float, timeout: float) -> bool:
    return now - since >= timeout


def decide(draining: Sequence[Draining], since: Mapping[str, float], *, now: float, timeout: float, reactivate: bool) -> Decisions:
    """Pure: report (and with ``reactivate``, set ACTIVE) the instances DRAINING past ``timeout``
    with tasks left; remember when each DRAINING instance was first seen."""
    actions = []
    arns = {}
    remember = {}
    for d in sorted(draining, key=lambda d: d.instance_id):
        if d.pool is None:
            actions.append(WatchdogAction("ignore", d.instance_id, "ignored", d.foreign or "not an instance of an ecsspot pool"))
            continue
        first = min(since.get(d.instance_id, now), now)
        remember[d.instance_id] = first
        took = now - first
        if not is_stale(first, now, timeout):
            actions.append(WatchdogAction("watch", d.instance_id, "waiting", f"DRAINING for {duration_text(took)} of the {duration_text(timeout)} drain_timeout", d.pool, took))
            continue
        if not d.tasks:
            why = f"DRAINING for {duration_text(took)} with no task left to place: it waits for whoever drains it to take it out"
            actions.append(WatchdogAction("watch", d.instance_id, "skipped", why, d.pool, took))
            continue
        held = f"DRAINING for {duration_text(took)} (drain_timeout {duration_text(timeout)}) with {len(d.tasks)} task(s) ECS has not moved"
        if d.services:
            held += "; services that cannot place their tasks: " + "; ".join(d.services)
        if not reactivate:
            actions.append(WatchdogAction("stuck", d.instance_id, "reported", held, d.pool, took, d.tasks, d.services))
        elif d.keep:
            actions.append(WatchdogAction("stuck", d.instance_id, "kept", f"{held}; kept DRAINING: {d.keep}", d.pool, took, d.tasks, d.services))
        else:
            actions.append(WatchdogAction("stuck", d.instance_id, "reactivated", f"{held}; set ACTIVE again so its tasks keep serving", d.pool, took, d.tasks, d.services))
            arns[d.instance_id] = d.container_instance_arn
            del remember[d.instance_id]
    return Decisions(tuple(actions), arns, remember)


# --- gathering -------------------------------------------------------------------------------


def _task_label(task: Mapping[str, Any]) -> str:
    return f"{task['taskArn'].rsplit('/', 1)[-1]} ({task.get('group', '')}, {task.get('lastStatus', '')})"


def _service_line(service: Mapping[str, Any]) -> str:
    line = f"service {service['serviceName']} {service.get('runningCount', 0)}/{service.get('desiredCount', 0)}"
    failure = next((e.get("message", "") for e in service.get("events", ()) if UNABLE_TO_PLACE in e.get("message", "")), "")
    return f"{line}: {failure}" if failure else line


def observe(spec: ClusterSpec, *, now: float, timeout: float, since: Mapping[str, float]) -> Workflow[list[Draining]]:
    """Every DRAINING container instance of the cluster; for those past ``timeout``, their tasks,
    their services, and whether they may be set ACTIVE. Four rounds at most, whatever the size."""
    cluster = spec.cluster
    table = spec.table_name
    pools = {spec.asg_name(p): p.name for p in spec.pools}
    listed, groups = yield (
        paginate("ecs", "list_container_instances", absent=("ClusterNotFoundException",), cluster=cluster, status="DRAINING"),
        paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=sorted(pools)),
    )
    from ecsspot.state import CLUSTER_TAG, tags_of

    members: dict[str, tuple[str | None, str]] = {}
    for g in groups.get("AutoScalingGroups", ()):
        ours = tags_of(g.get("Tags")).get(CLUSTER_TAG) == cluster
        for i in g.get("Instances", ()):
            members[i["InstanceId"]] = (pools[g["AutoScalingGroupName"]] if ours else None, i.get("LifecycleState", ""))
    arns = list((listed or {}).get("containerInstanceArns", []))
    if not arns:
        return []
    described = yield tuple(call("ecs", "describe_container_instances", cluster=cluster, containerInstances=b) for b in chunks(arns, 100))
    cis = [ci for a in described for ci in a.get("containerInstances", ()) if ci.get("status") == "DRAINING"]
    stale = [ci for ci in cis if members.get(ci["ec2InstanceId"], (None, ""))[0] and is_stale(since.get(ci["ec2InstanceId"], now), now, timeout)]
    if not stale:
        return [_draining(ci, members, cluster) for ci in cis]

    ids = [ci["ec2InstanceId"] for ci in stale]
    lists = tuple(paginate("ecs", "list_tasks", cluster=cluster, containerInstance=ci["containerInstanceArn"], desiredStatus="RUNNING") for ci in stale)
    doomed_calls = tuple(store.get_document_call(table, f"doomed#{i}", "doomed") for i in ids)
    lease_calls = tuple(store.get_document_call(table, f"lease#{n}", "lease") for n in (*(f"drain#{i}" for i in ids), REFRESH_LEASE))
    ec2_calls = tuple(call("ec2", "describe_instances", InstanceIds=b) for b in chunks(ids, 100))
    from ecsspot import refresh

    progress = store.get_document_call(table, *refresh.PROGRESS)
    answers = yield (*lists, *doomed_calls, *lease_calls, *ec2_calls, progress)
    at = iter(answers)
    listed_tasks = [next(at) for _ in lists]
    doomed_answers = [next(at) for _ in doomed_calls]
    lease_answers = [next(at) for _ in lease_calls]
    ec2_answers = [next(at) for _ in ec2_calls]
    # A refresh under way (running now, or paused between Lambda invocations) owns its batch's
    # DRAINING instances and sets them ACTIVE itself if it rolls back.
    refresh_running = refresh.summary(store.document_of(next(at))) is not None
    ec2_state = {i["InstanceId"]: i.get("State", {}).get("Name", "") for a in ec2_answers for r in a.get("Reservations", ()) for i in r.get("Instances", ())}

    def live(answer: Any) -> bool:
        item: Mapping[str, Any] = (answer or {}).get("Item") or {}
        return bool(item) and float(item.get("expires_at", {}).get("N", "0")) > now

    task_arns = sorted({t for a in listed_tasks for t in a.get("taskArns", ())})
    tasks = []
    if task_arns:
        got = yield tuple(call("ecs", "describe_tasks", cluster=cluster, tasks=b) for b in chunks(task_arns, 100))
        tasks = [t for a in got for t in a.get("tasks", ()) if t.get("desiredStatus") == "RUNNING" and t.get("lastStatus") != "STOPPED"]
    names = sorted({t["group"].split(":", 1)[1] for t in tasks if str(t.get("group", "")).startswith("service:")})
    services: dict[str, Mapping[str, Any]] = {}
    if names:
        got = yield tuple(call("ecs", "describe_services", cluster=cluster, services=b) for b in chunks(names, 10))
        services = {s["serviceName"]: s for a in got for s in a.get("services", ())}
    daemon = {n for n, s in services.items() if s.get("schedulingStrategy") == "DAEMON"}

    refresh_running = refresh_running or live(lease_answers[-1])
    out = [_draining(ci, members, cluster) for ci in cis if ci not in stale]
    for n, ci in enumerate(stale):
        iid = ci["ec2InstanceId"]
        mine = [t for t in tasks if t.get("containerInstanceArn") == ci["containerInstanceArn"] and t.get("group", "").split(":", 1)[-1] not in daemon]
        short = sorted(
            {_service_line(services[t["group"].split(":", 1)[1]]) for t in mine if t.get("group", "").split(":", 1)[-1] in services}
        )
        state = ec2_state.get(iid, "")
        lifecycle = members[iid][1]
        keep = ""
        if live(lease_answers[n]):
            keep = "its drain lease is held: ecsspot is draining it right now"
        elif live(doomed_answers[n]):
            keep = "it is going away (spot interruption warning or terminate lifecycle hook)"
        elif state != "running":
            keep = f"its EC2 instance is {state or 'gone'}"
        elif lifecycle != "InService":
            keep = f"its Auto Scaling group is taking it out ({lifecycle})"
        elif refresh_running:
            keep = "a rolling refresh of the cluster is in progress"
        out.append(
            Draining(iid, ci["containerInstanceArn"], members[iid][0], tuple(sorted(_task_label(t) for t in mine)), tuple(short), keep)
        )
    return out


def _draining(ci: Mapping[str, Any], members: Mapping[str, tuple[str | None, str]], cluster: str) -> Draining:
    iid = ci["ec2InstanceId"]
    pool = members.get(iid, (None, ""))[0]
    foreign = "" if pool else f"container instance of {cluster} outside ecsspot's pools: not ecsspot's to reactivate"
    return Draining(iid, ci["containerInstanceArn"], pool, foreign=foreign)


# --- the workflow ----------------------------------------------------------------------------


def watch(cluster: str, *, owner: str, reactivate: bool | None = None, spec: ClusterSpec | None = None) -> Workflow[WatchdogResult]:
    """Report the cluster's instances stuck DRAINING; set them ACTIVE when ``reactivate`` (default:
    the spec's ``watchdog.reactivate``). Works from the settings ``apply`` recorded."""
    spec = yield from store.recorded_spec(cluster, spec)
    act = spec.watchdog.reactivate if reactivate is None else reactivate
    table = spec.table_name
    timeout = duration_seconds(spec.watchdog.drain_timeout)
    now = yield NOW

    def run(recorded: bool) -> Workflow[WatchdogResult]:
        doc = yield from store.get_document(table, *MEMORY)
        since = {str(k): float(v) for k, v in (doc or {}).get("since", {}).items()}
        draining = yield from observe(spec, now=now, timeout=timeout, since=since)
        decisions = decide(draining, since, now=now, timeout=timeout, reactivate=act)
        actions = list(decisions.actions)
        if decisions.reactivate:
            actions = yield from _reactivate(spec, decisions, owner, now=now)
        if recorded:
            yield from store.put_document(table, *MEMORY, {"since": dict(sorted(decisions.draining_since.items()))}, now=now)
        return WatchdogResult(cluster, timeout, act, tuple(actions), recorded)

    return (yield from store.under_lease(cluster, table, LEASE, owner, now=now, ttl=LEASE_SECONDS, needed=act, body=run))


def _reactivate(spec: ClusterSpec, decisions: Decisions, owner: str, *, now: float) -> Workflow[list[WatchdogAction]]:
    """Set the chosen instances ACTIVE under their drain leases (so no drain starts meanwhile),
    check the going-away marks again afterwards (DRAINING back for one marked meanwhile), put
    their tasks back behind the load balancer and record why in the state table."""
    from ecsspot.refresh import restore_targets

    cluster, table = spec.cluster, spec.table_name
    chosen = dict(decisions.reactivate)
    planned = {a.instance_id: a for a in decisions.actions if a.instance_id in chosen}
    leases = yield from store.acquire_leases(table, [f"drain#{i}" for i in chosen], owner, now=now, ttl=LEASE_SECONDS)
    mine = [i for i in sorted(chosen) if leases[f"drain#{i}"] is not None]
    names = [f"drain#{i}" for i in mine]

    def kept(iid: str, why: str) -> WatchdogAction:
        action = planned[iid]
        return attrs.evolve(action, status="kept", reason=f"{action.reason.split('; set ACTIVE', 1)[0]}; kept DRAINING: {why}")

    results = {i: kept(i, "its drain lease was taken meanwhile") for i in chosen if i not in mine}
    try:
        if mine:
            arns = [chosen[i] for i in mine]
            yield tuple(call("ecs", "update_container_instances_state", cluster=cluster, containerInstances=b, status="ACTIVE") for b in chunks(arns, 10))
            late = yield from store.doomed(table, mine, now=(yield NOW))
            if late:
                back = [chosen[i] for i in sorted(late)]
                yield tuple(call("ecs", "update_container_instances_state", cluster=cluster, containerInstances=b, status="DRAINING") for b in chunks(back, 10))
            active = [i for i in mine if i not in late]
            yield from restore_targets(cluster, [{"containerInstanceArn": chosen[i], "ec2InstanceId": i} for i in active])
            records = []
            for iid in mine:
                if iid in late:
                    results[iid] = kept(iid, "it was marked as going away meanwhile")
                    continue
                action = planned[iid]
                results[iid] = action
                doc = {"at": now, "reason": action.reason, "tasks": list(action.tasks), "services": list(action.services)}
                records.append(store.put_document_call(table, f"watchdog#{iid}", "reactivated", doc, now=now))
            if records:
                yield tuple(records)
    except GeneratorExit:
        raise  # the process is going away: the leases expire
    except BaseException:
        yield from store.let_go(table, (), names, owner)
        raise
    yield from store.let_go(table, (), names, owner)
    return [results.get(a.instance_id, a) for a in decisions.actions]
