"""What is on an instance, task by task (issue 10, items 3 and 4): awsvpc tasks behind an ``ip``
target group, tasks still STOPPING inside their stop timeout, DAEMON and standalone tasks.
Each drain runs through ``ecsspot.Manager.drain`` against the simulator (the demo architecture,
small, plus what each test adds)."""

from __future__ import annotations

from typing import Any

from ecsspot.manager import Manager
from ecsspot.sim import Simulator
from tests.drain.conftest import REGION, CallLog, build, container_instances, first, spot_instances_with_tasks, targets


def manager(sim: Simulator, log: CallLog | None = None) -> Manager:
    return Manager(region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock, event_handlers=[log.handler()] if log else [])


def tasks_on(sim: Simulator, cluster: str, instance_id: str) -> list[dict[str, Any]]:
    """Every task (any status) that ran on ``instance_id``, as DescribeTasks shows it now."""
    arn = container_instances(sim, cluster)[instance_id]["containerInstanceArn"]
    ecs = sim.client("ecs")
    listed = [a for status in ("RUNNING", "STOPPED") for a in ecs.list_tasks(cluster=cluster, containerInstance=arn, desiredStatus=status)["taskArns"]]
    return ecs.describe_tasks(cluster=cluster, tasks=listed)["tasks"] if listed else []


def addresses(task: dict[str, Any]) -> list[str]:
    return [d["value"] for a in task.get("attachments", ()) for d in a["details"] if d["name"] == "privateIPv4Address"]


def add_awsvpc_service(sim: Simulator, cluster: str, desired: int, delay: int = 10) -> str:
    """An awsvpc service ``api`` behind its own ``ip`` target group; returns the group's ARN."""
    ec2, elb, ecs = sim.client("ec2"), sim.client("elbv2"), sim.client("ecs")
    nets = ec2.describe_subnets()["Subnets"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    lb = elb.create_load_balancer(Name="api-alb", Subnets=[s["SubnetId"] for s in nets[:3]])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="api", Protocol="HTTP", Port=8080, VpcId=nets[0]["VpcId"], TargetType="ip", HealthCheckIntervalSeconds=10, HealthyThresholdCount=2
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=8080, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    ecs.register_task_definition(
        family="api",
        networkMode="awsvpc",
        containerDefinitions=[{"name": "api", "image": "x", "cpu": 256, "memory": 256, "portMappings": [{"containerPort": 8080}]}],
    )
    ecs.create_service(
        cluster=cluster,
        serviceName="api",
        taskDefinition="api",
        desiredCount=desired,
        launchType="EC2",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in nets[:3]], "securityGroups": [group]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": "api", "containerPort": 8080}],
    )
    assert sim.run_until(lambda: list(targets(sim, tg).values()).count("healthy") == desired, timeout=120, step=5)
    sim.start_traffic(tg, 20)
    return tg


def test_ip_targets_of_awsvpc_tasks_are_deregistered_at_once_and_waited_for(sim: Simulator) -> None:
    stack = build(sim)
    api = add_awsvpc_service(sim, stack.cluster, desired=4)
    victim = next(
        iid for iid in spot_instances_with_tasks(sim, stack) if any(addresses(t) and t["lastStatus"] == "RUNNING" for t in tasks_on(sim, stack.cluster, iid))
    )
    ips = {ip for t in tasks_on(sim, stack.cluster, victim) for ip in addresses(t)}
    assert ips and all(targets(sim, api)[(ip, 8080)] == "healthy" for ip in ips)
    log = CallLog()
    start = sim.now()

    result = manager(sim, log).drain(stack.cluster, [victim], deadline=300)

    (action,) = result.actions
    assert action.status == "drained", action
    assert {(ip, 8080) for ip in ips} <= set(log.deregistered())
    for ip in ips:
        # ecsspot's DeregisterTargets, not ECS's own after the replacement got healthy (~30 s on).
        assert first(sim, "target.state", f"{ip}:8080", state="draining") - start < 5
        # Verified gone before "drained": not counted as healthy elsewhere, waited for.
        gone = first(sim, "target.state", f"{ip}:8080", state="unused")
        assert gone is not None and gone <= sim.now()
    assert not {ip for ip, _ in targets(sim, api)} & ips
    assert {t["lastStatus"] for t in tasks_on(sim, stack.cluster, victim)} == {"STOPPED"}
    assert sim.traffic_stats(api).failed == 0


def test_tasks_still_stopping_are_waited_for(sim: Simulator) -> None:
    """A 90 s stop timeout: ECS stops the tasks (desired STOPPED, no longer in runningTasksCount)
    long before they are STOPPED; the drain reports drained only after every one is."""
    stack = build(sim, container_stop_timeout=90)
    victim = spot_instances_with_tasks(sim, stack)[0]

    result = manager(sim).drain(stack.cluster, [victim], deadline=300)

    (action,) = result.actions
    assert action.status == "drained", action
    task_records = [r for r in sim.records("task.status") if r.detail.get("instance_id") == victim]
    stopping = [r.time for r in task_records if r.detail.get("status") == "STOPPING"]
    stopped = [r.time for r in task_records if r.detail.get("status") == "STOPPED"]
    assert stopping and len(stopped) == len({r.subject for r in task_records})
    assert max(stopped) - min(stopping) >= 90
    assert max(stopped) <= sim.now()
    assert {t["lastStatus"] for t in tasks_on(sim, stack.cluster, victim)} == {"STOPPED"}


def test_a_short_deadline_names_the_stopping_tasks(sim: Simulator) -> None:
    stack = build(sim, container_stop_timeout=300)
    victim = spot_instances_with_tasks(sim, stack)[0]
    result = manager(sim).drain(stack.cluster, [victim], deadline=100)
    (action,) = result.actions
    assert action.status == "timed_out", action
    assert action.left["task_states"] == {"STOPPING": action.left["tasks"]}
    assert "STOPPING" in action.reason


def test_daemon_tasks_do_not_hold_the_drain(sim: Simulator) -> None:
    """ECS stops a daemon task last, once every other task on the DRAINING instance has stopped:
    the drain is over when those have, whatever the daemon task is doing (here a 120 s stop
    timeout that would not fit the deadline after the rest)."""
    stack = build(sim)
    ecs = sim.client("ecs")
    ecs.register_task_definition(family="agent", containerDefinitions=[{"name": "agent", "image": "x", "cpu": 64, "memory": 64, "stopTimeout": 120}])
    ecs.create_service(cluster=stack.cluster, serviceName="agent", taskDefinition="agent", schedulingStrategy="DAEMON", launchType="EC2")
    sim.advance(15)
    # An instance with web tasks besides the daemon task (every instance now runs one of those).
    victim = next(i for i in spot_instances_with_tasks(sim, stack) if any(t["group"] != "service:agent" for t in tasks_on(sim, stack.cluster, i)))
    (daemon,) = [t for t in tasks_on(sim, stack.cluster, victim) if t["group"] == "service:agent"]

    result = manager(sim).drain(stack.cluster, [victim], deadline=150)

    (action,) = result.actions
    assert action.status == "drained", action
    now = {t["taskArn"]: t for t in tasks_on(sim, stack.cluster, victim)}
    assert {t["lastStatus"] for arn, t in now.items() if arn != daemon["taskArn"]} == {"STOPPED"}
    assert now[daemon["taskArn"]]["lastStatus"] != "STOPPED"


def test_standalone_tasks_are_waited_for_until_the_deadline_and_named(sim: Simulator) -> None:
    stack = build(sim)
    victim = spot_instances_with_tasks(sim, stack)[0]
    ecs = sim.client("ecs")
    ecs.register_task_definition(family="job", containerDefinitions=[{"name": "job", "image": "x", "cpu": 64, "memory": 64}])
    arn = container_instances(sim, stack.cluster)[victim]["containerInstanceArn"]
    (job,) = ecs.start_task(cluster=stack.cluster, taskDefinition="job", containerInstances=[arn])["tasks"]
    sim.advance(15)

    result = manager(sim).drain(stack.cluster, [victim], deadline=120)

    (action,) = result.actions
    assert action.status == "timed_out", action
    assert action.left["tasks"] == 1
    assert action.left["standalone_tasks"] == [f"{job['taskArn'].rsplit('/', 1)[-1]} (family:job, RUNNING)"]
    assert "standalone tasks, which ECS does not move" in action.reason
