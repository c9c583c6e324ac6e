"""20 % of ecsspot's requests throttled (a seeded botocore ``before-send`` hook answering with
each protocol's throttling error): botocore's standard retry mode absorbs it and every instance
is still drained, through the Lambda handler and through ``Manager.drain``.
"""

from __future__ import annotations

import json
import random
import types
from collections import Counter
from typing import Any

import attrs
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from ecsspot import Manager
from ecsspot.sim import Simulator
from tests.drain.conftest import (
    REGION,
    RawBody,
    build,
    container_instances,
    draining_transitions,
    handlers,
    spot_instances_with_tasks,
    spot_warning,
    sqs_batch,
    targets,
)

RATE = 0.2


@attrs.define(eq=False)  # a botocore handler must be hashable
class Throttle:
    """Answers a seeded ``rate`` of requests (and each service's first) with the service's
    throttling error, unsent."""

    rate: float
    seed: int
    attempts: int = 0
    injected: Counter[str] = attrs.Factory(Counter)
    seen: Counter[str] = attrs.Factory(Counter)
    _rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        service = event_name.split(".")[1]
        self.seen[service] += 1
        # The first request to each service too, so every protocol's error shape is exercised.
        if self._rng.random() >= self.rate and self.seen[service] > 1:
            return None
        self.injected[service] += 1
        if "X-Amz-Target" in request.headers:  # JSON protocol: ECS, DynamoDB
            headers = {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/x-amz-json-1.1"}
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, 400, headers, RawBody(body))
        if service == "ec2":
            body = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>"
            return AWSResponse(request.url, 503, {"Content-Type": "text/xml"}, RawBody(body))
        # Query protocol: Auto Scaling, ELBv2.
        body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId></ErrorResponse>"
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, RawBody(body))


@pytest.fixture(name="backoff")
def backoff_fixture(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff (endpoint.py's only use of ``time``) recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


def test_everything_drained_with_a_fifth_of_the_requests_throttled(server_sim: Simulator, backoff: list[float]) -> None:
    # Over HTTP: in-process, moto's own before-send stub would answer first and win.
    sim = server_sim
    stack = build(sim)
    victims = spot_instances_with_tasks(sim, stack)
    assert len(victims) >= 3
    by_lambda, by_manager = victims[:2], victims[2]
    throttle = Throttle(RATE, seed=2024)

    batch = sqs_batch((f"m{n}", spot_warning(sim, iid, f"5f0c6a1e-0000-4000-8000-0000000000e{n}")) for n, iid in enumerate(by_lambda))
    response = handlers(sim, event_handlers=[("before-send", throttle)]).interruption(batch)
    assert response == {"batchItemFailures": []}

    manager = Manager(region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock, event_handlers=[("before-send", throttle)])
    result = manager.drain(stack.cluster, [by_manager])
    assert [(a.instance_id, a.status) for a in result.actions] == [(by_manager, "drained")]

    drained = victims[:3]
    statuses = {iid: ci["status"] for iid, ci in container_instances(sim, stack.cluster).items()}
    assert [statuses[i] for i in drained] == ["DRAINING"] * 3
    assert draining_transitions(sim) == Counter({i: 1 for i in drained})
    assert not [k for k in targets(sim, stack.target_group_arn) if k[0] in drained]
    assert sim.traffic_stats(stack.target_group_arn).failed == 0

    injected = sum(throttle.injected.values())
    print(f"\nthrottling: {injected} of {throttle.attempts} requests throttled ({dict(throttle.injected)}), {sum(backoff):.1f} s of backoff")
    assert 0.15 < injected / throttle.attempts < 0.35
    assert set(throttle.injected) == {"ecs", "elastic-load-balancing-v2", "dynamodb", "ec2"}
    assert len(backoff) == injected  # each throttled attempt was retried after a backoff
