"""A picture of a simulated timeline: one self-contained SVG file.

SVG rather than a PNG through matplotlib: no extra dependency (the `sim` extra stays moto and
aiobotocore), the file opens in any browser, diffs as text in a pull request, and tests can read
it back with the standard library's XML parser. Lines: spot, on-demand and DRAINING instances,
healthy targets (left axis); red bars: requests failed in each interval (right axis).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 60, 70, 40, 50
SERIES = (("spot", "spot instances", "#1f77b4"), ("on_demand", "on-demand instances", "#2ca02c"), ("draining", "DRAINING", "#ff7f0e"), ("healthy_targets", "healthy targets", "#9467bd"))
FAILED_COLOUR = "#d62728"


def _nice(top: float) -> int:
    """The axis maximum: ``top`` rounded up to a multiple of 4 (four grid steps of whole numbers)."""
    return max(4, -(-math.ceil(top) // 4) * 4)


def chart_svg(rows: Sequence[Any], title: str, marks: Sequence[tuple[float, str]] = ()) -> str:
    """The SVG of ``rows`` (objects with ``time`` and the :data:`SERIES` fields and a cumulative
    ``failed``); ``marks`` are (time, label) events drawn as dashed vertical lines."""
    if not rows:
        raise ValueError("no rows to draw")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    t0, t1 = rows[0].time, max(rows[-1].time, rows[0].time + 1)
    top = _nice(max(getattr(r, name) for r in rows for name, _, _ in SERIES))
    failed = [max(b.failed - a.failed, 0) for a, b in itertools.pairwise(rows)]
    top_failed = _nice(max(failed, default=0))

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    def y(v: float, scale: float) -> float:
        return TOP + plot_h - v / scale * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="15">{escape(title)}</text>',
    ]
    for n in range(5):  # grid and left axis labels
        v = top * n / 4
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v, top):.1f}" y2="{y(v, top):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(v, top) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        out.append(f'<text x="{WIDTH - RIGHT + 8}" y="{y(top_failed * n / 4, top_failed) + 4:.1f}" fill="{FAILED_COLOUR}">{top_failed * n / 4:.0f}</text>')
    minutes = (t1 - t0) / 60
    step = next((m for m in (1, 2, 5, 10, 15, 30, 60, 120) if minutes / m <= 8), 240)
    for n in range(int(minutes // step) + 1):  # time axis: whole minutes
        t = t0 + n * step * 60
        out.append(f'<text x="{x(t):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{n * step} min</text>')
    for n, (t, label) in enumerate(marks):
        # Labels of marks close together go one under the other rather than over each other.
        row = sum(1 for u, _ in marks[:n] if abs(x(u) - x(t)) < 120)
        out.append(f'<line class="mark" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#555" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x(t) + 4:.1f}" y="{TOP + 14 + 14 * row}" fill="#555">{escape(label)}</text>')
    bar = max(plot_w / max(len(rows), 1) * 0.6, 1)
    for b, n in zip(rows[1:], failed, strict=True):
        if n:
            out.append(
                f'<rect class="failed" x="{x(b.time) - bar / 2:.1f}" y="{y(n, top_failed):.1f}" width="{bar:.1f}" height="{y(0, top_failed) - y(n, top_failed):.1f}" '
                f'fill="{FAILED_COLOUR}" opacity="0.7"><title>{n} failed requests</title></rect>'
            )
    for name, label, colour in SERIES:
        points = " ".join(f"{x(r.time):.1f},{y(getattr(r, name), top):.1f}" for r in rows)
        out.append(f'<polyline class="{name}" points="{points}" fill="none" stroke="{colour}" stroke-width="2"><title>{escape(label)}</title></polyline>')
    legend = [*SERIES, ("failed", "failed requests (right)", FAILED_COLOUR)]
    for n, (_, label, colour) in enumerate(legend):
        lx = LEFT + n * 155
        out.append(f'<rect x="{lx}" y="{HEIGHT - 22}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{lx + 16}" y="{HEIGHT - 12}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
