"""Task rules the drain relies on: counts by desired status, the stop timeout, awsvpc task ENIs
and ``ip`` targets, DAEMON services on DRAINING instances, standalone (RunTask) tasks."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecsspot.sim import Simulator
from tests.sim.stack import build_stack, container_instances, subnets, target_health, tasks_of


def counts(sim: Simulator, cluster: str = "demo") -> tuple[int, int]:
    """(runningTasksCount, pendingTasksCount) summed over the cluster's container instances."""
    described = container_instances(sim, cluster)
    return sum(ci["runningTasksCount"] for ci in described), sum(ci["pendingTasksCount"] for ci in described)


def host_of(sim: Simulator, task: dict[str, Any]) -> str:
    return next(ci["ec2InstanceId"] for ci in container_instances(sim, "demo") if ci["containerInstanceArn"] == task["containerInstanceArn"])


def ip_target_group(sim: Simulator, name: str = "api-tg", delay: int = 20) -> str:
    elb = sim.client("elbv2")
    nets = subnets(sim)
    lb = elb.create_load_balancer(Name=f"{name}-alb", Subnets=[s["SubnetId"] for s in nets])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name=name, Protocol="HTTP", Port=8080, VpcId=nets[0]["VpcId"], TargetType="ip", HealthCheckIntervalSeconds=10, HealthyThresholdCount=2
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    return tg


def awsvpc_service(sim: Simulator, tg: str, desired: int, name: str = "api") -> None:
    ecs = sim.client("ecs")
    ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        containerDefinitions=[{"name": name, "image": "x", "cpu": 256, "memory": 256, "portMappings": [{"containerPort": 8080}]}],
    )
    nets = subnets(sim)
    group = sim.client("ec2").describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ecs.create_service(
        cluster="demo",
        serviceName=name,
        taskDefinition=name,
        desiredCount=desired,
        launchType="EC2",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in nets], "securityGroups": [group]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": name, "containerPort": 8080}],
    )


def test_counts_cover_desired_running_and_stopping_lasts_the_default_stop_timeout(sim: Simulator) -> None:
    """A plain ecs.config (no ECS_CONTAINER_STOP_TIMEOUT) and no stopTimeout: 30 s from SIGTERM
    to STOPPED; the stopping task leaves runningTasksCount and runningCount at once."""
    build_stack(sim, instances=2, tasks=2, with_load_balancer=False, spot_draining=False, boot=60)
    assert counts(sim) == (2, 0)
    victim = tasks_of(sim, "demo")[0]
    ecs = sim.client("ecs")
    ecs.stop_task(cluster="demo", task=victim["taskArn"])

    (stopping,) = ecs.describe_tasks(cluster="demo", tasks=[victim["taskArn"]])["tasks"]
    assert (stopping["lastStatus"], stopping["desiredStatus"]) == ("STOPPING", "STOPPED")
    assert counts(sim) == (1, 0)
    service = ecs.describe_services(cluster="demo", services=["web"])["services"][0]
    assert service["runningCount"] == 1
    # Not in ListTasks' default (desired RUNNING) list any more; listed with desiredStatus STOPPED.
    assert victim["taskArn"] not in ecs.list_tasks(cluster="demo")["taskArns"]
    assert victim["taskArn"] in ecs.list_tasks(cluster="demo", desiredStatus="STOPPED")["taskArns"]

    sim.advance(29)
    assert ecs.describe_tasks(cluster="demo", tasks=[victim["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPING"
    sim.advance(1)
    assert ecs.describe_tasks(cluster="demo", tasks=[victim["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPED"


def test_awsvpc_tasks_get_an_eni_each_and_register_ip_targets(sim: Simulator) -> None:
    build_stack(sim, instances=2, with_load_balancer=False, boot=60)
    tg = ip_target_group(sim)
    # m5.large-sized instances have 3 network interfaces: 2 awsvpc tasks each, so 4 of the 5.
    awsvpc_service(sim, tg, desired=5)
    sim.advance(10 + 20 + 1)

    tasks = tasks_of(sim, "demo", service="api")
    assert len(tasks) == 4 and {t["lastStatus"] for t in tasks} == {"RUNNING"}
    cidrs = {s["SubnetId"]: ipaddress.ip_network(s["CidrBlock"]) for s in subnets(sim)}
    ips = {}
    for task in tasks:
        (attachment,) = task["attachments"]
        assert (attachment["type"], attachment["status"]) == ("ElasticNetworkInterface", "ATTACHED")
        details = {d["name"]: d["value"] for d in attachment["details"]}
        assert ipaddress.ip_address(details["privateIPv4Address"]) in cidrs[details["subnetId"]]
        assert task["containers"][0].get("networkBindings", []) == []
        ips[task["taskArn"]] = details["privateIPv4Address"]
    assert len(set(ips.values())) == 4
    assert target_health(sim, tg) == {(ip, 8080): "healthy" for ip in ips.values()}
    assert Counter(host_of(sim, t) for t in tasks).most_common(1)[0][1] == 2
    service = sim.client("ecs").describe_services(cluster="demo", services=["api"])["services"][0]
    assert any("unable to place a task" in e["message"] for e in service["events"])

    # An ip target group takes addresses, not instance ids.
    with pytest.raises(ClientError, match="InvalidTarget"):
        sim.client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": sim.spot_instances()[0], "Port": 8080}])

    # Stopped: the target drains first, then the task stops and its ENI is deleted.
    arn = tasks[0]["taskArn"]
    sim.client("ecs").stop_task(cluster="demo", task=arn)
    sim.advance(1)
    assert target_health(sim, tg)[(ips[arn], 8080)] == "draining"
    sim.advance(20 + 60)  # delay, then the stop timeout ecsspot's user data sets
    (stopped,) = sim.client("ecs").describe_tasks(cluster="demo", tasks=[arn])["tasks"]
    assert stopped["lastStatus"] == "STOPPED" and stopped["attachments"][0]["status"] == "DELETED"
    assert (ips[arn], 8080) not in target_health(sim, tg)


def test_daemon_task_is_stopped_last_on_a_draining_instance(sim: Simulator) -> None:
    build_stack(sim, instances=2, tasks=2, minimum=0, with_load_balancer=False, spot_draining=False, boot=60)
    ecs = sim.client("ecs")
    ecs.register_task_definition(family="agent", containerDefinitions=[{"name": "agent", "image": "x", "cpu": 64, "memory": 64}])
    ecs.create_service(cluster="demo", serviceName="agent", taskDefinition="agent", schedulingStrategy="DAEMON", launchType="EC2")
    sim.advance(11)
    daemons = tasks_of(sim, "demo", service="agent")
    hosts = {host_of(sim, t): t["taskArn"] for t in daemons}
    assert len(daemons) == 2 and len(hosts) == 2  # one per ACTIVE instance
    assert ecs.describe_services(cluster="demo", services=["agent"])["services"][0]["desiredCount"] == 2

    web = tasks_of(sim, "demo", service="web")
    victim = host_of(sim, web[0])
    arn = next(ci["containerInstanceArn"] for ci in container_instances(sim, "demo") if ci["ec2InstanceId"] == victim)
    ecs.update_container_instances_state(cluster="demo", containerInstances=[arn], status="DRAINING")
    sim.advance(1)
    web_there = [t["taskArn"] for t in tasks_of(sim, "demo", service="web", desired="STOPPED")]
    assert web_there
    assert ecs.describe_tasks(cluster="demo", tasks=[hosts[victim]])["tasks"][0]["desiredStatus"] == "RUNNING"
    assert ecs.describe_services(cluster="demo", services=["agent"])["services"][0]["desiredCount"] == 1

    sim.advance(29)  # the web tasks' stop timeout (30 s) is not over: the daemon task stays
    assert {t["lastStatus"] for t in ecs.describe_tasks(cluster="demo", tasks=web_there)["tasks"]} == {"STOPPING"}
    assert ecs.describe_tasks(cluster="demo", tasks=[hosts[victim]])["tasks"][0]["lastStatus"] == "RUNNING"
    sim.advance(2)  # the other tasks have stopped: now the daemon task goes
    (daemon,) = ecs.describe_tasks(cluster="demo", tasks=[hosts[victim]])["tasks"]
    assert (daemon["lastStatus"], daemon["desiredStatus"]) == ("STOPPING", "STOPPED")
    sim.advance(30)
    assert ecs.describe_tasks(cluster="demo", tasks=[hosts[victim]])["tasks"][0]["lastStatus"] == "STOPPED"
    assert len(tasks_of(sim, "demo", service="agent")) == 1  # none placed on the DRAINING instance


def test_standalone_tasks_stay_on_a_draining_instance_until_stopped(sim: Simulator) -> None:
    build_stack(sim, instances=1, with_load_balancer=False, spot_draining=False, boot=60)
    ecs = sim.client("ecs")
    ecs.register_task_definition(family="job", containerDefinitions=[{"name": "job", "image": "x", "cpu": 128, "memory": 128}])
    (task,) = ecs.run_task(cluster="demo", taskDefinition="job", launchType="EC2")["tasks"]
    sim.advance(11)
    assert counts(sim) == (1, 0)
    (ci,) = container_instances(sim, "demo")
    ecs.update_container_instances_state(cluster="demo", containerInstances=[ci["containerInstanceArn"]], status="DRAINING")
    sim.advance(600)
    (described,) = ecs.describe_tasks(cluster="demo", tasks=[task["taskArn"]])["tasks"]
    assert (described["lastStatus"], described["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert counts(sim) == (1, 0)

    ecs.stop_task(cluster="demo", task=task["taskArn"])
    assert counts(sim) == (0, 0)
    sim.advance(30)
    assert ecs.describe_tasks(cluster="demo", tasks=[task["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPED"
