"""The demo architecture on the simulator: what `ecsspot demo` plays, and what tests reuse.

An ecsspot cluster (``apply`` of a spec like ``examples/demo-api.yaml``: an on-demand base pool
plus a diversified spot pool) behind an ALB → target group → ECS service with dynamic host
ports, steady traffic, and optionally ecsspot's interruption Lambda wired the way the Terraform
module wires it (EventBridge rules for the spot warning, rebalance recommendations and
terminate lifecycle actions), either through an SQS queue with a dead-letter queue and an event
source mapping, as the module deploys it (``terraform/events.tf``), or with the rules targeting
the Lambda directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs

from ecsspot.sim.simulator import Simulator
from ecsspot.sim.spot import SPOT
from ecsspot.sim.world import Machine
from ecsspot.spec import LIFECYCLE_HOOK_NAME

INTERRUPTION_FUNCTION = "ecsspot-interruption"
#: The module's queues (``terraform/events.tf``), without its name prefix.
EVENTS_QUEUE = "ecsspot-events"
DEAD_LETTER_QUEUE = "ecsspot-events-dlq"
#: The module's defaults: ``visibility_timeout_seconds``, ``var.max_receive_count``,
#: ``var.interruption_batch_size``.
VISIBILITY_TIMEOUT = 930
MAX_RECEIVE_COUNT = 5
BATCH_SIZE = 10
RULES = {
    "ecsspot-spot": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]},
    # As the module's rule: only ecsspot's hook (ECS managed draining completes its own).
    "ecsspot-lifecycle": {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"LifecycleHookName": [LIFECYCLE_HOOK_NAME]},
    },
}

BASE_SPEC: dict[str, Any] = {
    "cluster": "demo-api",
    "instances": {
        "ami": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        "instance_profile": "ecsInstanceRole",
        "ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "30s"},
        "tags": {"team": "api"},
    },
    "pools": [
        {
            "name": "spot",
            "min_size": 0,
            "max_size": 20,
            "instance_types": ["m5.large", "m5a.large", "m5d.large", "m6i.large"],
            "on_demand_percentage_above_base": 0,
            "spot_allocation_strategy": "price-capacity-optimized",
        },
        {"name": "on-demand", "min_size": 1, "max_size": 4, "instance_types": ["m5.large"], "on_demand_percentage_above_base": 100},
    ],
    "strategy": [{"pool": "on-demand", "base": 1, "weight": 1}, {"pool": "spot", "weight": 3}],
    "drain": {"deadline_seconds": 110},
    "refresh": {"batch_size": 1, "min_healthy_percent": 90},
}


@attrs.frozen
class DemoConfig:
    """Knobs of the demo architecture (all in virtual time).

    The defaults make the case users report (aws/containers-roadmap#2673): a full cluster, the
    service on AWS's default deployment settings (minimumHealthyPercent 100), and a storm that
    also takes the pool's spot capacity. ECS then waits for replacements that cannot be placed
    before it deregisters the old targets, and the load balancer keeps sending requests to
    instances that are about to die. ``ecsspot demo`` follows lint's advice instead
    (``ecsspot.sim.demo.CONFIG``).
    """

    #: Group sizes when ``managed_scaling`` is off (with it on, ECS sizes the groups itself).
    spot_instances: int = 6
    on_demand_instances: int = 3
    tasks: int = 15
    #: CPU units per task: an m5.large has 2048, so two tasks fill one.
    task_cpu: int = 1024
    rps: float = 100.0
    deregistration_delay: int = 30
    #: Wire ecsspot's interruption Lambda (False: only the ECS agent's own spot draining).
    handle_events: bool = True
    #: Deliver the events to it as deployed: EventBridge → SQS → event source mapping (False:
    #: the rules invoke it directly).
    via_queue: bool = False
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    container_stop_timeout: int = 30
    #: The spec's ``drain.lifecycle_timeout_seconds``: the drain hook's heartbeat timeout.
    lifecycle_timeout: int = 600
    #: Simulate ECS managed scaling and managed termination protection (the spec turns both on).
    managed_scaling: bool = True


@attrs.frozen
class Stack:
    cluster: str
    spec: Any
    target_group_arn: str
    service: str
    manager: Any = attrs.field(eq=False, repr=False)


@attrs.frozen
class Snapshot:
    """One line of the demo's timeline."""

    time: float
    spot: int
    on_demand: int
    draining: int
    tasks: int
    healthy_targets: int
    requests: int
    failed: int
    no_target: int


def spec_dict(sim: Simulator, config: DemoConfig) -> dict[str, Any]:
    """The demo spec with the simulator's default-VPC subnets (one per AZ) and security group."""
    ec2 = sim.client("ec2")
    by_az: dict[str, str] = {}
    for subnet in ec2.describe_subnets()["Subnets"]:
        by_az.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    d = copy.deepcopy(BASE_SPEC)
    d["region"] = sim.region
    d["network"] = {"subnets": [by_az[z] for z in sorted(by_az)][:3], "security_groups": [group]}
    d["instances"]["ecs_config"]["ECS_CONTAINER_STOP_TIMEOUT"] = f"{config.container_stop_timeout}s"
    d["drain"]["lifecycle_timeout_seconds"] = config.lifecycle_timeout
    return d


def manager_for(sim: Simulator) -> Any:
    """A Manager talking to the simulator on its clock (HTTP in server mode, else in-process)."""
    from ecsspot.manager import Manager

    return Manager(region=sim.region, endpoint_url=sim.endpoint_url, clock=sim.clock)


def interruption_queue(sim: Simulator, *, max_receive_count: int = MAX_RECEIVE_COUNT, batch_size: int = BATCH_SIZE) -> str:
    """The module's events queue (930 s visibility, a day's retention, redrive to the
    dead-letter queue after ``max_receive_count`` receives) and the interruption function's
    event source mapping on it (``ReportBatchItemFailures``); returns the queue's ARN."""
    import json

    sqs = sim.client("sqs")
    dlq_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=EVENTS_QUEUE,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
            "MessageRetentionPeriod": "86400",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with sim.world.lock:
        sim.world.events.create_event_source_mapping(arn, INTERRUPTION_FUNCTION, batch_size=batch_size)
    return arn


def wire_interruption_handler(
    sim: Simulator,
    cluster: str,
    on_result: Callable[[float, float, dict[str, Any]], None] | None = None,
    *,
    via_queue: bool = False,
    handler: Callable[[Any, Any], Any] | None = None,
) -> None:
    """EventBridge rules → (SQS → event source mapping, with ``via_queue``) → the interruption
    Lambda, running in-process on the simulator's clock.

    ``handler`` replaces ecsspot's own (``Handlers.interruption`` on a driver pointed at the
    simulator); ``on_result(started, finished, response)`` sees each invocation's response
    (virtual times).
    """
    import json

    events = sim.client("events")
    target = interruption_queue(sim) if via_queue else f"arn:aws:lambda:{sim.region}:{sim.world.account_id}:function:{INTERRUPTION_FUNCTION}"
    for name, pattern in RULES.items():
        events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "interruption", "Arn": target}])
    if handler is None:
        from ecsspot.aws.clients import ClientOptions
        from ecsspot.aws.driver import Driver
        from ecsspot.handlers import Handlers

        handlers = Handlers(Driver(ClientOptions(region=sim.region, endpoint_url=sim.endpoint_url), clock=sim.clock), default_cluster=cluster)
        handler = handlers.interruption
    if on_result is None:
        sim.register_lambda(INTERRUPTION_FUNCTION, handler)
        return
    inner = handler

    def observed(event: Any, context: Any) -> dict[str, Any]:
        started = sim.now()
        response = inner(event, context)
        on_result(started, sim.now(), response)
        return response

    sim.register_lambda(INTERRUPTION_FUNCTION, observed)


def build(
    sim: Simulator,
    config: DemoConfig = DemoConfig(),
    *,
    boot_timeout: float = 600.0,
    on_result: Callable[[float, float, dict[str, Any]], None] | None = None,
) -> Stack:
    """Apply the demo spec, start the service behind an ALB, wait until it serves, start traffic."""
    from ecsspot.spec import load_spec

    spec = load_spec(spec_dict(sim, config))
    m = manager_for(sim)
    m.apply(spec)
    if not sim.managed_scaling:
        # Without simulated ECS managed scaling, size the groups the way it would for the service.
        asg = sim.client("autoscaling")
        asg.set_desired_capacity(AutoScalingGroupName=spec.asg_name(spec.pool("on-demand")), DesiredCapacity=config.on_demand_instances)
        asg.set_desired_capacity(AutoScalingGroupName=spec.asg_name(spec.pool("spot")), DesiredCapacity=config.spot_instances)
    if config.handle_events:
        wire_interruption_handler(sim, spec.cluster, on_result, via_queue=config.via_queue)

    ec2, elb, ecs = sim.client("ec2"), sim.client("elbv2"), sim.client("ecs")
    subnets = list(spec.network.subnets)
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    lb = elb.create_load_balancer(Name=f"{spec.cluster}-alb", Subnets=subnets)["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name=f"{spec.cluster}-web",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200-399"},
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(config.deregistration_delay)}]
    )
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    ecs.register_task_definition(
        family="web",
        networkMode="bridge",
        containerDefinitions=[
            {
                "name": "web",
                "image": "public.ecr.aws/nginx/nginx:stable",
                "cpu": config.task_cpu,
                "memory": 512,
                "portMappings": [{"containerPort": 80, "hostPort": 0}],
                "stopTimeout": config.container_stop_timeout,
            }
        ],
    )
    ecs.create_service(
        cluster=spec.cluster,
        serviceName="web",
        taskDefinition="web",
        desiredCount=config.tasks,
        capacityProviderStrategy=[
            {"capacityProvider": spec.capacity_provider_name(spec.pool("on-demand")), "base": 1, "weight": 1},
            {"capacityProvider": spec.capacity_provider_name(spec.pool("spot")), "weight": 3},
        ],
        deploymentConfiguration={"minimumHealthyPercent": config.minimum_healthy_percent, "maximumPercent": config.maximum_percent},
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
    )
    stack = Stack(spec.cluster, spec, tg, "web", m)
    serving = sim.run_until(lambda: healthy_targets(sim, tg) >= config.tasks, timeout=boot_timeout, step=5)
    if not serving:
        raise RuntimeError(f"the demo service did not become healthy within {boot_timeout:.0f} virtual seconds")
    sim.start_traffic(tg, config.rps)
    return stack


def healthy_targets(sim: Simulator, target_group_arn: str) -> int:
    described = sim.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return sum(1 for d in described if d["TargetHealth"]["State"] == "healthy")


@attrs.frozen
class Fleet:
    """A cluster's pending and running instances and how many of its container instances are
    DRAINING: what the demo's and ``simulate``'s timelines count."""

    instances: tuple[Machine, ...]
    draining: int

    @property
    def spot(self) -> int:
        return sum(1 for m in self.instances if m.lifecycle == SPOT)

    @property
    def on_demand(self) -> int:
        return len(self.instances) - self.spot


def fleet(sim: Simulator, spec: Any) -> Fleet:
    """The instances launched for the spec's groups that are not terminated, and the DRAINING
    count. Read from the simulator's own record of what EC2 launched: a DescribeInstances per
    timeline row cost more than a 500-instance storm itself."""
    groups = {spec.asg_name(p) for p in spec.pools}
    machines = tuple(m for m in sim.world.machines.values() if m.group in groups and m.terminated_at is None)
    draining = sim.client("ecs").list_container_instances(cluster=spec.cluster, status="DRAINING")["containerInstanceArns"]
    return Fleet(machines, len(draining))


def snapshot(sim: Simulator, stack: Stack) -> Snapshot:
    """Instances by lifecycle, DRAINING ones, running tasks, healthy targets, requests so far."""
    now = fleet(sim, stack.spec)
    service = sim.client("ecs").describe_services(cluster=stack.cluster, services=[stack.service])["services"][0]
    stats = sim.traffic_stats(stack.target_group_arn)
    return Snapshot(
        time=sim.now(),
        spot=now.spot,
        on_demand=now.on_demand,
        draining=now.draining,
        tasks=service.get("runningCount", 0),
        healthy_targets=healthy_targets(sim, stack.target_group_arn),
        requests=stats.requests,
        failed=stats.failed,
        no_target=stats.no_target,
    )


def play(sim: Simulator, seconds: float, every: float, stack: Stack, on_snapshot: Callable[[Snapshot], None] | None = None) -> None:
    """Advance ``seconds``, reporting a snapshot every ``every`` seconds."""
    end = sim.now() + seconds
    while sim.now() < end:
        sim.advance(min(every, end - sim.now()))
        if on_snapshot is not None:
            on_snapshot(snapshot(sim, stack))
