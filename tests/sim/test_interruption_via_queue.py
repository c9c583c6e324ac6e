"""ecsspot's interruption Lambda on the deployed path: EventBridge → SQS → event source mapping."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecsspot.sim import Simulator, scenario
from tests.drain.conftest import build, container_instances, handlers, spot_instances_with_tasks


def test_a_record_failing_once_comes_back_within_seconds_and_the_instance_drains(sim: Simulator) -> None:
    stack = build(sim)
    denied: list[float] = []

    def deny_first_drain(model: Any, **_: Any) -> None:
        if model.name == "UpdateContainerInstancesState" and not denied:
            denied.append(sim.now())
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied by the test"}}, model.name)

    h = handlers(sim, event_handlers=[("before-call", deny_first_drain)], default_cluster=stack.cluster)
    scenario.wire_interruption_handler(sim, stack.cluster, via_queue=True, handler=h.interruption)
    victim = spot_instances_with_tasks(sim, stack)[0]
    start = sim.now()
    # A rebalance recommendation: the ECS agent does not drain on it, so only ecsspot does.
    sim.recommend_rebalance([victim])
    assert sim.run_until(lambda: container_instances(sim, stack.cluster)[victim]["status"] == "DRAINING", timeout=60)

    first, second = sim.world.events.batches[:2]
    assert first.failed == first.message_ids and len(first.message_ids) == 1 and denied
    # The handler set the failed message's visibility to 5 s (not the queue's 930 s): the
    # mapping brings it back about 5 virtual seconds later, and this time it is handled.
    assert second.message_ids == first.message_ids and second.failed == () and second.error is None
    assert 5 <= second.started - first.time <= 7
    # EventBridge → SQS and the poll: seconds, not more.
    assert 0 < first.started - start <= 2
    deliveries = [r for r in sim.records("sqs.received", scenario.EVENTS_QUEUE) if first.message_ids[0] in r.detail["message_ids"]]
    assert len(deliveries) == 2
    [drained] = [r.time for r in sim.records("ecs.status") if r.detail.get("status") == "DRAINING"]
    assert second.started <= drained <= second.time  # drained by the redelivery, not before
