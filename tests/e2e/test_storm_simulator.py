"""The storm of ``benchmarks/storm.py`` (issue 12 goal 6) at a size a test can afford: the same
generated spec and scenario through ``ecsspot.sim.simulate``. What users and handlers see is
asserted here; how long it takes is the benchmark's business."""

from __future__ import annotations

import pytest

from benchmarks.storm import WAVES, storm_scenario, storm_spec
from ecsspot.sim.simulate import simulate

pytestmark = pytest.mark.slow


def test_a_small_storm_drains_every_warned_instance_without_a_failed_request() -> None:
    # Ten waves from minute 5 to minute 14; 20 virtual minutes leave the last one time to drain.
    report = simulate(storm_spec(12), storm_scenario(12, services=3, duration=1200.0), seed=0)
    assert report.handler_errors == 0 and report.invocations >= len(report.interrupted)
    assert report.requests > 0 and report.failed_requests == 0
    # Each wave warns at least one spot instance; every one of them was drained by the Lambda.
    # (A spot instance warned while booting, before its agent registered, has nothing to drain
    # and is reported not_found: seed 3 does that once. This seed warns registered ones only.)
    assert len(report.interrupted) >= WAVES
    assert set(report.interrupted) <= set(report.drained)
    # Within the two minutes: an instance whose service waits for a replacement on capacity ECS
    # managed scaling is still launching is reported drained when EC2 takes it (120 s; this seed,
    # its first wave, since the waves play on time).
    assert max(report.drain_seconds) <= 120
