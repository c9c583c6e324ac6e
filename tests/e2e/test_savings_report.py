"""The savings report end to end on the simulator: the refresh Lambda's scheduled tick records
the capacity ledger, ``ecsspot savings`` bills it with the simulated market's spot prices and the
shipped on-demand table, and the figures match the instances' own lives counted by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from ecsspot import Manager, load_spec
from ecsspot.prices import ON_DEMAND
from ecsspot.sim import Simulator
from ecsspot_cli.main import cli
from tests.conftest import demo_spec_dict

CLUSTER = "demo-api"
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


pytestmark = pytest.mark.usefixtures("simulated_account")


@pytest.fixture(name="sim")
def fixture_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator(seed=11) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-spot", DesiredCapacity=3)
        yield sim


def savings(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["savings", CLUSTER, "-o", "json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_ticks_record_the_hours_and_the_report_bills_them_as_counted_by_hand(sim: Simulator, tmp_path: Path) -> None:
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers

    tick = Handlers(Driver(ClientOptions(region=sim.region), clock=sim.clock), default_cluster=CLUSTER, refresh_on_schedule=False)
    ticks = []
    for step in range(4):
        sim.advance(1800)
        if step == 1:  # one spot instance is reclaimed between two ticks; its group replaces it
            ours = [m for m in sim.world.machines.values() if m.running and m.lifecycle == "spot" and m.group == f"{CLUSTER}-spot"]
            assert sim.world.market.interrupt([ours[0].instance_id])
        ticks.append(sim.world.now())
        assert tick.refresh(SCHEDULE)["ledger"]["status"] == "done"
    sim.advance(600)
    now = sim.world.now()
    chart = tmp_path / "savings.svg"
    report = savings("--days", "2", "--chart", str(chart))

    # By hand: each instance of the cluster's groups counts from its launch to now when still
    # running, else to the last tick that saw it running (the ledger's lower bound).
    groups = {f"{CLUSTER}-{p}" for p in ("on-demand", "spot")}
    expected_hours = expected_cost = expected_on_demand = 0.0
    reclaimed = 0
    for m in sim.world.machines.values():
        if m.group not in groups:
            continue
        if m.running:
            end = now
        else:
            seen = [t for t in ticks if m.running_at is not None and m.running_at <= t and (m.terminated_at is None or t < m.terminated_at)]
            if not seen:
                continue
            end, reclaimed = seen[-1], reclaimed + 1
        hours = (end - int(m.launched_at)) / 3600
        list_price = ON_DEMAND[m.instance_type]
        paid = sim.world.market.pool(m.instance_type, m.availability_zone).price if m.lifecycle == "spot" else list_price
        expected_hours += hours
        expected_cost += hours * paid
        expected_on_demand += hours * list_price
    assert reclaimed == 1
    assert report["instance_hours"] == pytest.approx(expected_hours, abs=1e-3)
    assert report["cost"] == pytest.approx(expected_cost, abs=1e-3)
    assert report["on_demand_cost"] == pytest.approx(expected_on_demand, abs=1e-3)
    assert 25 < report["savings_percent"] < 70  # spot at 30-70 % of list, plus the on-demand base
    assert {(line["pool"], line["lifecycle"]) for line in report["lines"]} == {("on-demand", "on-demand"), ("spot", "spot")}
    assert report["unpriced"] == []

    svg = ElementTree.parse(chart).getroot()
    bars = [e for e in svg.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") in ("spot", "on-demand")]
    assert bars and {e.get("class") for e in bars} == {"spot", "on-demand"}


def test_a_cluster_never_applied_exits_7_and_bad_prices_exit_3_naming_the_entry(sim: Simulator, tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["savings", "nosuch"])
    assert missing.exit_code == 7 and "no ecsspot settings recorded" in missing.stderr
    prices = tmp_path / "prices.yaml"
    prices.write_text("m5.large: -0.1\n")
    bad = CliRunner().invoke(cli, ["savings", CLUSTER, "--prices", str(prices)])
    assert bad.exit_code == 3 and "--prices.m5.large: must be a price per hour" in bad.stderr
    prices.write_text("m5.large: 1.0\n")
    overridden = savings("--prices", str(prices))
    assert "1 overridden" in overridden["price_source"]


def test_status_shows_the_weeks_savings(sim: Simulator) -> None:
    sim.advance(3600)
    text = CliRunner().invoke(cli, ["status", CLUSTER], catch_exceptions=False)
    assert text.exit_code == 0, text.stderr
    (line,) = [x for x in text.stdout.splitlines() if x.startswith("Savings, last 7 days: $")]
    assert "% saved; `ecsspot savings demo-api` for the detail)" in line
    doc = json.loads(CliRunner().invoke(cli, ["status", CLUSTER, "-o", "json"], catch_exceptions=False).stdout)
    assert doc["savings"]["instance_hours"] > 0 and doc["savings"]["cluster"] == CLUSTER
    assert doc["instances"]  # the status document as before, with savings beside it
