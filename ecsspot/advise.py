"""Interruption-aware placement advice: which of a spot pool's zones and types to lean on, drop or add.

Two sources, both AWS's own or ecsspot's record of what happened: ``GetSpotPlacementScores`` for
the pool's instance types, per Availability Zone of the spec's subnets (1 to 10: how likely a
spot request is to succeed there now; AWS scores fewer than three types "always low", so a pool
with fewer gets no score and the advice to add types), and the interruptions the interruption
handler counted per instance type and zone (the state table's history, last ``days`` days).
A type interrupted far more often than the pool's others is proposed for dropping (never below
three types); a pool with fewer than six types gets same-size types of other families of the
same architecture proposed (more spot pools to draw from, the diversification AWS recommends).
Advice only: nothing is changed, and ``plan`` never turns it into a change.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Call, Report, Workflow, call
from ecsspot.prices import ON_DEMAND
from ecsspot.spec import ClusterSpec, Pool

#: Fewer types and AWS's placement score is "always low"; the drop advice never goes below.
MIN_TYPES = 3
#: Pools with fewer types get additions proposed.
DIVERSIFIED_TYPES = 6
#: A type is proposed for dropping from this many interruptions in the window, when also at
#: least twice the pool's median.
DROP_AT = 3
Verdict = Literal["keep", "drop", "add"]


@attrs.frozen
class TypeAdvice:
    instance_type: str
    verdict: Verdict
    interruptions: int
    reason: str


@attrs.frozen
class ZoneAdvice:
    availability_zone: str
    zone_id: str
    #: GetSpotPlacementScores' 1..10 for the pool's types in this zone (None: not scored).
    score: int | None
    interruptions: int


@attrs.frozen
class PoolAdvice:
    pool: str
    zones: tuple[ZoneAdvice, ...]
    types: tuple[TypeAdvice, ...]
    notes: tuple[str, ...] = ()


@attrs.frozen
class Advice:
    cluster: str
    days: int
    pools: tuple[PoolAdvice, ...]


def _family(instance_type: str) -> tuple[str, str]:
    family, _, size = instance_type.partition(".")
    return family, size


def _arm(family: str) -> bool:
    # Graviton families end their generation with "g" (m6g, c7gn, r6gd): arm64 AMIs only.
    return any(ch == "g" for ch in family.lstrip("abcdefghijklmnopqrstuvwxyz")[1:2])


def decide(
    pool: Pool, zones: Sequence[tuple[str, str]], scores: Mapping[str, int] | None, history: Mapping[tuple[str, str, str], int], *, since: str
) -> PoolAdvice:
    """The advice for one spot pool (pure): ``zones`` (name, id) of its subnets, ``scores`` by
    zone id (None when not scored), ``history`` (day, type, zone) → interruptions, counted from
    the day ``since``."""
    types = [t.type for t in pool.instance_types]
    by_type = {t: 0 for t in types}
    by_zone = {name: 0 for name, _ in zones}
    for (day, instance_type, zone), n in history.items():
        if day < since:
            continue
        if instance_type in by_type:
            by_type[instance_type] += n
        if zone in by_zone:
            by_zone[zone] += n
    notes = []
    if scores is None:
        notes.append(f"no placement score: AWS scores fewer than {MIN_TYPES} instance types as always low; add types")
    zone_advice = sorted(
        (ZoneAdvice(name, zone_id, None if scores is None else scores.get(zone_id), by_zone[name]) for name, zone_id in zones),
        key=lambda z: (-(z.score or 0), z.interruptions, z.availability_zone),
    )
    for z in zone_advice:
        if z.score is not None and z.score <= 3:
            notes.append(f"{z.availability_zone} scores {z.score}/10: spot requests there are unlikely to succeed now")
    median = statistics.median(by_type.values()) if by_type else 0
    ranked = sorted(types, key=lambda t: (by_type[t], t))
    out: list[TypeAdvice] = []
    kept = len(types)
    for t in reversed(ranked):  # the most interrupted first, so the drops stop at MIN_TYPES
        n = by_type[t]
        if n >= DROP_AT and n >= 2 * median and kept > MIN_TYPES:
            kept -= 1
            out.append(TypeAdvice(t, "drop", n, f"{n} interruptions since {since}, the pool's median is {median:g}"))
        else:
            out.append(TypeAdvice(t, "keep", n, f"{n} interruption(s) since {since}"))
    out.reverse()
    if kept < DIVERSIFIED_TYPES:
        sizes = {_family(t)[1] for t in types}
        arm = {_arm(_family(t)[0]) for t in types}
        have = set(types)
        candidates = sorted(
            t for t in ON_DEMAND if _family(t)[1] in sizes and t not in have and _arm(_family(t)[0]) in arm and not _family(t)[0].startswith("t")
        )
        for t in candidates[: DIVERSIFIED_TYPES - kept]:
            out.append(TypeAdvice(t, "add", 0, f"same size as the pool's types, another family: one more spot pool to draw from ({kept} kept, {DIVERSIFIED_TYPES} recommended)"))
    return PoolAdvice(pool.name, tuple(zone_advice), tuple(out), tuple(notes))


#: Days of recorded interruptions ``plan``'s advice weighs (``advise`` takes ``--days``).
PLAN_DAYS = 30


def history_keys(now: float, days: int) -> list[store.ItemKey]:
    """The history items covering the last ``days`` days up to ``now``."""
    start = now - (days - 1) * 86400
    months = {dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m") for t in (start, now, *range(int(start), int(now), 86400 * 28))}
    return [store.history_key(m) for m in sorted(months)]


def history_of(items: Mapping[store.ItemKey, Mapping[str, object] | None], keys: Sequence[store.ItemKey]) -> dict[tuple[str, str, str], int]:
    """(day, type, zone) → interruptions, from the answers (``{"Item": ...}``) for ``keys``."""
    out: dict[tuple[str, str, str], int] = {}
    for key in keys:
        answer = items.get(key) or {}
        item = answer.get("Item") if isinstance(answer, Mapping) else None
        for k, n in store.interruptions_from(item if isinstance(item, Mapping) else None).items():
            out[k] = out.get(k, 0) + n
    return out


def plan_lines(spec: ClusterSpec, history: Mapping[tuple[str, str, str], int], *, now: float, days: int = PLAN_DAYS) -> tuple[str, ...]:
    """``plan``'s information lines: the drops the recorded interruptions advise (pure; no
    placement score, which would cost ``plan`` a call per spot pool)."""
    since = dt.datetime.fromtimestamp(now - (days - 1) * 86400, tz=dt.UTC).strftime("%Y-%m-%d")
    lines = []
    for pool in spec.pools:
        if not pool.has_spot:
            continue
        for t in decide(pool, (), {}, history, since=since).types:
            if t.verdict == "drop":
                lines.append(f"pool {pool.name}: consider dropping {t.instance_type}: {t.reason} (ecsspot advise -f SPEC adds zones and placement scores)")
    return tuple(lines)


def advise(spec: ClusterSpec, *, days: int = 30) -> Workflow[Advice]:
    """Read the placement scores and the recorded interruptions, and advise each spot pool."""
    if not 1 <= days <= 31 * store.HISTORY_MONTHS - 1:
        from ecsspot.errors import InputError

        raise InputError(f"days: must be 1 to {31 * store.HISTORY_MONTHS - 1} (the history keeps {store.HISTORY_MONTHS} months), got {days}")
    yield Report("advise", f"reading spot placement scores and interruption history for cluster {spec.cluster}")
    now = yield NOW
    start = now - (days - 1) * 86400
    keys = history_keys(now, days)
    spot_pools = [p for p in spec.pools if p.has_spot]
    scored = [p for p in spot_pools if len({t.type for t in p.instance_types}) >= MIN_TYPES]
    calls: list[Call] = [
        store.get_items_call(spec.table_name, keys),
        call("ec2", "describe_subnets", SubnetIds=list(spec.network.subnets)),
        *(
            call("ec2", "get_spot_placement_scores", InstanceTypes=sorted({t.type for t in p.instance_types}), TargetCapacity=max(p.max_size, 1), SingleAvailabilityZone=True)
            for p in scored
        ),
    ]
    answers = list((yield tuple(calls)))
    history = history_of((yield from store.items_of(spec.table_name, keys, answers[0])), keys)
    zones = sorted({(s["AvailabilityZone"], s["AvailabilityZoneId"]) for s in (answers[1] or {}).get("Subnets", ())})
    scores = {p.name: {s["AvailabilityZoneId"]: int(s["Score"]) for s in (a or {}).get("SpotPlacementScores", ()) if s.get("AvailabilityZoneId")} for p, a in zip(scored, answers[2:], strict=True)}
    since = dt.datetime.fromtimestamp(start, tz=dt.UTC).strftime("%Y-%m-%d")
    return Advice(spec.cluster, days, tuple(decide(p, zones, scores.get(p.name), history, since=since) for p in spot_pools))
