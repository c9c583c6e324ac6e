"""Draining N instances: AWS calls and sequential round trips, vs the floor and a naive drainer.

Goals (issue 12): the calls of a no-wait drain of N instances against the floor N/10 + 8 (N = 100,
500, 1,000; groups and their delays known, as the state table's cache has them after the first
drain); starting the drain of N = 60 and 100 through the CLI path (``Manager.drain``, wait=False:
settings, leases, the drain, the leases given back) against ≤ 14 and ≤ 18 calls; and (issue 4)
≤ 3 sequential rounds to "all DRAINING and all targets deregistering" whatever N, with wall time
at 30 ms injected latency per request: sync driver, async driver, naive per-instance drainer.

Run: python -m benchmarks.drain_calls
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3

from benchmarks.common import AsyncLatency, Counter, Latency, RoundCountingDriver, emit_rows
from ecsspot.aws.aio import AsyncDriver
from ecsspot.aws.calls import Service
from ecsspot.aws.clients import ClientOptions
from ecsspot.drain import drain
from ecsspot.sim.seam import MotoFixes

CLUSTER = "bench"
LATENCY = 0.03
CLI_SIZES = (60, 100)
CALL_SIZES = (100, 500, 1000)
WALL_SIZES = (1, 10, 100)


def _client(service: Service, endpoint: str) -> Any:
    from botocore.config import Config

    # Building 1,000 instances on a loaded machine can take moto minutes per request.
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=Config(read_timeout=900, retries={"max_attempts": 1}))


def build(endpoint: str, n: int, group_count: int = 3) -> tuple[list[str], list[str]]:
    ecs, elb, ec2 = _client("ecs", endpoint), _client("elbv2", endpoint), _client("ec2", endpoint)
    ecs.create_cluster(clusterName=CLUSTER)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for k in range(0, n, 100) for i in ec2.run_instances(ImageId=image, MinCount=min(100, n - k), MaxCount=min(100, n - k))["Instances"]]
    for iid in ids:
        ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=json.dumps({"instanceId": iid}))
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]}])
    groups = []
    for g in range(group_count):
        tg = elb.create_target_group(Name=f"tg{g}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i, "Port": 32768 + g} for i in ids])
        ecs.create_service(cluster=CLUSTER, serviceName=f"svc{g}", taskDefinition="web", desiredCount=0, loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
        groups.append(tg)
    return ids, groups


def naive_drain(endpoint: str, ids: list[str], groups: list[str], handlers: list[tuple[str, Callable[..., Any]]]) -> None:
    """What a home-made drain Lambda does: one instance at a time, one call per thing."""
    ecs, elb = _client("ecs", endpoint), _client("elbv2", endpoint)
    for c in (ecs, elb):
        for event, h in handlers:
            c.meta.events.register(event, h)
    for iid in ids:
        arn = ecs.list_container_instances(cluster=CLUSTER, filter=f"ec2InstanceId == '{iid}'")["containerInstanceArns"]
        described = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arn)["containerInstances"]
        mine = [c["containerInstanceArn"] for c in described if c["ec2InstanceId"] == iid]
        ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=mine, status="DRAINING")
        for tg in groups:
            for t in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]:
                if t["Target"]["Id"] == iid:
                    elb.deregister_targets(TargetGroupArn=tg, Targets=[t["Target"]])


def reset(endpoint: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()  # noqa: S310 - the moto server this benchmark started


def cli_start(endpoint: str, n: int) -> dict[str, Any]:
    """``ecsspot drain --no-wait`` of N instances over 2 target groups, as the CLI runs it
    (``Manager.drain``), on a cluster whose spec apply recorded: the first drain (cache cold) and
    the next one (cache warm), each on N fresh instances."""
    from ecsspot import store
    from ecsspot.manager import Manager
    from ecsspot.plan import desired_settings
    from ecsspot.spec import load_spec
    from tests.conftest import example_spec_dict

    ids, _ = build(endpoint, 2 * n, group_count=2)
    document = example_spec_dict()
    document.update(cluster=CLUSTER, target_groups=[])
    spec = load_spec(document)
    ddb = _client("dynamodb", endpoint)
    ddb.create_table(
        TableName=spec.table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=spec.table_name, Item=store.settings_item(desired_settings(spec), now=time.time()))
    out: dict[str, Any] = {}
    for label, batch in (("cold", ids[:n]), ("warm", ids[n:])):
        counter = Counter()
        m = Manager(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-call", counter)])
        result = m.drain(CLUSTER, batch, wait=False)
        assert {a.status for a in result.actions} == {"draining"}, result.actions
        out[label] = {"calls": len(counter.calls), "by_operation": counter.by_operation()}
    return out


def main() -> None:
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    fixes = MotoFixes()  # moto's bugs AWS does not have fixed, as in the tests (ecsspot.sim.seam)
    fixes.__enter__()
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    rows = []
    table: list[dict[str, str]] = []
    try:
        # Goal 2: the CLI path, leases included, 2 target groups.
        for n in CLI_SIZES:
            reset(endpoint)
            counts = cli_start(endpoint, n)
            rows.append({"cli_no_wait_instances": n, "target_groups": 2, **counts})
            goal = n // 10 + 8
            table.append(
                {
                    "goal": f"2. drain --no-wait N={n}, calls incl. state writes",
                    "ecsspot": f"{counts['warm']['calls']} calls (first drain of the cluster: {counts['cold']['calls']})",
                    "peer": f"goal ≤ {goal}",
                    "note": "cache warm: " + ", ".join(f"{k} {v}" for k, v in counts["warm"]["by_operation"].items()),
                }
            )
        # Goal 3: calls per instance, groups and delays known.
        for n in CALL_SIZES:
            reset(endpoint)
            ids, groups = build(endpoint, n)
            counter = Counter()
            driver = RoundCountingDriver(ClientOptions(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-call", counter)]))
            driver.run(drain(CLUSTER, ids, deadline=110, wait=False, target_groups=groups, delays=dict.fromkeys(groups, 300)))
            rows.append({"instances": n, "target_groups": 3, "groups_and_delays_known": {"calls": len(counter.calls), "rounds": driver.rounds, "by_operation": counter.by_operation()}})
            table.append(
                {
                    "goal": f"3. drain N={n} (3 groups known), calls",
                    "ecsspot": f"{len(counter.calls)} calls ({len(counter.calls) / n:.3f}/instance), {driver.rounds} rounds",
                    "peer": f"floor N/10 + 8 = {n // 10 + 8}",
                    "note": ", ".join(f"{k} {v}" for k, v in counter.by_operation().items()),
                }
            )
        for n in WALL_SIZES:
            # ecsspot, sync driver: calls and rounds (rounds are the same for both drivers), first
            # with the groups known (spec target_groups or the cache a previous drain left), then
            # with the groups found only through the services.
            counts = {}
            for label, known in (("known", True), ("discovered", False)):
                reset(endpoint)
                ids, groups = build(endpoint, n)
                counter = Counter()
                driver = RoundCountingDriver(ClientOptions(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-call", counter)]))
                driver.run(drain(CLUSTER, ids, deadline=110, wait=False, target_groups=groups if known else ()))
                counts[label] = {
                    "calls": len(counter.calls),
                    "rounds_to_all_draining": driver.first_round["update_container_instances_state"],
                    "rounds_to_all_deregistering": driver.first_round["deregister_targets"],
                    "by_operation": counter.by_operation(),
                }

            # wall time with injected latency, sync and async
            reset(endpoint)
            ids, groups = build(endpoint, n)
            lat = Latency(LATENCY)
            sync = RoundCountingDriver(ClientOptions(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-send", lat)]))
            t = time.perf_counter()
            sync.run(drain(CLUSTER, ids, deadline=110, wait=False))
            sync_s = time.perf_counter() - t

            reset(endpoint)
            ids, groups = build(endpoint, n)

            async def run_async(ids: list[str]) -> float:
                async with AsyncDriver(ClientOptions(region="us-east-1", endpoint_url=endpoint, event_handlers=[("before-send", AsyncLatency(LATENCY))])) as d:
                    t0 = time.perf_counter()
                    await d.run(drain(CLUSTER, ids, deadline=110, wait=False))
                    return time.perf_counter() - t0

            async_s = asyncio.run(run_async(ids))

            reset(endpoint)
            ids, groups = build(endpoint, n)
            naive_counter = Counter()
            t = time.perf_counter()
            naive_drain(endpoint, ids, groups, [("before-call", naive_counter), ("before-send", lat)])
            naive_s = time.perf_counter() - t
            rows.append(
                {
                    "instances": n,
                    "target_groups": 3,
                    "ecsspot_groups_known": counts["known"],
                    "ecsspot_groups_discovered": counts["discovered"],
                    "goal_calls_n_over_10_plus_8": n // 10 + 8,
                    "naive_calls": len(naive_counter.calls),
                    f"wall_s_sync_{int(LATENCY*1000)}ms": round(sync_s, 3),
                    f"wall_s_async_{int(LATENCY*1000)}ms": round(async_s, 3),
                    f"wall_s_naive_{int(LATENCY*1000)}ms": round(naive_s, 3),
                }
            )
            known = counts["known"]
            table.append(
                {
                    "goal": f"1. (issue 4) drain N={n} (3 groups), rounds to all DRAINING / deregistering",
                    "ecsspot": f"{known['rounds_to_all_draining']} / {known['rounds_to_all_deregistering']} (groups found via services: "
                    f"{counts['discovered']['rounds_to_all_deregistering']}); {known['calls']} calls",
                    "peer": f"goal ≤ 3; naive {len(naive_counter.calls)} calls",
                }
            )
            table.append(
                {
                    "goal": f"1. (issue 4) drain N={n} (3 groups), no-wait wall at {int(LATENCY * 1000)} ms/call",
                    "ecsspot": f"sync {sync_s:.2f} s, async {async_s:.2f} s",
                    "peer": f"naive {naive_s:.2f} s",
                    "note": "delays not cached, groups found via the services",
                }
            )
    finally:
        server.stop()
        fixes.__exit__()
    print(json.dumps(rows, indent=2))
    emit_rows(table)


if __name__ == "__main__":
    main()
