"""A Network Load Balancer target in ``unhealthy.draining`` (issue 10, last ALB rule): the drain
deregisters it like any other target of the instance, and never counts one as a healthy target
elsewhere. Through ``ecsspot.Manager.drain`` against the simulator (the demo architecture, small,
plus a ``tcp`` service behind an NLB whose group keeps a failing target's connections 300 s).

A guard: drain.py already deregisters every state but ``draining`` and counts only ``healthy``
targets; these tests pin that down for the state AWS added later.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecsspot.manager import Manager
from ecsspot.sim import Simulator
from tests.drain.conftest import REGION, CallLog, build, container_instances, targets

ATTRIBUTES = {
    "deregistration_delay.timeout_seconds": "10",
    "target_health_state.unhealthy.connection_termination.enabled": "false",
    "target_health_state.unhealthy.draining_interval_seconds": "300",
}


def add_nlb_service(sim: Simulator, cluster: str, desired: int) -> str:
    """A bridge-mode service ``tcp`` behind its own TCP target group; returns the group's ARN."""
    ec2, elb, ecs = sim.client("ec2"), sim.client("elbv2"), sim.client("ecs")
    nets = ec2.describe_subnets()["Subnets"][:3]
    lb = elb.create_load_balancer(Name="tcp-nlb", Type="network", Subnets=[s["SubnetId"] for s in nets])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="tcp", Protocol="TCP", Port=9000, VpcId=nets[0]["VpcId"], HealthCheckProtocol="TCP",
        HealthCheckIntervalSeconds=10, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in ATTRIBUTES.items()])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=9000, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    ecs.register_task_definition(
        family="tcp",
        containerDefinitions=[{"name": "tcp", "image": "x", "cpu": 128, "memory": 128, "portMappings": [{"containerPort": 9000, "hostPort": 0}]}],
    )
    ecs.create_service(
        cluster=cluster, serviceName="tcp", taskDefinition="tcp", desiredCount=desired, launchType="EC2",
        placementStrategy=[{"type": "spread", "field": "instanceId"}],
        loadBalancers=[{"targetGroupArn": tg, "containerName": "tcp", "containerPort": 9000}],
    )
    assert sim.run_until(lambda: list(targets(sim, tg).values()).count("healthy") == desired, timeout=120, step=5)
    return tg


@pytest.fixture(name="down")
def down_fixture(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[str, int]]]:
    """Targets whose process stops answering health checks while its task keeps RUNNING."""
    down: set[tuple[str, int]] = set()
    listening = sim.world.scheduler.listening
    monkeypatch.setattr(sim.world.scheduler, "listening", lambda i, p: (i, int(p)) not in down and listening(i, p))
    yield down


def fail(sim: Simulator, tg: str, target: tuple[str, int], down: set[tuple[str, int]]) -> None:
    down.add(target)
    assert sim.run_until(lambda: targets(sim, tg)[target] == "unhealthy.draining", timeout=60, step=5)


def test_a_target_in_unhealthy_draining_on_the_drained_instance_is_deregistered(sim: Simulator, down: set[tuple[str, int]]) -> None:
    stack = build(sim)
    tg = add_nlb_service(sim, stack.cluster, desired=2)
    spot = set(sim.spot_instances())
    victim_target = next(t for t in targets(sim, tg) if t[0] in spot)
    fail(sim, tg, victim_target, down)
    log = CallLog()

    result = Manager(region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock, event_handlers=[log.handler()]).drain(
        stack.cluster, [victim_target[0]], deadline=300
    )

    (action,) = result.actions
    assert action.status == "drained", action
    assert victim_target in log.deregistered()
    assert victim_target not in targets(sim, tg)
    assert container_instances(sim, stack.cluster)[victim_target[0]]["status"] == "DRAINING"


def test_a_target_in_unhealthy_draining_elsewhere_is_not_a_healthy_replacement(sim: Simulator, down: set[tuple[str, int]]) -> None:
    stack = build(sim)
    tg = add_nlb_service(sim, stack.cluster, desired=2)
    spot = set(sim.spot_instances())
    victim, elsewhere = sorted(targets(sim, tg), key=lambda t: t[0] not in spot)
    assert victim[0] in spot and elsewhere[0] != victim[0]
    fail(sim, tg, elsewhere, down)

    result = Manager(region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock).drain(stack.cluster, [victim[0]], deadline=90)

    # The replacement of the victim's task is healthy, the other one is unhealthy.draining: one
    # healthy target of two wanted, so the drain is not over (it would be, counted as healthy).
    (action,) = result.actions
    assert action.status == "timed_out", action
    assert "tcp 1/2" in action.reason, action.reason
    assert sorted(targets(sim, tg).values()) == ["healthy", "unhealthy.draining"]
