"""Handle interruption and lifecycle events: the path shared by the Lambda and `handle-event`.

parse (ecsspot.events, eager, per record) → decide (pure) → find each instance's cluster from
the instance itself (its ``ecsspot:cluster`` tag, or the configured default) → claim the event
(idempotency key in the cluster's table: a duplicate does nothing) and a lease per instance (two
handlers never drain one instance twice) → one batched verified drain per cluster → complete
lifecycle actions (CONTINUE) once the drain is verified or its deadline passes.

A record that cannot be parsed, or whose handling fails, is reported on its own (SQS
``batchItemFailures``) and never blocks the other records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from ecsspot import events, store
from ecsspot.aws.calls import NOW, Call, Workflow, call, chunks, lookup, paginate
from ecsspot.drain import Action, drain
from ecsspot.errors import EcsspotError
from ecsspot.spec import ClusterSpec, load_spec, table_name
from ecsspot.state import CLUSTER_TAG

#: Stop this long before a Lambda's remaining time runs out, to report and release cleanly.
LAMBDA_MARGIN_SECONDS = 15.0
SPOT_MARGIN_SECONDS = 10.0
REFRESH_ELSEWHERE = "parameter changes are handled by the refresh handler (ecsspot.handlers.refresh)"
#: What Auto Scaling answers for a lifecycle action that is no longer waiting.
_ACTION_GONE = ("ValidationError",)


@attrs.frozen
class HandleResult:
    actions: tuple[Action, ...]
    #: SQS message ids to hand back to the queue (malformed, or failed while handling).
    batch_item_failures: tuple[str, ...] = ()
    #: True when the payload was a batch (SQS/SNS records) rather than a single event.
    batch: bool = False

    def lambda_response(self) -> dict[str, Any]:
        """What the Lambda returns: SQS's partial batch response, or the actions."""
        if self.batch:
            return {"batchItemFailures": [{"itemIdentifier": i} for i in self.batch_item_failures]}
        return {"actions": [attrs.asdict(a) for a in self.actions]}


@attrs.frozen
class _Work:
    record_id: str | None
    decision: events.Decision
    instance_id: str


def decide_all(payload: Mapping[str, Any], *, now: datetime | None = None) -> tuple[list[tuple[events.Record, events.Decision | None]], bool]:
    """Parse and decide every record, without I/O."""
    batch = isinstance(payload, Mapping) and ("Records" in payload or "Messages" in payload)
    records = events.parse_batch(payload)
    out = []
    for record in records:
        if record.event is None:
            out.append((record, None))
        else:
            out.append((record, events.decide(record.event, spot_margin_seconds=SPOT_MARGIN_SECONDS, now=now)))
    return out, batch


def dry_run(payload: Mapping[str, Any]) -> HandleResult:
    """The actions a payload asks for, from the payload alone (no AWS call)."""
    decided, batch = decide_all(payload)
    actions: list[Action] = []
    failures: list[str] = []
    for record, decision in decided:
        if decision is None:
            actions.append(Action("error", None, "failed", str(record.error)))
            failures.append(record.message_id or "")
            continue
        if decision.kind == "refresh":
            # As the real path says: the interruption handler leaves these to the refresh handler.
            actions.append(Action("ignore", None, "ignored", REFRESH_ELSEWHERE))
            continue
        for iid in decision.instance_ids or (None,):
            status = "ignored" if decision.kind == "ignore" else "planned"
            actions.append(Action(decision.kind, iid, status, decision.reason))
        if decision.lifecycle and decision.lifecycle.transition == "TERMINATING":
            actions.append(Action("complete_lifecycle_action", decision.lifecycle.instance_id, "planned", "CONTINUE after the verified drain"))
    return HandleResult(tuple(actions), tuple(f for f in failures if f), batch)


def handle_event(
    payload: Mapping[str, Any],
    *,
    owner: str,
    default_cluster: str | None = None,
    remaining_seconds: float | None = None,
) -> Workflow[HandleResult]:
    """Handle one Lambda payload (an event, or an SQS/SNS batch) end to end."""
    start = yield NOW
    decided, batch = decide_all(payload, now=datetime.fromtimestamp(start, tz=timezone.utc))
    actions: list[Action] = []
    failures: list[str] = []
    work: list[_Work] = []
    seen: set[str] = set()
    for record, decision in decided:
        if decision is None:
            actions.append(Action("error", None, "failed", str(record.error)))
            if record.message_id:
                failures.append(record.message_id)
            continue
        if decision.kind in ("ignore", "refresh"):
            reason = decision.reason if decision.kind == "ignore" else REFRESH_ELSEWHERE
            actions.append(Action("ignore", decision.instance_ids[0] if decision.instance_ids else None, "ignored", reason))
            continue
        for iid in decision.instance_ids:
            key = f"{decision.event_key or record.message_id}:{iid}"
            if key in seen:
                actions.append(Action(decision.kind, iid, "duplicate", "the same event appears twice in this batch"))
                continue
            seen.add(key)
            work.append(_Work(record.message_id, decision, iid))
    if not work:
        return HandleResult(tuple(actions), tuple(failures), batch)

    clusters = yield from _clusters_of([w.instance_id for w in work], default_cluster)
    by_cluster: dict[str, list[_Work]] = {}
    for w in work:
        cluster = clusters.get(w.instance_id)
        if cluster is None:
            actions.append(Action("ignore", w.instance_id, "ignored", "not an instance of an ecsspot-managed cluster (no ecsspot:cluster tag and no default cluster)"))
        else:
            by_cluster.setdefault(cluster, []).append(w)

    for cluster, items in sorted(by_cluster.items()):
        try:
            handled = yield from _handle_cluster(cluster, items, owner=owner, start=start, remaining_seconds=remaining_seconds)
        except EcsspotError as exc:
            # One cluster's failure (AWS refusing, say) goes back to the queue; others carry on.
            handled = [Action(w.decision.kind, w.instance_id, "failed", str(exc)) for w in items]
            failures += [w.record_id for w in items if w.record_id]
        else:
            # A record whose own step failed (its lifecycle completion) goes back on its own.
            failed = {a.instance_id for a in handled if a.status == "failed"}
            failures += [w.record_id for w in items if w.record_id and w.instance_id in failed]
        actions += handled
    return HandleResult(tuple(actions), tuple(dict.fromkeys(failures)), batch)


def _clusters_of(instance_ids: Sequence[str], default_cluster: str | None) -> Workflow[dict[str, str | None]]:
    """Each instance's cluster from its tags; a filter (not InstanceIds) so unknown ids don't fail the call."""
    # EC2 takes at most 200 values in one filter; an SQS batch may hold more records than that.
    answers = yield tuple(
        paginate("ec2", "describe_instances", Filters=[{"Name": "instance-id", "Values": batch}]) for batch in chunks(sorted(set(instance_ids)), 200)
    )
    found: dict[str, str | None] = {}
    for reservation in (r for a in answers for r in a.get("Reservations", ())):
        for inst in reservation.get("Instances", ()):
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", ())}
            found[inst["InstanceId"]] = tags.get(CLUSTER_TAG) or default_cluster
    return {iid: found.get(iid) for iid in instance_ids}


def load_cluster(cluster: str) -> Workflow[tuple[ClusterSpec | None, list[str]]]:
    """The spec ``apply`` recorded (None when the cluster has no ecsspot table) and cached target groups."""
    text, groups = yield from store.read_cluster(table_name(cluster))
    if text is None:
        return None, []
    return load_spec(json.loads(text)), groups


def load_cluster_spec(cluster: str) -> Workflow[ClusterSpec | None]:
    """The spec ``apply`` recorded for the cluster, or None."""
    return (yield from load_cluster(cluster))[0]


def _handle_cluster(cluster: str, items: list[_Work], *, owner: str, start: float, remaining_seconds: float | None) -> Workflow[list[Action]]:
    spec, cached_groups = yield from load_cluster(cluster)
    if spec is None:
        return [Action("ignore", w.instance_id, "ignored", f"cluster {cluster} has no ecsspot state table (not managed by ecsspot)") for w in items]
    table = spec.table_name
    budget = None if remaining_seconds is None else max(remaining_seconds - LAMBDA_MARGIN_SECONDS, 0.0)
    actions: list[Action] = []
    deadlines = {}
    for w in items:
        deadline = _deadline_seconds(w.decision, spec, start)
        deadlines[w.instance_id] = deadline if budget is None else min(deadline, budget)
    keys = {w.instance_id: f"{w.decision.event_key or w.record_id}:{w.instance_id}" for w in items}
    # Claims and leases for the whole batch go out together: constant rounds in a storm.
    states = yield from store.claim_events(table, [keys[w.instance_id] for w in items], owner, now=start, ttl=max(deadlines.values()) + 120)
    fresh = []
    for w in items:
        state = states[keys[w.instance_id]]
        if state == "claimed":
            fresh.append(w)
        else:
            status = "duplicate" if state == "done" else "skipped"
            actions.append(Action(w.decision.kind, w.instance_id, status, f"event {keys[w.instance_id]} already {'handled' if state == 'done' else 'in hand elsewhere'}"))
    try:
        leases = yield from store.acquire_leases(table, sorted({f"drain#{w.instance_id}" for w in fresh}), owner, now=start, ttl=max(deadlines.values(), default=60.0) + 90)
        claimed: list[tuple[_Work, str, float]] = []  # (work, event key, deadline seconds from now)
        verify_ids: set[str] = set()
        for w in fresh:
            key, deadline = keys[w.instance_id], deadlines[w.instance_id]
            if leases.get(f"drain#{w.instance_id}") is None:
                if w.decision.lifecycle is None:
                    yield from store.finish_event(table, key, now=start)
                    actions.append(Action(w.decision.kind, w.instance_id, "skipped", "already being drained by another handler"))
                    continue
                # Someone else drains it; we still owe the lifecycle hook its answer after verifying.
                verify_ids.add(w.instance_id)
            claimed.append((w, key, deadline))

        rebalance = [w for w, _, _ in claimed if w.decision.kind == "rebalance"]
        if rebalance:
            actions += yield from _ensure_replacements(spec, [w.instance_id for w in rebalance])

        to_drain = [(w, d) for w, _, d in claimed if w.instance_id not in verify_ids]
        verify_only = [(w, d) for w, _, d in claimed if w.instance_id in verify_ids]
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
            for w, _, _ in claimed
            if w.decision.lifecycle is not None
        ]
        results: dict[str, Action] = {}
        # Ours to drain, then (act=False) those another handler drains, which we only verify.
        for group, act in ((to_drain, True), (verify_only, False)):
            if not group:
                continue
            result = yield from drain(
                cluster,
                [w.instance_id for w, _ in group],
                deadline=max(d for _, d in group),
                deadlines={w.instance_id: d for w, d in group},
                target_groups=(*spec.target_groups, *cached_groups),
                act=act,
                heartbeat=heartbeats,
                heartbeat_every=max(spec.drain.lifecycle_timeout_seconds / 3, 30.0),
            )
            results.update({a.instance_id or "": a for a in result.actions})
            if act and set(result.service_target_groups) - set(cached_groups):
                yield from store.remember_target_groups(table, result.service_target_groups, now=start)

        now = yield NOW
        completions: list[Call] = []
        #: (index in ``actions`` of the completion's placeholder, why, event key), as ``completions``
        slots: list[tuple[int, str, str]] = []
        unfinished: set[str] = set()  # event keys to hand back for a retry
        for w, key, _ in claimed:
            drained = results.get(w.instance_id)
            if drained is not None:
                actions.append(attrs.evolve(drained, kind=w.decision.kind if w.decision.kind != "rebalance" else "drain"))
            life = w.decision.lifecycle
            if life is not None and _completes(w):
                completions.append(
                    lookup(
                        "autoscaling",
                        "complete_lifecycle_action",
                        _ACTION_GONE,
                        AutoScalingGroupName=life.group_name,
                        LifecycleHookName=life.hook_name,
                        LifecycleActionToken=life.token,
                        LifecycleActionResult="CONTINUE",
                        InstanceId=w.instance_id,
                    )
                )
                why = "drain verified" if drained and drained.status == "drained" else "drain deadline passed"
                slots.append((len(actions), why, key))
                actions.append(Action("complete_lifecycle_action", w.instance_id, "done", f"CONTINUE: {why}"))
        if completions:
            answers = yield from _each(completions)
            for (index, why, key), answer in zip(slots, answers):
                if isinstance(answer, EcsspotError):
                    # This record only (a token AWS refuses, say): the hook keeps waiting until its
                    # timeout, and the record goes back to the queue for another try.
                    actions[index] = attrs.evolve(actions[index], status="failed", reason=f"{why}; completing the lifecycle action failed: {answer}")
                    unfinished.add(key)
                elif answer is None:
                    # Nothing waits any more: say so rather than claim we let the instance go.
                    gone = f"{why}; the lifecycle action had already ended (completed elsewhere, timed out, or the instance is gone)"
                    actions[index] = attrs.evolve(actions[index], reason=gone)
        bookkeeping = [
            store.release_event_call(table, key, owner) if key in unfinished else store.finish_event_call(table, key, now=now)
            for _, key, _ in claimed
        ]
        bookkeeping += [store.release_lease_call(table, f"drain#{w.instance_id}", owner) for w, _, _ in claimed if w.instance_id not in verify_ids]
        if bookkeeping:
            yield tuple(bookkeeping)  # one round, however large the batch
        return actions
    except EcsspotError:
        # Let go of what we took, so the retry (SQS redelivery, Lambda's async retry) can take
        # these events and instances at once instead of finding them "in hand elsewhere".
        yield from _let_go(table, [keys[w.instance_id] for w in fresh], [f"drain#{w.instance_id}" for w in fresh], owner)
        raise


def _let_go(table: str, event_keys: Sequence[str], lease_names: Sequence[str], owner: str) -> Workflow[None]:
    """Best effort: drop our unfinished event claims and our leases (each only if still ours)."""
    try:
        for key in event_keys:
            yield from store.release_event(table, key, owner)
        for name in lease_names:
            yield from store.release_lease(table, name, owner)
    except EcsspotError:
        pass  # they expire on their own (TTL)


def _completes(work: _Work) -> bool:
    """Whether handling ``work`` ends with completing a terminate lifecycle action."""
    return work.decision.lifecycle is not None and work.decision.lifecycle.transition == "TERMINATING"


def _each(calls: Sequence[Call]) -> Workflow[list[Any]]:
    """Answers of independent calls, each failed call's error in place of its answer.

    Together in one round when all succeed; after a failure, one by one to tell which failed (a
    call that had succeeded in the round may then answer "absent", which callers accept).
    """
    try:
        return list((yield tuple(calls)))
    except EcsspotError:
        pass
    answers: list[Any] = []
    for c in calls:
        try:
            answers.append((yield c))
        except EcsspotError as exc:
            answers.append(exc)
    return answers


def _deadline_seconds(decision: events.Decision, spec: ClusterSpec, now: float) -> float:
    if decision.lifecycle is not None:
        # The hook holds the instance for lifecycle_timeout; heartbeats extend it, AWS caps the
        # total at 48 h. Use the spec's timeout as the drain budget.
        return float(spec.drain.lifecycle_timeout_seconds)
    if decision.deadline is not None:
        return max(decision.deadline.timestamp() - now, 0.0)
    return float(spec.drain.deadline_seconds)


def _ensure_replacements(spec: ClusterSpec, instance_ids: list[str]) -> Workflow[list[Action]]:
    """Make sure capacity is coming before draining on a rebalance recommendation."""
    answer = yield lookup("autoscaling", "describe_auto_scaling_instances", (), InstanceIds=instance_ids)
    groups: dict[str, list[str]] = {}
    for inst in (answer or {}).get("AutoScalingInstances", ()):
        groups.setdefault(inst["AutoScalingGroupName"], []).append(inst["InstanceId"])
    if not groups:
        return [Action("rebalance", i, "skipped", "not in an Auto Scaling group") for i in instance_ids]
    described = yield call("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=sorted(groups))
    actions = []
    for g in described.get("AutoScalingGroups", ()):
        ids = groups[g["AutoScalingGroupName"]]
        if g.get("CapacityRebalance"):
            actions += [Action("rebalance", i, "done", f"capacity rebalance is on: {g['AutoScalingGroupName']} launches the replacement") for i in ids]
            continue
        want = min(g["DesiredCapacity"] + len(ids), g["MaxSize"])
        if want > g["DesiredCapacity"]:
            yield call("autoscaling", "set_desired_capacity", AutoScalingGroupName=g["AutoScalingGroupName"], DesiredCapacity=want, HonorCooldown=False)
            actions += [Action("rebalance", i, "done", f"raised {g['AutoScalingGroupName']} desired capacity to {want}") for i in ids]
        else:
            actions += [Action("rebalance", i, "skipped", f"{g['AutoScalingGroupName']} is at its maximum size; no replacement launched") for i in ids]
    return actions
