"""Verified drain: container instances DRAINING and their ALB targets deregistered *first*.

Why not leave it to ECS: on a DRAINING instance ECS starts replacement tasks and only then
deregisters the old targets (aws/containers-roadmap#2673), and ALB keeps sending new requests
to a target until it is deregistered. With a two-minute spot notice and a 300 s default
deregistration delay the instance dies while it still takes traffic. ecsspot deregisters the
instances' (id, port) targets in the same breath as setting them DRAINING, then waits (on the
injected clock) until nothing is left: no non-daemon task, no registered or draining target,
every affected service back at its desired count elsewhere. It never reports "drained" while
something is left.

What runs on an instance is read task by task, as the draining page says to verify it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html:
"a container instance has completed draining when all tasks running on the instance transition
to a STOPPED state", checked with ListTasks per container instance and DescribeTasks), not from
``runningTasksCount``, which counts only tasks whose *desired* status is RUNNING and so misses
tasks still handling SIGTERM (STOPPING, up to ``ECS_CONTAINER_STOP_TIMEOUT``). Those tasks also
give the awsvpc tasks' ENI addresses: an ``ip`` target group's targets on an instance are
matched by them, deregistered like instance targets and never counted as healthy elsewhere.
Daemon tasks do not hold a drain: ECS stops them last, after every other task on the instance
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html#service_scheduler_daemon),
and managed termination protection frees an instance "when all non-daemon tasks are stopped";
their targets are deregistered and waited for all the same. Standalone tasks (RunTask) are not
moved by ECS: a drain waits for them until its deadline and names them in ``left``.

Calls are batched by AWS's limits (UpdateContainerInstancesState 10, DescribeContainerInstances 100,
DescribeTasks 100, DeregisterTargets a group's quota of targets, :data:`GROUP_TARGETS`) and
independent calls go out together, so the cost in round trips does not grow with the number of
instances. DRAINING goes out in the second round: the first lists the instances' container instances
twice by instance-id filter (every status but INACTIVE, and ACTIVE only; as many ids per filter as
fit in 2,000 characters, 90), and the ACTIVE ones are set DRAINING straight away, the answer naming
each changed instance's ec2InstanceId; only the others (already DRAINING, registering,
deregistering) are described, beside it. ListTasks takes one container instance, so listing tasks
costs 2 calls per instance (desiredStatus RUNNING and STOPPED). A drain needs the tasks early only
to find ``ip`` targets (their ENI addresses), so it lists them in round 2 (beside DRAINING) only
when an ``ip`` target can be there: a known group answered an address target, or no group is known
yet and the cluster has services to find them in (a group first found through the services gets its
tasks listed in round 3, beside its targets). Otherwise the verification's first look lists them,
after the DRAINING and deregistration round, off the critical path. While waiting it describes the
tasks it knows and lists an instance again only when its counts show a task it has not seen, or it
is not DRAINING (where tasks may still be placed). Each look reads the groups that held the
instances' targets, the affected services' and those of services with a task on the instances, not
every group of the cluster (see :func:`_watched_groups`). The groups' deregistration delays (only
used to say when one cannot fit the deadline) are read when the caller does not already know them
(``delays``: the state table caches them beside the service target groups).
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Call, Report, Sleep, Workflow, call, chunks, failed, lookup, paginate, settle
from ecsspot.errors import AwsError, EcsspotError, NotFoundError

POLL_SECONDS = 5.0
#: Characters in one ListContainerInstances filter: AWS documents 2,000 for a cluster query
#: expression (a placement constraint's); ``ec2InstanceId in [...]`` fits 90 ids of 19 characters.
FILTER_CHARS = 2000
#: Targets in one DeregisterTargets: AWS documents no per-call limit (API_DeregisterTargets.html)
#: and a target group holds at most its quota of targets, 1,000 by default for ALB, NLB and GWLB
#: ("Targets per Target Group per Region", load-balancer-limits.html): one call per group, unless
#: the quota was raised.
GROUP_TARGETS = 1000
#: Longest sleep between two looks while waiting out a deregistration delay (:func:`next_look`): a
#: delay lowered since it was cached (the cache lives an hour) or an instance terminated meanwhile
#: is seen within this, not a whole (default 300 s) delay late.
LONGEST_SKIP = 30.0


#: What an action is about (a decision's kind, or the handler's own steps).
ActionKind = Literal["drain", "rebalance", "refresh", "ignore", "complete_lifecycle_action", "error", "handle_event"]
#: How it ended: ``drained``/``draining``/``timed_out``/``not_found`` for a drain, ``done``,
#: ``skipped``, ``ignored`` (not ecsspot's), ``duplicate``, ``planned`` (dry run) or ``failed``.
ActionStatus = Literal["drained", "draining", "timed_out", "not_found", "done", "skipped", "ignored", "duplicate", "planned", "failed"]


@attrs.frozen
class Action:
    """One thing done (or decided against) about one instance; the CLI/Lambda JSON unit."""

    kind: ActionKind
    instance_id: str | None
    status: ActionStatus
    reason: str = ""
    #: What was still there when a drain gave up: task counts and "tg-name:port" targets.
    left: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class DrainResult:
    cluster: str
    actions: tuple[Action, ...]
    #: Target groups of the cluster's services, as found (cached to speed up the next drain).
    service_target_groups: tuple[str, ...] = ()
    #: Deregistration delay (seconds) of each group holding a target of the instances, as known
    #: or read by this drain (cached beside the service target groups).
    deregistration_delays: Mapping[str, int] = attrs.field(factory=dict, hash=False)

    @property
    def drained(self) -> bool:
        """Nothing left on any instance (one that was not there has nothing left either)."""
        return all(a.status in ("drained", "draining", "not_found") for a in self.actions if a.kind == "drain")

    @property
    def not_found(self) -> tuple[str, ...]:
        return tuple(a.instance_id or "" for a in self.actions if a.status == "not_found")

    @property
    def timed_out(self) -> tuple[str, ...]:
        return tuple(a.instance_id or "" for a in self.actions if a.status == "timed_out")


@attrs.frozen
class _Target:
    group_arn: str
    #: The instance the target is on: its own id, or the instance of the task owning the IP.
    instance_id: str
    port: int | None
    state: str
    #: The target's Id: the instance id, or an awsvpc task's ENI address (target type ``ip``).
    target_id: str = attrs.field(default=attrs.Factory(lambda self: self.instance_id, takes_self=True))

    @property
    def label(self) -> str:
        name = self.group_arn.split(":targetgroup/")[-1].split("/")[0]
        if self.target_id != self.instance_id:
            name = f"{name}:{self.target_id}"
        return f"{name}:{self.port}" if self.port is not None else name


@attrs.frozen
class Task:
    """One task as DescribeTasks shows it, with the instance it is on."""

    arn: str
    instance_id: str
    last_status: str
    desired_status: str
    #: ``service:NAME`` for a service's task, ``family:NAME`` (or the RunTask group) for others.
    group: str
    #: Private IPv4 addresses of the task's ENIs (awsvpc network mode).
    addresses: tuple[str, ...] = ()

    @property
    def stopped(self) -> bool:
        return self.last_status == "STOPPED"

    @property
    def label(self) -> str:
        return f"{self.arn.rsplit('/', 1)[-1]} ({self.group}, {self.last_status})"


@attrs.frozen
class _Watch:
    """What a drain knows of the tasks on its instances between two looks."""

    tasks: Mapping[str, Task] = attrs.field(factory=dict)
    #: Instances whose tasks must be listed again (tasks unseen so far may be there).
    relist: frozenset[str] = frozenset()
    #: ``service:NAME`` groups of the DAEMON services.
    daemon_groups: frozenset[str] = frozenset()

    def addresses(self, instance_ids: Iterable[str]) -> dict[str, str]:
        """ENI address → instance, for the tasks seen on ``instance_ids`` (a stopped task's
        draining ``ip`` target still belongs to its instance)."""
        wanted = set(instance_ids)
        return {a: t.instance_id for t in self.tasks.values() if t.instance_id in wanted for a in t.addresses}


def _task_list_calls(cluster: str, container_instance_arns: Sequence[str]) -> tuple[Call, ...]:
    """ListTasks for each container instance, desired RUNNING and desired STOPPED (a stopping
    task's desired status is already STOPPED; the list keeps stopped tasks for a while too)."""
    return tuple(
        paginate("ecs", "list_tasks", cluster=cluster, containerInstance=arn, desiredStatus=status)
        for arn in container_instance_arns
        for status in ("RUNNING", "STOPPED")
    )


def _listed(container_instance_arns: Sequence[str], answers: Sequence[Any]) -> dict[str, list[str]]:
    """Container instance ARN → task ARNs, from the answers to :func:`_task_list_calls`."""
    out: dict[str, list[str]] = {arn: [] for arn in container_instance_arns}
    for n, answer in enumerate(answers):
        out[container_instance_arns[n // 2]] += (answer or {}).get("taskArns", [])
    return out


def _describe_task_calls(cluster: str, task_arns: Iterable[str]) -> tuple[Call, ...]:
    return tuple(call("ecs", "describe_tasks", cluster=cluster, tasks=b) for b in chunks(sorted(set(task_arns)), 100))


def _tasks_from(answers: Sequence[Any], instance_of: Mapping[str, str]) -> dict[str, Task]:
    """DescribeTasks answers → task ARN → :class:`Task`, for tasks on the given container
    instances (``instance_of``: container instance ARN → EC2 instance id)."""
    found = {}
    for answer in answers:
        for task in (answer or {}).get("tasks", ()):
            iid = instance_of.get(task.get("containerInstanceArn", ""))
            if iid is None:
                continue
            addresses = tuple(
                d["value"]
                for a in task.get("attachments", ())
                if a.get("type") == "ElasticNetworkInterface"
                for d in a.get("details", ())
                if d.get("name") == "privateIPv4Address" and d.get("value")
            )
            found[task["taskArn"]] = Task(
                task["taskArn"], iid, task.get("lastStatus", ""), task.get("desiredStatus", ""), task.get("group", ""), addresses
            )
    return found


def _deregister(targets: Sequence[_Target]) -> tuple[Call, ...] | None:
    by_group: dict[str, list[dict[str, Any]]] = {}
    for t in targets:
        if t.state == "draining":
            continue  # already on its way out; deregistering again would restart nothing useful
        entry: dict[str, Any] = {"Id": t.target_id}
        if t.port is not None:
            entry["Port"] = t.port
        by_group.setdefault(t.group_arn, []).append(entry)
    if not by_group:
        return None
    return tuple(
        call("elbv2", "deregister_targets", TargetGroupArn=arn, Targets=batch)
        for arn, entries in sorted(by_group.items())
        for batch in chunks(entries, GROUP_TARGETS)
    )


def drain(
    cluster: str,
    instance_ids: Sequence[str],
    *,
    deadline: float,
    wait: bool = True,
    target_groups: Sequence[str] = (),
    deadlines: Mapping[str, float] | None = None,
    act: bool = True,
    every_service: bool = False,
    heartbeat: Sequence[Call] = (),
    heartbeat_every: float = 0.0,
    heartbeat_since: float | None = None,
    poll: float = POLL_SECONDS,
    delays: Mapping[str, int] | None = None,
    leases: Mapping[str, Call] | None = None,
) -> Workflow[DrainResult]:
    """Drain ``instance_ids`` of ``cluster``: DRAINING + targets deregistered now, then verify.

    ``deadline`` is in seconds from now (``deadlines`` overrides it per instance). With
    ``act=False`` nothing is changed, only verified (someone else holds the instance's drain
    lease). ``every_service`` waits for every load-balanced service of the cluster to be back at
    its desired count of healthy targets, not only those that had targets on these instances
    (a refresh gates each batch on it: replacements on a new image must be healthy).
    ``heartbeat`` calls (lifecycle hook heartbeats) go out every ``heartbeat_every`` seconds
    while waiting, the first ``heartbeat_every`` after ``heartbeat_since`` (epoch seconds: when
    the lifecycle action began, which the hook's timeout counts from; default now).
    ``delays``: target group ARN → deregistration delay in seconds, already known (cached); the
    others holding a target are read. ``leases``: instance → the conditional write that takes its
    drain lease (:func:`ecsspot.store.lease_writes`), sent in the first round, beside the
    read-only listing, so it costs no round of its own; an instance whose lease another owner
    holds is left alone (``skipped``: nothing is set DRAINING or deregistered for it).
    """
    ids = list(dict.fromkeys(instance_ids))
    start = yield NOW
    deadline_at = {iid: start + (deadlines or {}).get(iid, deadline) for iid in ids}
    known = sorted(set(target_groups))

    # Round 1: which container instances (all but INACTIVE, and the ACTIVE ones among them), which
    # services, the known groups' targets, and the leases.
    lists = _list_calls(cluster, ids)
    # DRAINING goes to ACTIVE ones only: for any other status AWS documents "an error", not
    # whether it fails the whole batch of 10 or one entry (sources: benchmarks/README.md, Drain).
    active_lists = _list_calls(cluster, ids, status="ACTIVE") if act else ()
    first = (*lists, *active_lists, _list_services_call(cluster), *_target_health_calls(known))
    leased = [i for i in ids if i in (leases or {})]
    writes = [(leases or {})[i] for i in leased]
    lease_calls = store.write_calls(writes)
    outcomes = (yield settle((*first, *lease_calls))) if lease_calls else (yield first)
    error = next((a for a in outcomes[: len(first)] if failed(a)), None)
    if error is not None:
        raise error
    answers = iter(outcomes[: len(first)])
    arns = sorted({arn for a in _take(answers, lists) for arn in a.get("containerInstanceArns", ())})
    active = {arn for a in _take(answers, active_lists) for arn in a.get("containerInstanceArns", ())}
    service_arns = next(answers).get("serviceArns", [])
    known_health = list(answers)
    taken = yield from store.written(writes, outcomes[len(first) :])
    error = next((a for a in taken if failed(a)), None)
    if error is not None:
        raise error
    held = [i for i, a in zip(leased, taken, strict=True) if a is None]
    if held:
        # Contended (rare): which listed container instance is whose, to leave the held ones alone.
        described = yield _describe_instance_calls(cluster, arns)
        theirs = {ci["containerInstanceArn"] for a in described for ci in a.get("containerInstances", ()) if ci.get("ec2InstanceId") in held}
        arns = [arn for arn in arns if arn not in theirs]
        ids = [i for i in ids if i not in held]
    skipped = tuple(Action("drain", i, "skipped", "already being drained by another owner (lease held)") for i in held)
    wanted = set(ids)
    targets = _targets_from(known, known_health, wanted)
    # Tasks matter before DRAINING only for ip targets: list them now when there can be some.
    early = _has_addresses(known_health) or (not known and bool(service_arns))

    # Round 2: DRAINING and the known groups' targets deregistered. No describe comes first:
    # UpdateContainerInstancesState answers the container instances it changed, ec2InstanceId
    # included; only the others (already DRAINING, registering, ...; every one when not acting)
    # are described, beside the services.
    to_drain = [arn for arn in arns if arn in active]
    set_draining = tuple(
        call("ecs", "update_container_instances_state", cluster=cluster, containerInstances=b, status="DRAINING") for b in chunks(to_drain, 10)
    )
    dereg = (_deregister(targets) or ()) if act else ()
    ci_calls = _describe_instance_calls(cluster, [arn for arn in arns if arn not in active])
    sv_calls = tuple(call("ecs", "describe_services", cluster=cluster, services=b) for b in chunks(service_arns, 10))
    # Tasks: what is on the instances (and their ENI addresses), see _task_list_calls.
    task_lists = _task_list_calls(cluster, arns) if early else ()
    answers = iter((yield (*set_draining, *dereg, *ci_calls, *sv_calls, *task_lists)))
    drained = _take(answers, set_draining)
    _take(answers, dereg)
    failures = {f.get("arn", "").rsplit("/", 1)[-1]: f.get("reason", "") for a in drained for f in a.get("failures", ())}
    instances_by_id = {ci["ec2InstanceId"]: ci for a in (*drained, *_take(answers, ci_calls)) for ci in a.get("containerInstances", ())}
    services = [s for a in _take(answers, sv_calls) for s in a.get("services", ()) if s.get("status") == "ACTIVE"]
    listed = _listed(arns, list(answers))
    service_groups = {lb["targetGroupArn"] for s in services for lb in s.get("loadBalancers", ()) if lb.get("targetGroupArn")}
    new_groups = sorted(service_groups - set(known))
    # A refused ARN is named by a describe (the refusal carries no instance id).
    refused = [arn for arn in to_drain if arn.rsplit("/", 1)[-1] in failures]
    instance_of = {ci["containerInstanceArn"]: iid for iid, ci in instances_by_id.items()}
    task_calls = _describe_task_calls(cluster, [t for arn in instance_of for t in listed.get(arn, ())])
    # A group first found through the services may hold ip targets: list the tasks beside its targets.
    late_arns = sorted(instance_of) if new_groups and not early else []

    # Round 3 (only when there is something to ask): the newly found groups looked up, the listed
    # tasks described, the refused instances named.
    new_health = _target_health_calls(new_groups)
    late_lists = _task_list_calls(cluster, late_arns)
    refused_calls = _describe_instance_calls(cluster, refused)
    batch = (*new_health, *task_calls, *late_lists, *refused_calls)
    answers = iter((yield batch) if batch else ())
    new_health_answers = _take(answers, new_health)
    tasks = _tasks_from(_take(answers, task_calls), instance_of)
    late_listed = [t for listed_ in _listed(late_arns, _take(answers, late_lists)).values() for t in listed_]
    instances_by_id.update({ci["ec2InstanceId"]: ci for a in answers for ci in a.get("containerInstances", ())})
    if late_listed:
        tasks.update(_tasks_from((yield _describe_task_calls(cluster, late_listed)), instance_of))
    watch = _Watch(
        tasks,
        # Tasks not listed yet are listed at the first look.
        relist=frozenset() if early or late_arns else frozenset(instances_by_id),
        daemon_groups=frozenset(f"service:{s['serviceName']}" for s in services if s.get("schedulingStrategy") == "DAEMON"),
    )
    # ip targets are known by the task addresses only now: deregistered in the next round.
    addresses = watch.addresses(wanted)
    late = _targets_from(new_groups, new_health_answers, wanted, addresses)
    late += [t for t in _targets_from(known, known_health, wanted, addresses) if t.target_id != t.instance_id]
    targets += late

    # Last round (off the critical path when every group was known and no target is an ip one): the
    # late targets' deregistration, and the deregistration delays, to say when a group's delay
    # cannot fit the deadline.
    holding = sorted({t.group_arn for t in targets})
    dereg = (_deregister(late) or ()) if act else ()
    unknown = [g for g in holding if g not in (delays or {})]
    answers = (yield (*dereg, *_delay_calls(unknown))) if dereg or unknown else ()
    group_delays = {**{g: (delays or {})[g] for g in holding if g not in unknown}, **_delay_seconds(unknown, answers[len(dereg) :])}
    short = _short_delays(group_delays, deadline)
    if act:
        yield Report("drain", f"{len(to_drain) - len(failures)} instance(s) set DRAINING; {len(targets)} target(s) deregistering")
    affected_services = {
        s["serviceName"]
        for s in services
        if any(lb.get("targetGroupArn") in holding or (every_service and lb.get("targetGroupArn")) for lb in s.get("loadBalancers", ()))
    }

    notes = {}
    holders = {t.instance_id for t in targets}
    # Neither a container instance of the cluster nor holding a target: nothing to drain, and
    # saying "drained" would hide a typo'd or foreign id.
    missing = {iid for iid in ids if iid not in instances_by_id and iid not in holders}
    for iid in ids:
        if iid in missing:
            notes[iid] = f"not found: no container instance of cluster {cluster} and no target of its load-balanced services"
        elif iid not in instances_by_id:
            notes[iid] = "not a container instance of this cluster (targets deregistered only)"
        elif instances_by_id[iid].get("containerInstanceArn", "").rsplit("/", 1)[-1] in failures:
            notes[iid] = "ECS refused DRAINING: " + failures[instances_by_id[iid]["containerInstanceArn"].rsplit("/", 1)[-1]]
    if not wait:
        return DrainResult(
            cluster,
            (
                *(
                    Action("drain", iid, "not_found", notes[iid])
                    if iid in missing
                    else Action("drain", iid, "draining", _join("DRAINING; targets deregistering", notes.get(iid), short))
                    for iid in ids
                ),
                *skipped,
            ),
            tuple(sorted(service_groups)),
            group_delays,
        )

    # The hook's timeout runs from the action's start, not ours (a queued or retried event
    # arrives late): the first beat is due that much sooner.
    last_beat = start if heartbeat_since is None else min(heartbeat_since, start)
    beats = list(heartbeat)
    pending = set(ids) - missing
    terminated: set[str] = set()
    left: dict[str, dict[str, Any]] = {}
    done_at: dict[str, float] = {}
    relooked = False
    # Targets this drain moved from serving to draining: each shows "draining" for its group's
    # whole delay from no earlier than ``start`` (see not_before).
    deregistered = {(t.group_arn, t.target_id, t.port): start for t in targets if t.state != "draining"} if act else {}
    while True:
        looked = _watched_groups(holding, services, affected_services, watch.tasks, pending, every_service)
        look = yield from _look(cluster, instances_by_id, pending, looked, affected_services, watch)
        # A task seen only now may belong to a service whose groups were not looked at: read them
        # before deciding, or a target it registered there would go unseen for one look.
        more = sorted(_watched_groups(holding, services, affected_services, look.tasks, pending, every_service) - looked)
        if more:
            health = yield _target_health_calls(more)
            look = attrs.evolve(look, target_health={**look.target_health, **dict(zip(more, health, strict=True))})
        decided = what_is_left(look, pending, watch.daemon_groups)
        watch = attrs.evolve(watch, tasks=look.tasks, relist=decided.relist)
        # Counts that show a task never listed, on an instance otherwise done: list it (and read
        # its service's groups) before saying drained, once, at once.
        unsure = {i for i in decided.relist & pending if not decided.left.get(i) and i not in decided.gone}
        if unsure and not relooked:
            relooked = True
            continue
        relooked = False
        now = yield NOW
        terminated.update(decided.gone & pending)
        for iid in list(pending):
            if not decided.left.get(iid):
                pending.discard(iid)
                done_at[iid] = now
            else:
                left[iid] = dict(decided.left[iid])
        live = [iid for iid in pending if now < deadline_at[iid]]
        if not live:
            break
        yield waiting_report(len(ids) - len(missing), {iid: left.get(iid, {}) for iid in sorted(pending)})
        if beats and heartbeat_every and now - last_beat >= heartbeat_every:
            beats = yield from _beat(beats)
            last_beat = now
        floor = not_before(decided, pending, deregistered, group_delays)
        beat_due = last_beat + heartbeat_every if beats and heartbeat_every else math.inf
        yield Sleep(next_look(now, poll, floor, min(deadline_at[iid] for iid in live), beat_due))

    actions = []
    for iid in ids:
        if iid in missing:
            actions.append(Action("drain", iid, "not_found", notes[iid]))
        elif iid in pending:
            what = left.get(iid, {})
            actions.append(Action("drain", iid, "timed_out", _join(f"deadline passed with {_describe(what)} left", notes.get(iid), short), what))
        else:
            verified = f"instance terminated after {done_at[iid] - start:.0f} s" if iid in terminated else f"drained in {done_at[iid] - start:.0f} s"
            actions.append(Action("drain", iid, "drained", _join(verified, notes.get(iid), short)))
    return DrainResult(cluster, (*actions, *skipped), tuple(sorted(service_groups)), group_delays)


def _watched_groups(
    holding: Iterable[str],
    services: Sequence[Mapping[str, Any]],
    affected: set[str],
    tasks: Mapping[str, Task],
    pending: set[str],
    every_service: bool,
) -> set[str]:
    """Pure: the target groups a look at ``pending`` reads: those that held a target of the
    instances, those of the affected services (their healthy targets elsewhere are counted), and
    those of every service with a task seen on a pending instance (ECS registers a service task's
    targets in its service's groups, so a target that appears later, from a task placed before
    DRAINING took, is in one of them). Not every group of the cluster: with 50 services each
    look would read 50 groups where the instances' tasks use a few."""
    lbs = {s["serviceName"]: [lb["targetGroupArn"] for lb in s.get("loadBalancers", ()) if lb.get("targetGroupArn")] for s in services}
    wanted = set(holding) | {g for name, groups in lbs.items() if every_service or name in affected for g in groups}
    for t in tasks.values():
        if t.instance_id in pending and t.group.startswith("service:"):
            wanted.update(lbs.get(t.group.removeprefix("service:"), ()))
    return wanted


def not_before(decided: Left, pending: Iterable[str], deregistered: Mapping[tuple[str, str, int | None], float], delays: Mapping[str, int]) -> float:
    """Pure: the earliest time a look can find any of ``pending`` drained (0: at any time), from
    the targets :func:`what_is_left` saw still draining (``decided.draining``).

    A target deregistered at ``t`` shows "draining" until ``t`` plus its group's deregistration
    delay, even when it had no request in flight: "even though target deregistration is
    complete, the status of the target is displayed as draining until the deregistration delay
    timeout expires" (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay).
    So an instance holding a draining target that this drain deregistered (``deregistered``:
    target → a time no later than the deregistration) cannot be drained before then, unless it
    is terminated (a look says so, and then it is done). ``delays`` may be an hour old (the
    state table's cache): :func:`next_look` still looks every :data:`LONGEST_SKIP` seconds.
    """
    floors = []
    for iid in pending:
        bound = 0.0
        for key in decided.draining.get(iid, ()):
            began = deregistered.get(key)
            if began is not None and key[0] in delays:
                bound = max(bound, began + delays[key[0]])
        floors.append(bound)
    return min(floors, default=0.0)


def next_look(now: float, poll: float, not_before: float, deadline: float, beat_due: float = math.inf) -> float:
    """Pure: seconds to sleep before the next look: ``poll``, or longer while no look can find
    an instance drained before ``not_before``, but never past the earliest ``deadline`` nor,
    beyond ``poll``, past the next heartbeat's due time (the hook must not time out) or
    :data:`LONGEST_SKIP` (the bound may be stale, and termination does not wait for it)."""
    skip = min(not_before, beat_due, now + max(poll, LONGEST_SKIP)) - now
    return max(0.0, min(max(poll, skip), deadline - now))


def waiting_report(total: int, pending: Mapping[str, Mapping[str, Any]]) -> Report:
    """Pure: the drain's progress line, naming the first instance still held and what holds it."""
    done = total - len(pending)
    line = f"{done}/{total} instance(s) drained"
    if pending:
        first, what = next(iter(pending.items()))
        more = f" and {len(pending) - 1} more" if len(pending) > 1 else ""
        line += f"; waiting for {first}{more}: {_describe(what)}"
    return Report("drain", line, done, total)


def _beat(beats: list[Call]) -> Workflow[list[Call]]:
    """Send the lifecycle heartbeats; keep those whose lifecycle action still waits.

    A heartbeat answered "absent" (AutoScaling's ValidationError "No active Lifecycle Action
    found": completed elsewhere, timed out, or its instance already terminated, as Spot does two
    minutes after the warning) is dropped; any other failure is retried at the next beat. Neither
    may end the drain: the heartbeat only keeps the instance waiting, the drain is the work.
    """
    try:
        answers = yield tuple(beats)
    except EcsspotError:
        return beats
    return [b for b, a in zip(beats, answers, strict=True) if a is not None]


def _list_services_call(cluster: str) -> Call:
    """ListServices pages at 10 services by default on AWS, up to 100 when asked
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServices.html, maxResults):
    a cluster of many services costs a tenth of the round trips."""
    return paginate("ecs", "list_services", cluster=cluster, PaginationConfig={"PageSize": 100})


def _list_calls(cluster: str, ids: Sequence[str], status: str | None = None) -> tuple[Call, ...]:
    """ListContainerInstances of ``ids`` by an ``ec2InstanceId in [...]`` filter: every status but
    INACTIVE, or only ``status`` when given (both as AWS documents the ``status`` parameter,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListContainerInstances.html)."""
    only: dict[str, Any] = {"status": status} if status else {}
    return tuple(paginate("ecs", "list_container_instances", cluster=cluster, filter=f, **only) for f in id_filters(ids))


def id_filters(ids: Sequence[str]) -> list[str]:
    """``ec2InstanceId in [...]`` expressions naming every one of ``ids``, each as many as fit in
    :data:`FILTER_CHARS` (the fewer the expressions, the fewer the calls)."""
    head, tail = "ec2InstanceId in [", "]"
    out: list[str] = []
    batch: list[str] = []
    for i in ids:
        quoted = f"'{i}'"
        if batch and len(head) + sum(len(q) + 1 for q in batch) + len(quoted) + len(tail) > FILTER_CHARS:
            out.append(head + ",".join(batch) + tail)
            batch = []
        batch.append(quoted)
    if batch:
        out.append(head + ",".join(batch) + tail)
    return out


def _describe_instance_calls(cluster: str, arns: Sequence[str]) -> tuple[Call, ...]:
    return tuple(call("ecs", "describe_container_instances", cluster=cluster, containerInstances=b) for b in chunks(list(arns), 100))


def _take(answers: Iterator[Any], calls: Sequence[Call]) -> list[Any]:
    """The next ``len(calls)`` answers of a round (its calls' answers come in the order sent)."""
    return [next(answers) for _ in calls]


def _delay_calls(group_arns: Sequence[str]) -> tuple[Call, ...]:
    return tuple(lookup("elbv2", "describe_target_group_attributes", ("TargetGroupNotFound",), TargetGroupArn=arn) for arn in group_arns)


def _target_health_calls(group_arns: Iterable[str]) -> tuple[Call, ...]:
    return tuple(lookup("elbv2", "describe_target_health", ("TargetGroupNotFound",), TargetGroupArn=arn) for arn in sorted(set(group_arns)))


def _targets_from(
    group_arns: Iterable[str], answers: Sequence[Any], instance_ids: set[str], addresses: Mapping[str, str] | None = None
) -> list[_Target]:
    """The targets on ``instance_ids``: by instance id, or by the ENI ``addresses`` (address →
    instance) of the awsvpc tasks there."""
    found = []
    for arn, answer in zip(sorted(set(group_arns)), answers, strict=True):
        for desc in (answer or {}).get("TargetHealthDescriptions", ()):
            target = desc.get("Target", {})
            state = desc.get("TargetHealth", {}).get("State", "")
            target_id = target.get("Id", "")
            instance_id = target_id if target_id in instance_ids else (addresses or {}).get(target_id)
            if instance_id in instance_ids and state != "unused":
                found.append(_Target(arn, instance_id, target.get("Port"), state, target_id))
    return found


def _has_addresses(health: Sequence[Any]) -> bool:
    """Whether DescribeTargetHealth answers hold an IP address target (a group of type ``ip``)."""
    for answer in health:
        for desc in (answer or {}).get("TargetHealthDescriptions", ()):
            try:
                ipaddress.ip_address(desc.get("Target", {}).get("Id", ""))
            except ValueError:
                continue
            return True
    return False


def _delay_seconds(groups: Sequence[str], answers: Sequence[Any]) -> dict[str, int]:
    """Group ARN → deregistration delay, from DescribeTargetGroupAttributes answers (a group
    that is gone has none)."""
    out = {}
    for arn, answer in zip(groups, answers, strict=True):
        if answer is not None:
            attributes = {a["Key"]: a["Value"] for a in answer.get("Attributes", ())}
            out[arn] = int(attributes.get("deregistration_delay.timeout_seconds", 300))
    return out


def _short_delays(delays: Mapping[str, int], deadline: float) -> list[str]:
    notes = []
    for arn, delay in sorted(delays.items()):
        if delay > deadline:
            name = arn.split(":targetgroup/")[-1].split("/")[0]
            notes.append(f"target group {name} deregistration delay {delay} s exceeds the {deadline:.0f} s deadline")
    return notes


@attrs.frozen
class Look:
    """One look at a drain's instances, as AWS answered it (the input of :func:`what_is_left`)."""

    #: DescribeContainerInstances' container instances (the pending ones this cluster knows).
    container_instances: tuple[Mapping[str, Any], ...]
    #: Target group ARN → its DescribeTargetHealth answer (None: the group is gone).
    target_health: Mapping[str, Mapping[str, Any] | None]
    #: DescribeServices' services affected by the drain.
    services: tuple[Mapping[str, Any], ...]
    #: Everything known of the tasks on the instances, this look's answers included.
    tasks: Mapping[str, Task]


@attrs.frozen
class Left:
    """What :func:`what_is_left` decided."""

    #: Instance → what still holds it (empty when the instance is gone).
    left: Mapping[str, Mapping[str, Any]]
    #: Instances that are gone (terminated): nothing left to wait for.
    gone: frozenset[str]
    #: Instances whose tasks must be listed again at the next look.
    relist: frozenset[str]
    #: Instance → its targets still draining, as (group ARN, target Id, port) (:func:`not_before`).
    draining: Mapping[str, frozenset[tuple[str, str, int | None]]] = attrs.field(factory=dict)


def what_is_left(look: Look, pending: Iterable[str], daemon_groups: Iterable[str] = ()) -> Left:
    """Pure: what still holds each pending instance of a drain.

    An instance is drained when it is DRAINING, no non-daemon task on it is short of STOPPED, it
    holds no registered or draining target, and every affected service is back at its desired
    count of *healthy* targets elsewhere (a RUNNING replacement that fails its health checks
    serves nothing). A terminated instance (INACTIVE) is gone: its tasks died with it. An
    instance set ACTIVE again is not drained (tasks may land on it again).
    """
    pending = set(pending)
    daemon = set(daemon_groups)
    tasks = look.tasks
    left: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    again: set[str] = set()
    for ci in look.container_instances:
        iid = ci["ec2InstanceId"]
        if ci.get("status") == "INACTIVE":
            # Terminated (Spot reclaims two minutes after the warning): its tasks died with it
            # and the load balancer drops its targets; there is nothing left to wait for here.
            gone.add(iid)
            continue
        if ci.get("status") == "ACTIVE":
            # Someone set it back to ACTIVE: tasks may land here again, so it is not drained.
            left.setdefault(iid, {})["status"] = "ACTIVE"
        counted = int(ci.get("runningTasksCount", 0)) + int(ci.get("pendingTasksCount", 0))
        known = sum(1 for t in tasks.values() if t.instance_id == iid and t.desired_status == "RUNNING" and not t.stopped)
        if ci.get("status") != "DRAINING" or counted > known:
            again.add(iid)
    for iid in sorted(pending - gone):
        on = [t for t in tasks.values() if t.instance_id == iid and not t.stopped and t.group not in daemon]
        if on:
            what = left.setdefault(iid, {})
            what["tasks"] = len(on)
            what["task_states"] = dict(sorted(Counter(t.last_status for t in on).items()))
            standalone = [t.label for t in on if not t.group.startswith("service:")]
            if standalone:
                what["standalone_tasks"] = sorted(standalone)
    groups = sorted(look.target_health)
    answers = [look.target_health[g] for g in groups]
    addresses = _Watch(tasks).addresses(pending)
    draining: dict[str, set[tuple[str, str, int | None]]] = {}
    for t in _targets_from(groups, answers, pending - gone, addresses):
        left.setdefault(t.instance_id, {}).setdefault("targets", []).append(f"{t.label} ({t.state})")
        if t.state == "draining":
            draining.setdefault(t.instance_id, set()).add((t.group_arn, t.target_id, t.port))
    # Healthy targets elsewhere, per group. An ip target of a task on a pending instance is not
    # elsewhere.
    here = pending | set(addresses)
    healthy_elsewhere = {
        arn: sum(
            1
            for d in (answer or {}).get("TargetHealthDescriptions", ())
            if d.get("TargetHealth", {}).get("State") == "healthy" and d.get("Target", {}).get("Id") not in here
        )
        for arn, answer in zip(groups, answers, strict=True)
    }
    short = []
    for s in look.services:
        up = s.get("runningCount", 0)
        held = [lb["targetGroupArn"] for lb in s.get("loadBalancers", ()) if lb.get("targetGroupArn") in healthy_elsewhere]
        if held:
            up = min(up, *(healthy_elsewhere[g] for g in held))
        if up < s.get("desiredCount", 0):
            short.append(f"{s['serviceName']} {up}/{s.get('desiredCount', 0)}")
    if short:
        # Replacements are not running and healthy yet: the drain is not over for anyone pending.
        for iid in pending - gone:
            left.setdefault(iid, {})["services_below_desired"] = short
    for iid in gone:
        left[iid] = {}
    return Left(left, frozenset(gone), frozenset(again), {iid: frozenset(keys) for iid, keys in draining.items()})


def _look(
    cluster: str,
    instances_by_id: Mapping[str, Mapping[str, Any]],
    pending: set[str],
    group_arns: set[str],
    affected_services: set[str],
    watch: _Watch,
) -> Workflow[Look]:
    """Gather one :class:`Look`: the container instances, the groups' targets, the services, the
    known live tasks and ListTasks for the instances in ``watch.relist``, in one round; a second
    only when that listing shows tasks not seen before."""
    looked = sorted(i for i in pending if i in instances_by_id)
    arns = [instances_by_id[i]["containerInstanceArn"] for i in looked]
    instance_of = {instances_by_id[i]["containerInstanceArn"]: i for i in looked}
    ci_calls = tuple(call("ecs", "describe_container_instances", cluster=cluster, containerInstances=b) for b in chunks(arns, 100))
    groups = sorted(group_arns)
    tg_calls = _target_health_calls(groups)
    sv_calls = tuple(call("ecs", "describe_services", cluster=cluster, services=b) for b in chunks(sorted(affected_services), 10))
    relist = [instances_by_id[i]["containerInstanceArn"] for i in looked if i in watch.relist]
    list_calls = _task_list_calls(cluster, relist)
    live = [t.arn for t in watch.tasks.values() if t.instance_id in pending and not t.stopped]
    task_calls = _describe_task_calls(cluster, live)
    parts = (ci_calls, tg_calls, sv_calls, list_calls, task_calls)
    everything = tuple(c for part in parts for c in part)
    answers = iter((yield everything) if everything else ())
    # Each part's answers, in the order the parts were sent.
    ci_answers, tg_answers, sv_answers, list_answers, task_answers = ([next(answers) for _ in part] for part in parts)
    tasks = dict(watch.tasks)
    tasks.update(_tasks_from(task_answers, instance_of))
    unseen = [a for listed in _listed(relist, list_answers).values() for a in listed if a not in tasks]
    if unseen:
        tasks.update(_tasks_from((yield _describe_task_calls(cluster, unseen)), instance_of))
    return Look(
        container_instances=tuple(ci for a in ci_answers for ci in a.get("containerInstances", ())),
        target_health=dict(zip(groups, tg_answers, strict=True)),
        services=tuple(s for a in sv_answers for s in a.get("services", ())),
        tasks=tasks,
    )


def _describe(what: Mapping[str, Any]) -> str:
    parts = []
    if what.get("tasks"):
        states = ", ".join(f"{n} {state}" for state, n in what.get("task_states", {}).items())
        parts.append(f"{what['tasks']} task(s)" + (f" ({states})" if states else ""))
    if what.get("standalone_tasks"):
        parts.append("standalone tasks, which ECS does not move: " + ", ".join(what["standalone_tasks"]))
    if what.get("targets"):
        parts.append("targets " + ", ".join(what["targets"]))
    if what.get("services_below_desired"):
        parts.append("services below desired count: " + ", ".join(what["services_below_desired"]))
    if what.get("status"):
        parts.append(f"container instance {what['status']}")
    return "; ".join(parts) or "nothing"


def _join(*parts: Any) -> str:
    flat: list[str] = []
    for p in parts:
        if isinstance(p, list | tuple):
            flat += [str(x) for x in p if x]
        elif p:
            flat.append(str(p))
    return "; ".join(flat)


def drain_instances(cluster: str, instance_ids: Sequence[str], *, deadline: float | None, wait: bool, owner: str) -> Workflow[DrainResult]:
    """``drain`` with the cluster's recorded settings (target groups and their cached delays,
    deadline) and per-instance leases.

    What the drain lease guards: not DRAINING or the deregistration (a second one is harmless,
    so the interruption handler drains without it), and not a lifecycle completion (this drain
    completes none; the interruption handler's event claim makes that happen once). It keeps a
    rollback that sets instances ACTIVE again (a refresh's ``reactivate``, the watchdog's, both
    under the same lease) from interleaving with this drain: one under way makes the drain leave
    the instance alone (``skipped``), and none starts while the drain holds the lease. So it is
    taken before DRAINING: in the drain's first round, beside the read-only listing
    (:func:`drain`'s ``leases``), one TransactWriteItems per 100 instances, and given back in
    one more (:func:`ecsspot.store.conditional_writes`). A ``--no-wait`` drain gives it back
    once DRAINING is sent: after that a rollback may set the instance ACTIVE again, as it may
    after any drain has ended.

    The leases are given back on every exit path, Ctrl-C included (the driver serves the
    ``finally`` block's calls before the interruption propagates), all in one round. A cluster
    ECS does not know is :class:`~ecsspot.errors.NotFoundError` (exit 7), not an AWS failure.
    """
    try:
        return (yield from _drain_instances(cluster, instance_ids, deadline=deadline, wait=wait, owner=owner))
    except AwsError as exc:
        if exc.code == "ClusterNotFoundException":
            raise NotFoundError(f"cluster {cluster} not found (ECS: {exc.aws_message})") from exc
        raise


def _drain_instances(cluster: str, instance_ids: Sequence[str], *, deadline: float | None, wait: bool, owner: str) -> Workflow[DrainResult]:
    spec, cache = yield from store.load_cluster_cache(cluster)
    ids = list(dict.fromkeys(instance_ids))
    seconds = float(deadline if deadline is not None else (spec.drain.deadline_seconds if spec else 110))
    if spec is None:
        return (yield from drain(cluster, ids, deadline=seconds, wait=wait))
    now = yield NOW
    names = [f"drain#{iid}" for iid in ids]
    writes = store.lease_writes(spec.table_name, names, owner, now=now, ttl=seconds + 60)
    try:
        result = yield from drain(
            cluster,
            ids,
            deadline=seconds,
            wait=wait,
            target_groups=(*spec.target_groups, *cache.groups),
            delays=cache.delays_at(now),
            leases=dict(zip(ids, writes, strict=True)),
        )
        if cache.outdated(result.service_target_groups, result.deregistration_delays, now=now):
            document = cache.merged(result.service_target_groups, result.deregistration_delays, now=now)
            yield store.remember_cache_call(spec.table_name, document, now=now)
    except GeneratorExit:
        raise  # closed without being driven on (the process is going away): the leases expire
    except BaseException:
        # Whichever were taken (a release of one held by someone else changes nothing).
        yield from store.let_go(spec.table_name, (), names, owner)
        raise
    held = {a.instance_id for a in result.actions if a.status == "skipped"}
    yield from store.let_go(spec.table_name, (), [f"drain#{iid}" for iid in ids if iid not in held], owner)
    return result
