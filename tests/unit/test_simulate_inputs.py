"""``ecsspot simulate``'s inputs and picture, without running the simulator: the scenario's
fields (one error naming each wrong one) and the SVG chart (issue 13 item 4)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import attrs
import pytest

from ecsspot.errors import InputError
from ecsspot.sim.chart import chart_svg
from ecsspot.sim.simulate import Interruption, Row, Scenario, load_scenario


def test_the_default_and_a_written_scenario() -> None:
    assert load_scenario(None) == Scenario()
    plan = load_scenario(
        {"duration": "1h", "every": "90s", "services": [{"name": "api", "tasks": 8, "rps": 200}], "interruptions": [{"at": "10m", "fraction": 0.5, "pool": "spot"}], "shortages": [], "refresh_at": "30m"}
    )
    assert (plan.duration, plan.every, plan.refresh_at) == (3600.0, 90.0, 1800.0)
    assert plan.services[0].name == "api" and plan.services[0].tasks == 8
    assert plan.interruptions == (Interruption(at=600.0, fraction=0.5, pool="spot"),) and plan.shortages == ()


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"duratoin": "5m"}, "duratoin"),
        ({"duration": "5 minutes"}, "scenario.duration"),
        ({"duration": "99h"}, "scenario.duration"),
        ({"interruptions": [{"at": 60, "fraction": 2}]}, "scenario.interruptions[0].fraction"),
        ({"interruptions": [{"at": "2h"}]}, "scenario.interruptions[0].at"),
        ({"services": [{"name": "a b"}]}, "scenario.services[0].name"),
        ({"services": [{"name": "x", "tasks": 100000}]}, "scenario.services[0].tasks"),
        ({"shortages": [{"at": True}]}, "scenario.shortages[0].at"),
        # A refresh after the end never ran, silently.
        ({"duration": "10m", "refresh_at": "1h"}, "scenario.refresh_at"),
        ({"refresh_at": -5}, "scenario.refresh_at"),
    ],
)
def test_a_wrong_field_is_one_input_error_naming_it(document: dict, named: str) -> None:
    with pytest.raises(InputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(document)


def test_the_chart_is_svg_with_every_series_the_failures_and_the_events() -> None:
    rows = [Row(time=60.0 * n, spot=4 - (n == 3), on_demand=1, draining=int(n == 3), healthy_targets=6, requests=100 * n, failed=5 * (n >= 4)) for n in range(8)]
    svg = chart_svg(rows, "a <storm> & more", marks=[(180.0, "1 spot warning(s)"), (180.0, "no spot capacity")])
    root = ET.fromstring(svg)  # well-formed: the title's < and & are escaped
    ns = "{http://www.w3.org/2000/svg}"
    series = {p.get("class"): p.get("points", "").split() for p in root.iter(f"{ns}polyline")}
    assert set(series) == {"spot", "on_demand", "draining", "healthy_targets"}
    assert all(len(points) == len(rows) for points in series.values())
    bars = [r for r in root.iter(f"{ns}rect") if r.get("class") == "failed"]
    assert len(bars) == 1 and bars[0].find(f"{ns}title").text == "5 failed requests"
    labels = [t for t in root.iter(f"{ns}text") if t.text in ("1 spot warning(s)", "no spot capacity")]
    assert len({t.get("y") for t in labels}) == 2  # one under the other
    assert [t.text for t in root.iter(f"{ns}text") if t.text and t.text.endswith(" min")] == [f"{n} min" for n in range(8)]
    assert attrs.asdict(rows[0])  # rows are plain values the JSON report carries too
