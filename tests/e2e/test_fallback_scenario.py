"""The spot → on-demand fallback on the simulator, driven by the refresh Lambda's schedule and the CLI.

Issue 14's scenario: spot capacity disappears from the spot pool for 30 virtual minutes while the
service grows; tasks keep being placed (on on-demand instances of the same pool, within
``fallback.max_on_demand``) and none stays PROVISIONING past the threshold; when spot returns,
after the cool-down the pool is back on spot and its on-demand surplus drained with no failed
request; a spot market blinking on and off does not flap the pool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from ecsspot.sim import Simulator, scenario
from ecsspot.spec import Fallback
from ecsspot_cli.main import cli

CLUSTER = "demo-api"
GROUP = "demo-api-spot"
#: The Terraform module's refresh schedule (``var.refresh_schedule``: rate(5 minutes)).
TICK = 300.0
#: No task may wait PROVISIONING longer: detect_after, one schedule period, boot and placement.
PROVISIONING_LIMIT = 15 * 60.0
FALLBACK = Fallback(enabled=True, detect_after="5m", cooldown="15m", max_on_demand=6)


pytestmark = pytest.mark.usefixtures("simulated_account")


@attrs.define
class Run:
    """The cluster, its scheduled tick, and what the test watches between ticks."""

    sim: Simulator
    stack: scenario.Stack
    tick: Any
    #: Task ARN → when it was first seen PROVISIONING.
    provisioning: dict[str, float] = attrs.field(factory=dict)
    longest_wait: float = 0.0
    most_on_demand: int = 0
    #: The group's OnDemandBaseCapacity after each tick.
    bases: list[int] = attrs.field(factory=list)
    #: Every fallback action of every tick: (virtual time, kind, status, base).
    decisions: list[tuple[float, str, str, Any]] = attrs.field(factory=list)

    def watch(self) -> None:
        ecs = self.sim.client("ecs")
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        now = self.sim.now()
        waiting = {t["taskArn"] for t in tasks if t["lastStatus"] == "PROVISIONING"}
        for arn in waiting:
            self.longest_wait = max(self.longest_wait, now - self.provisioning.setdefault(arn, now))
        self.provisioning = {a: t for a, t in self.provisioning.items() if a in waiting}
        self.most_on_demand = max(self.most_on_demand, on_demand_units(self.sim))

    def play(self, seconds: float) -> None:
        """``seconds`` of virtual time: a look every 30 s, the scheduled tick every TICK."""
        end = self.sim.now() + seconds
        while self.sim.now() < end:
            for _ in range(int(TICK // 30)):
                self.sim.advance(30)
                self.watch()
            result = self.tick.refresh({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
            assert result["fallback"]["status"] == "done", result["fallback"]
            self.decisions += [(self.sim.now(), a["kind"], a["status"], a.get("reason")) for a in result["fallback"]["actions"]]
            self.bases.append(base(self.sim))


def on_demand_units(sim: Simulator) -> int:
    return sum(1 for m in sim.world.machines.values() if m.group == GROUP and m.terminated_at is None and m.lifecycle != "spot")


def base(sim: Simulator) -> int:
    g = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return int(g["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandBaseCapacity"])


@pytest.fixture(name="run")
def fixture_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """The demo stack (managed scaling, ecsspot's interruption handler wired) with fallback on,
    8 tasks serving 20 requests a second; the refresh Lambda's tick on the simulator's clock."""
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers

    with Simulator(seed=14, managed_scaling=True) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        stack = scenario.build(sim, scenario.DemoConfig(tasks=8, rps=20, managed_scaling=True))
        spec = attrs.evolve(stack.spec, fallback=FALLBACK)
        stack.manager.apply(spec)
        stack = attrs.evolve(stack, spec=spec)
        tick = Handlers(Driver(ClientOptions(region=sim.region), clock=sim.clock), default_cluster=CLUSTER, refresh_on_schedule=False)
        yield Run(sim, stack, tick)


def grow(sim: Simulator, tasks: int) -> None:
    sim.client("ecs").update_service(cluster=CLUSTER, service="web", desiredCount=tasks)


def test_spot_gone_for_30_minutes_under_load_falls_back_on_demand_and_comes_back(run: Run) -> None:
    sim = run.sim
    run.play(TICK)
    assert on_demand_units(sim) == 0 and {k for _, k, _, _ in run.decisions} == {"watch"}

    sim.set_spot_capacity(False, group=GROUP)
    gone = sim.now()
    grow(sim, 14)  # six more tasks: three more instances, none of which spot can give
    run.play(30 * 60)
    for line in run.decisions:
        print(line)
    assert any(k == "fallback" and s == "done" for _, k, s, _ in run.decisions)
    # A try at spot while it is still gone finds it short and keeps the on-demand instance.
    assert not any(k == "drain" and s == "done" for _, k, s, _ in run.decisions)
    assert on_demand_units(sim) > 0 and max(run.bases) <= FALLBACK.max_on_demand
    assert sim.client("ecs").describe_services(cluster=CLUSTER, services=["web"])["services"][0]["runningCount"] == 14
    assert run.longest_wait <= PROVISIONING_LIMIT, run.longest_wait
    assert run.most_on_demand <= FALLBACK.max_on_demand
    # plan neither reverts the raised base (apply would undo the fallback) nor hides it.
    during = run.stack.manager.plan(run.stack.spec)
    assert not [c for c in during.changes if c.resource == "autoscaling_group" and "on_demand_base_capacity" in c.diff], during.changes
    assert any(a.startswith("pool spot runs on demand since ") for a in during.advice), during.advice

    sim.set_spot_capacity(True, group=GROUP)
    returned = sim.now()
    run.play(75 * 60)
    for line in run.decisions:
        print(line)
    restores = [t for t, k, s, _ in run.decisions if k == "restore" and s == "done" and t > returned]
    assert restores and restores[0] - gone >= 30 * 60
    drains = [s for t, k, s, _ in run.decisions if k == "drain" and t > returned]
    assert drains and set(drains) == {"done"}
    assert base(sim) == 0 and on_demand_units(sim) == 0
    stats = sim.traffic_stats(run.stack.target_group_arn)
    assert stats.requests > 0 and stats.failed == 0, stats
    assert sim.client("ecs").describe_services(cluster=CLUSTER, services=["web"])["services"][0]["runningCount"] == 14
    assert run.longest_wait <= PROVISIONING_LIMIT, run.longest_wait


def test_spot_blinking_on_and_off_does_not_flap_the_pool(run: Run) -> None:
    sim = run.sim
    sim.set_spot_capacity(False, group=GROUP)
    grow(sim, 14)
    run.play(15 * 60)
    assert any(k == "fallback" and s == "done" for _, k, s, _ in run.decisions)
    # For 40 minutes spot comes back for 5 minutes and goes for 5; the service grows while it is
    # gone and shrinks while it is back, so the group keeps meeting the shortage.
    start = sim.now()
    for n in range(8):
        gone = n % 2 == 0
        sim.set_spot_capacity(not gone, group=GROUP)
        grow(sim, 16 if gone else 14)
        run.play(TICK)
    blinking = [(k, s, why) for t, k, s, why in run.decisions if t > start]
    # At most one try at spot in the 40 minutes (a failure restarts the 15 min cool-down, and a
    # try that finds spot gone again doubles it), never an on-demand instance drained without a
    # spot instance up first.
    assert sum(1 for k, _, _ in blinking if k == "restore") <= 1, blinking
    retried = [why for k, _, why in blinking if k == "fallback" and "still short after the restore" in why]
    assert all("next try after 30 min" in why for why in retried)
    sim.set_spot_capacity(True, group=GROUP)
    steady = sim.now()
    run.play(45 * 60)
    after = [(t, k, s) for t, k, s, _ in run.decisions if t > steady]
    assert sum(1 for _, k, _ in after if k == "restore") == 1 and all(s == "done" for _, k, s in after if k == "drain")
    assert base(sim) == 0 and on_demand_units(sim) == 0
    assert sim.traffic_stats(run.stack.target_group_arn).failed == 0


def cli_tick(*extra: str) -> Result:
    return CliRunner().invoke(cli, ["-o", "json", "fallback", "tick", CLUSTER, *extra], catch_exceptions=False)


def test_the_cli_tick_is_a_dry_run_unless_applied(run: Run) -> None:
    sim = run.sim
    # The applied fallback settings are recorded: a re-plan is empty.
    assert run.stack.manager.plan(run.stack.spec).changes == ()
    sim.set_spot_capacity(False, group=GROUP)
    grow(sim, 14)
    sim.advance(60)
    first = cli_tick()
    assert first.exit_code == 0, first.stderr
    (action,) = json.loads(first.stdout)["actions"]
    assert (action["kind"], action["status"], action["pool"]) == ("watch", "waiting", "spot")
    assert "detect_after" in action["reason"] and "Could not launch Spot Instances" in action["reason"]

    sim.advance(6 * 60)
    planned = CliRunner().invoke(cli, ["fallback", "tick", CLUSTER], catch_exceptions=False)
    assert planned.exit_code == 0 and "dry run: nothing changed" in planned.stdout
    assert planned.stderr.startswith(f"ecsspot: fallback: reading the spot pools of cluster {CLUSTER}")  # progress, off a terminal
    assert any(line.split()[:3] == ["fallback", "spot", "planned"] for line in planned.stdout.splitlines()), planned.stdout
    assert base(sim) == 0

    applied = cli_tick("--apply")
    assert applied.exit_code == 0, applied.stderr
    (action,) = json.loads(applied.stdout)["actions"]
    assert (action["kind"], action["status"]) == ("fallback", "done") and base(sim) == action["base"] > 0
