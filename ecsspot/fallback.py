"""Spot → on-demand fallback: a spot pool that cannot get capacity launches on demand, and back.

ECS does not move a task assigned to one capacity provider to another: tasks waiting
(PROVISIONING) for the spot pool's provider stay there whatever another pool does
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html).
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
market does not flap the pool). Then the on-demand surplus goes, one instance a tick, only while
no spot launch has failed since the restore: it is drained with the verified drain
(:func:`ecsspot.drain.drain_instances`) and terminated in its group without decrementing, so the
group launches its replacement on spot; one that does not drain in time is set ACTIVE again with
its targets back, and nothing is terminated.

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
from ecsspot.aws.calls import NOW, Workflow, call, chunks, failed, paginate, settle
from ecsspot.spec import ClusterSpec, Pool, duration_seconds, duration_text
from ecsspot.state import CLUSTER_TAG, tags_of

LEASE = "fallback"
LEASE_SECONDS = 900.0
MEMORY = ("fallback", "pools")
#: Lifecycle states that count toward desired capacity (Standby and Terminating* do not).
COUNTED = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})
#: Scaling activity messages that say spot had no capacity for the request.
SPOT_SHORT = re.compile(r"InsufficientInstanceCapacity|Could not launch Spot|no Spot capacity|UnfulfillableCapacity|capacity-not-available", re.I)
#: Activities read per group (newest first): the failures that matter are recent.
ACTIVITIES = 50

Kind = Literal["fallback", "restore", "drain", "watch", "ignore"]
Status = Literal["planned", "done", "waiting", "ok", "ignored", "failed"]


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


@attrs.frozen
class Decisions:
    actions: tuple[FallbackAction, ...]
    #: Group → the OnDemandBaseCapacity to set.
    bases: Mapping[str, int]
    #: Group → the on-demand instance to drain and replace.
    drains: Mapping[str, str]
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


def decide(views: Sequence[PoolView], memory: Mapping[str, Memory], *, now: float, detect_after: float, cooldown: float, max_on_demand: int) -> Decisions:
    """Pure: per pool, fall back, restore, drain a surplus instance or watch; and what to remember."""
    actions: list[FallbackAction] = []
    bases: dict[str, int] = {}
    drains: dict[str, str] = {}
    remember: dict[str, Memory] = {}
    for v in sorted(views, key=lambda v: v.pool):
        if v.foreign:
            actions.append(FallbackAction("ignore", v.pool, "ignored", v.foreign, v.group))
            continue
        m = memory.get(v.pool, Memory())
        short = v.in_service < v.desired
        short_since = (m.short_since if m.short_since is not None else now) if short else None
        m = attrs.evolve(m, short_since=short_since)

        def act(kind: Kind, status: Status, reason: str, base: int | None = None, instance_id: str | None = None, v: PoolView = v) -> None:
            actions.append(FallbackAction(kind, v.pool, status, reason, v.group, base, instance_id))

        failure = f"spot launch failed {duration_text(now - v.spot_failed_at)} ago: {v.spot_failure}" if v.spot_failed_at is not None else ""
        # A failure counts for this shortage if it came with it (or just before the first look).
        failing = short_since is not None and v.spot_failed_at is not None and v.spot_failed_at >= short_since - detect_after
        shortage = f"InService {v.in_service} of desired {v.desired}"
        if failing and short_since is not None and (m.active or now - short_since >= detect_after):
            want = v.on_demand + max(0, v.desired - v.counted)
            target = base_for(want, desired=v.desired, percent=v.percent, low=max(v.base, v.spec_base), cap=min(max_on_demand, max(v.desired, v.spec_base)))
            capped = on_demand_share(v.desired, target, v.percent) < want
            limit = f"; capped at max_on_demand {max_on_demand}" if capped else ""
            if target > v.base:
                why = f"{shortage} for {duration_text(now - short_since)} (detect_after {duration_text(detect_after)}); {failure}: OnDemandBaseCapacity {v.base} → {target} so the group launches on demand{limit}"
                act("fallback", "planned", why, target)
                bases[v.group] = target
            else:
                why = f"falling back: {shortage}; {failure}; OnDemandBaseCapacity {v.base} already covers what it can{limit}"
                act("watch", "waiting", why, v.base)
            remember[v.pool] = attrs.evolve(m, active=True, since=m.since if m.active else now, draining=False)
            continue
        if m.active:
            quiet_since = max(v.spot_failed_at or 0.0, m.since or 0.0)
            if not short and now - quiet_since >= cooldown:
                why = f"no spot launch failed for {duration_text(now - quiet_since)} (cooldown {duration_text(cooldown)}) and the group is full: OnDemandBaseCapacity {v.base} → {v.spec_base}, back to spot"
                act("restore", "planned", why, v.spec_base)
                if v.base != v.spec_base:
                    bases[v.group] = v.spec_base
                remember[v.pool] = Memory(short_since, False, now, True)
            else:
                waits = f"{shortage}" if short else f"spot quiet for {duration_text(now - quiet_since)} of the {duration_text(cooldown)} cooldown"
                act("watch", "waiting", f"falling back on demand since {duration_text(now - (m.since or now))} ago; {waits}", v.base)
                remember[v.pool] = m
            continue
        if m.draining:
            surplus = v.on_demand - on_demand_share(v.desired, v.spec_base, v.percent)
            since_restore = v.spot_failed_at is not None and v.spot_failed_at >= (m.since or now)
            if surplus <= 0 or not v.on_demand_instances:
                act("watch", "ok", "back on spot: no on-demand surplus left")
                remember[v.pool] = Memory(short_since)
            elif since_restore or short:
                why = f"{surplus} on-demand unit(s) over the spec's share kept: {failure if since_restore else shortage}"
                act("watch", "waiting", why)
                remember[v.pool] = m
            else:
                iid = v.on_demand_instances[0]
                why = f"{surplus} on-demand unit(s) over the spec's share: drained and replaced on spot (terminated without decrementing)"
                act("drain", "planned", why, instance_id=iid)
                drains[v.group] = iid
                remember[v.pool] = m
            continue
        if short:
            why = f"{shortage} for {duration_text(now - (short_since or now))} of the {duration_text(detect_after)} detect_after; " + (
                failure if failing else "no spot launch failed meanwhile"
            )
            act("watch", "waiting", why)
        else:
            act("watch", "ok", f"on spot: {shortage}")
        remember[v.pool] = m
    return Decisions(tuple(actions), dict(sorted(bases.items())), dict(sorted(drains.items())), remember)


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
        for i in g.get("Instances", ()):
            weight = int(i.get("WeightedCapacity") or 1)
            state = i.get("LifecycleState", "")
            spot = ec2.get(i["InstanceId"], {}).get("InstanceLifecycle") == "spot"
            if state in COUNTED:
                counted += weight
                on_demand += 0 if spot else weight
            if state == "InService":
                in_service += weight
                if not spot:
                    od_ids.append((_epoch(ec2.get(i["InstanceId"], {}).get("LaunchTime", 0)), i["InstanceId"]))
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
            )
        )
    return views, _memory_of(store.document_of(memory)), ours


# --- the workflow ----------------------------------------------------------------------------


def tick(cluster: str, *, owner: str, apply: bool = False, spec: ClusterSpec | None = None) -> Workflow[FallbackResult]:
    """Decide (and with ``apply``, carry out) the fallback of ``cluster``'s spot pools.

    Works from the settings ``apply`` recorded (``spec`` overrides them). Every run records what
    it saw under the ``fallback`` lease (a dry run that finds it held writes nothing; an applying
    one is a :class:`~ecsspot.errors.ConflictError`).
    """
    spec = yield from store.recorded_spec(cluster, spec)
    fb = spec.fallback
    detect_after, cooldown = duration_seconds(fb.detect_after), duration_seconds(fb.cooldown)
    now = yield NOW

    def run(recorded: bool) -> Workflow[FallbackResult]:
        views, memory, groups = yield from observe(spec)
        decisions = decide(views, memory, now=now, detect_after=detect_after, cooldown=cooldown, max_on_demand=fb.max_on_demand)
        actions = list(decisions.actions)
        remember = dict(decisions.memory)
        if apply:
            actions = yield from _carry_out(spec, decisions, groups, owner)
            for a in actions:
                # A base that did not change is tried again next tick: forget the decision.
                if a.status == "failed" and a.kind in ("fallback", "restore"):
                    remember[a.pool] = memory.get(a.pool, Memory())
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


def _carry_out(spec: ClusterSpec, decisions: Decisions, groups: Mapping[str, Mapping[str, Any]], owner: str) -> Workflow[list[FallbackAction]]:
    from ecsspot.drain import drain_instances

    outcome: dict[tuple[str, str], str | None] = {}
    names = list(decisions.bases)
    if names:
        answers = yield settle(
            [call("autoscaling", "update_auto_scaling_group", AutoScalingGroupName=n, MixedInstancesPolicy=_policy_with_base(groups[n], decisions.bases[n])) for n in names]
        )
        for n, answer in zip(names, answers, strict=True):
            outcome[("base", n)] = str(answer) if failed(answer) else None
    for group, iid in decisions.drains.items():
        outcome[("drain", group)] = yield from _replace(spec, group, iid, owner, drain_instances)
    out = []
    for a in decisions.actions:
        key = ("drain", a.group or "") if a.kind == "drain" else ("base", a.group or "")
        if a.kind in ("fallback", "restore", "drain") and key in outcome:
            error = outcome[key]
            a = attrs.evolve(a, status="failed", reason=f"{a.reason}; {error}") if error else attrs.evolve(a, status="done")
        elif a.kind == "restore":
            a = attrs.evolve(a, status="done")
        out.append(a)
    return out


def _replace(spec: ClusterSpec, group: str, instance_id: str, owner: str, drain_instances: Any) -> Workflow[str | None]:
    """Drain one on-demand instance (verified) and terminate it in its group without
    decrementing; ACTIVE again, targets back, if it does not drain in time. None when done."""
    from ecsspot.refresh import restore_targets

    # The time a terminate hook gives the drain of an instance going away: the same situation.
    result = yield from drain_instances(spec.cluster, [instance_id], deadline=float(spec.drain.lifecycle_timeout_seconds), wait=True, owner=owner)
    if result.drained and instance_id not in result.not_found:
        answer = yield settle([call("autoscaling", "terminate_instance_in_auto_scaling_group", InstanceId=instance_id, ShouldDecrementDesiredCapacity=False)])
        return str(answer[0]) if failed(answer[0]) else None
    listed = yield paginate("ecs", "list_container_instances", cluster=spec.cluster, filter=f"ec2InstanceId in ['{instance_id}']")
    arns = list(listed.get("containerInstanceArns", []))
    if arns:
        yield call("ecs", "update_container_instances_state", cluster=spec.cluster, containerInstances=arns, status="ACTIVE")
        yield from restore_targets(spec.cluster, [{"containerInstanceArn": a, "ec2InstanceId": instance_id} for a in arns])
    left = next((a.reason for a in result.actions if a.instance_id == instance_id), "")
    return f"did not drain in {spec.drain.lifecycle_timeout_seconds} s ({left}): set ACTIVE again, kept"
