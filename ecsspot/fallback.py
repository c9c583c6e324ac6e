"""Spot → on-demand fallback: a spot pool that cannot get capacity launches on demand, and back.

ECS does not move a task assigned to one capacity provider to another: a strategy's base and
weights are constraints, and tasks waiting (PROVISIONING) for the spot pool's provider stay
there whatever another pool does (aws/containers-roadmap#773, open: "fall back to on-demand
instances only when there is no capacity available for spot").
So the lever is the spot pool's own group: its ``OnDemandBaseCapacity`` is raised to cover what
spot could not launch, and the group's next launches are on-demand, in the same capacity
provider. AWS applies the distribution to new launches ("When scaling out occurs, Amazon EC2 Auto
Scaling launches instances based on the new settings",
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html). The
base is raised only to the on-demand units the group has plus those it is missing, so the spot
instances it runs stay within their share; never above ``fallback.max_on_demand``.

Detection (pure, from reads): the group InService short of its desired capacity for
``fallback.detect_after``, with a spot launch failing meanwhile (DescribeScalingActivities:
StatusCode Failed or Cancelled, an ``InsufficientInstanceCapacity`` / "Could not launch Spot
Instances" message; https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-capacity.html).
A shortage without such a failure is a slow boot or a hook, not the spot market: it is watched.

Restoring: once no spot launch has failed for ``fallback.cooldown`` and the group is not short,
the base goes back to the spec's value (each failure restarts the cool-down, so a blinking
market does not flap the pool) and the group's desired capacity goes up by one: spot launches
*before* any on-demand instance goes. Only when a spot instance launched since the last step is
InService does the oldest on-demand instance of the surplus go, one a tick: drained with the
verified drain (:func:`ecsspot.drain.drain_instances`; its tasks have the new spot instance to go
to) and terminated in its group, without decrementing, so the group launches the next spot
instance, except the last, which takes the extra unit with it. A spot launch that fails after
the restore takes the extra unit back and raises the base again, and the next try waits twice
as long (up to 32 times the cool-down). An instance that does not drain in time is set ACTIVE
again with its targets back. Nothing relies on Auto Scaling replacing instances when the
distribution changes: CloudFormation's reference says an update of these settings "means a
gradual replacement of instances", the Auto Scaling API reference does not, and instances
protected from scale in (managed termination protection) may not be replaced at all; if AWS
does replace some, they leave through ecsspot's terminate hook and its drain, and the
controller only counts what is left.

Per-pool memory (when the shortage began, whether the pool is falling back, since when) lives
in the state table under the ``fallback`` lease. Only the cluster's own groups are acted on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Report, Workflow, call, chunks, failed, paginate, settle
from ecsspot.spec import ClusterSpec, Pool, duration_seconds, duration_text
from ecsspot.state import CLUSTER_TAG, tags_of

LEASE = "fallback"
LEASE_SECONDS = 900.0
MEMORY = store.FALLBACK_AT
#: Lifecycle states that count toward desired capacity (Standby and Terminating* do not).
COUNTED = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})
#: Scaling activity messages that say spot had no capacity for the request.
SPOT_SHORT = re.compile(r"InsufficientInstanceCapacity|Could not launch Spot|no Spot capacity|UnfulfillableCapacity|capacity-not-available", re.I)
#: Activities read per group (newest first): the failures that matter are recent.
ACTIVITIES = 50

Kind = Literal["fallback", "restore", "probe", "drain", "watch", "ignore"]
Status = Literal["planned", "done", "waiting", "ok", "kept", "ignored", "failed"]


@attrs.frozen
class PoolView:
    """One spot pool's group as the controller saw it (the input of :func:`decide`)."""

    pool: str
    group: str
    desired: int
    #: Capacity units InService, and counted toward desired (Pending… too).
    in_service: int
    counted: int
    #: Counted units on demand.
    on_demand: int
    #: The group's OnDemandBaseCapacity and OnDemandPercentageAboveBaseCapacity now.
    base: int
    percent: int
    #: The spec's OnDemandBaseCapacity, where a restore puts it back.
    spec_base: int
    #: When the latest spot launch failure happened (epoch seconds), and its message.
    spot_failed_at: float | None = None
    spot_failure: str = ""
    #: InService on-demand instances, oldest first: the surplus drain's candidates.
    on_demand_instances: tuple[str, ...] = ()
    #: When the newest InService spot instance was launched: proof that spot launches again.
    spot_launched_at: float | None = None
    max_size: int = 10_000
    foreign: str = ""


@attrs.frozen
class Memory:
    """What the controller remembers of a pool between ticks."""

    short_since: float | None = None
    active: bool = False
    #: When the pool began falling back, or was restored.
    since: float | None = None
    #: After a restore: the on-demand surplus is still being drained.
    draining: bool = False
    #: Tries at spot that found it still short since the pool last came back (backs off the cool-down).
    probes: int = 0


@attrs.frozen
class FallbackAction:
    """One decision about one pool; the JSON unit of ``ecsspot fallback tick``."""

    kind: Kind
    pool: str
    status: Status
    reason: str
    group: str | None = None
    #: ``fallback``/``restore``: the OnDemandBaseCapacity set; ``drain``: the instance.
    base: int | None = None
    instance_id: str | None = None
    #: ``restore``/``probe``: the desired capacity set (one more than before).
    desired: int | None = None
    #: ``drain``: whether the termination decrements the desired capacity.
    decrement: bool = False


@attrs.frozen
class Decisions:
    actions: tuple[FallbackAction, ...]
    #: Group → the OnDemandBaseCapacity to set.
    bases: Mapping[str, int]
    #: Group → the on-demand instance to drain and replace.
    #: Group → the desired capacity to set: one more, so spot launches before on-demand goes.
    desired: Mapping[str, int]
    #: Group → the on-demand instance to drain and terminate, and whether that decrements the
    #: group's desired capacity (the last of the surplus does: the probe's extra unit goes).
    drains: Mapping[str, tuple[str, bool]]
    memory: Mapping[str, Memory]


@attrs.frozen
class FallbackResult:
    cluster: str
    applied: bool
    detect_after_seconds: float
    cooldown_seconds: float
    max_on_demand: int
    actions: tuple[FallbackAction, ...]
    recorded: bool = True

    @property
    def failed(self) -> tuple[FallbackAction, ...]:
        return tuple(a for a in self.actions if a.status == "failed")


def on_demand_share(desired: int, base: int, percent: int) -> int:
    """On-demand units of ``desired`` under a distribution: the base first, then the percentage
    above it rounded up "in favor of On-Demand Instances"
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/mixed-instances-groups-set-up-overview.html)."""
    base_part = min(max(0, desired), max(0, base))
    return base_part + -(-(max(0, desired) - base_part) * percent // 100)


def base_for(want: int, *, desired: int, percent: int, low: int, cap: int) -> int:
    """The smallest OnDemandBaseCapacity from ``low`` up to ``cap`` whose share reaches ``want``
    on-demand units (``cap`` when none does)."""
    for b in range(low, max(low, cap) + 1):
        if on_demand_share(desired, b, percent) >= want:
            return b
    return max(low, cap)


#: A failed probe doubles the cool-down before the next one, up to this many times (32 times at most).
MAX_BACKOFF = 5


def decide(views: Sequence[PoolView], memory: Mapping[str, Memory], *, now: float, detect_after: float, cooldown: float, max_on_demand: int) -> Decisions:
    """Pure: per pool, fall back, restore, drain a surplus instance or watch; and what to remember."""
    out = [
        _decide_pool(v, memory.get(v.pool, Memory()), now=now, detect_after=detect_after, cooldown=cooldown, max_on_demand=max_on_demand)
        for v in sorted(views, key=lambda v: v.pool)
    ]
    return Decisions(
        tuple(action for action, _ in out),
        {a.group: a.base for a, _ in out if a.group and a.base is not None and a.kind in ("fallback", "restore") and a.status == "planned"},
        {a.group: a.desired for a, _ in out if a.group and a.desired is not None and a.status == "planned"},
        {a.group: (a.instance_id, a.decrement) for a, _ in out if a.group and a.instance_id and a.kind == "drain"},
        {a.pool: m for a, m in out if m is not None},
    )


def _decide_pool(v: PoolView, m: Memory, *, now: float, detect_after: float, cooldown: float, max_on_demand: int) -> tuple[FallbackAction, Memory | None]:
    if v.foreign:
        return FallbackAction("ignore", v.pool, "ignored", v.foreign, v.group), None
    short = v.in_service < v.desired
    short_since = (m.short_since if m.short_since is not None else now) if short else None
    m = attrs.evolve(m, short_since=short_since)

    def action(
        kind: Kind, status: Status, reason: str, base: int | None = None, instance_id: str | None = None, desired: int | None = None, decrement: bool = False
    ) -> FallbackAction:
        return FallbackAction(kind, v.pool, status, reason, v.group, base, instance_id, desired, decrement)

    failure = f"spot launch failed {duration_text(now - v.spot_failed_at)} ago: {v.spot_failure}" if v.spot_failed_at is not None else ""
    # A failure counts for this shortage if it came with it (or just before the first look).
    failing = short_since is not None and v.spot_failed_at is not None and v.spot_failed_at >= short_since - detect_after
    since_restore = m.draining and v.spot_failed_at is not None and v.spot_failed_at >= (m.since or now)
    shortage = f"InService {v.in_service} of desired {v.desired}"
    detected = failing and short_since is not None and now - short_since >= detect_after
    if m.active or detected or since_restore:
        # On demand: what the group runs on demand stays covered by the base (so none of it is a
        # surplus to replace), plus, while spot fails, what it is missing.
        # A try at spot that failed leaves its extra unit unlaunched: taken back, not made on-demand.
        undo = v.desired - 1 if since_restore and v.counted < v.desired else None
        want = v.on_demand + (max(0, (undo if undo is not None else v.desired) - v.counted) if failing or since_restore else 0)
        target = base_for(want, desired=v.desired, percent=v.percent, low=max(v.base, v.spec_base), cap=min(max_on_demand, max(v.desired, v.spec_base)))
        limit = f"; capped at max_on_demand {max_on_demand}" if on_demand_share(v.desired, target, v.percent) < want else ""
        if since_restore:
            probes = m.probes + 1
            taken = f"; desired {v.desired} → {undo}" if undo is not None else ""
            why = f"spot is still short after the restore ({failure}): OnDemandBaseCapacity {v.base} → {target} again{taken}; next try after {duration_text(_cooldown(cooldown, probes))}{limit}"
            return action("fallback", "planned", why, target, desired=undo), Memory(short_since, True, now, False, probes)
        if target > v.base:
            began = f"{shortage} for {duration_text(now - short_since)} (detect_after {duration_text(detect_after)}); " if short_since is not None else ""
            why = f"{began}{failure or 'spot still short'}; OnDemandBaseCapacity {v.base} → {target} so the group launches on demand{limit}"
            return action("fallback", "planned", why, target), attrs.evolve(m, active=True, since=m.since if m.active else now)
        quiet_since = max(v.spot_failed_at or 0.0, m.since or 0.0)
        wait = _cooldown(cooldown, m.probes)
        if m.active and not short and now - quiet_since >= wait:
            why = f"no spot launch failed for {duration_text(now - quiet_since)} (cooldown {duration_text(wait)}) and the group is full: OnDemandBaseCapacity {v.base} → {v.spec_base}, back to spot"
            more = _probe(v)
            if more is not None:
                why += f"; desired {v.desired} → {more}: a spot instance first, before any on-demand one goes"
            return action("restore", "planned", why, v.spec_base, desired=more), Memory(short_since, False, now, True, m.probes)
        waits = f"{shortage}; {failure}" if short else f"spot quiet for {duration_text(now - quiet_since)} of the {duration_text(wait)} cooldown"
        return action("watch", "waiting", f"on demand since {duration_text(now - (m.since or now))} ago; {waits}{limit}", v.base), attrs.evolve(
            m, active=True, since=m.since or now
        )
    if m.draining:
        surplus = v.on_demand - on_demand_share(v.desired, v.spec_base, v.percent)
        if surplus <= 0 or not v.on_demand_instances:
            return action("watch", "ok", "back on spot: no on-demand surplus left"), Memory(short_since)
        if short:
            return action("watch", "waiting", f"{surplus} on-demand unit(s) over the spec's share kept while {shortage}"), m
        if v.spot_launched_at is None or v.spot_launched_at < (m.since or now):
            # No spot instance came up since the last step (ECS may have scaled the probe's in).
            more = _probe(v)
            if more is None:
                return action(
                    "watch", "waiting", f"{surplus} on-demand unit(s) over the spec's share kept: the group is at its max_size {v.max_size}, no room to launch spot first"
                ), m
            why = f"{surplus} on-demand unit(s) over the spec's share: desired {v.desired} → {more}, a spot instance first"
            return action("probe", "planned", why, desired=more), attrs.evolve(m, since=now)
        last = surplus <= 1
        how = (
            "decrementing the desired capacity (the spot instance launched first takes its place)" if last else "without decrementing, so the group launches the next spot instance"
        )
        why = f"{surplus} on-demand unit(s) over the spec's share, a spot instance up since {duration_text(now - v.spot_launched_at)} ago: drained, then terminated {how}"
        return action("drain", "planned", why, instance_id=v.on_demand_instances[0], decrement=last), attrs.evolve(m, since=now)
    if short:
        why = f"{shortage} for {duration_text(now - (short_since or now))} of the {duration_text(detect_after)} detect_after; " + (
            failure if failing else "no spot launch failed meanwhile"
        )
        return action("watch", "waiting", why), m
    return action("watch", "ok", f"on spot: {shortage}"), m


def _probe(v: PoolView) -> int | None:
    """One more unit of desired capacity, when the group has room: it launches on spot (the base
    is the spec's again), and only an instance that came up lets an on-demand one go."""
    return v.desired + 1 if v.desired < v.max_size else None


def _cooldown(cooldown: float, probes: int) -> float:
    """The cool-down before the next try at spot: doubled by each try that found spot still short."""
    return cooldown * (1 << min(probes, MAX_BACKOFF))


# --- gathering -------------------------------------------------------------------------------


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _memory_of(doc: Mapping[str, Any] | None) -> dict[str, Memory]:
    out = {}
    for name, m in ((doc or {}).get("pools") or {}).items():
        if isinstance(m, Mapping):
            out[str(name)] = Memory(
                None if m.get("short_since") is None else float(m["short_since"]),
                bool(m.get("active")),
                None if m.get("since") is None else float(m["since"]),
                bool(m.get("draining")),
                int(m.get("probes") or 0),
            )
    return out


def _spot_failure(activities: Sequence[Mapping[str, Any]]) -> tuple[float | None, str]:
    for a in activities:  # newest first
        text = f"{a.get('StatusMessage', '')} {a.get('Description', '')}"
        if a.get("StatusCode") in ("Failed", "Cancelled") and SPOT_SHORT.search(text):
            return _epoch(a["StartTime"]), str(a.get("StatusMessage") or a.get("Description") or "")[:300]
    return None, ""


def observe(spec: ClusterSpec) -> Workflow[tuple[list[PoolView], dict[str, Memory], dict[str, Mapping[str, Any]]]]:
    """Every spot pool's group, its instances' purchase options and its recent scaling
    activities, and the remembered state: three rounds whatever the cluster's size."""
    pools: dict[str, Pool] = {spec.asg_name(p): p for p in spec.pools if p.has_spot}
    if not pools:
        return [], {}, {}
    groups, memory = yield (
        paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=sorted(pools)),
        store.get_document_call(spec.table_name, *MEMORY),
    )
    found = {g["AutoScalingGroupName"]: g for g in groups.get("AutoScalingGroups", ())}
    ours = {n: g for n, g in found.items() if tags_of(g.get("Tags")).get(CLUSTER_TAG) == spec.cluster}
    ids = sorted(i["InstanceId"] for g in ours.values() for i in g.get("Instances", ()))
    names = sorted(ours)
    answers = yield (
        *(call("autoscaling", "describe_scaling_activities", AutoScalingGroupName=n, MaxRecords=ACTIVITIES) for n in names),
        *(call("ec2", "describe_instances", InstanceIds=b) for b in chunks(ids, 100)),
    )
    activities = dict(zip(names, answers[: len(names)], strict=True))
    ec2 = {i["InstanceId"]: i for a in answers[len(names) :] for r in a.get("Reservations", ()) for i in r.get("Instances", ())}
    views = []
    for name, pool in sorted(pools.items()):
        g = found.get(name)
        if g is None:
            continue  # not applied (yet): nothing to act on
        if name not in ours:
            views.append(PoolView(pool.name, name, 0, 0, 0, 0, 0, 0, 0, foreign=f"group {name} is not tagged {CLUSTER_TAG}={spec.cluster}: not ecsspot's"))
            continue
        dist = (g.get("MixedInstancesPolicy") or {}).get("InstancesDistribution") or {}
        counted = in_service = on_demand = 0
        od_ids = []
        spot_launched = []
        for i in g.get("Instances", ()):
            weight = int(i.get("WeightedCapacity") or 1)
            state = i.get("LifecycleState", "")
            spot = ec2.get(i["InstanceId"], {}).get("InstanceLifecycle") == "spot"
            if state in COUNTED:
                counted += weight
                on_demand += 0 if spot else weight
            if state == "InService":
                in_service += weight
                launched = _epoch(ec2.get(i["InstanceId"], {}).get("LaunchTime", 0))
                if spot:
                    spot_launched.append(launched)
                else:
                    od_ids.append((launched, i["InstanceId"]))
        failed_at, message = _spot_failure(activities[name].get("Activities", ()))
        views.append(
            PoolView(
                pool.name,
                name,
                int(g.get("DesiredCapacity", 0)),
                in_service,
                counted,
                on_demand,
                int(dist.get("OnDemandBaseCapacity", 0)),
                int(dist.get("OnDemandPercentageAboveBaseCapacity", 100)),
                pool.on_demand_base_capacity,
                failed_at,
                message,
                tuple(i for _, i in sorted(od_ids)),
                max(spot_launched, default=None),
                int(g.get("MaxSize", 0)),
            )
        )
    return views, _memory_of(store.document_of(memory)), ours


# --- the workflow ----------------------------------------------------------------------------


def tick(cluster: str, *, owner: str, apply: bool = False, spec: ClusterSpec | None = None, stop_at: float | None = None) -> Workflow[FallbackResult]:
    """Decide (and with ``apply``, carry out) the fallback of ``cluster``'s spot pools.

    A drain (up to ``drain.lifecycle_timeout_seconds``) that would run past ``stop_at`` (the end
    of a Lambda invocation) is put off to a later tick rather than cut off halfway.

    Works from the settings ``apply`` recorded (``spec`` overrides them). Every run records what
    it saw under the ``fallback`` lease (a dry run that finds it held writes nothing; an applying
    one is a :class:`~ecsspot.errors.ConflictError`).
    """
    spec = yield from store.recorded_spec(cluster, spec)
    yield Report("fallback", f"reading the spot pools of cluster {spec.cluster}: capacity, scaling activities, what the controller remembers")
    fb = spec.fallback
    detect_after, cooldown = duration_seconds(fb.detect_after), duration_seconds(fb.cooldown)
    now = yield NOW

    def run(recorded: bool) -> Workflow[FallbackResult]:
        views, memory, groups = yield from observe(spec)
        decisions = decide(views, memory, now=now, detect_after=detect_after, cooldown=cooldown, max_on_demand=fb.max_on_demand)
        actions = list(decisions.actions)
        remember = dict(decisions.memory)
        if apply:
            actions = yield from _carry_out(spec, decisions, groups, owner, stop_at)
            for a in actions:
                if a.status == "failed" and a.kind in ("fallback", "restore"):
                    # The base did not change: decided again next tick.
                    remember[a.pool] = memory.get(a.pool, Memory())
                elif a.kind == "drain" and a.status == "waiting":
                    remember[a.pool] = memory.get(a.pool, Memory())  # put off: as if not decided
                elif a.status == "kept" and a.kind == "drain":
                    # Spot could not take the surplus's tasks: on demand again, the next try later.
                    m = remember[a.pool]
                    remember[a.pool] = Memory(m.short_since, True, now, False, m.probes + 1)
        if recorded:
            if not apply:
                # A dry run remembers only when shortages began (as ``protection`` its idle
                # times), never a decision it did not carry out.
                remember = {p: attrs.evolve(memory.get(p, Memory()), short_since=m.short_since) for p, m in remember.items()}
            doc = {"pools": {p: attrs.asdict(m) for p, m in sorted(remember.items())}}
            yield from store.put_document(spec.table_name, *MEMORY, doc, now=now)
        return FallbackResult(cluster, apply, detect_after, cooldown, fb.max_on_demand, tuple(actions), recorded)

    return (yield from store.under_lease(cluster, spec.table_name, LEASE, owner, now=now, ttl=LEASE_SECONDS, needed=apply, body=run))


def _policy_with_base(group: Mapping[str, Any], base: int) -> dict[str, Any]:
    """The group's MixedInstancesPolicy with another OnDemandBaseCapacity, fit to send back."""
    policy = dict(group["MixedInstancesPolicy"])
    template = dict(policy["LaunchTemplate"])
    spec = dict(template["LaunchTemplateSpecification"])
    if spec.get("LaunchTemplateId"):
        spec.pop("LaunchTemplateName", None)  # AWS takes one of the two
    template["LaunchTemplateSpecification"] = spec
    return {**policy, "LaunchTemplate": template, "InstancesDistribution": {**policy.get("InstancesDistribution", {}), "OnDemandBaseCapacity": base}}


def _carry_out(spec: ClusterSpec, decisions: Decisions, groups: Mapping[str, Mapping[str, Any]], owner: str, stop_at: float | None = None) -> Workflow[list[FallbackAction]]:
    """The base changes in one round, then each surplus drain; each action says how it went."""
    outcome: dict[tuple[str, str], tuple[Status, str]] = {}
    names = list(decisions.bases)
    if names:
        answers = yield settle(
            [call("autoscaling", "update_auto_scaling_group", AutoScalingGroupName=n, MixedInstancesPolicy=_policy_with_base(groups[n], decisions.bases[n])) for n in names]
        )
        for n, answer in zip(names, answers, strict=True):
            outcome[("base", n)] = ("failed", str(answer)) if failed(answer) else ("done", "")
    # Only after the base went down: the extra unit must launch on spot.
    bump = [n for n in decisions.desired if outcome.get(("base", n), ("done", ""))[0] == "done"]
    if bump:
        answers = yield settle([call("autoscaling", "set_desired_capacity", AutoScalingGroupName=n, DesiredCapacity=decisions.desired[n]) for n in bump])
        for n, answer in zip(bump, answers, strict=True):
            if failed(answer):
                outcome[("base", n)] = ("failed", f"SetDesiredCapacity: {answer}")
    for group, (iid, decrement) in decisions.drains.items():
        left = None if stop_at is None else stop_at - (yield NOW)
        if left is not None and left < spec.drain.lifecycle_timeout_seconds:
            outcome[("drain", group)] = ("waiting", f"put off: {left:.0f} s of this run left, a drain may take {spec.drain.lifecycle_timeout_seconds} s")
            continue
        outcome[("drain", group)] = yield from _replace(spec, iid, owner, decrement=decrement)
    out = []
    for a in decisions.actions:
        key = ("drain" if a.kind == "drain" else "base", a.group or "")
        if a.kind in ("fallback", "restore", "probe", "drain") and key in outcome:
            status, detail = outcome[key]
            a = attrs.evolve(a, status=status, reason=f"{a.reason}; {detail}" if detail else a.reason)
        out.append(a)
    return out


def _replace(spec: ClusterSpec, instance_id: str, owner: str, *, decrement: bool) -> Workflow[tuple[Status, str]]:
    """Drain one on-demand instance (verified) and terminate it in its group. Its tasks have
    the spot instance launched first to go to; one that does not drain in time all the same is
    set ACTIVE again with its targets back (``kept``), unless it is going away meanwhile."""
    from ecsspot.drain import drain_instances
    from ecsspot.refresh import restore_targets

    # The time a terminate hook gives the drain of an instance going away: the same situation.
    timeout = spec.drain.lifecycle_timeout_seconds
    result = yield from drain_instances(spec.cluster, [instance_id], deadline=float(timeout), wait=True, owner=owner)
    drained = next((a for a in result.actions if a.instance_id == instance_id), None)
    if drained is not None and drained.status == "skipped":
        return "kept", drained.reason
    if result.drained and instance_id not in result.not_found:
        (answer,) = yield settle([call("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement)])
        return ("failed", str(answer)) if failed(answer) else ("done", "")
    left = drained.reason if drained is not None else "not drained"
    if (yield from store.doomed(spec.table_name, [instance_id], now=(yield NOW))):
        return "kept", f"did not drain in {timeout} s ({left}); left DRAINING: it is going away"
    listed = yield paginate("ecs", "list_container_instances", cluster=spec.cluster, filter=f"ec2InstanceId in ['{instance_id}']")
    arns = list(listed.get("containerInstanceArns", []))
    if arns:
        yield call("ecs", "update_container_instances_state", cluster=spec.cluster, containerInstances=arns, status="ACTIVE")
        yield from restore_targets(spec.cluster, [{"containerInstanceArn": a, "ec2InstanceId": instance_id} for a in arns])
    return "kept", f"did not drain in {timeout} s ({left}): spot is still short; set ACTIVE again, its targets back"
