"""Capacity ledger: instance-hours by pool, lifecycle, type and Availability Zone, per UTC day.

What the savings report bills. EC2 forgets a terminated instance within about an hour
(DescribeInstances), and Auto Scaling's activity history names instances without their type or
purchase option, so nothing in AWS answers "how many spot hours did this cluster run last week".
The refresh Lambda's scheduled tick (and ``ecsspot savings``, without writing) therefore looks
at the running instances of the cluster's own groups and accrues, for each one, the time since
it was last seen (since its launch the first time), split at UTC midnights, into one document of
the state table. An instance gone between two looks is counted up to the last look that saw it,
so the ledger is a lower bound, short by at most one tick per instance; a gap in the ticks loses
nothing for an instance still running at the next one. Days older than :data:`RETENTION_DAYS` are
dropped. The accrual is a pure function of (ledger, instances seen, now).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Call, Workflow, paginate
from ecsspot.spec import ClusterSpec
from ecsspot.state import tags_of

LEASE = "ledger"
LEASE_SECONDS = 120.0
DOCUMENT = ("ledger", "capacity")
RETENTION_DAYS = 31
DAY = 86400.0
GROUP_TAG = "aws:autoscaling:groupName"
Lifecycle = Literal["spot", "on-demand"]


@attrs.frozen
class Running:
    """One running instance of one of the cluster's pools, as DescribeInstances shows it."""

    instance_id: str
    pool: str
    lifecycle: Lifecycle
    instance_type: str
    availability_zone: str
    launched_at: float

    @property
    def key(self) -> str:
        return key_of(self.pool, self.lifecycle, self.instance_type, self.availability_zone)


def key_of(pool: str, lifecycle: str, instance_type: str, availability_zone: str) -> str:
    # Pool names are letters, digits, hyphens and underscores (spec), so "|" cannot be in them.
    return f"{pool}|{lifecycle}|{instance_type}|{availability_zone}"


def day_of(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d")


def day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


@attrs.frozen
class Ledger:
    #: Instance id → when it was last seen running (hours accrued up to then).
    seen: Mapping[str, float] = attrs.field(factory=dict)
    #: UTC day (``YYYY-MM-DD``) → :func:`key_of` → instance-hours.
    hours: Mapping[str, Mapping[str, float]] = attrs.field(factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> Ledger:
        doc = doc or {}
        seen = {str(k): float(v) for k, v in (doc.get("seen") or {}).items()}
        hours = {str(d): {str(k): float(h) for k, h in (rows or {}).items()} for d, rows in (doc.get("hours") or {}).items()}
        return cls(seen, hours)

    def to_document(self) -> dict[str, Any]:
        return {"seen": dict(sorted(self.seen.items())), "hours": {d: dict(sorted(r.items())) for d, r in sorted(self.hours.items())}}

    def total(self) -> float:
        return sum(h for rows in self.hours.values() for h in rows.values())


def _split(start: float, end: float) -> Iterable[tuple[str, float]]:
    """(UTC day, hours) pieces of [start, end)."""
    while start < end:
        day = day_of(start)
        stop = min(end, day_start(day) + DAY)
        yield day, (stop - start) / 3600.0
        start = stop


def accrue(ledger: Ledger, running: Sequence[Running], now: float) -> Ledger:
    """The ledger after seeing ``running`` at ``now``: each instance's time since it was last
    seen (or since its launch) added to its days; instances not seen any more are forgotten."""
    floor = day_start(day_of(now - (RETENTION_DAYS - 1) * DAY))
    hours = {d: dict(rows) for d, rows in ledger.hours.items() if day_start(d) >= floor}
    seen = {}
    for r in running:
        start = max(ledger.seen.get(r.instance_id, r.launched_at), floor)
        for day, h in _split(start, now):
            row = hours.setdefault(day, {})
            row[r.key] = row.get(r.key, 0.0) + h
        seen[r.instance_id] = max(now, ledger.seen.get(r.instance_id, now))
    return Ledger(seen, hours)


def fleet_call(spec: ClusterSpec) -> Call:
    """The running instances of the spec's groups (only ours: filtered by group name)."""
    return paginate(
        "ec2",
        "describe_instances",
        Filters=[
            {"Name": f"tag:{GROUP_TAG}", "Values": sorted(spec.asg_name(p) for p in spec.pools)},
            {"Name": "instance-state-name", "Values": ["running"]},
        ],
    )


def fleet_from(spec: ClusterSpec, answer: Mapping[str, Any] | None) -> list[Running]:
    pools = {spec.asg_name(p): p.name for p in spec.pools}
    out = []
    for reservation in (answer or {}).get("Reservations", ()):
        for inst in reservation.get("Instances", ()):
            pool = pools.get(tags_of(inst.get("Tags")).get(GROUP_TAG, ""))
            if pool is None or (inst.get("State") or {}).get("Name") != "running":
                continue
            launched = inst.get("LaunchTime")
            out.append(
                Running(
                    inst["InstanceId"],
                    pool,
                    "spot" if inst.get("InstanceLifecycle") == "spot" else "on-demand",
                    str(inst.get("InstanceType", "")),
                    str((inst.get("Placement") or {}).get("AvailabilityZone", "")),
                    # Without a launch time, count from the first look only (never from the window's start).
                    launched.timestamp() if isinstance(launched, dt.datetime) else math.inf,
                )
            )
    return out


def look(spec: ClusterSpec) -> Workflow[tuple[Ledger, list[Running]]]:
    """The recorded ledger and the running instances, in one round."""
    doc_answer, fleet_answer = yield (store.get_document_call(spec.table_name, *DOCUMENT), fleet_call(spec))
    return Ledger.from_document(store.document_of(doc_answer)), fleet_from(spec, fleet_answer)


@attrs.frozen
class LedgerAction:
    kind: Literal["record"]
    instance_id: str | None
    status: Literal["done", "skipped"]
    reason: str


@attrs.frozen
class LedgerResult:
    cluster: str
    actions: tuple[LedgerAction, ...]


def record(cluster: str, *, owner: str, spec: ClusterSpec | None = None) -> Workflow[LedgerResult]:
    """Accrue the running instances into the cluster's ledger (the scheduled tick's duty), under
    the ``ledger`` lease; skipped when another run holds it (it is recording the same hours)."""
    spec = yield from store.recorded_spec(cluster, spec)
    table = spec.table_name
    now = yield NOW

    def run(held: bool) -> Workflow[LedgerResult]:
        if not held:
            return LedgerResult(cluster, (LedgerAction("record", None, "skipped", "another run holds the ledger lease"),))
        before, running = yield from look(spec)
        after = accrue(before, running, now)
        yield from store.put_document(table, *DOCUMENT, after.to_document(), now=now)
        why = f"{len(running)} running instance(s); {max(after.total() - before.total(), 0.0):.2f} instance-hours accrued"
        return LedgerResult(cluster, (LedgerAction("record", None, "done", why),))

    return (yield from store.under_lease(cluster, table, LEASE, owner, now=now, ttl=LEASE_SECONDS, needed=False, body=run))
