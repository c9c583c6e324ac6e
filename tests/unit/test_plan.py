"""plan() is pure: these tests build observed state by hand and never touch moto or boto3."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Any

import attrs
import pytest

from ecsspot import load_spec
from ecsspot.apply import asg_params, capacity_provider_params
from ecsspot.errors import SpecError
from ecsspot.plan import desired_strategy, desired_template_data, plan
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec
from ecsspot.state import (
    LaunchTemplateState,
    LifecycleHook,
    Observed,
    TableState,
    asg_from,
    capacity_provider_from,
    cluster_from,
    service_from,
)
from tests.conftest import example_spec_dict

IMAGE = "ami-0123456789abcdef0"


def spec(**overrides: Any) -> ClusterSpec:
    d = example_spec_dict()
    d.update(overrides)
    return load_spec(d)


def converged(s: ClusterSpec, *, settings: bool = True) -> tuple[Observed, str | None]:
    """What AWS would return after a perfect apply, including defaults AWS adds on its own."""
    lt = LaunchTemplateState(id="lt-1", name=s.launch_template_name, default_version=1, latest_version=1, versions={1: desired_template_data(s, IMAGE)})
    asgs = {}
    for pool in s.pools:
        params = asg_params(s, pool, "lt-1", 1)
        raw = {
            **params,
            "AutoScalingGroupARN": f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/{params['AutoScalingGroupName']}",
            "DesiredCapacity": pool.min_size,
            "Tags": [{"Key": "ecsspot:cluster", "Value": s.cluster}, {"Key": "ecsspot:pool", "Value": pool.name}, {"Key": "AmazonECSManaged", "Value": ""}],
        }
        # AWS fills in fields nobody sent; the diff must not see them.
        raw["MixedInstancesPolicy"]["InstancesDistribution"]["SpotInstancePools"] = 2
        raw["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] = s.launch_template_name
        asgs[params["AutoScalingGroupName"]] = asg_from(raw, (LifecycleHook(LIFECYCLE_HOOK_NAME, "autoscaling:EC2_INSTANCE_TERMINATING", s.drain.lifecycle_timeout_seconds, "CONTINUE"),))
    providers = {}
    for pool in s.pools:
        name = s.capacity_provider_name(pool)
        raw_cp = {"name": name, "capacityProviderArn": f"arn:cp/{name}", "status": "ACTIVE", "autoScalingGroupProvider": capacity_provider_params(pool, asgs[s.asg_name(pool)].arn), "tags": [{"key": "ecsspot:cluster", "value": s.cluster}]}
        providers[name] = capacity_provider_from(raw_cp)
    cluster = cluster_from({"clusterName": s.cluster, "clusterArn": "arn:cluster", "status": "ACTIVE", "capacityProviders": sorted(providers), "defaultCapacityProviderStrategy": desired_strategy(s)})
    from ecsspot.plan import desired_settings

    observed = Observed(cluster=cluster, launch_template=lt, asgs=asgs, capacity_providers=providers, table=TableState(s.table_name, "ACTIVE", "expires_at", True))
    return observed, desired_settings(s) if settings else None


def test_empty_account_creates_everything_in_order() -> None:
    s = spec()
    p = plan(s, Observed(cluster=None, launch_template=None), IMAGE)
    assert [(c.action, c.resource) for c in p.changes] == [
        ("create", "dynamodb_table"),
        ("create", "launch_template"),
        ("create", "autoscaling_group"),
        ("create", "lifecycle_hook"),
        ("create", "autoscaling_group"),
        ("create", "lifecycle_hook"),
        ("create", "cluster"),
        ("create", "capacity_provider"),
        ("create", "capacity_provider"),
        ("update", "cluster_capacity_providers"),
        ("create", "settings"),
    ]
    assert p.summary == {"create": 10, "update": 1, "replace": 0, "delete": 0}
    lt = p.changes[1].diff
    assert lt["http_tokens"] == [None, "required"]
    assert lt["user_data"][1]["ECS_ENABLE_SPOT_INSTANCE_DRAINING"] == "true"  # plan shows the ecs.config, not base64


def test_converged_state_plans_nothing() -> None:
    s = spec()
    observed, settings = converged(s)
    assert plan(s, observed, IMAGE, settings=settings).changes == ()


def test_new_ami_is_one_template_version_and_group_pointers() -> None:
    s = spec()
    observed, settings = converged(s)
    p = plan(s, observed, "ami-0fffffffffffffff0", settings=settings)
    assert [(c.action, c.resource, c.name) for c in p.changes] == [
        ("update", "launch_template", "demo-api-ecsspot"),
        ("update", "autoscaling_group", "demo-api-spot"),
        ("update", "autoscaling_group", "demo-api-on-demand"),
    ]
    assert p.changes[0].diff["version"] == [1, 2]


def test_instance_types_change_is_one_update() -> None:
    s = spec()
    observed, _ = converged(s)
    d = example_spec_dict()
    d["pools"][0]["instance_types"] = ["m5.large", "c5.large"]
    s2 = load_spec(d)
    p = plan(s2, observed, IMAGE, settings=None)
    infra = [(c.action, c.resource, c.name, tuple(c.diff)) for c in p.changes if c.resource != "settings"]
    assert infra == [("update", "autoscaling_group", "demo-api-spot", ("instance_types",))]


def test_capacity_provider_pointing_elsewhere_is_replace() -> None:
    s = spec()
    observed, settings = converged(s)
    cp = observed.capacity_providers["demo-api-spot"]
    observed = attrs.evolve(observed, capacity_providers={**observed.capacity_providers, "demo-api-spot": attrs.evolve(cp, asg_arn="arn:other")})
    p = plan(s, observed, IMAGE, settings=settings)
    assert [(c.action, c.resource, c.name) for c in p.changes] == [("replace", "capacity_provider", "demo-api-spot")]
    assert p.summary["replace"] == 1


def test_removed_pool_is_deleted_but_foreign_providers_are_kept() -> None:
    s = spec()
    observed, settings = converged(s)
    cluster = attrs.evolve(observed.cluster, capacity_providers=(*observed.cluster.capacity_providers, "FARGATE_SPOT"))
    observed = attrs.evolve(observed, cluster=cluster)
    d = example_spec_dict()
    d["pools"] = [d["pools"][1]]
    d["strategy"] = [{"pool": "on-demand", "base": 1, "weight": 1}]
    p = plan(load_spec(d), observed, IMAGE, settings=settings)
    actions = [(c.action, c.resource, c.name) for c in p.changes]
    assert ("delete", "capacity_provider", "demo-api-spot") in actions
    assert ("delete", "autoscaling_group", "demo-api-spot") in actions
    ccp = next(c for c in p.changes if c.resource == "cluster_capacity_providers")
    assert ccp.diff["capacity_providers"][1] == ["FARGATE_SPOT", "demo-api-on-demand"]


def test_changed_managed_scaling_is_an_update_in_place() -> None:
    s = spec()
    observed, settings = converged(s)
    d = example_spec_dict()
    d["pools"][0]["managed_scaling"] = {"target_capacity": 80}
    p = plan(load_spec(d), observed, IMAGE, settings=settings)
    cp = [c for c in p.changes if c.resource == "capacity_provider"]
    assert [(c.action, c.diff) for c in cp] == [("update", {"target_capacity": [100, 80]})]


def test_table_without_ttl_or_recovery_is_an_update() -> None:
    """A table whose TTL call was lost after create_table (or never had PITR) is not converged."""
    s = spec()
    observed, settings = converged(s)
    observed = attrs.evolve(observed, table=TableState(s.table_name, "ACTIVE"))
    p = plan(s, observed, IMAGE, settings=settings)
    assert [(c.action, c.resource, c.diff) for c in p.changes] == [
        ("update", "dynamodb_table", {"ttl_attribute": [None, "expires_at"], "point_in_time_recovery": [False, True]})
    ]


def test_newer_version_holding_the_desired_data_is_reused() -> None:
    """A failed apply made version 2 and never pointed the groups at it: the next plan points
    them at version 2 instead of making version 3."""
    s = spec()
    observed, settings = converged(s)
    new_image = "ami-0fffffffffffffff0"
    lt = attrs.evolve(observed.launch_template, latest_version=2, versions={**observed.launch_template.versions, 2: desired_template_data(s, new_image)})
    p = plan(s, attrs.evolve(observed, launch_template=lt), new_image, settings=settings)
    assert [(c.action, c.resource, c.diff) for c in p.changes] == [
        ("update", "autoscaling_group", {"launch_template_version": [1, 2]}),
        ("update", "autoscaling_group", {"launch_template_version": [1, 2]}),
    ]
    assert p.template_version == 2
    # A newer version with other data is not reused.
    p = plan(s, attrs.evolve(observed, launch_template=lt), "ami-0eeeeeeeeeeeeeee0", settings=settings)
    assert next(c for c in p.changes if c.resource == "launch_template").diff["version"] == [1, 3]


def _service(name: str, *providers: str) -> Any:
    return service_from(
        {"serviceName": name, "serviceArn": f"arn:svc/{name}", "capacityProviderStrategy": [{"capacityProvider": p, "weight": 1} for p in providers]}
    )


def test_replacing_or_deleting_a_provider_in_use_is_refused() -> None:
    s = spec()
    observed, settings = converged(s)
    observed = attrs.evolve(observed, services=(_service("api", "demo-api-spot", "demo-api-on-demand"), _service("worker", "demo-api-spot"), _service("cron", "demo-api-on-demand")))
    d = example_spec_dict()
    d["pools"][0]["asg_name"] = "demo-api-spot-v2"
    with pytest.raises(SpecError) as info:
        plan(load_spec(d), observed, IMAGE, settings=settings)
    [problem] = info.value.problems
    assert problem.path == "pools[0].asg_name"
    assert "demo-api-spot is used by services api, worker" in problem.message
    assert info.value.exit_code == 3

    d = example_spec_dict()
    d["pools"] = [d["pools"][1]]
    d["strategy"] = [{"pool": "on-demand", "base": 1, "weight": 1}]
    with pytest.raises(SpecError) as info:
        plan(load_spec(d), observed, IMAGE, settings=settings)
    assert [p.path for p in info.value.problems] == ["pools"]
    assert "demo-api-spot (a pool no longer in the spec) is used by services api, worker" in info.value.problems[0].message

    # Unused, the same changes are planned.
    observed = attrs.evolve(observed, services=(_service("cron", "demo-api-on-demand"),))
    assert any(c.action == "delete" for c in plan(load_spec(d), observed, IMAGE, settings=settings).changes)


def test_plan_needs_no_moto_or_boto3() -> None:
    code = (
        "import sys\n"
        "for m in ('moto', 'boto3', 'aiobotocore'): sys.modules[m] = None\n"
        "from ecsspot.plan import plan\nfrom ecsspot.state import Observed\nfrom ecsspot import load_spec\n"
        "from tests.conftest import example_spec_dict\n"
        "p = plan(load_spec(example_spec_dict()), Observed(cluster=None, launch_template=None), 'ami-1')\n"
        "assert p.summary['create'] == 10, p.summary\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert result.returncode == 0, result.stderr


def test_recommended_ami_value_is_read_as_the_json_aws_stores() -> None:
    """The ``…/recommended`` value is JSON on AWS (recorded GetParameters answers); a Python repr
    of it (moto's old answer, fixed in the seam) holds no AMI id as far as ecsspot knows."""
    import json
    from pathlib import Path

    from ecsspot.ami import image_id_from_parameter
    from ecsspot.errors import InputError

    events = Path(__file__).resolve().parents[1] / "events"
    for name in ("ecs-optimized-ami-get-parameters-response.json", "ecs-optimized-ami-get-parameters-response-2022-format.json"):
        (param,) = json.loads((events / name).read_text())["Parameters"]
        assert image_id_from_parameter(param["Value"], param["Name"]) == json.loads(param["Value"])["image_id"]
    assert image_id_from_parameter(" ami-0123456789abcdef0\n") == "ami-0123456789abcdef0"
    with pytest.raises(InputError, match="does not hold an AMI id"):
        image_id_from_parameter(str({"image_id": "ami-0123456789abcdef0"}), "/p")


def test_an_image_a_refresh_rolled_to_is_explained_not_silently_reverted() -> None:
    """Issue 13 item 7: after ``refresh --ami X``, plan says why the image differs."""
    from ecsspot.plan import Refreshed

    s = spec()
    observed, settings = converged(s)  # the groups run IMAGE
    spec_image = "ami-0fffffffffffffff0"  # what the spec resolves to: the refresh went elsewhere
    p = plan(s, observed, spec_image, settings=settings, refreshed=Refreshed(IMAGE, 1_767_225_600.0))
    change = p.changes[0]
    assert (change.resource, change.diff["image_id"]) == ("launch_template", [IMAGE, spec_image])
    assert change.reason == (
        f"the groups run {IMAGE}, rolled to by `ecsspot refresh` at 2026-01-01 00:00 UTC; apply would go back to {spec_image}: "
        f"set instances.ami to {IMAGE} (or to the refresh's SSM parameter) to keep it"
    )
    # No refresh, or one that rolled to another image: no such note.
    assert plan(s, observed, spec_image, settings=settings).changes[0].reason == ""
    assert plan(s, observed, spec_image, settings=settings, refreshed=Refreshed("ami-0aaaaaaaaaaaaaaa0")).changes[0].reason == ""


def test_plan_cluster_reads_the_finished_refresh_in_its_first_round() -> None:
    from ecsspot.apply import plan_cluster
    from ecsspot.testing import ScriptedDriver, by_operation

    s = spec()
    driver = ScriptedDriver(by_operation({}, default=lambda c: {}))
    # Empty answers end the workflow later, one way or another: only its first round matters here.
    with contextlib.suppress(Exception):
        driver.run(plan_cluster(s))
    first = driver.rounds[0]
    (batch,) = (c for c in first if c.operation == "batch_get_item")
    assert {"pk": {"S": "refresh"}, "sk": {"S": "progress"}} in batch.params["RequestItems"][s.table_name]["Keys"]
