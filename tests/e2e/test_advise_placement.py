"""``ecsspot advise`` on the simulator: the interruption handler counts the spot warnings it
drained by type and zone, and the advice ranks the spec's zones by placement score and shows
those counts beside each type."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ecsspot import Manager, load_spec
from ecsspot.sim import Simulator, scenario
from ecsspot.spec import dump_spec
from ecsspot_cli.main import cli
from tests.conftest import demo_spec_dict

CLUSTER = "demo-api"


pytestmark = pytest.mark.usefixtures("simulated_account")


def test_recorded_interruptions_and_placement_scores_reach_the_advice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with Simulator(seed=9) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        scenario.wire_interruption_handler(sim, CLUSTER)
        sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName=spec.asg_name(spec.pool("spot")), DesiredCapacity=3)
        sim.advance(300)
        warned = [m for m in sim.world.machines.values() if m.running and m.lifecycle == "spot"][:2]
        assert len(warned) == 2 and sim.world.market.interrupt([m.instance_id for m in warned])
        sim.advance(300)

        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(dump_spec(spec)))
        result = CliRunner().invoke(cli, ["advise", "-f", str(path), "-o", "json"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        (advice,) = json.loads(result.stdout)["pools"]
        assert advice["pool"] == "spot"
        by_type = {t["instance_type"]: t["interruptions"] for t in advice["types"] if t["verdict"] != "add"}
        assert by_type == {t.type: Counter(m.instance_type for m in warned)[t.type] for t in spec.pool("spot").instance_types}
        by_zone = {z["availability_zone"]: z["interruptions"] for z in advice["zones"]}
        for zone, n in Counter(m.availability_zone for m in warned).items():
            assert by_zone[zone] == n
        scores = [z["score"] for z in advice["zones"]]
        assert all(isinstance(s, int) and 1 <= s <= 10 for s in scores) and scores == sorted(scores, reverse=True)

        text = CliRunner().invoke(cli, ["advise", "-f", str(path)], catch_exceptions=False)
        assert text.exit_code == 0 and text.stdout.startswith("Advice for cluster demo-api (interruptions of the last 30 days):")


def test_a_count_that_fails_fails_no_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The history is advice: when its write fails, the warning is still handled and reported
    done (a retry would drain again for nothing)."""
    from ecsspot import store

    real = store.count_interruption_call

    def broken(table: str, *args: str, now: float) -> object:
        return real("no-such-table", *args, now=now)  # DynamoDB answers ResourceNotFoundException

    monkeypatch.setattr(store, "count_interruption_call", broken)
    with Simulator(seed=9) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        responses: list[dict] = []
        scenario.wire_interruption_handler(sim, CLUSTER, on_result=lambda started, finished, response: responses.append(response))
        sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName=spec.asg_name(spec.pool("spot")), DesiredCapacity=2)
        sim.advance(300)
        (victim,) = [m.instance_id for m in sim.world.machines.values() if m.running and m.lifecycle == "spot"][:1]
        sim.world.market.interrupt([victim])
        sim.advance(300)
        drains = [a for r in responses for a in r.get("actions", ()) if a["kind"] == "drain" and a["instance_id"] == victim]
        assert drains and all(a["status"] == "drained" for a in drains)
        assert all(sim.world.events.invocations[i].error is None for i in range(len(sim.world.events.invocations)))
        items = sim.client("dynamodb").scan(TableName=spec.table_name)["Items"]
        assert not [i for i in items if i["pk"]["S"] == "history"]


def test_plan_shows_the_recorded_interruptions_advice_as_information_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A type interrupted far more than the pool's others: plan says to consider dropping it,
    in its advice, and proposes no change for it."""
    from ecsspot import store
    from ecsspot_cli import output

    with Simulator(seed=9) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        manager = Manager(region="us-east-1", clock=sim.clock)
        manager.apply(spec)
        for _ in range(4):
            manager.run(single(store.count_interruption_call(spec.table_name, "m5d.large", "us-east-1a", now=sim.now())))
        plan = manager.plan(spec)
        assert not plan.has_changes
        assert plan.advice == (
            f"pool spot: consider dropping m5d.large: 4 interruptions since {day(sim.now() - 29 * 86400)}, the pool's median is 0 "
            "(ecsspot advise -f SPEC adds zones and placement scores)",
        )
        assert output.render_plan(plan).splitlines()[-2:] == ["Advice (information, not a change):", f"  {plan.advice[0]}"]


def single(c: Any) -> Iterator[Any]:
    yield c


def day(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%d")
