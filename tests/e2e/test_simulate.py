"""``ecsspot simulate -f SPEC --scenario FILE --chart FILE`` (issue 13 item 4): the storm
simulator on the user's own spec, through the CLI, in-process."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from ecsspot_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
duration: 8m
every: 60
services:
  - {name: web, tasks: 4, rps: 20}
interruptions:
  - {at: 3m, fraction: 0.5, pool: spot}
shortages:
  - {at: 3m, seconds: 120, pool: spot}
"""


def test_simulate_reports_what_users_saw_and_draws_it(tmp_path: Path) -> None:
    scenario, chart = tmp_path / "storm.yaml", tmp_path / "storm.svg"
    scenario.write_text(SCENARIO)
    result = CliRunner().invoke(
        cli, ["-o", "json", "simulate", "-f", str(ROOT / "examples" / "demo-api.yaml"), "--scenario", str(scenario), "--chart", str(chart)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cluster"] == "demo-api" and report["virtual_seconds"] >= 480
    assert report["requests"] > 0 and report["failed_requests"] == 0
    assert report["interrupted"], "the storm warned no instance"
    # Every warned instance was drained, within its two minutes.
    assert len(report["drain_seconds"]) >= len(report["interrupted"]) and max(report["drain_seconds"]) < 120
    assert report["spot_instance_hours"] > 0 and report["on_demand_instance_hours"] > 0
    assert 0 < report["cost"] < report["on_demand_equivalent_cost"]
    assert [m[1] for m in report["marks"]] == ["1 spot warning(s) (spot)", "no spot capacity (spot)", "spot back (spot)"]
    assert any(row["draining"] for row in report["timeline"])
    ET.fromstring(chart.read_text())  # a well-formed picture
    assert "chart written to" in result.stderr


def test_simulate_refuses_a_pool_the_spec_does_not_have_naming_it(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("interruptions: [{at: 60, pool: spott}]\n")
    result = CliRunner().invoke(cli, ["simulate", "-f", str(ROOT / "examples" / "demo-api.yaml"), "--scenario", str(scenario)])
    assert result.exit_code == 3
    assert result.stderr.strip().endswith("scenario: pool(s) spott not in the spec (on-demand, spot)")


def test_a_scenario_refresh_rolls_the_instances_without_a_failed_request_and_is_on_the_timeline(tmp_path: Path) -> None:
    scenario = tmp_path / "refresh.yaml"
    scenario.write_text("duration: 8m\nevery: 60\nservices: [{name: web, tasks: 4, rps: 20}]\ninterruptions: []\nshortages: []\nrefresh_at: 1m\n")
    result = CliRunner().invoke(cli, ["-o", "json", "simulate", "-f", str(ROOT / "examples" / "demo-api.yaml"), "--scenario", str(scenario)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["refresh_status"] == "done" and report["refresh_replaced"] == 2  # one instance per pool
    assert report["requests"] > 0 and report["failed_requests"] == 0
    assert [m[1] for m in report["marks"]] == ["AMI refresh"]
    # No warning, so no drain "from the warning" (the refresh's own drains are not ones).
    assert report["interrupted"] == [] and report["drain_seconds"] == []
    # The roll is on the timeline (new capacity first, then a DRAINING old instance), with no
    # row gap longer than `every` while the refresh ran, and the whole run is billed.
    rows = report["timeline"]
    assert max(b["time"] - a["time"] for a, b in zip(rows, rows[1:], strict=False)) <= 60
    assert any(r["spot"] + r["on_demand"] > 2 for r in rows) and any(r["draining"] for r in rows)
    assert rows[-1]["time"] == 480
