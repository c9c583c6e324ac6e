"""Savings report: what the cluster's instances cost, by pool and lifecycle, against on-demand.

Instance-hours come from the capacity ledger (:mod:`ecsspot.ledger`, accrued by the scheduled
tick) plus the running instances up to now. Spot hours are priced with
``DescribeSpotPriceHistory`` (Linux/UNIX) of their instance type and Availability Zone: a day's
spot hours at that day's time-weighted average price, where the price in effect at a moment is
the last change before it (AWS returns "the last price change before the start time, which is
the effective price as of the start time"). On-demand hours, and the on-demand equivalent of
spot hours, are priced from :mod:`ecsspot.prices` or the caller's overrides. Hours whose price is
unknown are counted but not billed, and named in ``unpriced``. The pricing is pure
(:func:`bill`); :func:`report` reads.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Report, Workflow, paginate
from ecsspot.errors import InputError
from ecsspot.ledger import DAY, RETENTION_DAYS, Ledger, accrue, day_of, day_start, look
from ecsspot.prices import ON_DEMAND, SOURCE
from ecsspot.spec import ClusterSpec

PRODUCT = "Linux/UNIX"
PricePoints = Mapping[tuple[str, str], Sequence[tuple[float, float]]]


@attrs.frozen
class Line:
    """One pool and lifecycle over the report's window."""

    pool: str
    lifecycle: str
    instance_hours: float
    #: USD paid (spot at the spot price, on-demand at the list price) for the priced hours.
    cost: float
    #: What the same priced hours cost on demand.
    on_demand_cost: float

    @property
    def savings(self) -> float:
        return self.on_demand_cost - self.cost

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.savings / self.on_demand_cost if self.on_demand_cost else 0.0


@attrs.frozen
class Day:
    """Instance-hours of one UTC day by lifecycle (the chart's bars)."""

    day: str
    spot_hours: float
    on_demand_hours: float


@attrs.frozen
class SavingsReport:
    cluster: str
    since: str
    until: str
    lines: tuple[Line, ...]
    days: tuple[Day, ...]
    instance_hours: float
    cost: float
    on_demand_cost: float
    savings: float
    savings_percent: float
    #: Where the on-demand prices come from.
    price_source: str
    #: "instance type (AZ, lifecycle): N h" whose price is unknown, not billed.
    unpriced: tuple[str, ...] = ()


def average_price(points: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """Time-weighted average over [start, end) of the price steps ``points`` ((time, price),
    each in effect until the next); None without a point. Before the first point, its price."""
    steps = sorted(points)
    if not steps:
        return None
    if end <= start:
        return next((price for t, price in reversed(steps) if t <= start), steps[0][1])
    total = 0.0
    for n, (t, price) in enumerate(steps):
        begin = start if n == 0 else max(t, start)
        stop = min(steps[n + 1][0], end) if n + 1 < len(steps) else end
        if stop > begin:
            total += (stop - begin) * price
    return total / (end - start)


def bill(
    cluster: str, ledger: Ledger, spot_prices: PricePoints, on_demand: Mapping[str, float], *, since: float, until: float, source: str = SOURCE
) -> SavingsReport:
    """The report for the ledger's days from ``since``'s day to ``until`` (pure)."""
    first = day_of(since)
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    per_day: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    unpriced: dict[str, float] = defaultdict(float)
    for day, rows in sorted(ledger.hours.items()):
        if day < first:
            continue
        start, end = max(day_start(day), since), min(day_start(day) + DAY, until)
        for key, hours in rows.items():
            pool, lifecycle, instance_type, zone = key.split("|")
            line = sums[(pool, lifecycle)]
            line[0] += hours
            per_day[day][0 if lifecycle == "spot" else 1] += hours
            list_price = on_demand.get(instance_type)
            paid = list_price if lifecycle != "spot" else average_price(spot_prices.get((instance_type, zone), ()), start, end)
            if list_price is None or paid is None:
                unpriced[f"{instance_type} ({zone}, {lifecycle})"] += hours
                continue
            line[1] += hours * paid
            line[2] += hours * list_price
    lines = tuple(Line(pool, lifecycle, round(h, 4), round(c, 4), round(o, 4)) for (pool, lifecycle), (h, c, o) in sorted(sums.items()))
    cost, on_demand_cost = sum(line.cost for line in lines), sum(line.on_demand_cost for line in lines)
    return SavingsReport(
        cluster,
        first,
        dt.datetime.fromtimestamp(until, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        lines,
        tuple(Day(d, round(per_day[d][0], 4), round(per_day[d][1], 4)) for d in _days(first, until)),
        round(sum(line.instance_hours for line in lines), 4),
        round(cost, 4),
        round(on_demand_cost, 4),
        round(on_demand_cost - cost, 4),
        round(100.0 * (on_demand_cost - cost) / on_demand_cost, 2) if on_demand_cost else 0.0,
        source,
        tuple(f"{what}: {h:.2f} h" for what, h in sorted(unpriced.items())),
    )


def _days(first: str, until: float) -> list[str]:
    """Every UTC day from ``first`` to ``until``'s, so a day without instances shows as one."""
    out: list[str] = []
    t = day_start(first)
    while t < until or not out:
        out.append(day_of(t))
        t += DAY
    return out


def _points(answer: Mapping[str, Any] | None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    out: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for p in (answer or {}).get("SpotPriceHistory", ()):
        stamp = p.get("Timestamp")
        if not isinstance(stamp, dt.datetime) or p.get("SpotPrice") is None:
            continue
        out[(str(p.get("InstanceType")), str(p.get("AvailabilityZone")))].append((stamp.timestamp(), float(p["SpotPrice"])))
    return dict(out)


def report(cluster: str, *, days: int = 7, prices: Mapping[str, float] | None = None, spec: ClusterSpec | None = None) -> Workflow[SavingsReport]:
    """The savings of ``cluster`` over the last ``days`` UTC days (today included, up to now):
    the ledger plus the running instances up to now (nothing is written)."""
    if not 1 <= days <= RETENTION_DAYS:
        raise InputError(f"days: must be 1 to {RETENTION_DAYS} (the ledger keeps {RETENTION_DAYS} days), got {days}")
    spec = yield from store.recorded_spec(cluster, spec)
    yield Report("savings", f"reading the capacity ledger, the running instances and the spot prices of cluster {cluster}")
    now = yield NOW
    recorded, running = yield from look(spec)
    ledger = accrue(recorded, running, now)
    since = day_start(day_of(now - (days - 1) * DAY))
    spot_types = sorted({k.split("|")[2] for d, rows in ledger.hours.items() if d >= day_of(since) for k in rows if k.split("|")[1] == "spot"})
    points: PricePoints = {}
    if spot_types:
        answer = yield paginate(
            "ec2",
            "describe_spot_price_history",
            InstanceTypes=spot_types,
            ProductDescriptions=[PRODUCT],
            StartTime=dt.datetime.fromtimestamp(since, tz=dt.UTC),
            EndTime=dt.datetime.fromtimestamp(now, tz=dt.UTC),
        )
        points = _points(answer)
    table = {**ON_DEMAND, **(prices or {})}
    source = SOURCE if not prices else f"{SOURCE}, {len(prices)} overridden"
    return bill(cluster, ledger, points, table, since=since, until=now, source=source)


def chart_svg(report: SavingsReport) -> str:
    """A self-contained SVG of the report: instance-hours per UTC day, spot stacked on
    on-demand (the same choice as the simulator's timeline: no extra dependency, opens in any
    browser, readable back with an XML parser)."""
    import math
    from xml.sax.saxutils import escape

    width, height, left, right, top, bottom = 900, 380, 60, 20, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    days = report.days or (Day(report.since, 0.0, 0.0),)
    peak = float(max(math.ceil(max(d.spot_hours + d.on_demand_hours for d in days)), 1))
    scale = plot_h / peak
    slot = plot_w / len(days)
    bar = max(slot * 0.7, 1.0)
    title = (
        f"ecsspot savings: {report.cluster}, {report.since} to {report.until}: ${report.cost:.2f} paid, "
        f"${report.on_demand_cost:.2f} on demand ({report.savings_percent:.1f} % saved)"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
        f'<text x="{left - 8}" y="{top + 4}" text-anchor="end">{peak:.0f}</text>',
        f'<text x="{left - 8}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">instance-hours</text>',
    ]
    for n, d in enumerate(days):
        x = left + n * slot + (slot - bar) / 2
        od_h, spot_h = d.on_demand_hours * scale, d.spot_hours * scale
        base = top + plot_h
        parts.append(f'<rect class="on-demand" x="{x:.1f}" y="{base - od_h:.1f}" width="{bar:.1f}" height="{od_h:.1f}" fill="#2ca02c"><title>{d.day}: {d.on_demand_hours:.1f} on-demand h</title></rect>')
        parts.append(f'<rect class="spot" x="{x:.1f}" y="{base - od_h - spot_h:.1f}" width="{bar:.1f}" height="{spot_h:.1f}" fill="#1f77b4"><title>{d.day}: {d.spot_hours:.1f} spot h</title></rect>')
        if len(days) <= 16 or n % max(1, len(days) // 8) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{base + 16}" text-anchor="middle">{d.day[5:]}</text>')
    legend_y = height - 18
    parts.append(f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="#1f77b4"/><text x="{left + 18}" y="{legend_y}">spot</text>')
    parts.append(f'<rect x="{left + 80}" y="{legend_y - 10}" width="12" height="12" fill="#2ca02c"/><text x="{left + 98}" y="{legend_y}">on-demand</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
