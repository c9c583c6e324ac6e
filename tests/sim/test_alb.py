"""ALB target groups: (id, port) targets, health-check timing, draining, atomic deregistration."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from ecsspot.sim import Simulator
from tests.sim.stack import launch_template, mixed_group, target_group, target_health


@pytest.fixture(name="instance")
def instance_fixture(sim: Simulator) -> str:
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-spot", template, desired=1)
    sim.advance(30)
    return sim.spot_instances()[0]


def test_targets_are_keyed_by_id_and_port(sim: Simulator, instance: str) -> None:
    tg = target_group(sim, "demo-tg", delay=20, interval=10, healthy=3, unhealthy=2)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 32768}, {"Id": instance, "Port": 32769}])
    assert target_health(sim, tg) == {(instance, 32768): "initial", (instance, 32769): "initial"}  # moto: one target
    only_id = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": instance}])["TargetHealthDescriptions"]
    assert sorted(d["Target"]["Port"] for d in only_id) == [32768, 32769]

    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 32768}])
    assert target_health(sim, tg) == {(instance, 32768): "draining", (instance, 32769): "initial"}
    unused = elb.describe_target_health(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 1234}])["TargetHealthDescriptions"][0]
    assert unused["TargetHealth"] == {"State": "unused", "Reason": "Target.NotRegistered", "Description": "Target is not registered to the target group"}


def test_health_checks_and_draining_follow_the_group_settings(sim: Simulator, instance: str) -> None:
    tg = target_group(sim, "demo-tg", delay=20, interval=10, healthy=3, unhealthy=2)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(29)
    assert target_health(sim, tg) == {(instance, 8080): "initial"}
    sim.advance(1)  # interval x healthy threshold = 30 s
    assert target_health(sim, tg) == {(instance, 8080): "healthy"}

    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(19)
    described = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert described["State"] == "draining" and described["Reason"] == "Target.DeregistrationInProgress"
    sim.advance(1)  # deregistration_delay.timeout_seconds = 20
    assert target_health(sim, tg) == {}

    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.interrupt([instance])
    sim.advance(120 + 20)  # gone at 120 s: two failed checks later it is unhealthy
    assert target_health(sim, tg) == {(instance, 8080): "unhealthy"}


def test_deregistration_is_all_or_nothing(sim: Simulator, instance: str) -> None:
    tg = target_group(sim, "demo-tg")
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 80}])
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidTarget"):
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 80}, {"Id": instance, "Port": 81}])
    assert target_health(sim, tg) == {(instance, 80): "initial"}  # moto would have removed it


def test_repeated_reads_between_changes_share_an_answer_yet_every_change_shows_at_once(sim: Simulator, instance: str) -> None:
    """The seam answers identical reads at one world version once (the storm's concurrent drain
    polls); a request, a tick or a scenario control in between moves the version on."""
    tg = target_group(sim, "demo-tg", delay=20, interval=10, healthy=2, unhealthy=2)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    first = elb.describe_target_health(TargetGroupArn=tg)
    second = elb.describe_target_health(TargetGroupArn=tg)
    assert first["TargetHealthDescriptions"] == second["TargetHealthDescriptions"]
    assert first["ResponseMetadata"]["RequestId"] != second["ResponseMetadata"]["RequestId"]  # one id per request, as AWS
    assert target_health(sim, tg) == {(instance, 8080): "initial"}
    sim.advance(20)  # ticks: health checks passed
    assert target_health(sim, tg) == {(instance, 8080): "healthy"}
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])  # a request
    assert target_health(sim, tg) == {(instance, 8080): "draining"}
    with sim.world.lock:  # code changing the world outside a request holds the lock, as the controls do
        sim.world.alb.register(sim.world.elbv2.target_groups[tg], [{"Id": instance, "Port": 8081}])
    assert target_health(sim, tg) == {(instance, 8080): "draining", (instance, 8081): "initial"}


def test_a_group_whose_targets_stand_still_is_answered_once_across_ticks(sim: Simulator, instance: str) -> None:
    """Ticks that change nothing in a group (health checks passing again) leave its
    DescribeTargetHealth answer shared; a tick that changes a target's state, and any request,
    do not."""
    tg = target_group(sim, "demo-tg", delay=20, interval=10, healthy=2, unhealthy=2)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    sim.advance(20)
    assert target_health(sim, tg) == {(instance, 8080): "healthy"}
    asked: list[object] = []
    health = sim.world.alb.health

    def counted(*args: Any) -> list[Any]:
        asked.append(args)
        return health(*args)

    sim.world.alb.health = counted  # type: ignore[method-assign,assignment]
    sim.advance(30)  # three more passing checks: nothing DescribeTargetHealth shows changed
    assert target_health(sim, tg) == {(instance, 8080): "healthy"} and asked == []
    sim.interrupt([instance])
    sim.advance(120 + 20)  # gone at 120 s, unhealthy two failed checks later: a tick's change
    assert target_health(sim, tg) == {(instance, 8080): "unhealthy"} and len(asked) == 1


def test_a_shared_answer_is_given_before_moto_parses_the_request_again(sim: Simulator, instance: str) -> None:
    """Repeated identical reads at one version reach moto's request parsing once (the seam
    answers them from the raw request); each still gets a request id of its own."""
    from moto.core.responses import BaseResponse

    tg = target_group(sim, "demo-tg", delay=20, interval=10, healthy=2, unhealthy=2)
    elb = sim.client("elbv2")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 8080}])
    parsed: list[object] = []
    setup = BaseResponse.setup_class

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(self)
        return setup(self, *args, **kwargs)

    BaseResponse.setup_class = counted  # type: ignore[method-assign]
    try:
        answers = [elb.describe_target_health(TargetGroupArn=tg) for _ in range(3)]
        assert len(parsed) == 1
        # Another service's request changes targets only through the load balancer module.
        sim.client("ecs").create_cluster(clusterName="other")
        elb.describe_target_health(TargetGroupArn=tg)
        assert len(parsed) == 2
        # An ELB request may change the group itself: the next read is answered anew.
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "25"}])
        elb.describe_target_health(TargetGroupArn=tg)
        assert len(parsed) == 4
    finally:
        BaseResponse.setup_class = setup  # type: ignore[method-assign]
    assert len({a["ResponseMetadata"]["RequestId"] for a in answers}) == 3
    assert answers[0]["TargetHealthDescriptions"] == answers[2]["TargetHealthDescriptions"]
