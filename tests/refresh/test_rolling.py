"""Rolling AMI refresh end to end on the simulator: a live service, leases, Lambda ticks, rollback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecsspot.errors import ConflictError
from ecsspot.refresh import LEASE_SECONDS, progress_of, summary
from ecsspot.sim import Simulator
from tests.conftest import REGION, SyncOrAsync
from tests.refresh.stack import (
    CLUSTER,
    active_instances,
    assert_refreshed,
    build,
    draining_marks,
    lowest_active,
    manager,
    min_healthy,
    placements_after_marking,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture(params=["sync", "async"], name="driven")
def driven_fixture(request: pytest.FixtureRequest) -> Iterator[tuple[Simulator, SyncOrAsync]]:
    """The simulator and a manager on either driver (aiobotocore needs the simulator's server)."""
    with Simulator(region=REGION, seed=11, server=request.param == "async") as sim:
        m = SyncOrAsync(request.param, region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock)
        yield sim, m
        m.close()


def test_full_refresh_with_live_service_drops_no_request(driven: tuple[Simulator, SyncOrAsync]) -> None:
    sim, m = driven
    c = build(sim, spot=2, on_demand=2, tasks=4, deregistration_delay=30, rps=50)
    old = {p: c.members(p) for p in ("spot", "on-demand")}
    image = c.new_images[0]
    start, since = sim.now(), len(sim.history)
    steps: list[tuple[str, str, str | None]] = []

    def progress(p: Any) -> None:
        for pool in p["pools"]:
            step = (pool["pool"], pool["state"], (pool["batch"] or {}).get("step"))
            if not steps or steps[-1] != step:
                steps.append(step)

    result = m.refresh(CLUSTER, ami=image, on_progress=progress)

    assert result.status == "done", result.reason
    assert sorted(result.replaced) == sorted(old["spot"] + old["on-demand"])
    assert result.new_version == 2 and result.previous_version == 1
    traffic = sim.traffic_stats(c.target_group_arn)
    assert traffic.requests > 0
    assert (traffic.failed, traffic.no_target) == (0, 0), traffic
    assert_refreshed(c, image, sizes={"spot": 2, "on-demand": 2}, version="2")
    assert {p: c.sizes(p) for p in ("spot", "on-demand")} == {"spot": (0, 20, 2), "on-demand": (1, 4, 2)}
    # Marked means DRAINING: from then on nothing is placed there, and each old instance is marked once.
    assert placements_after_marking(sim) == []
    assert draining_marks(sim, since) == {i: 1 for i in old["spot"] + old["on-demand"]}
    # New capacity first: ACTIVE instances per pool never below min_healthy_percent (90 % of 2).
    assert lowest_active(sim, since) == {f"{CLUSTER}-spot": min_healthy(2), f"{CLUSTER}-on-demand": min_healthy(2)}
    # Batch by batch, pool after pool.
    batches = [s for s in steps if s[2] == "scale_up"]
    assert [b[0] for b in batches] == ["spot", "spot", "on-demand", "on-demand"]
    sim.advance(60)
    service = sim.client("ecs").describe_services(cluster=CLUSTER, services=["web"])["services"][0]
    assert (service["runningCount"], service["desiredCount"]) == (4, 4)
    assert set(c.images(active_instances(sim)).values()) == {image}
    assert sim.now() - start < 900


def test_nothing_to_do_when_every_pool_runs_the_image(sim: Simulator) -> None:
    c = build(sim, spot=1, on_demand=1)
    result = c.manager.refresh(CLUSTER, ami=c.original_image)
    assert result.status == "up_to_date"
    assert c.version_of("spot") == "1"
    assert c.manager.run(progress_of(CLUSTER)) is None


def test_two_refreshers_at_once_one_gets_the_lease(sim: Simulator, run_cli: Any) -> None:
    c = build(sim, spot=1, on_demand=1)
    image = c.new_images[0]
    second = manager(sim)
    seen: dict[str, Any] = {}

    def meanwhile(p: Any) -> None:
        if seen:
            return
        with pytest.raises(ConflictError) as info:
            second.refresh(CLUSTER, ami=image)
        seen["api"] = str(info.value)
        seen["cli"] = run_cli("--output", "json", "refresh", CLUSTER, "--ami", image, "--resume")

    result = c.manager.refresh(CLUSTER, ami=image, on_progress=meanwhile)

    assert result.status == "done"
    assert "another refresh of demo-api holds its lease" in seen["api"]
    cli = seen["cli"]
    assert cli.exit_code == 5, cli.stderr
    assert cli.stdout == ""
    assert cli.stderr.startswith("ecsspot: error: another refresh of demo-api holds its lease")
    assert len(cli.stderr.strip().splitlines()) == 1
    # Once the first is done, the lease is free again and there is nothing left to do.
    assert second.refresh(CLUSTER, ami=image).status == "up_to_date"


def test_a_refresh_in_progress_is_only_continued_with_resume(sim: Simulator, run_cli: Any) -> None:
    c = build(sim, spot=1, on_demand=1)
    image = c.new_images[0]
    now = sim.now()
    paused = c.manager.run(_refresh(c, image, stop_at=now + 45))  # stops while the first new instance boots
    assert paused.status == "paused"
    again = run_cli("refresh", CLUSTER, "--ami", image)
    assert again.exit_code == 5
    assert "in progress" in again.stderr and "--resume" in again.stderr
    resumed = run_cli("--output", "json", "refresh", CLUSTER, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json["status"] == "done" and resumed.json["image_id"] == image
    assert "spot: 1/1 replaced" in resumed.stderr  # progress lines on stderr, JSON alone on stdout
    assert_refreshed(c, image, sizes={"spot": 1, "on-demand": 1})


def _refresh(c: Any, image: str, **kwargs: Any) -> Any:
    from ecsspot.refresh import refresh

    return refresh(CLUSTER, owner=c.manager.owner, ami=image, **kwargs)


class LambdaContext:
    """What Lambda passes a handler: the remaining time follows the simulator's clock."""

    def __init__(self, sim: Simulator, seconds: float = 900.0) -> None:
        self.sim = sim
        self.deadline = sim.now() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(max(self.deadline - self.sim.now(), 0) * 1000)


def test_lambda_stops_within_its_900_seconds_and_the_next_tick_finishes(sim: Simulator) -> None:
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers
    from tests.conftest import demo_spec_dict

    parameter = "/ecsspot/demo-api/ami"
    d = demo_spec_dict(None)
    d["refresh"]["ami_parameter"] = parameter
    # A long deregistration delay: each batch takes ~5 minutes, four of them do not fit in one run.
    c = build(sim, spot=2, on_demand=2, tasks=4, deregistration_delay=200, rps=20, spec=d)
    ssm = sim.client("ssm")
    ssm.put_parameter(Name=parameter, Value=c.original_image, Type="String")
    handlers = Handlers(Driver(ClientOptions(region="us-east-1"), clock=sim.clock), default_cluster=CLUSTER)
    tick = {"version": "0", "id": "tick-1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
            "time": "2023-11-14T22:13:20Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/ecsspot-refresh"], "detail": {}}

    # A tick with nothing new to do.
    assert handlers.refresh(tick, LambdaContext(sim))["status"] == "up_to_date"

    # A new image published: Parameter Store Change starts the refresh.
    image = c.new_images[0]
    ssm.put_parameter(Name=parameter, Value=image, Type="String", Overwrite=True)
    change = json.loads((EVENTS / "ssm-parameter-change-update.json").read_text())
    change["detail"]["name"], change["region"] = parameter, "us-east-1"
    start = sim.now()
    first = handlers.refresh(change, LambdaContext(sim))
    used = sim.now() - start
    assert first["status"] == "paused", first
    assert used <= 900 - 30, used  # stopped with a margin to save and return
    saved = c.manager.run(progress_of(CLUSTER))
    assert saved["phase"] == "rolling" and saved["image_id"] == image
    shown = summary(saved)
    assert shown is not None and shown["phase"] == "rolling"
    assert 0 < sum(p["replaced"] for p in shown["pools"]) < 4
    assert c.manager.status(CLUSTER).refresh == shown  # status shows the refresh under way
    # The lease went back with the return: the next invocation may be another container.
    later = Handlers(Driver(ClientOptions(region="us-east-1"), clock=sim.clock), default_cluster=CLUSTER)
    second = later.refresh(tick, LambdaContext(sim))
    assert second["status"] == "done", second
    assert set(first["replaced"]) < set(second["replaced"]) and len(second["replaced"]) == 4
    assert sim.traffic_stats(c.target_group_arn).failed == 0
    assert_refreshed(c, image, sizes={"spot": 2, "on-demand": 2})
    assert summary(c.manager.run(progress_of(CLUSTER))) is None  # done: nothing under way
    assert c.manager.status(CLUSTER).refresh is None
    # Nothing in progress and no new image: the schedule's next tick has nothing to do.
    assert later.refresh(tick, LambdaContext(sim))["status"] == "up_to_date"


def test_an_old_instance_lost_mid_refresh_is_not_replaced_twice(sim: Simulator) -> None:
    c = build(sim, spot=2, on_demand=1)
    image = c.new_images[0]
    reclaimed: list[str] = []

    def reclaim_during_first_drain(p: Any) -> None:
        spot = p["pools"][0]
        batch = spot["batch"] or {}
        if not reclaimed and batch.get("step") == "drain":
            reclaimed.extend(sim.interrupt(batch["old"]))

    result = c.manager.refresh(CLUSTER, ami=image, on_progress=reclaim_during_first_drain)

    assert result.status == "done", result.reason
    assert len(reclaimed) == 1
    # The group's own replacement of the reclaimed instance stood in for the next batch's new capacity.
    spot = result.progress["pools"][0]
    assert spot["surplus"] == 0
    sim.advance(180)
    assert_refreshed(c, image, sizes={"spot": 2, "on-demand": 1})
    launched = [r.subject for r in sim.records("ec2.launched") if r.detail["group"] == f"{CLUSTER}-spot"]
    assert len(launched) == 2 + 2  # the original two, one for the first batch, the reclaimed one's replacement


def test_rollback_when_new_instances_never_register(sim: Simulator, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    bad = c.new_images[0]
    _agent_never_starts_on(monkeypatch, sim, bad)
    old = {p: c.members(p) for p in ("spot", "on-demand")}
    since = len(sim.history)
    start = sim.now()

    result = run_cli("--output", "json", "refresh", CLUSTER, "--ami", bad)

    assert result.exit_code == 6, result.stderr
    report = result.json
    assert report["status"] == "rolled_back"
    assert "did not become ACTIVE container instances within 600 s" in report["reason"]
    assert report["reason"].startswith("pool spot: 1 new instance(s) on " + bad)
    assert report["replaced"] == []
    assert [(p["pool"], p["state"]) for p in report["progress"]["pools"]] == [("spot", "rolled_back"), ("on-demand", "rolled_back")]
    assert result.stderr.strip().splitlines()[-1] == f"ecsspot: error: refresh rolled back: {report['reason']}"
    assert sim.now() - start >= 600
    # The original instances are untouched: never marked, still ACTIVE; the new one is gone.
    assert draining_marks(sim, since) == {}
    sim.advance(60)
    for pool in ("spot", "on-demand"):
        assert c.members(pool) == old[pool]
        assert c.version_of(pool) == "1"
    assert {p: c.sizes(p) for p in ("spot", "on-demand")} == {"spot": (0, 20, 2), "on-demand": (1, 4, 2)}
    assert set(active_instances(sim)) == set(old["spot"] + old["on-demand"])
    assert sim.traffic_stats(c.target_group_arn).failed == 0
    assert len(sim.records("agent.broken")) == 1  # one batch's worth was launched, and only that
    # Rolled back is not "in progress": the next refresh starts afresh (no --resume needed).
    assert c.manager.run(progress_of(CLUSTER))["phase"] == "rolled_back"
    assert summary(c.manager.run(progress_of(CLUSTER))) is None


def _agent_never_starts_on(monkeypatch: pytest.MonkeyPatch, sim: Simulator, image: str) -> None:
    """An AMI without a working ECS agent: its instances boot and never register.

    The simulator's agent starts on every instance; this wraps its start for one image (the
    simulator has no control for it; see the report for the one proposed).
    """
    from ecsspot.sim.agent import Agent

    original = Agent._start

    def start(self: Agent, instance_id: str) -> None:
        instance = self.world.ec2.get_instance_by_id(instance_id)
        if instance is not None and instance.image_id == image:
            self.world.record("agent.broken", instance_id, image=image)
            return
        original(self, instance_id)

    monkeypatch.setattr(Agent, "_start", start)


def test_lease_expires_so_a_crashed_refresher_can_be_resumed(sim: Simulator) -> None:
    from tests.refresh.stack import Crash, crashing_manager

    c = build(sim, spot=1, on_demand=1)
    image = c.new_images[0]
    crashing, driver = crashing_manager(sim, crash_after=6)
    with pytest.raises(Crash):
        crashing.refresh(CLUSTER, ami=image)
    other = manager(sim)
    with pytest.raises(ConflictError, match=r"for another \d+ s.*--resume once the lease has expired"):
        other.refresh(CLUSTER, resume=True)
    sim.advance(LEASE_SECONDS + 1)
    assert other.refresh(CLUSTER, resume=True).status == "done"
    assert_refreshed(c, image, sizes={"spot": 1, "on-demand": 1})


def test_ctrl_c_gives_the_lease_back_so_resume_continues_at_once(sim: Simulator, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecsspot_cli import main
    from tests.refresh.stack import crashing_manager

    c = build(sim, spot=1, on_demand=1)
    image = c.new_images[0]
    original = main.Context.manager
    # Ctrl-C right after the first pool's new capacity was asked for (the scale-up).
    scale_up = lambda call: call.operation == "update_auto_scaling_group" and "DesiredCapacity" in call.params  # noqa: E731
    monkeypatch.setattr(main.Context, "manager", lambda self, spec_region=None: crashing_manager(sim, crash_on=scale_up, crash=KeyboardInterrupt)[0])
    interrupted = run_cli("refresh", CLUSTER, "--ami", image)
    assert interrupted.exit_code == 130
    assert f"continue it with `ecsspot refresh {CLUSTER} --resume`" in interrupted.stderr
    assert c.group("spot")["DesiredCapacity"] == 2  # the scale-up happened; its step was not saved
    monkeypatch.setattr(main.Context, "manager", original)
    resumed = run_cli("--output", "json", "refresh", CLUSTER, "--resume")  # no lease to wait for
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json["status"] == "done"
    sim.advance(1)
    assert draining_marks(sim) == {i: 1 for i in resumed.json["replaced"]}
    assert_refreshed(c, image, sizes={"spot": 1, "on-demand": 1})


def test_a_resume_after_a_long_crash_still_verifies_the_drain(sim: Simulator) -> None:
    from tests.refresh.stack import Crash, crashing_manager

    # Targets drain for 1000 s; the process dies right after setting the first batch DRAINING and
    # is resumed 901 s later, past the drain's 600 s: the resumed drain must still wait it out.
    c = build(sim, spot=1, on_demand=1, tasks=2, deregistration_delay=1000, rps=10)
    image = c.new_images[0]
    first = c.members("spot")[0]
    dies, _ = crashing_manager(sim, crash_on=lambda call: call.operation == "update_container_instances_state")
    with pytest.raises(Crash):
        dies.refresh(CLUSTER, ami=image)
    sim.advance(901)
    resumed = manager(sim).refresh(CLUSTER, resume=True)
    assert resumed.status == "done", resumed.reason

    unused = min(r.time for r in sim.records("target.state") if r.subject.startswith(first + ":") and r.detail["state"] == "unused")
    terminating = min(r.time for r in sim.records("asg.lifecycle", first) if r.detail["state"] == "Terminating")
    assert unused <= terminating
    assert sim.traffic_stats(c.target_group_arn).failed == 0
    assert_refreshed(c, image, sizes={"spot": 1, "on-demand": 1})


def test_the_lease_is_renewed_through_a_drain_longer_than_it(sim: Simulator) -> None:
    c = build(sim, spot=1, on_demand=1, tasks=2, deregistration_delay=400, rps=10)
    image = c.new_images[0]
    other = manager(sim)
    tried: list[float] = []

    def meanwhile(p: Any) -> None:
        batch = p["pools"][0]["batch"] or {}
        if batch.get("step") == "drain" and batch.get("drain_seconds", 0) > LEASE_SECONDS and not tried:
            tried.append(batch["drain_seconds"])
            with pytest.raises(ConflictError):
                other.refresh(CLUSTER, ami=image, resume=True)

    assert c.manager.refresh(CLUSTER, ami=image, on_progress=meanwhile).status == "done"
    assert tried, "the drain never outlasted a lease period"


def test_rollback_when_replacement_tasks_never_become_healthy(sim: Simulator, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """New instances register, but the service's tasks on the new image never pass health checks
    (an AMI that breaks the application): the batch's drain cannot finish, the refresh rolls back
    and the old instance it had set DRAINING takes tasks again."""
    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    bad = c.new_images[0]
    _tasks_never_healthy_on(monkeypatch, sim, bad)
    old = {p: c.members(p) for p in ("spot", "on-demand")}

    result = run_cli("--output", "json", "refresh", CLUSTER, "--ami", bad)

    assert result.exit_code == 6, result.stderr
    report = result.json
    assert report["status"] == "rolled_back"
    assert "replacement tasks did not become healthy on " + bad in report["reason"]
    assert "services below desired count: web" in report["reason"]
    assert report["replaced"] == []
    sim.advance(120)
    for pool in ("spot", "on-demand"):
        assert c.members(pool) == old[pool]
        assert c.version_of(pool) == "1"
    assert set(active_instances(sim)) == set(old["spot"] + old["on-demand"])  # none left DRAINING
    ecs = sim.client("ecs")
    assert ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]["runningCount"] == 4
    assert sim.traffic_stats(c.target_group_arn).failed == 0


def test_rollback_puts_the_old_instances_tasks_back_behind_the_load_balancer(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 5: the batch's drain deregistered the old instances' (instance, port)
    targets; ECS registers targets only when a task starts, so after the rollback sets those
    instances ACTIVE again their tasks, still running, must be registered again by us, or they
    serve nothing."""
    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    bad = c.new_images[0]
    _tasks_never_healthy_on(monkeypatch, sim, bad)
    _old_tasks_kept_until_replaced(monkeypatch, sim, bad)
    old = set(c.members("spot") + c.members("on-demand"))
    start = len(sim.history)

    result = manager(sim).refresh(CLUSTER, ami=bad)

    assert result.status == "rolled_back"
    sim.advance(1)
    drained = set(draining_marks(sim, start)) & old
    assert drained  # the batch's old instances were set DRAINING (and their targets deregistered)
    sim.advance(120)  # health checks of the targets registered again
    ecs = sim.client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName="web", desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    instance_of = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=list({t["containerInstanceArn"] for t in tasks}))["containerInstances"]}
    on_drained = [t for t in tasks if instance_of[t["containerInstanceArn"]] in drained and t["lastStatus"] == "RUNNING"]
    assert on_drained  # old tasks kept running through the failed batch: the case at hand
    health = sim.client("elbv2").describe_target_health(TargetGroupArn=c.target_group_arn)["TargetHealthDescriptions"]
    states = {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in health}
    for t in on_drained:
        (binding,) = t["containers"][0]["networkBindings"]
        assert states.get((instance_of[t["containerInstanceArn"]], binding["hostPort"])) == "healthy", (t["taskArn"], states)
    assert sim.traffic_stats(c.target_group_arn).failed == 0


def _old_tasks_kept_until_replaced(monkeypatch: pytest.MonkeyPatch, sim: Simulator, image: str) -> None:
    """ECS keeps a draining instance's tasks until their replacements are healthy (minimumHealthyPercent
    100) even once the drain deregistered their targets: the simulator stops a task whose target
    is not healthy at once, so the tasks off ``image`` count as healthy here whatever their targets say."""
    from ecsspot.sim.scheduler import RUNNING, Scheduler

    original = Scheduler._healthy

    def healthy(self: Scheduler, run: Any) -> bool:
        instance = self.world.ec2.get_instance_by_id(run.instance_id)
        if instance is not None and instance.image_id != image and run.status == RUNNING and run.desired == RUNNING:
            return True
        return bool(original(self, run))

    monkeypatch.setattr(Scheduler, "_healthy", healthy)


def _tasks_never_healthy_on(monkeypatch: pytest.MonkeyPatch, sim: Simulator, image: str) -> None:
    """Tasks on instances of ``image`` run but fail every health check (the simulator has no control)."""
    from ecsspot.sim.scheduler import Scheduler

    original = Scheduler.listening

    def listening(self: Scheduler, instance_id: str, port: int) -> bool:
        instance = self.world.ec2.get_instance_by_id(instance_id)
        if instance is not None and instance.image_id == image and (instance_id, int(port)) in self._listeners:
            return False
        return original(self, instance_id, port)

    monkeypatch.setattr(Scheduler, "listening", listening)


def test_rollback_leaves_an_instance_the_spot_handler_drains_draining(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 item 8: a spot warning for an old instance arrives while its batch drains; the
    refresh then rolls back. The rollback sets the batch's other old instances ACTIVE again but
    not that one: it is going away, and a task placed on it now would be killed with it."""
    from tests.drain.conftest import handlers, spot_warning

    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    bad = c.new_images[0]
    _tasks_never_healthy_on(monkeypatch, sim, bad)
    interruption = handlers(sim, default_cluster=CLUSTER, owner="interruption-lambda")
    warned: list[tuple[str, float]] = []

    def on_progress(progress: dict[str, Any]) -> None:
        for pool in progress.get("pools", ()):
            batch = pool.get("batch") or {}
            if not warned and batch.get("step") == "drain":
                victim = batch["old"][0]
                warned.append((victim, sim.clock.now()))
                response = interruption.interruption(spot_warning(sim, victim, "5f0c6a1e-0000-4000-8000-00000000aaaa"), None)
                assert [a["status"] for a in response["actions"] if a["kind"] == "drain"] in (["drained"], ["timed_out"]), response

    result = c.manager.refresh(CLUSTER, ami=bad, on_progress=on_progress)

    assert result.status == "rolled_back", result.reason
    assert warned, "the batch never reached its drain"
    victim, at = warned[0]
    sim.advance(60)
    status = {ci["ec2InstanceId"]: ci["status"] for ci in sim.client("ecs").describe_container_instances(
        cluster=CLUSTER, containerInstances=sim.client("ecs").list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    )["containerInstances"]}
    assert status[victim] == "DRAINING"
    assert victim in c.manager.run(progress_of(CLUSTER)).get("kept_draining", [])
    seen: set[str] = set()
    placed = []
    for r in sim.history:
        if r.kind == "task.status" and r.subject not in seen:
            seen.add(r.subject)  # a task's first record is its placement
            if r.detail.get("instance_id") == victim and r.time > at:
                placed.append(r.subject)
    assert not placed, placed


def test_rollback_leaves_an_instance_its_group_is_taking_out_draining(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 (ECS managed draining): while a batch drains, the group takes one of its old
    instances out (a scale-in: ECS's managed-draining hook and ecsspot's hold it in
    Terminating:Wait; ecsspot's handler is not wired here, so nothing is marked in the table, and
    the instance goes once ecsspot's hook times out). The rollback must not set it ACTIVE, neither
    while it waits (ECS drains it only once and would then wait for whatever was placed on it,
    which would die with it) nor once it is gone."""
    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    bad = c.new_images[0]
    _tasks_never_healthy_on(monkeypatch, sim, bad)
    taken: list[tuple[str, float]] = []

    def on_progress(progress: dict[str, Any]) -> None:
        for pool in progress.get("pools", ()):
            batch = pool.get("batch") or {}
            if not taken and batch.get("step") == "drain":
                victim = batch["old"][0]
                taken.append((victim, sim.clock.now()))
                sim.client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)

    result = c.manager.refresh(CLUSTER, ami=bad, on_progress=on_progress)

    assert result.status == "rolled_back", result.reason
    assert taken, "the batch never reached its drain"
    victim, at = taken[0]
    ecs = sim.client("ecs")
    status = {ci["ec2InstanceId"]: ci["status"] for ci in ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    )["containerInstances"]}
    assert status.get(victim, "DRAINING") == "DRAINING"
    assert victim in c.manager.run(progress_of(CLUSTER)).get("kept_draining", [])
    assert not [r for r in sim.records("ecs.status", victim) if r.time > at and r.detail.get("status") == "ACTIVE"]
