"""The protection reconciler and the drain watchdog through the CLI, on the simulator.

The CLI runs in-process (click's runner) against the in-process simulator, on the simulator's
clock: the driver's default clock is the simulator's, so "idle for 10 minutes" and "DRAINING
for an hour" pass in virtual time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from ecsspot import Manager, load_spec, store
from ecsspot.sim import Simulator, scenario
from ecsspot.spec import Protection, Watchdog
from ecsspot_cli.main import cli
from tests.conftest import demo_spec_dict
from tests.sim.stack import launch_template, mixed_group

CLUSTER = "demo-api"


pytestmark = pytest.mark.usefixtures("simulated_account")


def on_sim_clock(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    """The CLI's Manager keeps the simulator's time (its driver's default clock)."""
    monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)


def ecsspot(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def document(result: Result) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def by_instance(result: Result) -> dict[str, dict[str, Any]]:
    return {a["instance_id"]: a for a in document(result)["actions"]}


def group(sim: Simulator, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return answer


def instance_of_task(sim: Simulator, service: str) -> set[str]:
    ecs = sim.client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]
    listed = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    cis = {c["containerInstanceArn"]: c["ec2InstanceId"] for c in ecs.describe_container_instances(cluster=CLUSTER, containerInstances=listed)["containerInstances"]}
    return {cis[t["containerInstanceArn"]] for t in ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]} if arns else set()


# --- protection ------------------------------------------------------------------------------


@pytest.fixture(name="idle_cluster")
def fixture_idle_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """The demo spec (protection idle_after 10m) on a simulator where managed termination
    protection keeps daemon-only instances protected (containers-roadmap#2814): a web service
    grown to 8 tasks and shrunk to 1, a daemon on every instance."""
    with Simulator(seed=5, managed_scaling=True, protection_keeps_daemon_only=True) as sim:
        on_sim_clock(monkeypatch, sim)
        spec = attrs.evolve(load_spec(demo_spec_dict()), protection=Protection(idle_after="10m"))
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        ecs = sim.client("ecs")
        ecs.register_task_definition(family="agent", containerDefinitions=[{"name": "a", "image": "x", "cpu": 64, "memory": 64}])
        ecs.register_task_definition(family="web", containerDefinitions=[{"name": "w", "image": "x", "cpu": 1024, "memory": 512}])
        ecs.create_service(cluster=CLUSTER, serviceName="agent", taskDefinition="agent", schedulingStrategy="DAEMON", launchType="EC2")
        ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition="web", desiredCount=8)
        running = lambda: ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]["runningCount"]  # noqa: E731
        assert sim.run_until(lambda: running() == 8, timeout=900, step=10)
        ecs.update_service(cluster=CLUSTER, service="web", desiredCount=1)
        sim.advance(5 * 60)
        yield sim


def test_idle_protected_instances_lose_protection_after_the_threshold_and_are_scaled_in(idle_cluster: Simulator) -> None:
    sim = idle_cluster
    busy = instance_of_task(sim, "web")
    idle = sorted(i["InstanceId"] for i in group(sim, "demo-api-spot")["Instances"] if i["InstanceId"] not in busy and i["ProtectedFromScaleIn"])
    assert idle, "daemon-only instances stay protected (#2814)"

    # A dry run: the idle clock starts, nothing changes.
    first = ecsspot("-o", "json", "protection", CLUSTER)
    assert first.exit_code == 0, first.stderr
    actions = by_instance(first)
    assert {actions[i]["kind"] for i in idle} == {"wait"}
    assert actions[idle[0]]["reason"].startswith("only 1 daemon task(s) for 0 s of the 10 min idle_after")
    assert not any(a["kind"] in ("unprotect", "protect") for a in actions.values())

    sim.advance(11 * 60)
    planned = ecsspot("protection", CLUSTER)  # text, still a dry run
    assert planned.exit_code == 0, planned.stderr
    assert "dry run: nothing changed" in planned.stdout
    assert all(any(line.split()[:3] == ["unprotect", i, "planned"] for line in planned.stdout.splitlines()) for i in idle)
    assert all(i["ProtectedFromScaleIn"] for i in group(sim, "demo-api-spot")["Instances"] if i["InstanceId"] in idle)

    applied = ecsspot("-o", "json", "protection", CLUSTER, "--apply")
    assert applied.exit_code == 0, applied.stderr
    assert {by_instance(applied)[i]["status"] for i in idle} == {"done"}
    assert all(by_instance(applied)[i]["kind"] == "unprotect" for i in idle)
    # The busy instances keep theirs; nothing was asked of them.
    assert not any(i in by_instance(applied) for i in busy)

    # Managed scaling wanted fewer instances all along; now Auto Scaling can take the idle ones.
    assert sim.run_until(lambda: not {i["InstanceId"] for i in group(sim, "demo-api-spot")["Instances"] if i["LifecycleState"] == "InService"} & set(idle), timeout=30 * 60, step=30)
    in_service = {i["InstanceId"] for i in group(sim, "demo-api-spot")["Instances"] if i["LifecycleState"] == "InService"}
    assert busy & {i["InstanceId"] for i in group(sim, "demo-api-spot")["Instances"]} <= in_service  # the task's instance stays


def test_a_foreign_group_in_the_cluster_is_ignored(idle_cluster: Simulator) -> None:
    sim = idle_cluster
    # Someone else's group joins the cluster: protected, idle, not ecsspot's.
    mixed_group(sim, "theirs", launch_template(sim, "theirs-lt", CLUSTER), desired=1, percent=100, NewInstancesProtectedFromScaleIn=True)
    sim.advance(120)
    (theirs,) = (i["InstanceId"] for i in group(sim, "theirs")["Instances"])

    ecsspot("protection", CLUSTER)
    sim.advance(11 * 60)
    result = ecsspot("-o", "json", "protection", CLUSTER, "--apply")

    assert result.exit_code == 0, result.stderr
    action = by_instance(result)[theirs]
    assert (action["kind"], action["status"]) == ("ignore", "ignored")
    assert action["reason"] == f"container instance of {CLUSTER} in group theirs, not one of ecsspot's pools"
    assert group(sim, "theirs")["Instances"][0]["ProtectedFromScaleIn"] is True


def test_protection_of_a_cluster_never_applied_exits_7(idle_cluster: Simulator) -> None:
    result = ecsspot("protection", "no-such-cluster")
    assert result.exit_code == 7
    assert result.stderr.strip() == "ecsspot: error: cluster no-such-cluster: no ecsspot settings recorded (no table ecsspot-no-such-cluster, or never applied)"


# --- watchdog --------------------------------------------------------------------------------


@pytest.fixture(name="stuck")
def fixture_stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Simulator, scenario.Stack, str]]:
    """A full cluster (3 instances, 2 tasks each, no room to grow) with watchdog.drain_timeout
    10m, one spot instance set DRAINING by hand: its tasks cannot be placed anywhere."""
    with Simulator(seed=7) as sim:
        on_sim_clock(monkeypatch, sim)
        config = scenario.DemoConfig(spot_instances=2, on_demand_instances=1, tasks=6, rps=2, handle_events=False, managed_scaling=False)
        stack = scenario.build(sim, config)
        spec = attrs.evolve(stack.spec, watchdog=Watchdog(drain_timeout="10m"))
        stack.manager.apply(spec)
        stack = attrs.evolve(stack, spec=spec)
        victim = sorted(sim.spot_instances())[0]
        ecs = sim.client("ecs")
        arn = next(c["containerInstanceArn"] for c in ecs.describe_container_instances(
            cluster=CLUSTER, containerInstances=ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"])["containerInstances"]
            if c["ec2InstanceId"] == victim)
        ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[arn], status="DRAINING")
        sim.advance(60)
        yield sim, stack, victim


def status_of(sim: Simulator, instance_id: str) -> str:
    ecs = sim.client("ecs")
    listed = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    return str(next(c["status"] for c in ecs.describe_container_instances(cluster=CLUSTER, containerInstances=listed)["containerInstances"] if c["ec2InstanceId"] == instance_id))


def test_an_instance_stuck_draining_is_reported_then_reactivated(stuck: tuple[Simulator, scenario.Stack, str]) -> None:
    sim, stack, victim = stuck
    first = ecsspot("-o", "json", "watchdog", CLUSTER)
    assert first.exit_code == 0, first.stderr
    assert (by_instance(first)[victim]["kind"], by_instance(first)[victim]["status"]) == ("watch", "waiting")

    sim.advance(11 * 60)
    report = ecsspot("-o", "json", "watchdog", CLUSTER)
    assert report.exit_code == 6  # a stuck instance left DRAINING
    action = by_instance(report)[victim]
    assert (action["kind"], action["status"]) == ("stuck", "reported")
    assert len(action["tasks"]) == 2 and all("(service:web, RUNNING)" in t for t in action["tasks"])
    (line,) = action["services"]
    assert line.startswith("service web ") and "was unable to place a task because no container instance met all of its requirements" in line
    assert status_of(sim, victim) == "DRAINING"
    assert "stuck DRAINING past the drain_timeout: " + victim in report.stderr

    fixed = ecsspot("-o", "json", "watchdog", CLUSTER, "--reactivate")
    assert fixed.exit_code == 0, fixed.stderr
    assert by_instance(fixed)[victim]["status"] == "reactivated"
    assert status_of(sim, victim) == "ACTIVE"
    record = Manager(region="us-east-1", clock=sim.clock).run(store.get_document(stack.spec.table_name, f"watchdog#{victim}", "reactivated"))
    assert record is not None and record["reason"] == by_instance(fixed)[victim]["reason"] and len(record["tasks"]) == 2
    # Its tasks serve again: their targets are back in the target group.
    sim.advance(60)
    states = sim.client("elbv2").describe_target_health(TargetGroupArn=stack.target_group_arn)["TargetHealthDescriptions"]
    assert {d["TargetHealth"]["State"] for d in states if d["Target"]["Id"] == victim} == {"healthy"}


@pytest.mark.parametrize("why", ["lease", "doomed", "refresh"])
def test_the_watchdog_never_reactivates_an_instance_being_taken_out(stuck: tuple[Simulator, scenario.Stack, str], why: str) -> None:
    sim, stack, victim = stuck
    m = Manager(region="us-east-1", clock=sim.clock)
    ecsspot("watchdog", CLUSTER)
    sim.advance(11 * 60)
    table = stack.spec.table_name
    if why == "lease":
        m.run(store.acquire_leases(table, [f"drain#{victim}"], "someone-draining", now=sim.now(), ttl=600))
    elif why == "doomed":
        m.run(_doom(table, victim, sim.now()))
    else:  # a refresh paused between two Lambda invocations: its progress saved, no lease held
        m.run(store.put_document(table, "refresh", "progress", {"phase": "rolling", "image_id": "ami-12345678"}, now=sim.now()))

    result = ecsspot("-o", "json", "watchdog", CLUSTER, "--reactivate")

    assert result.exit_code == 6
    action = by_instance(result)[victim]
    assert action["status"] == "kept"
    expected = {
        "lease": "its drain lease is held: ecsspot is draining it right now",
        "doomed": "it is going away (spot interruption warning or terminate lifecycle hook)",
        "refresh": "a rolling refresh of the cluster is in progress",
    }[why]
    assert action["reason"].endswith("kept DRAINING: " + expected)
    assert status_of(sim, victim) == "DRAINING"


def _doom(table: str, instance_id: str, now: float) -> Any:
    yield store.mark_doomed_call(table, instance_id, "spot interruption warning", now=now)


def test_the_scheduled_refresh_tick_runs_the_watchdog_and_the_reconciler(stuck: tuple[Simulator, scenario.Stack, str]) -> None:
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers

    sim, stack, victim = stuck
    spec = attrs.evolve(stack.spec, watchdog=Watchdog(drain_timeout="10m", reactivate=True), protection=Protection(on_schedule=True))
    stack.manager.apply(spec)
    tick = Handlers(Driver(ClientOptions(region=sim.region), clock=sim.clock), default_cluster=CLUSTER, refresh_on_schedule=False)
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    first = tick.refresh(schedule)
    assert first["watchdog"]["status"] == "done"
    assert {(a["instance_id"], a["status"]) for a in first["watchdog"]["actions"]} == {(victim, "waiting")}
    assert first["protection"] == {"status": "done", "actions": []}  # every instance busy and protected
    sim.advance(11 * 60)

    second = tick.refresh(schedule)
    assert {(a["instance_id"], a["kind"], a["status"]) for a in second["watchdog"]["actions"]} == {(victim, "stuck", "reactivated")}
    assert status_of(sim, victim) == "ACTIVE"
    assert second["status"] == first["status"]  # the refresh part answers as before


def test_an_unexpected_error_in_a_duty_is_reported_and_never_fails_the_refresh_tick(
    stuck: tuple[Simulator, scenario.Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect nobody mapped in the watchdog must not turn the refresh tick into a failed
    invocation (the refresh part already answered): it is reported in the tick's result."""
    from ecsspot import watchdog
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers

    sim, stack, _ = stuck

    def broken(*args: object, **kwargs: object) -> Iterator[object]:
        raise KeyError("containerInstanceArn")  # on its first step, as a workflow's defect would
        yield  # a generator, like every workflow

    monkeypatch.setattr(watchdog, "watch", broken)
    tick = Handlers(Driver(ClientOptions(region=sim.region), clock=sim.clock), default_cluster=CLUSTER, refresh_on_schedule=False)
    result = tick.refresh({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert result["watchdog"] == {"status": "failed", "reason": "unexpected KeyError: 'containerInstanceArn'"}
    assert "status" in result  # the refresh part answered
