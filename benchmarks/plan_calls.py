"""AWS calls for `plan` on a 1,000-instance / 20-pool cluster (goal ≤ 40), vs describe-per-instance.

Run: python -m benchmarks.plan_calls   (in-process moto; ~1 minute to build the cluster)
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

from benchmarks.common import Counter, RoundCountingDriver
from ecsspot import apply, load_spec
from ecsspot.aws.clients import ClientOptions
from ecsspot.sim.seam import MotoFixes

POOLS = 20
PER_POOL = 50
SERVICES = 12


def build() -> dict[str, Any]:
    ec2 = boto3.client("ec2")
    by_az: dict[str, str] = {}
    for s in ec2.describe_subnets()["Subnets"]:
        by_az.setdefault(s["AvailabilityZone"], s["SubnetId"])
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


def main() -> None:
    with MotoFixes(), mock_aws():
        spec = load_spec(build())
        driver = RoundCountingDriver(ClientOptions(region="us-east-1"))
        t = time.perf_counter()
        driver.run(apply.apply_cluster(spec))
        asg = boto3.client("autoscaling")
        for pool in spec.pools:
            asg.set_desired_capacity(AutoScalingGroupName=spec.asg_name(pool), DesiredCapacity=PER_POOL)
        ecs = boto3.client("ecs")
        elb = boto3.client("elbv2")
        vpc = boto3.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
        ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 256, "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
        for n in range(SERVICES):
            tg = elb.create_target_group(Name=f"tg{n}", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
            ecs.create_service(cluster="bench", serviceName=f"svc{n}", taskDefinition="web", desiredCount=0, loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}], capacityProviderStrategy=[{"capacityProvider": "bench-p01", "weight": 1}])
        instances = sum(len(g["Instances"]) for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"])
        build_s = time.perf_counter() - t

        counter = Counter()
        driver = RoundCountingDriver(ClientOptions(region="us-east-1", event_handlers=[("before-call", counter)]))
        t = time.perf_counter()
        the_plan, _ = driver.run(apply.plan_cluster(spec))
        plan_s = time.perf_counter() - t
        # What a describe-per-instance tool makes for the same picture: one DescribeInstances, one
        # DescribeAutoScalingInstances per instance, plus a describe per group, provider and service.
        naive = instances * 2 + POOLS * 3 + SERVICES * 2 + 4
        report = {
            "instances": instances,
            "pools": POOLS,
            "services": SERVICES,
            "plan_changes": len(the_plan.changes),
            "plan_aws_calls": len(counter.calls),
            "plan_sequential_rounds": driver.rounds,
            "plan_calls_by_operation": counter.by_operation(),
            "per_instance_approach_calls": naive,
            "plan_wall_seconds_in_process_moto": round(plan_s, 2),
            "build_seconds": round(build_s, 1),
            "goal_calls": 40,
        }
        print(json.dumps(report, indent=2))
        assert instances == POOLS * PER_POOL, instances


if __name__ == "__main__":
    main()
