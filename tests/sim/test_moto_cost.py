"""moto's cost, not AWS's behaviour (``ecsspot.sim.seam``): the answers are the same as moto's
own, worked out with less repeated work."""

from __future__ import annotations

import inspect
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import XFormedAttributePicker

from ecsspot.sim.seam import MotoFixes

REGION = "us-east-1"


def _setup() -> str:
    """A cluster with a service and a target group with a target; the group's ARN."""
    ecs = boto3.client("ecs", region_name=REGION)
    elb = boto3.client("elbv2", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": "10.0.0.1", "Port": 80}])
    ecs.create_service(cluster="c", serviceName="web", taskDefinition="web", desiredCount=0)
    return str(group)


def _reads(group: str) -> list[dict[str, Any]]:
    """A DescribeServices (JSON, model objects and plain dicts) and a DescribeTargetHealth (XML)
    answer, request ids left out."""
    ecs = boto3.client("ecs", region_name=REGION)
    elb = boto3.client("elbv2", region_name=REGION)
    services = ecs.describe_services(cluster="c", services=["web"])
    health = elb.describe_target_health(TargetGroupArn=group)
    for answer in (services, health):
        answer.pop("ResponseMetadata")
    return [services, health]


def test_answers_are_moto_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import responses
    from moto.core.serialize import AttributePicker

    own = (AttributePicker.get_possible_keys, XFormedAttributePicker.get_possible_keys, responses.method_names_from_class)
    with MotoFixes(), mock_aws():
        fixed = _reads(_setup())
    with MotoFixes(), mock_aws():
        # The other fixes kept, these taken out.
        monkeypatch.setattr(AttributePicker, "get_possible_keys", own[0])
        monkeypatch.setattr(XFormedAttributePicker, "get_possible_keys", own[1])
        monkeypatch.setattr(responses, "method_names_from_class", own[2])
        plain = _reads(_setup())
        monkeypatch.undo()
    # createdAt and the ARNs' random parts differ between two runs; the shape and names do not.
    assert _skeleton(fixed) == _skeleton(plain)


def test_member_names_are_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    worked: list[str] = []
    original = XFormedAttributePicker.get_possible_keys

    def counted(self: Any, context: Any) -> Any:
        worked.append(context.key)
        return original(self, context)

    listed: list[Any] = []
    getmembers = inspect.getmembers
    monkeypatch.setattr(XFormedAttributePicker, "get_possible_keys", counted)
    monkeypatch.setattr(inspect, "getmembers", lambda *a, **k: listed.append(a[0]) or getmembers(*a, **k))
    with MotoFixes(), mock_aws():
        group = _setup()
        _reads(group)
        first, first_listed = len(worked), len(listed)
        _reads(group)
        # The same answers again: no member's names worked out twice, no class listed twice
        # (moto alone: every member of every object of every answer, every request). The names
        # are kept on moto's shapes, so an earlier test in this process may have worked out the
        # first answers' already.
        assert len(worked) == first
        assert first_listed and len(listed) == first_listed


def _skeleton(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skeleton(v) for v in value]
    return type(value).__name__


def test_the_serializer_works_out_each_attribute_name_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's cost, not a bug: the names its serializer tries for a member are memoised per shape,
    so a second identical answer asks no alias provider again, and the answers are the same as
    without the memo."""
    from moto.core import serialize

    asked = []
    original = serialize.ModelAlias.has_alias

    def has_alias(self: Any, key: str) -> bool:
        asked.append(key)
        return original(self, key)

    monkeypatch.setattr(serialize.ModelAlias, "has_alias", has_alias)

    def answers() -> list[Any]:
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="c", tags=[{"key": "k", "value": "v"}])
        described = [ecs.describe_clusters(clusters=["c"], include=["TAGS"])["clusters"] for _ in range(2)]
        elb = boto3.client("elbv2", region_name=REGION)
        vpc = boto3.client("ec2", region_name=REGION).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        elb.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc)
        groups = elb.describe_target_groups()["TargetGroups"]
        # Ids are drawn at random: compare the rest.
        return [*described, [{k: v for k, v in g.items() if k not in ("TargetGroupArn", "VpcId")} for g in groups]]

    with mock_aws():
        plain = answers()
    with MotoFixes(), mock_aws():
        memoised = answers()
        asked.clear()
        boto3.client("ecs", region_name=REGION).describe_clusters(clusters=["c"], include=["TAGS"])
    assert plain == memoised
    # (The first answers may have been memoised already, by an earlier test in this process.)
    assert asked == []


def test_a_simulator_opened_under_moto_fixes_answers_the_actions_it_adds() -> None:
    """A session's moto server keeps MotoFixes installed while tests open simulators: a response
    class listed under MotoFixes alone must be listed again with the actions the seam adds (the
    memo once answered the old list, and CompleteLifecycleAction was "not implemented")."""
    from botocore.exceptions import ClientError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core import responses

    from ecsspot.sim import Simulator

    with MotoFixes():
        assert "complete_lifecycle_action" not in responses.method_names_from_class(AutoScalingResponse)
        with Simulator(region=REGION, seed=7) as sim, pytest.raises(ClientError):  # answered by the seam: no such group or hook
            sim.client("autoscaling").complete_lifecycle_action(
                AutoScalingGroupName="none", LifecycleHookName="none", LifecycleActionResult="CONTINUE", InstanceId="i-0123456789abcdef0"
            )
        assert "complete_lifecycle_action" not in responses.method_names_from_class(AutoScalingResponse)
