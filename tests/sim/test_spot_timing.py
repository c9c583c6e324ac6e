"""Spot interruption timing: the warning event lags the notice, and EC2 may reclaim early.

AWS: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
("emitted on a best effort basis"; "it is possible that your Spot Instance is terminated before
the warning can be made available").
"""

from __future__ import annotations

from ecsspot.sim import Simulator
from ecsspot.sim.world import Timings
from tests.sim.stack import launch_template, mixed_group

WARNING = "EC2 Spot Instance Interruption Warning"


def spot_group(sim: Simulator, desired: int) -> list[str]:
    mixed_group(sim, "demo-spot", launch_template(sim, "demo-lt", "demo"), desired=desired)
    sim.advance(31)
    return sim.spot_instances()


def story(seed: int, timings: Timings, count: int = 6) -> list[tuple[str, float | None, float | None]]:
    """(instance, seconds to its warning event or None, seconds to its termination) per interrupted instance."""
    with Simulator(seed=seed, timings=timings) as sim:
        victims = spot_group(sim, count)
        start = sim.now()
        sim.interrupt(victims)
        sim.advance(timings.spot_warning + 5)
        instance = {e["id"]: e["detail"]["instance-id"] for e in sim.events(WARNING)}
        warned = {instance[r.detail["id"]]: r.time - start for r in sim.records("event", WARNING)}
        reclaimed = {r.subject: r.time - start for r in sim.records("spot.reclaimed")}
        return [(i, warned.get(i), reclaimed.get(i)) for i in victims]


def test_the_warning_event_lags_the_notice_and_the_two_minutes_count_from_the_notice(sim: Simulator) -> None:
    [victim] = spot_group(sim, 1)
    start = sim.now()
    sim.interrupt([victim])
    sim.advance(0)
    assert sim.events(WARNING) == []  # the notice is out, its event is not yet
    sim.advance(sim.timings.spot_warning_lag)
    [event] = sim.events(WARNING)
    assert event["detail"]["instance-id"] == victim and event["time"] == sim.world.iso(start + sim.timings.spot_warning_lag)
    sim.advance(sim.timings.spot_warning - sim.timings.spot_warning_lag - 1)
    assert sim.world.instance_running(victim)
    sim.advance(1)
    assert not sim.world.instance_running(victim)
    assert [r.time - start for r in sim.records("spot.reclaimed", victim)] == [sim.timings.spot_warning]


def test_lag_is_configurable() -> None:
    [(_, warned, reclaimed)] = story(5, Timings(spot_warning_lag=7.0), count=1)
    assert (warned, reclaimed) == (7.0, 120.0)


def test_early_termination_is_seeded_and_deterministic() -> None:
    timings = Timings(spot_early_termination=0.5)
    first = story(21, timings)
    assert story(21, timings) == first  # same seed, same story
    reclaimed = [r for _, _, r in first]
    assert all(r is not None and r <= 120.0 for r in reclaimed)
    assert any(r < 120.0 for r in reclaimed) and any(r == 120.0 for r in reclaimed)  # some early, some not
    # By default nobody is reclaimed early.
    assert [r for _, _, r in story(21, Timings())] == [120.0] * 6


def test_an_instance_reclaimed_before_its_warning_gets_none() -> None:
    # A lag longer than any early termination can be: every early-reclaimed instance is gone
    # before its warning, which EC2 then never emits.
    timings = Timings(spot_early_termination=1.0, spot_warning_lag=119.99)
    with Simulator(seed=3, timings=timings) as sim:
        victims = spot_group(sim, 3)
        sim.interrupt(victims)
        sim.advance(125)
        assert {r.subject for r in sim.records("spot.reclaimed")} == set(victims)
        assert sim.events(WARNING) == []
        assert {r.subject for r in sim.records("spot.warning_lost")} == set(victims)
