"""Plain boto3 builders of an ECS-on-spot stack for the simulator's tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ecsspot import userdata
from ecsspot.sim import Simulator

SPOT_TYPES = ("m5.large", "m5a.large", "m5d.large", "m6i.large")
AMI = "ami-12345678"


@attrs.frozen
class Stack:
    """What :func:`build_stack` created."""

    cluster: str
    group: str
    target_group_arn: str | None
    service: str | None


def subnets(sim: Simulator, zones: Sequence[str] = ("us-east-1a", "us-east-1b", "us-east-1c")) -> list[dict[str, Any]]:
    found = {s["AvailabilityZone"]: s for s in sim.client("ec2").describe_subnets()["Subnets"]}
    return [found[z] for z in zones]


def launch_template(sim: Simulator, name: str, cluster: str, *, spot_draining: bool = True) -> str:
    """A launch template whose user data is ecsspot's own script (ECS_CLUSTER and the spot
    draining flag), or a plain script without the flag."""
    if spot_draining:
        text = userdata.render(cluster)
    else:
        text = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    sim.client("ec2").create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.large", "UserData": userdata.encode(text)},
    )
    return name


def mixed_group(
    sim: Simulator,
    name: str,
    template: str,
    *,
    desired: int,
    base: int = 0,
    percent: int = 0,
    types: Sequence[str] = SPOT_TYPES,
    strategy: str = "price-capacity-optimized",
    maximum: int = 20,
    **extra: Any,
) -> str:
    sim.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=maximum,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets(sim)),
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": template, "Version": "$Latest"},
                "Overrides": [{"InstanceType": t} for t in types],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": base,
                "OnDemandPercentageAboveBaseCapacity": percent,
                "SpotAllocationStrategy": strategy,
            },
        },
        **extra,
    )
    return name


def capacity_provider(sim: Simulator, name: str, group: str) -> str:
    arn = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["AutoScalingGroupARN"]
    sim.client("ecs").create_capacity_provider(name=name, autoScalingGroupProvider={"autoScalingGroupArn": arn})
    return name


def target_group(sim: Simulator, name: str, *, delay: int = 300, interval: int = 10, healthy: int = 3, unhealthy: int = 2) -> str:
    """An ALB with a listener forwarding to a new target group (instance targets, port 80)."""
    elb = sim.client("elbv2")
    nets = subnets(sim)
    lb = elb.create_load_balancer(Name=f"{name}-alb", Subnets=[s["SubnetId"] for s in nets])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=80,
        VpcId=nets[0]["VpcId"],
        HealthCheckIntervalSeconds=interval,
        HealthyThresholdCount=healthy,
        UnhealthyThresholdCount=unhealthy,
    )["TargetGroups"][0]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}],
    )
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    return tg["TargetGroupArn"]


def web_task_definition(sim: Simulator, *, cpu: int = 256, memory: int = 512, stop_timeout: int | None = None) -> str:
    container: dict[str, Any] = {
        "name": "web",
        "image": "public.ecr.aws/nginx/nginx:stable",
        "cpu": cpu,
        "memory": memory,
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
    }
    if stop_timeout is not None:
        container["stopTimeout"] = stop_timeout
    sim.client("ecs").register_task_definition(family="web", containerDefinitions=[container])
    return "web"


def web_service(
    sim: Simulator,
    cluster: str,
    *,
    desired: int,
    target_group_arn: str | None,
    minimum: int = 100,
    maximum: int = 200,
    **extra: Any,
) -> str:
    kwargs: dict[str, Any] = {
        "cluster": cluster,
        "serviceName": "web",
        "taskDefinition": "web",
        "desiredCount": desired,
        "deploymentConfiguration": {"minimumHealthyPercent": minimum, "maximumPercent": maximum},
        **extra,
    }
    if target_group_arn:
        kwargs["loadBalancers"] = [{"targetGroupArn": target_group_arn, "containerName": "web", "containerPort": 80}]
    if "capacityProviderStrategy" not in extra:
        kwargs.setdefault("launchType", "EC2")
    sim.client("ecs").create_service(**kwargs)
    return "web"


def build_stack(
    sim: Simulator,
    *,
    cluster: str = "demo",
    instances: int = 4,
    base: int = 0,
    percent: int = 0,
    tasks: int = 0,
    delay: int = 300,
    minimum: int = 100,
    maximum: int = 200,
    spot_draining: bool = True,
    with_load_balancer: bool = True,
    stop_timeout: int | None = None,
    boot: float = 60.0,
) -> Stack:
    """Cluster, launch template (ecsspot's user data), one mixed group, optionally an ALB target
    group and a load-balanced service; then ``boot`` virtual seconds for it all to come up."""
    sim.client("ecs").create_cluster(clusterName=cluster)
    template = launch_template(sim, f"{cluster}-lt", cluster, spot_draining=spot_draining)
    group = mixed_group(sim, f"{cluster}-spot", template, desired=instances, base=base, percent=percent)
    tg = target_group(sim, f"{cluster}-tg", delay=delay) if with_load_balancer else None
    service = None
    if tasks:
        web_task_definition(sim, stop_timeout=stop_timeout)
        service = web_service(sim, cluster, desired=tasks, target_group_arn=tg, minimum=minimum, maximum=maximum)
    sim.advance(boot)
    return Stack(cluster, group, tg, service)


def container_instances(sim: Simulator, cluster: str, status: str | None = None) -> list[dict[str, Any]]:
    ecs = sim.client("ecs")
    kwargs = {"status": status} if status else {}
    arns = ecs.list_container_instances(cluster=cluster, **kwargs)["containerInstanceArns"]
    if not arns:
        return []
    return ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]


def tasks_of(sim: Simulator, cluster: str, service: str = "web", desired: str = "RUNNING") -> list[dict[str, Any]]:
    ecs = sim.client("ecs")
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus=desired)["taskArns"]
    if not arns:
        return []
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]


def target_health(sim: Simulator, tg_arn: str) -> dict[tuple[str, int], str]:
    described = sim.client("elbv2").describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in described}
