"""AWS calls for `plan` on a 1,000-instance / 20-pool cluster (goal ≤ 40), vs describe-per-instance,
and plan's wall time at 1,000 and 5,000 instances (in-process moto).

Run: python -m benchmarks.plan_calls   (in-process moto; a few minutes to build the clusters)
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3
from moto import mock_aws

from benchmarks.common import Counter, RoundCountingDriver, emit_rows
from ecsspot import apply, load_spec, store
from ecsspot.aws.clients import ClientOptions
from ecsspot.sim.seam import MotoFixes
from ecsspot.store import GROUP_CACHE_AT

POOLS = 20
PER_POOL = 50
SERVICES = 12


def build() -> dict[str, Any]:
    ec2 = boto3.client("ec2")
    # The default subnets (/20) hold 4,091 addresses: 5,000 instances need larger ones.
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    by_az: dict[str, str] = {}
    for n, az in enumerate(("us-east-1a", "us-east-1b", "us-east-1c")):
        by_az[az] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n * 64}.0/18", AvailabilityZone=az)["Subnet"]["SubnetId"]
    pools = [
        {
            "name": f"p{i:02d}",
            "max_size": PER_POOL * 2,
            "instance_types": ["m5.large", "m5a.large", "m6i.large"],
            "on_demand_percentage_above_base": 0 if i else 100,
        }
        for i in range(POOLS)
    ]
    return {
        "cluster": "bench",
        "network": {"subnets": sorted(by_az.values())[:3]},
        "instances": {"ami": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"},
        "pools": pools,
        "strategy": [{"pool": "p00", "base": 2, "weight": 1}, *({"pool": f"p{i:02d}", "weight": 1} for i in range(1, POOLS))],
    }


def _plan(spec: Any, *, label: str) -> dict[str, Any]:
    counter = Counter()
    driver = RoundCountingDriver(ClientOptions(region="us-east-1", event_handlers=[("before-call", counter)]))
    t = time.perf_counter()
    the_plan, _ = driver.run(apply.plan_cluster(spec))
    return {
        "label": label,
        "changes": len(the_plan.changes),
        "warnings": sorted({w.code for w in the_plan.warnings}),
        "calls": len(counter.calls),
        "rounds": driver.rounds,
        "by_operation": counter.by_operation(),
        "wall_s": round(time.perf_counter() - t, 2),
    }


def _describe_with_instances(spec: Any) -> float:
    """What the old observe paid twice: the groups described with their instances."""
    asg = boto3.client("autoscaling")
    t = time.perf_counter()
    asg.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=[spec.asg_name(p) for p in spec.pools]).build_full_result()
    return time.perf_counter() - t


def run(per_pool: int) -> dict[str, Any]:
    """Build the cluster with ``per_pool`` instances in each of the 20 pools; plan it before any
    drain (no cached delays) and after one (the delays a drain caches in the state table)."""
    with MotoFixes(), mock_aws():
        spec = load_spec(build())
        driver = RoundCountingDriver(ClientOptions(region="us-east-1"))
        t = time.perf_counter()
        driver.run(apply.apply_cluster(spec))
        asg = boto3.client("autoscaling")
        for pool in spec.pools:
            asg.set_desired_capacity(AutoScalingGroupName=spec.asg_name(pool), DesiredCapacity=per_pool)
        ecs = boto3.client("ecs")
        elb = boto3.client("elbv2")
        vpc = boto3.client("ec2").describe_subnets(SubnetIds=[spec.network.subnets[0]])["Subnets"][0]["VpcId"]
        ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 256, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
        groups = []
        for n in range(SERVICES):
            tg = elb.create_target_group(Name=f"tg{n}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
            groups.append(tg)
            ecs.create_service(cluster="bench", serviceName=f"svc{n}", taskDefinition="web", desiredCount=0, loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}], capacityProviderStrategy=[{"capacityProvider": "bench-p01", "weight": 1}])
        instances = sum(len(g["Instances"]) for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"])
        assert instances == POOLS * per_pool, instances
        build_s = time.perf_counter() - t

        cold = _plan(spec, label="before any drain (no cached delays)")
        # What a drain leaves in the state table next to the groups it found.
        now = time.time()
        document = {"service_target_groups": groups, "deregistration_delays": dict.fromkeys(groups, 300)}
        driver.run(store.put_document(spec.table_name, *GROUP_CACHE_AT, document, now=now))
        warm = _plan(spec, label="after a drain (cached delays)")
        assert cold["warnings"] == warm["warnings"], (cold["warnings"], warm["warnings"])
        with_instances = _describe_with_instances(spec)
        return {"instances": instances, "build_s": round(build_s, 1), "plans": [cold, warm], "describe_with_instances_s": round(with_instances, 2)}


def main() -> None:
    sizes = [PER_POOL * k for k in (1, 5)]  # 1,000 and 5,000 instances
    results = []
    for n in sizes:
        results.append(run(n))
        print(json.dumps(results[-1]), flush=True)
    # What a describe-per-instance tool makes for the same picture: one DescribeInstances, one
    # DescribeAutoScalingInstances per instance, plus a describe per group, provider and service.
    naive = POOLS * PER_POOL * 2 + POOLS * 3 + SERVICES * 2 + 4
    print(json.dumps({"pools": POOLS, "services": SERVICES, "target_groups": SERVICES, "goal_calls": 40, "per_instance_approach_calls": naive, "results": results}, indent=2))
    small, large = results
    cold, warm = small["plans"]
    emit_rows(
        [
            {
                "goal": "4. plan calls, 1,000 instances / 20 pools / 12 target groups",
                "ecsspot": f"{warm['calls']} calls in {warm['rounds']} rounds (delays a drain cached); {cold['calls']} in {cold['rounds']} before any drain",
                "peer": f"goal ≤ 40; describe-per-instance ≈ {naive:,}",
                "note": "no ELB read per group when a drain cached the delays within the hour",
            },
            {
                "goal": "4. plan wall time, in-process moto, 1,000 / 5,000 instances",
                "ecsspot": f"{warm['wall_s']} s / {large['plans'][1]['wall_s']} s",
                "peer": f"one describe of the groups with their instances (old observe made two): {small['describe_with_instances_s']} s / {large['describe_with_instances_s']} s",
                "note": "groups described with IncludeInstances false",
            },
        ]
    )


if __name__ == "__main__":
    main()
