"""At-least-once delivery: an SQS batch with every record twice, shuffled, delivered twice, gives
the same final state as the plain batch delivered once, and drains each instance once.
Through both drivers: the boto3 Manager (simulator in-process) and the aiobotocore AsyncManager
(against the simulator's server).
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from typing import Any

import attrs
import pytest

from ecsspot.sim import Simulator
from tests.conftest import SyncOrAsync
from tests.drain.conftest import (
    REGION,
    SEED,
    CallLog,
    build,
    container_instances,
    draining_transitions,
    service,
    spot_instances_with_tasks,
    spot_warning,
    sqs_batch,
    target_deregistrations,
    targets,
    tasks_by_instance,
)

#: Virtual seconds after the handling for the replacements to become healthy everywhere.
SETTLE = 60.0


def final_state(sim: Simulator, stack: Any) -> dict[str, Any]:
    cis = container_instances(sim, stack.cluster)
    svc = service(sim, stack)
    return {
        "container_instances": {iid: ci["status"] for iid, ci in sorted(cis.items())},
        "tasks": dict(sorted(tasks_by_instance(sim, stack.cluster).items())),
        "targets": sorted(targets(sim, stack.target_group_arn).items()),
        "service": (svc["runningCount"], svc["desiredCount"]),
        "failed_requests": sim.traffic_stats(stack.target_group_arn).failed,
    }


@attrs.frozen
class Outcome:
    state: dict[str, Any]
    results: list[Any]
    victims: list[str]
    #: instance id → UpdateContainerInstancesState(DRAINING) calls naming it
    set_draining: Counter[str]
    #: (id, port) → DeregisterTargets calls naming it
    deregistered: Counter[tuple[str, int | None]]
    #: from the simulator's history: instance id → ACTIVE→DRAINING transitions, "id:port" → draining
    transitions: Counter[str]
    target_drains: Counter[str]


@functools.cache
def run(kind: str, *, shuffled: bool) -> Outcome:
    """Build the small demo cluster, warn three spot instances through one SQS batch (plain, or
    duplicated + shuffled and delivered twice), settle, and report what happened."""
    # aiobotocore needs the simulator's HTTP server; boto3 runs faster in-process.
    with Simulator(region=REGION, seed=SEED, server=kind == "async") as sim:
        stack = build(sim)
        victims = spot_instances_with_tasks(sim, stack)[:3]
        assert len(victims) == 3
        warnings = [spot_warning(sim, iid, f"5f0c6a1e-0000-4000-8000-00000000000{n}") for n, iid in enumerate(victims)]
        bodies = [(f"msg-{n}", w) for n, w in enumerate(warnings)]
        if shuffled:
            # Standard queues deliver at least once and in no particular order.
            bodies = [(f"{mid}-{copy}", body) for copy in "ab" for mid, body in bodies]
            random.Random(SEED).shuffle(bodies)
        batch = sqs_batch(bodies)
        log = CallLog()
        manager = SyncOrAsync(kind, region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock, event_handlers=[log.handler()])
        try:
            results = [manager.handle_event(batch)]
            if shuffled:
                results.append(manager.handle_event(batch))
        finally:
            manager.close()
        sim.advance(SETTLE)
        arns = {iid: ci["containerInstanceArn"] for iid, ci in container_instances(sim, stack.cluster).items()}
        by_instance = Counter({iid: n for iid, arn in arns.items() if (n := log.set_draining()[arn])})
        return Outcome(
            final_state(sim, stack), results, victims, by_instance, log.deregistered(), draining_transitions(sim), target_deregistrations(sim)
        )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_duplicated_shuffled_batch_delivered_twice_drains_each_instance_once(kind: str) -> None:
    # The reference: the plain batch, once, through the boto3 driver.
    reference = run("sync", shuffled=False)
    outcome = run(kind, shuffled=True)
    victims = outcome.victims
    assert victims == reference.victims  # same seed, same world

    state = outcome.state
    assert state == reference.state
    for iid in victims:
        assert state["container_instances"][iid] == "DRAINING"
        assert iid not in state["tasks"]
        assert all(target_id != iid for (target_id, _), _ in state["targets"])
    assert state["service"] == (6, 6)
    assert state["failed_requests"] == 0

    # Each instance drained once: one DRAINING request naming it and one DRAINING transition in
    # the simulator's history; each of its targets deregistered by one request, drained once.
    assert outcome.set_draining == Counter({i: 1 for i in victims})
    assert outcome.transitions == Counter({i: 1 for i in victims})
    assert outcome.deregistered and set(outcome.deregistered.values()) == {1}
    assert {target_id for target_id, _ in outcome.deregistered} == set(victims)
    assert outcome.target_drains == Counter({f"{i}:{p}": 1 for i, p in outcome.deregistered})
    assert outcome.target_drains == reference.target_drains

    first, second = outcome.results
    # First delivery: one drain per instance, the in-batch copies reported as duplicates.
    drains = [a for a in first.actions if a.kind == "drain"]
    assert Counter((a.instance_id, a.status) for a in drains) == Counter(
        {**{(i, "drained"): 1 for i in victims}, **{(i, "duplicate"): 1 for i in victims}}
    )
    assert first.batch_item_failures == () and first.batch
    assert [a.status for a in reference.results[0].actions] == ["drained"] * 3
    # Second delivery: everything already handled (the idempotency keys in the table).
    assert {a.status for a in second.actions} == {"duplicate"}
    assert sorted(a.instance_id for a in second.actions) == sorted(victims * 2)
    assert second.batch_item_failures == ()
