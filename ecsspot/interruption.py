"""Handle interruption and lifecycle events: the path shared by the Lambda and `handle-event`.

parse (ecsspot.events, eager, per record) → decide (pure; only ecsspot's own lifecycle hook) →
find each instance's cluster and Auto Scaling group from the instance itself (its
``ecsspot:cluster`` tag, or the configured default) → act only on instances of that cluster's
own groups (anything else is ``ignore`` with the reason) → claim each (event, instance) and mark
the instance as going away, in one round → one batched verified drain per cluster → complete
lifecycle actions (CONTINUE) once the drain is verified or its deadline passes → record the
events as done, in one round.

The rule: a record is reported done only when its work is done. Every other outcome (a call
AWS refused, an event in hand elsewhere, a claim that failed) is a ``batchItemFailure`` that
comes back within seconds (:class:`Retry`), and its claim can be taken over on redelivery. One
record's failure never fails another's: a cluster's batch that fails is handled again record by
record.

What guards what: the event's claim makes completing a lifecycle action happen once; drains are
idempotent (a second DRAINING or deregistration is harmless), so a spot warning is acted on even
while someone else drains the instance; the "going away" mark keeps a refresh rollback from
setting the instance ACTIVE again (see :func:`ecsspot.refresh`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import attrs

from ecsspot import events, store
from ecsspot.aws.calls import (
    NOW,
    Call,
    Workflow,
    call,
    chunks,
    failed,
    lookup,
    paginate,
    settle,
)
from ecsspot.drain import Action, drain
from ecsspot.errors import AwsError, EcsspotError
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, table_name
from ecsspot.state import CLUSTER_TAG

#: The tag Auto Scaling puts on every instance it launches.
GROUP_TAG = "aws:autoscaling:groupName"

#: Stop this long before a Lambda's remaining time runs out, to report and release cleanly.
LAMBDA_MARGIN_SECONDS = 15.0
REFRESH_ELSEWHERE = "parameter changes are handled by the refresh handler (ecsspot.handlers.refresh)"
#: What Auto Scaling answers for a lifecycle action that is no longer waiting.
_ACTION_GONE = ("ValidationError",)


@attrs.frozen
class Retry:
    """A failed SQS record to hand back to its queue early (ChangeMessageVisibility)."""

    receipt_handle: str
    queue_arn: str
    #: Seconds until the queue delivers it again.
    after: float


@attrs.frozen
class HandleResult:
    actions: tuple[Action, ...]
    #: SQS message ids to hand back to the queue (malformed, or failed while handling). An empty
    #: id stands for a failed record that has none: Lambda then retries the whole batch.
    batch_item_failures: tuple[str, ...] = ()
    #: True when the payload was a batch (SQS/SNS records) rather than a single event.
    batch: bool = False
    #: How the records came: by SQS ("sqs"), by SNS ("sns"), or None (a direct EventBridge invocation).
    via: str | None = None
    #: Failed SQS records with what is needed to bring them back within seconds.
    retries: tuple[Retry, ...] = ()

    def lambda_response(self) -> dict[str, Any]:
        """What the Lambda returns: SQS's partial batch response, or the actions."""
        if self.batch:
            return {"batchItemFailures": [{"itemIdentifier": i} for i in self.batch_item_failures]}
        return {"actions": [attrs.asdict(a) for a in self.actions]}


@attrs.frozen
class _Work:
    """One (record, instance) pair: two events for one instance in one batch are two works."""

    index: int
    record: events.Record
    decision: events.Decision
    instance_id: str

    @property
    def key(self) -> str:
        """The idempotency key: one event about one instance, whichever message carried it."""
        return f"{self.decision.event_key or self.record.message_id}:{self.instance_id}"


@attrs.frozen
class _Outcome:
    """How one work ended: its actions, and whether its record must come back (``retry_after``)."""

    actions: tuple[Action, ...]
    retry_after: float | None = None


#: Seconds before a failed record comes back, by SQS receive count (1, 2, …): fast first, inside
#: the two-minute spot window, then backing off so a lasting failure is not spun on.
_RETRY_BACKOFF = (5.0, 10.0, 20.0, 40.0, 60.0)


def retry_delay(receive_count: int) -> float:
    """How long a failed record waits before the queue delivers it again."""
    return _RETRY_BACKOFF[min(max(receive_count, 1), len(_RETRY_BACKOFF)) - 1]


def is_batch(payload: Any) -> bool:
    """Whether a Lambda payload is a batch of records (SQS/SNS ``Records``, SDK ``Messages``)."""
    return isinstance(payload, Mapping) and ("Records" in payload or "Messages" in payload)


def decide_all(payload: Mapping[str, Any], *, now: datetime | None = None) -> tuple[list[tuple[events.Record, events.Decision | None]], bool]:
    """Parse and decide every record, without I/O."""
    batch = is_batch(payload)
    records = events.parse_batch(payload)
    out: list[tuple[events.Record, events.Decision | None]] = []
    for record in records:
        if record.event is None:
            out.append((record, None))
        else:
            out.append((record, own_hook(events.decide(record.event, now=now))))
    return out, batch


def own_hook(decision: events.Decision) -> events.Decision:
    """Lifecycle actions of any hook but ecsspot's are their owner's to complete, never ours."""
    life = decision.lifecycle
    if life is None or life.hook_name == LIFECYCLE_HOOK_NAME:
        return decision
    return events.Decision(
        "ignore",
        (life.instance_id,),
        f"lifecycle hook {life.hook_name!r} of {life.group_name} is not ecsspot's ({LIFECYCLE_HOOK_NAME}); its owner completes it",
        event_key=decision.event_key,
    )


def triage(decided: Sequence[tuple[events.Record, events.Decision | None]]) -> tuple[list[Action], list[_Work], list[events.Record]]:
    """Pure: split decided records into immediate actions, work to do, and malformed records."""
    actions: list[Action] = []
    work: list[_Work] = []
    malformed: list[events.Record] = []
    seen: set[str] = set()
    for record, decision in decided:
        if decision is None:
            actions.append(Action("error", None, "failed", str(record.error)))
            malformed.append(record)
            continue
        if decision.kind in ("ignore", "refresh"):
            reason = decision.reason if decision.kind == "ignore" else REFRESH_ELSEWHERE
            actions.append(Action("ignore", decision.instance_ids[0] if decision.instance_ids else None, "ignored", reason))
            continue
        for iid in decision.instance_ids:
            w = _Work(len(work), record, decision, iid)
            if w.key in seen:
                actions.append(Action(decision.kind, iid, "duplicate", "the same event appears twice in this batch"))
                continue
            seen.add(w.key)
            work.append(w)
    return actions, work, malformed


def dry_run(payload: Mapping[str, Any]) -> HandleResult:
    """The actions a payload asks for, from the payload alone (no AWS call)."""
    decided, batch = decide_all(payload)
    actions, work, malformed = triage(decided)
    for w in work:
        actions.append(Action(w.decision.kind, w.instance_id, "planned", w.decision.reason))
        if _completes(w):
            actions.append(Action("complete_lifecycle_action", w.instance_id, "planned", "CONTINUE after the verified drain"))
    return _result(actions, malformed, [], batch, decided)


def _result(
    actions: list[Action], malformed: Sequence[events.Record], failed: Sequence[tuple[events.Record, float]], batch: bool, decided: Sequence[tuple[events.Record, Any]]
) -> HandleResult:
    records = [r for r, _ in decided]
    via = next((r.via for r in records if r.via), None)
    back = [(r, retry_delay(r.receive_count)) for r in malformed] + list(failed)
    ids = tuple(dict.fromkeys(r.message_id or "" for r, _ in back))
    retries: dict[str, Retry] = {}
    for r, after in back:
        if r.receipt_handle and r.queue_arn:
            retries[r.receipt_handle] = Retry(r.receipt_handle, r.queue_arn, max(after, retries.get(r.receipt_handle, Retry("", "", 0.0)).after))
    return HandleResult(tuple(actions), ids, batch, via, tuple(retries.values()))


def handle_event(
    payload: Mapping[str, Any],
    *,
    owner: str,
    default_cluster: str | None = None,
    remaining_seconds: float | None = None,
) -> Workflow[HandleResult]:
    """Handle one Lambda payload (an event, or an SQS/SNS batch) end to end.

    Every record ends handled (its work done, or nothing of ours to do) or reported for a retry;
    one record's failure never fails another's.
    """
    start = yield NOW
    decided, batch = decide_all(payload, now=datetime.fromtimestamp(start, tz=UTC))
    actions, work, malformed = triage(decided)
    failed: list[tuple[events.Record, float]] = []
    probes = [r for r, _ in decided if isinstance(r.event, events.DoctorProbe)]
    if probes:
        failed += yield from _record_probes(probes, start)
    if work:
        clusters, preread, placement = yield from _clusters_of([w.instance_id for w in work], default_cluster)
        by_cluster: dict[str, list[_Work]] = {}
        warned: dict[tuple[str, str], tuple[str, str]] = {}
        for w in work:
            cluster, _ = clusters.get(w.instance_id, (None, None))
            if cluster is None:
                actions.append(Action("ignore", w.instance_id, "ignored", "not an instance of an ecsspot-managed cluster (no ecsspot:cluster tag and no default cluster)"))
            else:
                by_cluster.setdefault(cluster, []).append(w)
        for cluster, items in sorted(by_cluster.items()):
            groups = {w.index: clusters[w.instance_id][1] for w in items}
            settings = preread if cluster == default_cluster else None
            outcomes = yield from _isolated(cluster, items, groups, owner=owner, start=start, remaining_seconds=remaining_seconds, settings=settings)
            for w in items:
                outcome = outcomes[w.index]
                actions += outcome.actions
                if outcome.retry_after is not None:
                    failed.append((w.record, outcome.retry_after))
                if isinstance(w.record.event, events.SpotInterruptionWarning) and _drained_by(outcome) and all(placement.get(w.instance_id, ("", ""))):
                    warned[(cluster, w.instance_id)] = placement[w.instance_id]
        yield from _record_interruptions(warned, start)
    return _result(actions, malformed, failed, batch, decided)


def _drained_by(outcome: _Outcome) -> bool:
    """Whether this work's own drain ran (not ignored as foreign, not a duplicate, not failed)."""
    return any(a.kind == "drain" and a.status in ("drained", "draining", "timed_out") for a in outcome.actions)


def _record_interruptions(warned: Mapping[tuple[str, str], tuple[str, str]], now: float) -> Workflow[None]:
    """Count each spot warning ecsspot drained ((cluster, instance) → (type, zone)) in its
    cluster's interruption history (what ``ecsspot advise`` ranks types by). After everything
    else and in one round: advice only, so a failed count fails no record (a retry would drain
    again)."""
    calls = [store.count_interruption_call(table_name(cluster), *where, now=now) for (cluster, _), where in warned.items()]
    if calls:
        yield settle(calls)


def _record_probes(records: Sequence[events.Record], now: float) -> Workflow[list[tuple[events.Record, float]]]:
    """Record each ``ecsspot doctor`` test event as seen in its cluster's state table, all in one
    round; a cluster without an ecsspot table is not ours (nothing to record), any other failure
    is the record's, retried like any other."""
    calls = []
    for r in records:
        probe = cast(events.DoctorProbe, r.event)
        calls.append(store.put_document_call(table_name(probe.cluster), *store.probe_key(probe.probe), {"seen_at": now, "message_id": r.message_id}, now=now))
    answers = yield settle(calls)
    return [(r, retry_delay(r.receive_count)) for r, a in zip(records, answers, strict=True) if failed(a) and not _no_table(a)]


def _no_table(error: EcsspotError) -> bool:
    return isinstance(error, AwsError) and error.code == "ResourceNotFoundException"


def _isolated(
    cluster: str,
    items: list[_Work],
    groups: Mapping[int, str | None],
    *,
    owner: str,
    start: float,
    remaining_seconds: float | None,
    settings: Sequence[Any] | None = None,
) -> Workflow[dict[int, _Outcome]]:
    """Handle a cluster's works together; when that fails, each on its own, so that one record
    AWS refuses (a foreign instance, a revoked token) never sends the others back to the queue.
    ``settings``: the answers to :func:`ecsspot.store.cluster_read_calls`, when already read."""
    try:
        return (yield from _handle_cluster(cluster, items, groups, owner=owner, start=start, remaining_seconds=remaining_seconds, settings=settings))
    except EcsspotError as exc:
        if len(items) == 1:
            w = items[0]
            return {w.index: _Outcome((Action(w.decision.kind, w.instance_id, "failed", str(exc)),), retry_delay(w.record.receive_count))}
    outcomes: dict[int, _Outcome] = {}
    for w in items:
        outcomes.update((yield from _isolated(cluster, [w], groups, owner=owner, start=start, remaining_seconds=remaining_seconds, settings=settings)))
    return outcomes


def _clusters_of(
    instance_ids: Sequence[str], default_cluster: str | None
) -> Workflow[tuple[dict[str, tuple[str | None, str | None]], Sequence[Any] | None, dict[str, tuple[str, str]]]]:
    """Each instance's cluster (its tag, else the default) and Auto Scaling group (its
    ``aws:autoscaling:groupName`` tag); a filter, not InstanceIds, so unknown ids don't fail the call.

    The default cluster's settings and group cache are read in the same round (the deployed
    Lambda has one, and its instances are almost always that cluster's): the answers to
    :func:`ecsspot.store.cluster_read_calls`, or None when there is no default or they failed
    (then the cluster's handling reads them again, where a failure fails only its records).
    Third, each instance's type and Availability Zone (the interruption history's).
    """
    # EC2 takes at most 200 values in one filter; an SQS batch may hold more records than that.
    describes = [
        paginate("ec2", "describe_instances", Filters=[{"Name": "instance-id", "Values": batch}]) for batch in chunks(sorted(set(instance_ids)), 200)
    ]
    reads = store.cluster_read_calls(table_name(default_cluster)) if default_cluster else ()
    outcomes = yield settle([*describes, *reads])
    error = next((a for a in outcomes[: len(describes)] if failed(a)), None)
    if error is not None:
        raise error
    answers = outcomes[: len(describes)]
    preread = None if any(failed(a) for a in outcomes[len(describes) :]) or not reads else outcomes[len(describes) :]
    found: dict[str, tuple[str | None, str | None]] = {}
    placement: dict[str, tuple[str, str]] = {}
    for reservation in (r for a in answers for r in a.get("Reservations", ())):
        for inst in reservation.get("Instances", ()):
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", ())}
            found[inst["InstanceId"]] = (tags.get(CLUSTER_TAG) or default_cluster, tags.get(GROUP_TAG))
            placement[inst["InstanceId"]] = (str(inst.get("InstanceType", "")), str((inst.get("Placement") or {}).get("AvailabilityZone", "")))
    return {iid: found.get(iid, (default_cluster, None)) for iid in instance_ids}, preread, placement


def foreign(spec: ClusterSpec, work: _Work, group: str | None) -> str | None:
    """Pure: why ``work`` is not this cluster's to act on, or None when it is."""
    ours = {spec.asg_name(p) for p in spec.pools}
    if work.decision.lifecycle is not None:
        group = work.decision.lifecycle.group_name
    if group is None:
        return f"not in one of cluster {spec.cluster}'s Auto Scaling groups (no aws:autoscaling:groupName tag)"
    if group not in ours:
        return f"Auto Scaling group {group} is not one of cluster {spec.cluster}'s ({', '.join(sorted(ours))})"
    return None


def _handle_cluster(
    cluster: str,
    items: list[_Work],
    groups: Mapping[int, str | None],
    *,
    owner: str,
    start: float,
    remaining_seconds: float | None,
    settings: Sequence[Any] | None = None,
) -> Workflow[dict[int, _Outcome]]:
    spec, cache = (yield from store.cluster_from(table_name(cluster), settings)) if settings is not None else (yield from store.load_cluster_cache(cluster))
    if spec is None:
        why = f"cluster {cluster} has no ecsspot state table (not managed by ecsspot)"
        return {w.index: _Outcome((Action("ignore", w.instance_id, "ignored", why),)) for w in items}
    table = spec.table_name
    outcomes: dict[int, _Outcome] = {}
    mine = []
    for w in items:
        not_ours = foreign(spec, w, groups.get(w.index))
        if not_ours is None:
            mine.append(w)
        else:
            outcomes[w.index] = _Outcome((Action("ignore", w.instance_id, "ignored", not_ours),))
    if not mine:
        return outcomes
    budget = None if remaining_seconds is None else max(remaining_seconds - LAMBDA_MARGIN_SECONDS, 0.0)
    deadlines = {}
    for w in mine:
        deadline = events.deadline_for(w.decision, spec, start)
        deadlines[w.index] = deadline if budget is None else min(deadline, budget)

    # Round: claim every event and mark every instance as going away (a refresh rolling back
    # must not set it ACTIVE again), all at once.
    deliveries = {w.key: (w.record.message_id or "", w.record.receive_count) for w in mine}
    ttl = max(deadlines.values()) + 120
    doom = [store.mark_doomed_call(table, iid, f"{cluster}: being drained", now=start) for iid in sorted({w.instance_id for w in mine})]
    states = yield from store.claim_events(table, [w.key for w in mine], owner, now=start, ttl=ttl, deliveries=deliveries, along=doom)
    fresh: list[_Work] = []
    for w in mine:
        state = states[w.key]
        if state == "claimed":
            fresh.append(w)
        elif state == "done":
            outcomes[w.index] = _Outcome((Action(w.decision.kind, w.instance_id, "duplicate", f"event {w.key} already handled"),))
        else:
            # In hand elsewhere (or the claim failed): not done yet, so never reported done. It
            # comes back once the other handler has had time to finish or let go.
            why = f"event {w.key} is in hand elsewhere; back to the queue" if state == "busy" else f"claiming event {w.key} failed: {state}"
            after = retry_delay(w.record.receive_count) if state != "busy" else min(ttl, 900.0)
            outcomes[w.index] = _Outcome((Action(w.decision.kind, w.instance_id, "failed", why),), after)
    if not fresh:
        return outcomes
    try:
        outcomes.update((yield from _act(spec, cluster, fresh, deadlines, cache, owner=owner, start=start)))
    except GeneratorExit:
        raise  # the process is going away: the claims expire, or a redelivery takes them over
    except BaseException:
        # Let go of what we took, so the retry (SQS redelivery, Lambda's async retry, the
        # per-record pass) can take these events at once instead of finding them "in hand elsewhere".
        yield from store.let_go(table, [w.key for w in fresh], (), owner)
        raise
    return outcomes


def _act(
    spec: ClusterSpec, cluster: str, fresh: list[_Work], deadlines: Mapping[int, float], cache: store.GroupCache, *, owner: str, start: float
) -> Workflow[dict[int, _Outcome]]:
    """Drain the claimed works' instances, complete their lifecycle actions, record the events."""
    table = spec.table_name
    outcomes: dict[int, _Outcome] = {}
    rebalance = [w for w in fresh if w.decision.kind == "rebalance"]
    replaced: dict[str, Action] = {}
    if rebalance:
        for a in (yield from _ensure_replacements(spec, sorted({w.instance_id for w in rebalance}))):
            replaced[a.instance_id or ""] = a

    # "Absent" (ValidationError: no active lifecycle action) when the action already ended: the
    # instance was terminated (Spot reclaims it 120 s after the warning) or someone completed it.
    heartbeats = [
        lookup(
            "autoscaling",
            "record_lifecycle_action_heartbeat",
            _ACTION_GONE,
            AutoScalingGroupName=w.decision.lifecycle.group_name,
            LifecycleHookName=w.decision.lifecycle.hook_name,
            LifecycleActionToken=w.decision.lifecycle.token,
            InstanceId=w.instance_id,
        )
        for w in fresh
        if w.decision.lifecycle is not None
    ]
    # A second DRAINING and a second deregistration are harmless, so one drain serves every work
    # on an instance, whoever else drains it too; what must happen once (completing a lifecycle
    # action) is guarded by the event's claim.
    per_instance: dict[str, float] = {}
    for w in fresh:
        per_instance[w.instance_id] = max(per_instance.get(w.instance_id, 0.0), deadlines[w.index])
    result = yield from drain(
        cluster,
        sorted(per_instance),
        deadline=max(per_instance.values()),
        deadlines=per_instance,
        target_groups=(*spec.target_groups, *cache.groups),
        delays=cache.delays_at(start),
        heartbeat=heartbeats,
        # Three beats per timeout, however short: AWS allows a 30 s heartbeat timeout (the spec
        # does too), and a floor of 30 s put the first beat after it.
        heartbeat_every=spec.drain.lifecycle_timeout_seconds / 3,
        heartbeat_since=_actions_began(fresh),
    )
    drained = {a.instance_id or "": a for a in result.actions}
    remember = cache.outdated(result.service_target_groups, result.deregistration_delays, now=start)

    completions: list[tuple[_Work, str, Call]] = []
    for w in fresh:
        life = w.decision.lifecycle
        if life is not None and _completes(w):
            d = drained.get(w.instance_id)
            why = "drain verified" if d is not None and d.status in ("drained", "not_found") else "drain deadline passed"
            completions.append(
                (
                    w,
                    why,
                    lookup(
                        "autoscaling",
                        "complete_lifecycle_action",
                        _ACTION_GONE,
                        AutoScalingGroupName=life.group_name,
                        LifecycleHookName=life.hook_name,
                        LifecycleActionToken=life.token,
                        LifecycleActionResult="CONTINUE",
                        InstanceId=w.instance_id,
                    ),
                )
            )
    answers = (yield settle([c for _, _, c in completions])) if completions else ()
    completion: dict[int, tuple[Action, bool]] = {}
    for (w, why, _), answer in zip(completions, answers, strict=True):
        if failed(answer):
            # This record only (a token AWS refuses, say): the hook keeps waiting until its
            # timeout, and the record goes back to the queue for another try.
            completion[w.index] = (Action("complete_lifecycle_action", w.instance_id, "failed", f"{why}; completing the lifecycle action failed: {answer}"), False)
        elif answer is None:
            # Nothing waits any more: say so rather than claim we let the instance go.
            gone = f"{why}; the lifecycle action had already ended (completed elsewhere, timed out, or the instance is gone)"
            completion[w.index] = (Action("complete_lifecycle_action", w.instance_id, "done", f"CONTINUE: {gone}"), True)
        else:
            completion[w.index] = (Action("complete_lifecycle_action", w.instance_id, "done", f"CONTINUE: {why}"), True)

    now = yield NOW
    finished: list[str] = []
    unfinished: list[str] = []
    for w in fresh:
        acts: list[Action] = []
        if w.decision.kind == "rebalance" and w.instance_id in replaced:
            acts.append(replaced[w.instance_id])
        d = drained.get(w.instance_id)
        if d is not None:
            acts.append(attrs.evolve(d, kind=w.decision.kind if w.decision.kind != "rebalance" else "drain"))
        ok = True
        if w.index in completion:
            act, ok = completion[w.index]
            acts.append(act)
        outcomes[w.index] = _Outcome(tuple(acts), None if ok else retry_delay(w.record.receive_count))
        (finished if ok else unfinished).append(w.key)
    bookkeeping = [store.finish_event_call(table, key, now=now) for key in finished]
    bookkeeping += [store.release_event_call(table, key, owner) for key in unfinished]
    if remember:
        bookkeeping.append(store.remember_cache_call(table, cache.merged(result.service_target_groups, result.deregistration_delays, now=start), now=now))
    answers = yield settle(bookkeeping)  # one round, however large the batch
    # An event whose "done" could not be written is not reported done: its record comes back
    # (redoing a finished drain is cheap), and our claim is let go so the retry can take it.
    # The answers of the releases and the cached groups' write follow the finished ones.
    lost = {key for key, answer in zip(finished, answers[: len(finished)], strict=True) if failed(answer)}
    if lost:
        for w in fresh:
            if w.key in lost:
                outcomes[w.index] = attrs.evolve(outcomes[w.index], retry_after=retry_delay(w.record.receive_count))
        yield from store.let_go(table, sorted(lost), (), owner)
    return outcomes


def _actions_began(works: Sequence[_Work]) -> float | None:
    """When the earliest of the works' lifecycle actions began (epoch seconds), if the events say."""
    times = [w.decision.lifecycle.time.timestamp() for w in works if w.decision.lifecycle is not None and w.decision.lifecycle.time is not None]
    return min(times, default=None)


def _completes(work: _Work) -> bool:
    """Whether handling ``work`` ends with completing a terminate lifecycle action."""
    return work.decision.lifecycle is not None and work.decision.lifecycle.transition == "TERMINATING"


def _ensure_replacements(spec: ClusterSpec, instance_ids: list[str]) -> Workflow[list[Action]]:
    """Make sure capacity is coming before draining on a rebalance recommendation."""
    answer = yield lookup("autoscaling", "describe_auto_scaling_instances", (), InstanceIds=instance_ids)
    groups: dict[str, list[str]] = {}
    for inst in (answer or {}).get("AutoScalingInstances", ()):
        groups.setdefault(inst["AutoScalingGroupName"], []).append(inst["InstanceId"])
    if not groups:
        return [Action("rebalance", i, "skipped", "not in an Auto Scaling group") for i in instance_ids]
    described = yield call("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=sorted(groups))
    scaled = {spec.asg_name(p) for p in spec.pools if p.managed_scaling is not None}
    actions = []
    for g in described.get("AutoScalingGroups", ()):
        ids = groups[g["AutoScalingGroupName"]]
        if g.get("CapacityRebalance"):
            actions += [Action("rebalance", i, "done", f"capacity rebalance is on: {g['AutoScalingGroupName']} launches the replacement") for i in ids]
            continue
        if g["AutoScalingGroupName"] in scaled:
            # Managed scaling sets the group's desired capacity from its CapacityProviderReservation
            # metric and would take a raise back once that metric's low alarm fires (15 quiet
            # minutes). The drain's displaced tasks wait for capacity, and managed scaling launches it.
            why = (
                f"ECS managed scaling owns {g['AutoScalingGroupName']}'s desired capacity (it would undo a raise): "
                "the drained tasks' replacements make it launch the capacity they need"
            )
            actions += [Action("rebalance", i, "skipped", why) for i in ids]
            continue
        want = min(g["DesiredCapacity"] + len(ids), g["MaxSize"])
        if want > g["DesiredCapacity"]:
            yield call("autoscaling", "set_desired_capacity", AutoScalingGroupName=g["AutoScalingGroupName"], DesiredCapacity=want, HonorCooldown=False)
            actions += [Action("rebalance", i, "done", f"raised {g['AutoScalingGroupName']} desired capacity to {want}") for i in ids]
        else:
            actions += [Action("rebalance", i, "skipped", f"{g['AutoScalingGroupName']} is at its maximum size; no replacement launched") for i in ids]
    return actions
