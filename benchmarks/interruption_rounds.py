"""N spot warnings in one SQS batch through the interruption handler: requests in a row and wall
time until every instance is DRAINING and every target deregistering, vs a naive drainer.

Goal (issue 12, goal 1): N = 1 faster than a naive per-instance drainer, and ≤ 4 requests in a
row to all DRAINING and deregistering whatever N. Measured on a ``ThreadedMotoServer`` (with
``MotoFixes``) with 40 ms injected per request, warm (clients built, the state table's group
cache filled), for N = 1, 20, 100 instances of the cluster's spot group behind 3 target groups:
the interruption workflow (``ecsspot.interruption.handle_event``, what the Lambda runs) on the
boto3 driver (the Lambda's) and on the aiobotocore driver, and a naive Lambda that handles the
warnings one by one (list, describe, DRAINING, then per group: target health, deregister).
The handler has its default cluster (``ECSSPOT_CLUSTER``, which the Terraform module sets).

"Requests in a row" are the sequential round trips up to and including the one that sets the
last instance DRAINING or deregisters the last target (a round's calls go out together). The
handler's budget is cut to the Lambda margin, so the drain verifies once and returns.

Run: python -m benchmarks.interruption_rounds
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from benchmarks.common import AsyncLatency, Counter, Latency, emit_rows
from benchmarks.drain_calls import CLUSTER, _client, naive_drain, reset
from ecsspot import store
from ecsspot.aws.aio import AsyncDriver
from ecsspot.aws.calls import Call, Settle
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.driver import Driver
from ecsspot.interruption import LAMBDA_MARGIN_SECONDS, handle_event
from ecsspot.sim.seam import MotoFixes

LATENCY = 0.04
SIZES = (1, 20, 100)
_ACTING = ("update_container_instances_state", "deregister_targets")


def build(endpoint: str, n: int) -> list[str]:
    """An ecsspot cluster as apply leaves it (spec recorded, groups cached), N spot instances of
    its spot group registered in ECS and in 3 target groups; returns the instance ids."""
    from ecsspot.plan import desired_settings
    from ecsspot.spec import load_spec
    from ecsspot.state import CLUSTER_TAG
    from tests.conftest import example_spec_dict

    ecs, elb, ec2, ddb = _client("ecs", endpoint), _client("elbv2", endpoint), _client("ec2", endpoint), _client("dynamodb", endpoint)
    document = example_spec_dict()
    document.update(cluster=CLUSTER, target_groups=[])
    spec = load_spec(document)
    ecs.create_cluster(clusterName=CLUSTER)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": CLUSTER_TAG, "Value": CLUSTER}, {"Key": "aws:autoscaling:groupName", "Value": spec.asg_name(spec.pools[0])}]
    launched = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    ids = [i["InstanceId"] for i in launched["Instances"]]
    for iid in ids:
        ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=json.dumps({"instanceId": iid}))
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}])
    groups = []
    for g in range(3):
        tg = elb.create_target_group(Name=f"tg{g}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i, "Port": 32768 + g} for i in ids])
        ecs.create_service(cluster=CLUSTER, serviceName=f"svc{g}", taskDefinition="web", desiredCount=0, loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
        groups.append(tg)
    ddb.create_table(
        TableName=spec.table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    now = time.time()
    ddb.put_item(TableName=spec.table_name, Item=store.settings_item(desired_settings(spec), now=now))
    cache = store.remember_cache_call(spec.table_name, {"service_target_groups": groups, "deregistration_delays": dict.fromkeys(groups, 300)}, now=now)
    ddb.put_item(**cache.params)
    return ids


def batch(ids: list[str]) -> dict[str, Any]:
    """One SQS batch of spot warnings (the recorded payload, one per instance, sent now)."""
    from tests.drain.conftest import load, sqs_batch

    bodies = []
    for n, iid in enumerate(ids):
        event = load("spot-interruption-warning.json")
        event.update(id=f"bench-{n}", time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), resources=[f"arn:aws:ec2:us-east-1a:instance/{iid}"])
        event["detail"]["instance-id"] = iid
        bodies.append((f"msg-{n}", event))
    return sqs_batch(bodies)


class _Rounds:
    """Sequential rounds and when the last one that acts (DRAINING, deregistration) ended."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.rounds = 0
        self.acting_round = 0
        self.acting_done = 0.0

    def note(self, request: Any) -> bool:
        calls = request.calls if isinstance(request, Settle) else request if isinstance(request, tuple) else (request,) if isinstance(request, Call) else ()
        if not calls:
            return False
        self.rounds += 1
        return any(c.operation in _ACTING for c in calls)

    def done(self, acting: bool) -> None:
        if acting:
            self.acting_round = self.rounds
            self.acting_done = time.perf_counter() - self.started


class _SyncDriver(Driver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = _Rounds()

    def _handle(self, request: Any) -> Any:
        acting = self.log.note(request)
        answer = super()._handle(request)
        self.log.done(acting)
        return answer


class _AsyncDriver(AsyncDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = _Rounds()

    async def _handle(self, request: Any) -> Any:
        acting = self.log.note(request)
        answer = await super()._handle(request)
        self.log.done(acting)
        return answer


def _workflow(ids: list[str]) -> Any:
    # The Lambda's remaining time cut to its margin: the drain acts, looks once and returns.
    return handle_event(batch(ids), owner="bench", default_cluster=CLUSTER, remaining_seconds=LAMBDA_MARGIN_SECONDS + 0.001)


def _options(endpoint: str, handler: Any) -> ClientOptions:
    return ClientOptions(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-send", handler)])


def run_sync(endpoint: str, ids: list[str], warm: list[str]) -> _Rounds:
    driver = _SyncDriver(_options(endpoint, Latency(LATENCY)))
    driver.run(_workflow(warm))  # clients built, connections open: a warm Lambda
    driver.log = _Rounds()
    result = driver.run(_workflow(ids))
    assert not result.batch_item_failures, result.actions
    return driver.log


def run_async(endpoint: str, ids: list[str], warm: list[str]) -> _Rounds:
    async def go() -> _Rounds:
        driver = _AsyncDriver(_options(endpoint, AsyncLatency(LATENCY)))
        async with driver:
            await driver.run(_workflow(warm))
            driver.log = _Rounds()
            result = await driver.run(_workflow(ids))
            assert not result.batch_item_failures, result.actions
            return driver.log

    return asyncio.run(go())


def run_naive(endpoint: str, ids: list[str], groups: list[str]) -> tuple[float, int]:
    counter = Counter()
    t = time.perf_counter()
    naive_drain(endpoint, ids, groups, [("before-call", counter), ("before-send", Latency(LATENCY))])
    return time.perf_counter() - t, len(counter.calls)


def main() -> None:
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    fixes = MotoFixes()
    fixes.__enter__()
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    rows = []
    table = []
    try:
        for n in SIZES:
            figures: dict[str, Any] = {"instances": n}
            for label, runner in (("sync", run_sync), ("async", run_async)):
                reset(endpoint)
                ids = build(endpoint, n + 1)
                log = runner(endpoint, ids[1:], ids[:1])
                figures[label] = {"in_a_row": log.acting_round, "wall_s": round(log.acting_done, 3), "rounds_in_all": log.rounds}
            reset(endpoint)
            ids = build(endpoint, n)
            groups = [g["TargetGroupArn"] for g in _client("elbv2", endpoint).describe_target_groups()["TargetGroups"]]
            naive_s, naive_calls = run_naive(endpoint, ids, groups)
            figures["naive"] = {"in_a_row": naive_calls, "wall_s": round(naive_s, 3)}
            rows.append(figures)
            sync, aio = figures["sync"], figures["async"]
            table.append(
                {
                    "goal": f"1. {n} spot warning(s) in one SQS batch, to all DRAINING + deregistering at {int(LATENCY * 1000)} ms/call",
                    "ecsspot": f"sync {sync['wall_s']:.2f} s, {sync['in_a_row']} in a row; async {aio['wall_s']:.2f} s, {aio['in_a_row']} in a row",
                    "peer": f"naive {naive_s:.2f} s, {naive_calls} in a row; goal ≤ 4 in a row",
                    "note": "3 target groups, cache warm, handler from the event to the last DRAINING/deregistration",
                }
            )
    finally:
        server.stop()
        fixes.__exit__()
    print(json.dumps(rows, indent=2))
    emit_rows(table)


if __name__ == "__main__":
    main()
