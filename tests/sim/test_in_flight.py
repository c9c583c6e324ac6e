"""Requests in flight, draining targets, keep-alive connections and ``unhealthy.draining``."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.exceptions
import pytest

from ecsspot.sim import Simulator, TrafficStats
from tests.sim.stack import launch_template, mixed_group, subnets, target_group, target_health


@pytest.fixture(name="instance")
def instance_fixture(sim: Simulator) -> str:
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=1)
    sim.advance(30)
    return sim.spot_instances()[0]


def serving(sim: Simulator, instance: str, *ports: int, delay: int = 60) -> str:
    """An ALB group whose targets are healthy ports of ``instance`` (the instance answers on
    ports no task uses)."""
    tg = target_group(sim, "demo-tg", delay=delay, interval=10, healthy=3, unhealthy=2)
    sim.client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": p} for p in ports])
    sim.advance(30)
    assert set(target_health(sim, tg).values()) == {"healthy"}
    return tg


def nlb_group(sim: Simulator, *, delay: int = 60, attributes: dict[str, str] | None = None) -> str:
    """A Network Load Balancer with a TCP listener forwarding to a new TCP target group."""
    elb = sim.client("elbv2")
    nets = subnets(sim)
    lb = elb.create_load_balancer(Name="demo-nlb", Type="network", Subnets=[s["SubnetId"] for s in nets])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="demo-tcp", Protocol="TCP", Port=80, VpcId=nets[0]["VpcId"], HealthCheckProtocol="TCP",
        HealthCheckIntervalSeconds=10, HealthyThresholdCount=3, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    attrs_ = {"deregistration_delay.timeout_seconds": str(delay), **(attributes or {})}
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in attrs_.items()])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    return tg


def received(sim: Simulator, tg: str, instance: str, port: int) -> int:
    return sim.world.traffic.received.get(tg, {}).get((instance, port), 0)


def test_a_request_in_flight_when_its_target_dies_fails(sim: Simulator, instance: str) -> None:
    tg = serving(sim, instance, 8080)
    sim.start_traffic(tg, 1, duration=30)
    sim.advance(5)
    assert sim.traffic_stats(tg) == TrafficStats(requests=5, in_flight=5)
    sim.client("ec2").terminate_instances(InstanceIds=[instance])
    sim.advance(1)
    # The 5 in flight are cut; the next one still goes there (healthy until two failed checks).
    stats = sim.traffic_stats(tg)
    assert (stats.requests, stats.succeeded, stats.failed, stats.cut, stats.no_target, stats.in_flight) == (6, 0, 6, 5, 0, 0)


def test_a_request_in_flight_on_a_draining_target_completes_while_its_listener_lives(sim: Simulator, instance: str) -> None:
    tg = serving(sim, instance, 8080)
    sim.start_traffic(tg, 1, duration=30)
    sim.advance(5)
    sim.client("elbv2").deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.stop_traffic(tg)
    sim.advance(40)
    assert target_health(sim, tg) == {(instance, 8080): "draining"}
    assert sim.traffic_stats(tg) == TrafficStats(requests=5, succeeded=5)


def test_a_request_still_in_flight_when_the_deregistration_delay_ends_fails(sim: Simulator, instance: str) -> None:
    tg = serving(sim, instance, 8080, delay=20)
    sim.start_traffic(tg, 1, duration=30)
    sim.advance(1)
    sim.stop_traffic(tg)
    sim.client("elbv2").deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(19)
    assert sim.traffic_stats(tg).in_flight == 1
    sim.advance(1)  # the delay is over: the load balancer closes the connection under it
    assert target_health(sim, tg) == {}
    stats = sim.traffic_stats(tg)
    assert (stats.requests, stats.failed, stats.cut, stats.in_flight) == (1, 1, 1, 0)
    assert sim.world.instance_running(instance)  # the target itself never went away


def test_no_new_request_reaches_a_draining_target(sim: Simulator, instance: str) -> None:
    tg = serving(sim, instance, 8080, 8081)
    sim.start_traffic(tg, 10)
    sim.advance(5)
    assert received(sim, tg, instance, 8080) == received(sim, tg, instance, 8081) == 25
    sim.client("elbv2").deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8081}])
    sim.advance(10)
    assert received(sim, tg, instance, 8081) == 25
    assert received(sim, tg, instance, 8080) == 125
    sim.client("elbv2").deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(2)
    # Nothing routable: the load balancer itself answers 503, and that is a failed request.
    stats = sim.traffic_stats(tg)
    assert (stats.failed, stats.no_target, stats.succeeded + stats.failed + stats.in_flight) == (20, 20, stats.requests)


def test_keep_alive_connections_keep_reaching_a_draining_target_of_a_tcp_group(sim: Simulator, instance: str) -> None:
    """Connection draining is per connection: a Network Load Balancer's existing connections to
    a deregistering target carry requests until the delay is over, new ones never go there."""
    tg = nlb_group(sim, delay=20)
    sim.client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}, {"Id": instance, "Port": 8081}])
    sim.advance(30)
    sim.start_traffic(tg, 10, keep_alive=0.5)
    sim.advance(5)
    sim.client("elbv2").deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8081}])
    before = received(sim, tg, instance, 8081)
    sim.advance(10)
    assert received(sim, tg, instance, 8081) - before in range(20, 31)  # about half of the kept-alive half
    sim.advance(10)  # the delay is over: the target is gone and so are its connections
    gone = received(sim, tg, instance, 8081)
    sim.advance(10)
    assert received(sim, tg, instance, 8081) == gone
    assert sim.traffic_stats(tg).failed == 0


def test_keep_alive_is_for_connection_balanced_groups(sim: Simulator, instance: str) -> None:
    tg = serving(sim, instance, 8080)
    with pytest.raises(ValueError, match="TCP/TLS"):
        sim.start_traffic(tg, 10, keep_alive=0.5)


@pytest.fixture(name="down")
def down_fixture(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[str, int]]]:
    """Targets whose listener is made to stop answering (and to answer again when removed)."""
    down: set[tuple[str, int]] = set()
    listening = sim.world.scheduler.listening
    monkeypatch.setattr(sim.world.scheduler, "listening", lambda i, p: (i, int(p)) not in down and listening(i, p))
    yield down


UNHEALTHY_DRAINING = {
    "target_health_state.unhealthy.connection_termination.enabled": "false",
    "target_health_state.unhealthy.draining_interval_seconds": "60",
}


def test_a_failing_nlb_target_is_unhealthy_draining_for_the_interval_then_unhealthy(sim: Simulator, instance: str, down: set[tuple[str, int]]) -> None:
    tg = nlb_group(sim, attributes=UNHEALTHY_DRAINING)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}, {"Id": instance, "Port": 8081}])
    sim.advance(30)
    sim.start_traffic(tg, 10, keep_alive=0.5)
    sim.advance(5)
    down.add((instance, 8081))
    sim.advance(20)  # two failed checks
    assert target_health(sim, tg) == {(instance, 8080): "healthy", (instance, 8081): "unhealthy.draining"}
    described = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8081}])["TargetHealthDescriptions"][0]
    assert described["TargetHealth"]["State"] == "unhealthy.draining"
    # No new connections; the established ones stay until the interval is over.
    kept = received(sim, tg, instance, 8081)
    sim.advance(30)
    assert received(sim, tg, instance, 8081) > kept
    sim.advance(30)
    assert target_health(sim, tg)[(instance, 8081)] == "unhealthy"
    terminated = received(sim, tg, instance, 8081)
    sim.advance(10)
    assert received(sim, tg, instance, 8081) == terminated


def test_an_unhealthy_draining_target_that_recovers_is_healthy_again(sim: Simulator, instance: str, down: set[tuple[str, int]]) -> None:
    tg = nlb_group(sim, attributes=UNHEALTHY_DRAINING)
    sim.client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(30)
    down.add((instance, 8080))
    sim.advance(20)
    assert target_health(sim, tg) == {(instance, 8080): "unhealthy.draining"}
    down.clear()
    sim.advance(30)  # three passing checks, within the 60 s interval
    assert target_health(sim, tg) == {(instance, 8080): "healthy"}
    assert [r.detail["state"] for r in sim.records("target.state", f"{instance}:8080")] == ["initial", "healthy", "unhealthy.draining", "healthy"]


def test_without_the_attributes_a_failing_nlb_target_is_unhealthy_at_once(sim: Simulator, instance: str, down: set[tuple[str, int]]) -> None:
    tg = nlb_group(sim)
    sim.client("elbv2").register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(30)
    down.add((instance, 8080))
    sim.advance(20)
    assert target_health(sim, tg) == {(instance, 8080): "unhealthy"}


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"target_health_state.unhealthy.connection_termination.enabled": "false"}, "not supported"),
        (UNHEALTHY_DRAINING, "not supported"),
    ],
)
def test_unhealthy_target_attributes_are_refused_on_an_alb_group(sim: Simulator, attributes: dict[str, str], message: str) -> None:
    tg = target_group(sim, "demo-tg")
    elb = sim.client("elbv2")
    with pytest.raises(botocore.exceptions.ClientError, match=message) as raised:
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()])
    assert raised.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
    kept = {a["Key"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]}
    assert not kept & set(attributes)  # nothing half-applied


def test_a_draining_interval_needs_connection_termination_off(sim: Simulator) -> None:
    tg = nlb_group(sim)
    elb = sim.client("elbv2")
    with pytest.raises(botocore.exceptions.ClientError, match="connection_termination.enabled' is false"):
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "target_health_state.unhealthy.draining_interval_seconds", "Value": "30"}])
    with pytest.raises(botocore.exceptions.ClientError, match="0 and 360000"):
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": k, "Value": "360001" if k.endswith("seconds") else v} for k, v in UNHEALTHY_DRAINING.items()])
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in UNHEALTHY_DRAINING.items()])
    with pytest.raises(botocore.exceptions.ClientError, match="connection_termination.enabled' is false"):
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "target_health_state.unhealthy.connection_termination.enabled", "Value": "true"}])
