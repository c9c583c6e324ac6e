"""Skipping quiet ticks (``Timings.skip_quiet``) changes how long a run takes, never what happens."""

from __future__ import annotations

from typing import Any

from ecsspot.sim import Simulator, Timings
from tests.sim.stack import build_stack, target_health


def play(skip_quiet: bool) -> tuple[list[Any], Any, dict[tuple[str, int], str], int]:
    """A load-balanced service under traffic, a spot interruption, ten quiet minutes."""
    with Simulator(seed=7, timings=Timings(skip_quiet=skip_quiet)) as sim:
        ticks: list[float] = []
        tick = sim.world._tick

        def counted(seconds: float) -> None:
            ticks.append(seconds)
            tick(seconds)

        sim.world._tick = counted  # type: ignore[method-assign]
        stack = build_stack(sim, instances=3, tasks=4, delay=30, boot=90)
        assert stack.target_group_arn is not None
        sim.start_traffic(stack.target_group_arn, 7.0, duration=0.3)
        sim.advance(200)
        sim.interrupt(sim.spot_instances()[:1])
        for _ in range(20):
            sim.advance(37)
        history = [(r.time, r.kind, r.subject, dict(r.detail)) for r in sim.history]
        return history, sim.traffic_stats(), target_health(sim, stack.target_group_arn), len(ticks)


def test_quiet_ticks_skipped_give_the_same_history_traffic_and_health() -> None:
    every_tick = play(skip_quiet=False)
    skipping = play(skip_quiet=True)
    assert skipping[:3] == every_tick[:3]
    assert every_tick[1].requests > 0 and every_tick[1].failed == 0
    assert skipping[3] < every_tick[3] / 2  # the point of it
