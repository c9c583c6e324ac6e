"""Traffic through the load balancer, and what a spot storm costs in failed requests."""

from __future__ import annotations

from ecsspot.sim import Simulator, TrafficStats
from tests.sim.stack import build_stack


def test_requests_are_spread_over_healthy_targets_only(sim: Simulator) -> None:
    stack = build_stack(sim, instances=2, tasks=2, boot=45)
    tg = stack.target_group_arn
    sim.start_traffic(tg, 10)
    # Instances run at 30 s, register at 40 s; tasks RUNNING at 50 s, healthy at 80 s.
    sim.advance(10)
    assert sim.traffic_stats(tg) == TrafficStats(requests=100, failed=100, no_target=100, first_failure_at=sim.now() - 9, last_failure_at=sim.now())  # initial: not routed
    sim.advance(35)
    sim.stop_traffic(tg)
    sim.advance(10)
    stats = sim.traffic_stats(tg)
    # A 503 for no target is a request the user saw fail.
    assert (stats.requests, stats.succeeded, stats.failed, stats.no_target, stats.cut, stats.in_flight) == (450, 110, 340, 340, 0, 0)
    assert stats == sim.traffic_stats()


def storm(delay: int, *, spot_draining: bool = True, seed: int = 7) -> TrafficStats:
    """10 spot instances with one task each, 100 requests/s; 30 % of the instances interrupted.

    Nothing handles the interruption but the ECS agent (ECS_ENABLE_SPOT_INSTANCE_DRAINING): no
    lifecycle hook, no capacity rebalancing, no Lambda. The service keeps at least 80 % healthy
    and at most 100 % running (no spare capacity to start replacements first), so ECS stops two
    of the three drained tasks at once and the third only once replacements are healthy. The
    containers stop 30 s after SIGTERM (their stopTimeout).
    """
    with Simulator(seed=seed) as sim:
        stack = build_stack(
            sim, instances=10, tasks=10, delay=delay, minimum=80, maximum=100,
            stop_timeout=30, spot_draining=spot_draining, boot=120,
        )
        sim.start_traffic(stack.target_group_arn, 100)
        sim.advance(30)
        assert len(sim.storm(0.3)) == 3
        sim.advance(300)
        tasks = sim.client("ecs").describe_services(cluster="demo", services=["web"])["services"][0]["runningCount"]
        assert tasks == 10  # recovered either way
        return sim.traffic_stats(stack.target_group_arn)


def test_spot_storm_costs_fewer_requests_with_a_short_deregistration_delay() -> None:
    """With the default 300 s deregistration delay the first two drained tasks hold their place
    under maximumPercent past the two-minute warning, so the third is still registered when
    its instance dies; with 30 s they stop, replacements become healthy and the third drains in
    time. Without the agent flag, all three die registered."""
    unhandled = storm(300, spot_draining=False)
    default_delay = storm(300)
    short_delay = storm(30)
    print(f"\nspot storm failed requests: no agent flag {unhandled.failed}, 300 s delay {default_delay.failed}, 30 s delay {short_delay.failed}")
    assert default_delay.failed > 0
    assert short_delay.failed < default_delay.failed < unhandled.failed
    assert default_delay.requests == short_delay.requests == 33_000
