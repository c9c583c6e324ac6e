"""The spot storm, side by side in one test run, on the demo architecture
(``ecsspot.sim.scenario``: an applied ecsspot cluster with an on-demand base pool and a spot
pool, ALB → target group → a 15-task service, 100 requests/s).

(a) the baseline: only the ECS agent's ``ECS_ENABLE_SPOT_INSTANCE_DRAINING=true`` (rendered in
    ecsspot's user data), no ecsspot handler, the ALB's default 300 s deregistration delay;
(b) ecsspot's interruption Lambda as the EventBridge target of the spot warning (and of the
    rebalance recommendation and the terminate lifecycle action, as the Terraform module wires
    them), with a 30 s deregistration delay, within the two-minute budget.

30 % of the spot instances get the two-minute warning and the pool's spot capacity goes away
for five minutes, on a service with AWS's default minimumHealthyPercent 100 (what ``ecsspot
demo`` played before its service followed lint's ES205; it now plays a storm on every spot
instance, see ``ecsspot.sim.demo``). (a) loses requests; (b) loses none.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ecsspot.sim import Simulator, scenario
from tests.drain.conftest import REGION, recording_interruption

SEED = 7
FRACTION = 0.3
OUTAGE = 300.0
AFTER = 120.0


@attrs.frozen
class Storm:
    interrupted: tuple[str, ...]
    requests: int
    failed: int
    no_target: int
    #: interrupted instance → (warning time, reclaim time, {target: (draining at, unused at)})
    timeline: dict[str, tuple[float, float | None, dict[str, tuple[float | None, float | None]]]]
    responses: tuple[tuple[str, dict[str, Any]], ...] = ()
    lambda_errors: tuple[str | None, ...] = ()
    rules: tuple[tuple[str, str], ...] = ()
    #: Instances the ECS agent itself set DRAINING on the warning (ECS_ENABLE_SPOT_INSTANCE_DRAINING).
    agent_draining: frozenset[str] = frozenset()


def storm(*, ecsspot: bool) -> Storm:
    config = attrs.evolve(scenario.DemoConfig(), handle_events=ecsspot, deregistration_delay=30 if ecsspot else 300)
    with Simulator(region=REGION, seed=SEED) as sim:
        stack = scenario.build(sim, config)
        responses: list[tuple[str, dict[str, Any]]] = []
        rules: list[tuple[str, str]] = []
        if ecsspot:
            # The function behind the scenario's EventBridge rules, keeping what it returns.
            responses = recording_interruption(sim)
            events = sim.client("events")
            for rule in events.list_rules()["Rules"]:
                pattern = json.loads(rule["EventPattern"])
                for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                    rules += [(detail_type, target["Arn"]) for detail_type in pattern["detail-type"]]
        scenario.play(sim, 60, 60, stack)

        before = sim.traffic_stats(stack.target_group_arn)
        group = stack.spec.asg_name(stack.spec.pool("spot"))
        sim.set_spot_capacity(False, group=group)
        hit = tuple(sim.storm(FRACTION, group=group))
        scenario.play(sim, OUTAGE, 30, stack)
        sim.set_spot_capacity(True, group=group)
        scenario.play(sim, AFTER, 30, stack)
        after = sim.traffic_stats(stack.target_group_arn)

        timeline = {}
        for iid in hit:
            warned = sim.records("spot.interruption_warning", iid)[0].time
            reclaimed = next((r.time for r in sim.records("spot.reclaimed", iid)), None)
            states: dict[str, dict[str, float]] = {}
            for r in sim.history:
                if r.kind == "target.state" and r.subject.startswith(f"{iid}:") and r.detail.get("state") in ("draining", "unused"):
                    states.setdefault(r.subject, {}).setdefault(r.detail["state"], r.time)
            timeline[iid] = (warned, reclaimed, {t: (s.get("draining"), s.get("unused")) for t, s in states.items()})
        return Storm(
            interrupted=hit,
            requests=after.requests - before.requests,
            failed=after.failed - before.failed,
            no_target=after.no_target - before.no_target,
            timeline=timeline,
            responses=tuple(responses),
            lambda_errors=tuple(i.error for i in sim.invocations),
            rules=tuple(rules),
            agent_draining=frozenset(
                r.subject for r in sim.records("ecs.status") if r.detail.get("status") == "DRAINING" and r.detail.get("cause") == "spot interruption notice"
            ),
        )


def test_spot_storm_side_by_side() -> None:
    baseline = storm(ecsspot=False)
    handled = storm(ecsspot=True)
    print(
        f"\nspot storm, {FRACTION:.0%} of the spot pool: agent flag only, 300 s delay: {baseline.failed} failed of {baseline.requests} requests; "
        f"ecsspot handler, 30 s delay: {handled.failed} failed of {handled.requests}"
    )
    assert handled.failed == 0
    assert baseline.failed > 0
    assert len(baseline.interrupted) == len(handled.interrupted) == 2  # 30 % of 6 spot instances
    # ecsspot's user data turns the agent's spot draining on, in both runs.
    assert baseline.agent_draining == set(baseline.interrupted)
    assert handled.agent_draining == set(handled.interrupted)

    # (b) is wired as the issue says: the spot warning's rule targets the Lambda function.
    assert ("EC2 Spot Instance Interruption Warning", f"arn:aws:lambda:{REGION}:123456789012:function:{scenario.INTERRUPTION_FUNCTION}") in handled.rules
    assert handled.lambda_errors and set(handled.lambda_errors) == {None}
    warned = [r for kind, r in handled.responses if kind == "EC2 Spot Instance Interruption Warning"]
    assert len(warned) == len(handled.interrupted)
    actions = [a for _, r in handled.responses for a in r["actions"]]
    assert not [a for a in actions if a["status"] == "failed"], actions
    assert {a["instance_id"] for a in actions} == set(handled.interrupted)

    # Why (b) loses nothing: every target of every warned instance left the load balancer's
    # rotation at the warning and was gone before Spot reclaimed the instance.
    for iid, (warning, reclaimed, targets) in handled.timeline.items():
        assert targets, iid
        assert reclaimed == warning + 120
        for target, (draining, unused) in targets.items():
            assert draining == warning, target
            assert unused is not None and unused <= warning + 30 < reclaimed, target
    # Why (a) loses requests: some target was still in rotation when its instance went away.
    late = [
        target
        for iid, (warning, reclaimed, targets) in baseline.timeline.items()
        for target, (draining, _) in targets.items()
        if reclaimed is not None and (draining is None or draining >= reclaimed)
    ]
    assert late
