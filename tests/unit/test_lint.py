"""Lint rules: one case that fires and one that proves the rule stays quiet when the config is right."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from ecsspot import lint as lint_module
from ecsspot import userdata
from ecsspot.lint import RULES, LintWarning, lint
from ecsspot.spec import ClusterSpec, InstanceRequirements, Pool, Range, load_spec
from ecsspot.state import (
    LaunchTemplateState,
    Observed,
    TargetGroupState,
    asg_from,
    cluster_from,
    service_from,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
TG_WEB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/demo-api-web/0123456789abcdef"
TG_ADMIN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/demo-api-admin/fedcba9876543210"
LT_ID = "lt-0a1b2c3d4e5f67890"

BASE: dict[str, Any] = {
    "cluster": "demo-api",
    "region": "us-east-1",
    "network": {"subnets": ["subnet-aaa", "subnet-bbb", "subnet-ccc"], "security_groups": ["sg-123"]},
    "instances": {
        "ami": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        "instance_profile": "ecsInstanceRole",
        "ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "30s"},
    },
    "pools": [
        {
            "name": "spot",
            "max_size": 20,
            "instance_types": ["m5.large", "m5a.large", "m5d.large", "m6i.large"],
            "on_demand_percentage_above_base": 0,
        },
        {"name": "on-demand", "min_size": 1, "max_size": 4, "instance_types": ["m5.large"]},
    ],
    "strategy": [{"pool": "on-demand", "base": 1, "weight": 1}, {"pool": "spot", "weight": 3}],
}


def make_spec(**changes: Any) -> ClusterSpec:
    """BASE with dotted-path changes, e.g. ``make_spec(**{"pools.0.capacity_rebalance": False})``."""
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return load_spec(raw)


def at(warnings: tuple[LintWarning, ...]) -> list[tuple[str, str]]:
    return [(w.code, w.path) for w in warnings]


# --- describe_* shaped fixtures ---------------------------------------------------------------


def asg_raw(name: str, version: str = "3", on_demand_percent: int = 0, **extra: Any) -> dict[str, Any]:
    """One DescribeAutoScalingGroups entry as AWS returns it for an ecsspot pool."""
    raw = {
        "AutoScalingGroupName": name,
        "AutoScalingGroupARN": (
            f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:"
            f"6d5af669-eb3b-4530-894b-e314a667f2e7:autoScalingGroupName/{name}"
        ),
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": LT_ID,
                    "LaunchTemplateName": "demo-api-ecsspot",
                    "Version": version,
                },
                "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m5a.large"}],
            },
            "InstancesDistribution": {
                "OnDemandAllocationStrategy": "prioritized",
                "OnDemandBaseCapacity": 0,
                "OnDemandPercentageAboveBaseCapacity": on_demand_percent,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
        "MinSize": 0,
        "MaxSize": 20,
        "DesiredCapacity": 1,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "HealthCheckType": "EC2",
        "HealthCheckGracePeriod": 300,
        "Instances": [
            {
                "InstanceId": "i-0123456789abcdef0",
                "InstanceType": "m5.large",
                "AvailabilityZone": "us-east-1a",
                "LifecycleState": "InService",
                "HealthStatus": "Healthy",
                "LaunchTemplate": {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "demo-api-ecsspot", "Version": "3"},
                "ProtectedFromScaleIn": True,
            }
        ],
        "VPCZoneIdentifier": "subnet-aaa,subnet-bbb,subnet-ccc",
        "NewInstancesProtectedFromScaleIn": True,
        "CapacityRebalance": True,
        "Tags": [
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": "ecsspot:cluster",
                "Value": "demo-api",
                "PropagateAtLaunch": True,
            }
        ],
    }
    raw.update(extra)
    return raw


GOOD_DATA = {
    "ImageId": "ami-0abcdef1234567890",
    "IamInstanceProfile": {"Name": "ecsInstanceRole"},
    "UserData": userdata.encode(userdata.render("demo-api", {"ECS_CONTAINER_STOP_TIMEOUT": "30s"})),
    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
}
# A hand-made version: joins the cluster, forgets spot draining, IMDSv1 allowed.
OLD_DATA = {
    "ImageId": "ami-0abcdef1234567890",
    "UserData": userdata.encode("#!/bin/bash\necho ECS_CLUSTER=demo-api >> /etc/ecs/ecs.config\n"),
    "MetadataOptions": {"HttpTokens": "optional", "HttpEndpoint": "enabled"},
}


def template(default: int = 3, latest: int = 3, **versions: dict[str, Any]) -> LaunchTemplateState:
    data = {int(k.lstrip("v")): v for k, v in versions.items()} or {3: GOOD_DATA}
    return LaunchTemplateState(id=LT_ID, name="demo-api-ecsspot", default_version=default, latest_version=latest, versions=data)


def cluster_raw(strategy: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "clusterArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/demo-api",
        "clusterName": "demo-api",
        "status": "ACTIVE",
        "registeredContainerInstancesCount": 3,
        "runningTasksCount": 6,
        "activeServicesCount": 1,
        "capacityProviders": ["demo-api-spot", "demo-api-on-demand"],
        "defaultCapacityProviderStrategy": strategy
        if strategy is not None
        else [
            {"capacityProvider": "demo-api-on-demand", "weight": 1, "base": 1},
            {"capacityProvider": "demo-api-spot", "weight": 3, "base": 0},
        ],
    }


def service_raw(
    name: str = "web",
    strategy: list[dict[str, Any]] | None = None,
    min_healthy: int = 50,
    target_groups: tuple[str, ...] = (TG_WEB,),
    launch_type: str | None = None,
) -> dict[str, Any]:
    """One DescribeServices entry as AWS returns it."""
    raw: dict[str, Any] = {
        "serviceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/demo-api/{name}",
        "serviceName": name,
        "clusterArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/demo-api",
        "loadBalancers": [{"targetGroupArn": arn, "containerName": name, "containerPort": 8080} for arn in target_groups],
        "status": "ACTIVE",
        "desiredCount": 4,
        "runningCount": 4,
        "pendingCount": 0,
        "taskDefinition": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{name}:7",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": min_healthy,
        },
        "schedulingStrategy": "REPLICA",
    }
    if strategy is not None:
        raw["capacityProviderStrategy"] = strategy
    if launch_type is not None:
        raw["launchType"] = launch_type
    return raw


SPOT_ONLY = [{"capacityProvider": "demo-api-spot", "weight": 1, "base": 0}]
ON_DEMAND_ONLY = [{"capacityProvider": "demo-api-on-demand", "weight": 1, "base": 0}]


def observed(
    *,
    asgs: list[dict[str, Any]] | None = None,
    lt: LaunchTemplateState | None = None,
    services: Sequence[dict[str, Any]] = (),
    groups: dict[str, int] | None = None,
    cluster: dict[str, Any] | bool | None = True,
) -> Observed:
    """A healthy demo-api cluster unless told otherwise; ``groups`` maps ARN -> deregistration delay."""
    if asgs is None:
        asgs = [asg_raw("demo-api-spot"), asg_raw("demo-api-on-demand", on_demand_percent=100)]
    state = [asg_from(a) for a in asgs]
    return Observed(
        cluster=cluster_from(cluster_raw() if cluster is True else cluster) if cluster else None,
        launch_template=lt if lt is not None else template(),
        asgs={a.name: a for a in state},
        services=tuple(service_from(s) for s in services),
        target_groups={
            arn: TargetGroupState(arn=arn, name=arn.split("targetgroup/")[1].split("/")[0], deregistration_delay=delay)
            for arn, delay in (groups or {}).items()
        },
    )


# --- the table and the shape ------------------------------------------------------------------


def test_rules_table_has_stable_codes_and_summaries() -> None:
    assert all(re.fullmatch(r"ES[12]\d\d", code) for code in RULES)
    assert list(RULES) == sorted(RULES)
    assert all(summary and "\n" not in summary for summary in RULES.values())
    with pytest.raises(TypeError):
        RULES["ES999"] = "nope"  # type: ignore[index]


def test_warning_is_a_frozen_value_with_the_json_shape() -> None:
    w = LintWarning("ES101", "pools[0].instance_types", "add types")
    assert lint_module.Warning is LintWarning
    assert attrs.asdict(w) == {"code": "ES101", "path": "pools[0].instance_types", "message": "add types"}
    assert str(w) == "ES101 pools[0].instance_types: add types"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        w.code = "ES102"  # type: ignore[misc]


def test_healthy_spec_and_cluster_give_no_warnings() -> None:
    spec = make_spec(target_groups=[TG_WEB])
    obs = observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 60})
    assert lint(spec) == ()
    assert lint(spec, obs) == ()


def test_example_spec_gives_no_spec_warnings() -> None:
    assert lint(load_spec(ROOT / "examples" / "demo-api.yaml")) == ()


def test_every_code_used_is_in_the_table() -> None:
    spec = make_spec(
        **{
            "network.subnets": ["subnet-aaa"],
            "instances.ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "2m"},
            "pools.0.instance_types": [{"type": "m5.xlarge", "weight": 2}],
            "pools.0.capacity_rebalance": False,
            "pools.0.managed_draining": False,
            "strategy": [{"pool": "spot", "base": 2, "weight": 1}],
            "drain": {"deadline_seconds": 300},
            "target_groups": [TG_WEB, TG_ADMIN],
        }
    )
    obs = observed(
        asgs=[asg_raw("demo-api-spot", version="$Latest")],
        lt=template(latest=2, v2=OLD_DATA),
        services=[service_raw(strategy=[{"capacityProvider": "demo-api-spot", "weight": 1, "base": 1}], min_healthy=100)],
        groups={TG_WEB: 300},
    )
    # A spot pool by attributes whose requirements resolve to one type (ES208).
    by_attributes = Pool(name="abs", max_size=2, on_demand_percentage_above_base=0, instance_requirements=InstanceRequirements(Range(2), Range(0)))
    spec = attrs.evolve(spec, pools=(*spec.pools, by_attributes))
    obs = attrs.evolve(obs, resolved_types={"abs": ("m5.large",)})
    codes = {w.code for w in lint(spec, obs)}
    assert codes == set(RULES)


def requirements_spec(on_demand_percentage: int = 0) -> ClusterSpec:
    pool = Pool(name="abs", max_size=2, on_demand_percentage_above_base=on_demand_percentage, instance_requirements=InstanceRequirements(Range(2, 4), Range(4096)))
    return attrs.evolve(make_spec(), pools=(*make_spec().pools, pool))


@pytest.mark.parametrize(
    ("resolved", "warned"),
    [((), True), (("m5.large",), True), (("m5.large", "m6i.large"), True), (("m5.large", "m5a.large", "m6i.large"), False)],
)
def test_requirements_resolving_to_fewer_than_three_types_warn(resolved: tuple[str, ...], warned: bool) -> None:
    spec = requirements_spec()
    found = [w for w in lint(spec, attrs.evolve(observed(), resolved_types={"abs": resolved})) if w.code == "ES208"]
    assert bool(found) is warned
    if warned:
        index = len(spec.pools) - 1
        assert found[0].path == f"pools[{index}].instance_requirements"
        assert f"resolve to {len(resolved)} instance" in found[0].message
        assert (", ".join(resolved) or "none") in found[0].message


def test_requirements_of_an_on_demand_pool_or_unresolved_do_not_warn() -> None:
    assert not [w for w in lint(requirements_spec(100), attrs.evolve(observed(), resolved_types={"abs": ("m5.large",)})) if w.code == "ES208"]
    assert not [w for w in lint(requirements_spec(), observed()) if w.code == "ES208"]


def test_spec_warnings_in_document_order_then_observed_by_path() -> None:
    spec = make_spec(
        **{
            "network.subnets": ["subnet-aaa", "subnet-bbb"],
            "instances.ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "100s"},
            "pools.0.instance_types": ["m5.large"],
            "pools.0.capacity_rebalance": False,
            "pools.1.managed_draining": False,
            "strategy": [{"pool": "spot", "base": 1, "weight": 1}],
            "drain": {"deadline_seconds": 121},
        }
    )
    obs = observed(
        asgs=[asg_raw("demo-api-spot", version="2"), asg_raw("demo-api-on-demand", version="$Default", on_demand_percent=100)],
        lt=template(default=2, latest=2, v2=OLD_DATA),
        services=[
            service_raw("web", strategy=SPOT_ONLY, min_healthy=100),
            service_raw("admin", strategy=SPOT_ONLY, min_healthy=100, target_groups=(TG_ADMIN,)),
        ],
        groups={TG_WEB: 300, TG_ADMIN: 300},
    )
    assert at(lint(spec, obs)) == [
        ("ES102", "network.subnets"),
        ("ES108", "instances.ecs_config.ECS_CONTAINER_STOP_TIMEOUT"),
        ("ES101", "pools[0].instance_types"),
        ("ES104", "pools[0].capacity_rebalance"),
        ("ES105", "pools[1].managed_draining"),
        ("ES107", "strategy[0].base"),
        ("ES106", "drain.deadline_seconds"),
        ("ES202", "asg:demo-api-on-demand"),
        ("ES203", "asg:demo-api-on-demand"),
        ("ES201", "asg:demo-api-spot"),
        ("ES202", "asg:demo-api-spot"),
        ("ES205", "service:admin"),
        ("ES205", "service:web"),
        ("ES204", f"target_group:{TG_ADMIN}"),
        ("ES204", f"target_group:{TG_WEB}"),
    ]
    assert lint(spec, obs) == lint(spec, obs)


def test_no_observed_means_spec_rules_only() -> None:
    spec = make_spec(target_groups=[TG_WEB])
    assert lint(spec, None) == ()


# --- spec rules --------------------------------------------------------------------------------


def test_es101_spot_pool_with_one_instance_type() -> None:
    (w,) = lint(make_spec(**{"pools.0.instance_types": ["m5.large"]}))
    assert (w.code, w.path) == ("ES101", "pools[0].instance_types")
    assert "m5.large" in w.message and "at least 3" in w.message


def test_es101_quiet_for_diversified_spot_and_single_type_on_demand() -> None:
    spec = make_spec(**{"pools.0.instance_types": ["m5.large", "m5a.large", "m6i.large"]})
    assert spec.pools[1].instance_types[0].type == "m5.large" and len(spec.pools[1].instance_types) == 1
    assert lint(spec) == ()


def test_es102_spot_pool_with_two_subnets() -> None:
    (w,) = lint(make_spec(**{"network.subnets": ["subnet-aaa", "subnet-bbb"]}))
    assert (w.code, w.path) == ("ES102", "network.subnets")
    assert "'spot'" in w.message and "2 subnets" in w.message


def test_es102_quiet_with_three_subnets_or_without_spot() -> None:
    assert lint(make_spec()) == ()
    on_demand_only = make_spec(
        **{"network.subnets": ["subnet-aaa"], "pools": [BASE["pools"][1]], "strategy": [{"pool": "on-demand", "base": 1}]}
    )
    assert lint(on_demand_only) == ()


def test_es103_weight_under_managed_scaling() -> None:
    spec = make_spec(**{"pools.1.instance_types": ["m5.large", {"type": "m5.xlarge", "weight": 2}]})
    (w,) = lint(spec)
    assert (w.code, w.path) == ("ES103", "pools[1].instance_types")
    assert "m5.xlarge (weight 2)" in w.message and "managed_scaling: false" in w.message


def test_es103_quiet_without_managed_scaling() -> None:
    pool = {
        **BASE["pools"][1],
        "instance_types": ["m5.large", {"type": "m5.xlarge", "weight": 2}],
        "managed_scaling": False,
        "managed_termination_protection": False,
    }
    assert lint(make_spec(**{"pools.1": pool})) == ()


def test_es104_spot_pool_without_capacity_rebalance() -> None:
    (w,) = lint(make_spec(**{"pools.0.capacity_rebalance": False}))
    assert (w.code, w.path) == ("ES104", "pools[0].capacity_rebalance")
    assert "capacity_rebalance: true" in w.message


def test_es104_quiet_with_rebalance_or_on_demand() -> None:
    assert lint(make_spec(**{"pools.0.capacity_rebalance": True})) == ()
    assert lint(make_spec(**{"pools.1.capacity_rebalance": False})) == ()


def test_es105_termination_protection_without_managed_draining() -> None:
    (w,) = lint(make_spec(**{"pools.1.managed_draining": False}))
    assert (w.code, w.path) == ("ES105", "pools[1].managed_draining")
    assert "managed_draining: true" in w.message


def test_es105_quiet_when_draining_on_or_protection_off() -> None:
    assert lint(make_spec(**{"pools.1.managed_draining": True})) == ()
    assert lint(make_spec(**{"pools.1.managed_draining": False, "pools.1.managed_termination_protection": False})) == ()


def test_es106_drain_deadline_over_spot_notice() -> None:
    (w,) = lint(make_spec(drain={"deadline_seconds": 150}))
    assert (w.code, w.path) == ("ES106", "drain.deadline_seconds")
    assert "150 s" in w.message and "at most 120" in w.message


def test_es106_quiet_within_notice_or_without_spot() -> None:
    assert lint(make_spec(drain={"deadline_seconds": 120})) == ()
    on_demand_only = make_spec(
        **{"pools": [BASE["pools"][1]], "strategy": [{"pool": "on-demand", "base": 1}], "drain": {"deadline_seconds": 600}}
    )
    assert lint(on_demand_only) == ()


def test_es107_default_strategy_base_on_spot() -> None:
    spec = make_spec(strategy=[{"pool": "on-demand", "weight": 1}, {"pool": "spot", "base": 2, "weight": 3}])
    (w,) = lint(spec)
    assert (w.code, w.path) == ("ES107", "strategy[1].base")
    assert "base of 2 tasks" in w.message and "'spot'" in w.message


def test_es107_quiet_with_base_on_on_demand() -> None:
    assert lint(make_spec(strategy=[{"pool": "on-demand", "base": 2, "weight": 1}, {"pool": "spot", "weight": 3}])) == ()


def test_es108_stop_timeout_over_budget() -> None:
    (w,) = lint(make_spec(**{"instances.ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "1m45s"}}))
    assert (w.code, w.path) == ("ES108", "instances.ecs_config.ECS_CONTAINER_STOP_TIMEOUT")
    assert "1m45s (105 s)" in w.message


@pytest.mark.parametrize("timeout", [None, "90s", "1m30s"])
def test_es108_quiet_within_budget_or_default(timeout: str | None) -> None:
    config = {} if timeout is None else {"ECS_CONTAINER_STOP_TIMEOUT": timeout}
    assert lint(make_spec(**{"instances.ecs_config": config})) == ()


def test_es108_quiet_without_spot() -> None:
    spec = make_spec(
        **{
            "instances.ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "5m"},
            "pools": [BASE["pools"][1]],
            "strategy": [{"pool": "on-demand", "base": 1}],
        }
    )
    assert lint(spec) == ()


# --- observed rules ----------------------------------------------------------------------------


def test_es201_es202_template_version_in_use_lacks_draining_and_imdsv2() -> None:
    obs = observed(asgs=[asg_raw("demo-api-spot", version="2")], lt=template(v2=OLD_DATA, v3=GOOD_DATA))
    warnings = lint(make_spec(), obs)
    assert at(warnings) == [("ES201", "asg:demo-api-spot"), ("ES202", "asg:demo-api-spot")]
    assert "demo-api-ecsspot version 2" in warnings[0].message
    assert "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true" in warnings[0].message
    assert "HttpTokens" in warnings[1].message


def test_es201_es202_quiet_for_ecsspot_rendered_version() -> None:
    obs = observed(asgs=[asg_raw("demo-api-spot", version="3")], lt=template(v2=OLD_DATA, v3=GOOD_DATA))
    assert lint(make_spec(), obs) == ()


def test_es201_reads_plain_text_user_data_and_echo_lines() -> None:
    # moto stores UserData unwrapped; hand-written scripts use echo: both are read.
    data = {**GOOD_DATA, "UserData": "#!/bin/bash\necho ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config\n"}
    obs = observed(asgs=[asg_raw("demo-api-spot")], lt=template(v3=data))
    assert lint(make_spec(), obs) == ()


def test_es201_not_for_on_demand_asg_but_es202_is() -> None:
    obs = observed(asgs=[asg_raw("demo-api-on-demand", version="2", on_demand_percent=100)], lt=template(v2=OLD_DATA))
    assert at(lint(make_spec(), obs)) == [("ES202", "asg:demo-api-on-demand")]


def test_es201_for_asg_running_spot_outside_the_spec() -> None:
    # Tagged with the cluster but no pool of the spec: its own distribution says spot.
    obs = observed(asgs=[asg_raw("demo-api-legacy", version="2", on_demand_percent=50)], lt=template(v2=OLD_DATA))
    assert at(lint(make_spec(), obs)) == [("ES201", "asg:demo-api-legacy"), ("ES202", "asg:demo-api-legacy")]


def test_es201_es202_quiet_for_another_template_or_undescribed_version() -> None:
    other = asg_raw("demo-api-spot")
    other["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"] = {
        "LaunchTemplateId": "lt-0ffffffffffffffff",
        "LaunchTemplateName": "someone-elses",
        "Version": "7",
    }
    assert lint(make_spec(), observed(asgs=[other], lt=template(v7=OLD_DATA))) == ()
    assert lint(make_spec(), observed(asgs=[asg_raw("demo-api-spot", version="9")])) == ()
    assert lint(make_spec(), Observed(cluster=None, launch_template=None, asgs={"a": asg_from(asg_raw("demo-api-spot"))})) == ()


def test_es201_plain_launch_template_asg_without_version_means_default() -> None:
    raw = asg_raw("demo-api-spot")
    del raw["MixedInstancesPolicy"]
    raw["LaunchTemplate"] = {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "demo-api-ecsspot"}
    warnings = lint(make_spec(), observed(asgs=[raw], lt=template(default=2, latest=3, v2=OLD_DATA, v3=GOOD_DATA)))
    assert at(warnings) == [("ES201", "asg:demo-api-spot"), ("ES202", "asg:demo-api-spot"), ("ES203", "asg:demo-api-spot")]
    assert "version 2" in warnings[0].message


@pytest.mark.parametrize("version", ["$Latest", "$Default"])
def test_es203_asg_uses_moving_version(version: str) -> None:
    (w,) = lint(make_spec(), observed(asgs=[asg_raw("demo-api-spot", version=version)]))
    assert (w.code, w.path) == ("ES203", "asg:demo-api-spot")
    assert version in w.message and "numbered version" in w.message


def test_es203_quiet_for_numbered_version() -> None:
    assert lint(make_spec(), observed(asgs=[asg_raw("demo-api-spot", version="3")])) == ()


def test_es204_service_on_spot_with_long_deregistration_delay() -> None:
    obs = observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 300})
    (w,) = lint(make_spec(), obs)
    assert (w.code, w.path) == ("ES204", f"target_group:{TG_WEB}")
    assert "300 s + container stop timeout 30 s = 330 s" in w.message
    assert "at most 60" in w.message and "service web" in w.message


def test_es204_quiet_when_it_fits() -> None:
    obs = observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 60})
    assert lint(make_spec(), obs) == ()  # 60 + 30 = 90: exactly the budget


def test_es204_uses_spec_stop_timeout_default() -> None:
    spec = make_spec(**{"instances.ecs_config": {}})  # agent default 1m
    obs = observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 31})
    assert at(lint(spec, obs)) == [("ES204", f"target_group:{TG_WEB}")]
    assert lint(spec, observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 30})) == ()


def test_es204_stop_timeout_alone_over_budget_says_lower_it_first() -> None:
    spec = make_spec(**{"instances.ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "95s"}})
    obs = observed(services=[service_raw(strategy=SPOT_ONLY)], groups={TG_WEB: 10})
    warnings = lint(spec, obs)
    assert at(warnings) == [("ES108", "instances.ecs_config.ECS_CONTAINER_STOP_TIMEOUT"), ("ES204", f"target_group:{TG_WEB}")]
    assert "lower ECS_CONTAINER_STOP_TIMEOUT (e.g. 30s)" in warnings[1].message


def test_es204_quiet_for_on_demand_and_launch_type_services() -> None:
    obs = observed(
        services=[
            service_raw("web", strategy=ON_DEMAND_ONLY),
            service_raw("admin", launch_type="EC2", target_groups=(TG_ADMIN,)),
        ],
        groups={TG_WEB: 300, TG_ADMIN: 300},
    )
    assert lint(make_spec(), obs) == ()


def test_es204_zero_weight_spot_item_places_nothing() -> None:
    strategy = [*ON_DEMAND_ONLY, {"capacityProvider": "demo-api-spot", "weight": 0, "base": 0}]
    obs = observed(services=[service_raw(strategy=strategy, min_healthy=100)], groups={TG_WEB: 300})
    assert lint(make_spec(), obs) == ()


def test_es204_service_without_strategy_uses_cluster_default() -> None:
    # The observed default is on-demand only, but the spec's default (what apply sets) has spot.
    obs = observed(services=[service_raw()], groups={TG_WEB: 300}, cluster=cluster_raw(ON_DEMAND_ONLY))
    assert at(lint(make_spec(), obs)) == [("ES204", f"target_group:{TG_WEB}")]
    # Observed default with spot, spec default without it: still at risk until apply.
    spec = make_spec(strategy=[{"pool": "on-demand", "base": 1, "weight": 1}])
    obs = observed(services=[service_raw()], groups={TG_WEB: 300}, cluster=cluster_raw(SPOT_ONLY))
    assert at(lint(spec, obs)) == [("ES204", f"target_group:{TG_WEB}")]
    # Neither default has spot.
    obs = observed(services=[service_raw()], groups={TG_WEB: 300}, cluster=cluster_raw(ON_DEMAND_ONLY))
    assert lint(spec, obs) == ()


def test_es204_spec_target_groups_are_spot_backed() -> None:
    spec = make_spec(target_groups=[TG_ADMIN])
    (w,) = lint(spec, observed(groups={TG_ADMIN: 120}))
    assert (w.code, w.path) == ("ES204", f"target_group:{TG_ADMIN}")
    assert "the spec's target_groups" in w.message
    assert lint(spec, observed(groups={TG_ADMIN: 45})) == ()


def test_es204_spec_target_groups_quiet_without_spot_pools() -> None:
    spec = make_spec(**{"pools": [BASE["pools"][1]], "strategy": [{"pool": "on-demand", "base": 1}], "target_groups": [TG_ADMIN]})
    assert lint(spec, observed(groups={TG_ADMIN: 300})) == ()


def test_es205_spot_service_with_min_healthy_100() -> None:
    obs = observed(services=[service_raw(strategy=SPOT_ONLY, min_healthy=100)], groups={TG_WEB: 60})
    (w,) = lint(make_spec(), obs)
    assert (w.code, w.path) == ("ES205", "service:web")
    assert "minimumHealthyPercent 100" in w.message and "below 100" in w.message


def test_es205_quiet_below_100_or_on_demand() -> None:
    assert lint(make_spec(), observed(services=[service_raw(strategy=SPOT_ONLY, min_healthy=50)])) == ()
    assert lint(make_spec(), observed(services=[service_raw(strategy=ON_DEMAND_ONLY, min_healthy=100)])) == ()


def test_es206_spec_target_group_not_found() -> None:
    spec = make_spec(target_groups=[TG_WEB, TG_ADMIN])
    (w,) = lint(spec, observed(groups={TG_WEB: 30}))
    assert (w.code, w.path) == ("ES206", f"target_group:{TG_ADMIN}")
    assert "not found" in w.message


def test_es206_quiet_when_found_or_cluster_not_created_yet() -> None:
    spec = make_spec(target_groups=[TG_WEB])
    assert lint(spec, observed(groups={TG_WEB: 30})) == ()
    # No cluster yet: observe() did not look services or target groups up.
    assert lint(spec, observed(cluster=None, asgs=[])) == ()


def test_es207_service_base_on_spot_provider() -> None:
    strategy = [{"capacityProvider": "demo-api-spot", "weight": 1, "base": 2}]
    (w,) = lint(make_spec(), observed(services=[service_raw(strategy=strategy)]))
    assert (w.code, w.path) == ("ES207", "service:web")
    assert "base of 2 tasks" in w.message and "'demo-api-spot'" in w.message


def test_es207_quiet_with_base_on_on_demand() -> None:
    strategy = [
        {"capacityProvider": "demo-api-on-demand", "weight": 1, "base": 2},
        {"capacityProvider": "demo-api-spot", "weight": 3, "base": 0},
    ]
    assert lint(make_spec(), observed(services=[service_raw(strategy=strategy)])) == ()


# --- packaging ---------------------------------------------------------------------------------


def test_lint_imports_without_yaml_click_or_boto() -> None:
    code = (
        "import sys\n"
        "for m in ('yaml', 'click', 'boto3', 'botocore', 'aiobotocore'):\n"
        "    sys.modules[m] = None\n"
        "from ecsspot.lint import lint\n"
        "from ecsspot.spec import load_spec\n"
        "spec = load_spec({'cluster': 'c', 'network': {'subnets': ['subnet-a']}, 'instances': {'ami': 'ami-1'},\n"
        "                  'pools': [{'name': 'p', 'max_size': 1, 'instance_types': ['m5.large'],\n"
        "                             'on_demand_percentage_above_base': 0}]})\n"
        "print(sorted(w.code for w in lint(spec)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['ES101', 'ES102']"
