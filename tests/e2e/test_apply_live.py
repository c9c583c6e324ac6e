"""apply on a live cluster, against the simulator's stricter-than-moto AWS: launch template
versions sent whole, and capacity providers in use left alone."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecsspot import Manager, load_spec
from ecsspot.errors import AwsError, SpecError
from ecsspot.sim import Simulator
from tests.conftest import REGION, CallCounter, demo_spec_dict


@pytest.fixture(name="sim")
def sim_fixture() -> Iterator[Simulator]:
    with Simulator(region=REGION, seed=4) as sim:
        yield sim


@pytest.fixture(name="manager")
def manager_fixture(sim: Simulator) -> Manager:
    return Manager(region=REGION, clock=sim.clock)


def _version_data(sim: Simulator, number: int) -> dict[str, Any]:
    answer = sim.client("ec2").describe_launch_template_versions(LaunchTemplateName="demo-api-ecsspot", Versions=[str(number)])
    return answer["LaunchTemplateVersions"][0]["LaunchTemplateData"]


def _group_versions(sim: Simulator) -> set[str]:
    groups = sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] for g in groups}


def test_removed_and_switched_template_fields_converge(sim: Simulator, manager: Manager) -> None:
    """Each version carries the complete data: a removed key pair goes, and assigning a public IP
    moves the security groups into the network interface (EC2 refuses them side by side)."""
    sim.client("ec2").create_key_pair(KeyName="ops")
    d = demo_spec_dict()
    d["instances"]["key_name"] = "ops"
    manager.apply(load_spec(d))
    assert _version_data(sim, 1)["KeyName"] == "ops"

    del d["instances"]["key_name"]
    manager.apply(load_spec(d))
    assert "KeyName" not in _version_data(sim, 2) and _group_versions(sim) == {"2"}
    assert manager.plan(load_spec(d)).changes == ()

    d["network"]["assign_public_ip"] = True
    manager.apply(load_spec(d))
    data = _version_data(sim, 3)
    assert "SecurityGroupIds" not in data
    assert data["NetworkInterfaces"][0]["Groups"] == d["network"]["security_groups"]
    assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is True
    assert _group_versions(sim) == {"3"} and manager.plan(load_spec(d)).changes == ()
    # The groups launch from it: a new on-demand instance comes up.
    sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName="demo-api-on-demand", DesiredCapacity=2)
    sim.advance(120)
    members = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["demo-api-on-demand"])["AutoScalingGroups"][0]["Instances"]
    assert [m["LifecycleState"] for m in members] == ["InService", "InService"]


def _service_on_default_strategy(sim: Simulator) -> None:
    ecs = sim.client("ecs")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    # No strategy and no launch type: ECS copies the cluster's default strategy (both providers).
    ecs.create_service(cluster="demo-api", serviceName="web", taskDefinition="web", desiredCount=1)
    sim.advance(60)


def test_replacing_or_removing_a_provider_in_use_is_refused_before_any_change(sim: Simulator, manager: Manager) -> None:
    base = demo_spec_dict()
    manager.apply(load_spec(base))
    _service_on_default_strategy(sim)

    replaced = copy.deepcopy(base)
    replaced["pools"][0]["asg_name"] = "demo-api-spot-v2"
    removed = copy.deepcopy(base)
    removed["pools"] = [removed["pools"][1]]
    removed["strategy"] = [{"pool": "on-demand", "base": 1, "weight": 1}]
    counter = CallCounter()
    counting = Manager(region=REGION, clock=sim.clock, event_handlers=[counter.handler()])
    for d, path in ((replaced, "pools[0].asg_name"), (removed, "pools")):
        with pytest.raises(SpecError) as info:
            counting.apply(load_spec(d))
        assert [p.path for p in info.value.problems] == [path]
        assert "demo-api-spot" in str(info.value) and "service web" in str(info.value)
        with pytest.raises(SpecError):
            counting.plan(load_spec(d))
    assert [c for c in counter.calls if not c.startswith(("Describe", "List", "Get", "BatchGet"))] == []
    groups = {g["AutoScalingGroupName"] for g in sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]}
    assert groups == {"demo-api-spot", "demo-api-on-demand"}
    assert manager.plan(load_spec(base)).changes == ()

    # Once no service uses it, the same change goes through.
    sim.client("ecs").update_service(cluster="demo-api", service="web", desiredCount=0)
    sim.client("ecs").delete_service(cluster="demo-api", service="web")
    sim.advance(120)
    manager.apply(load_spec(replaced))
    assert manager.plan(load_spec(replaced)).changes == ()


def test_teardown_deletes_only_its_providers_and_reports_a_refused_delete(sim: Simulator, manager: Manager) -> None:
    manager.apply(load_spec(demo_spec_dict()))
    # Someone else's provider attached to the cluster: detached with it, never deleted.
    asg, ecs = sim.client("autoscaling"), sim.client("ecs")
    ours = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["demo-api-spot"])["AutoScalingGroups"][0]
    policy = copy.deepcopy(ours["MixedInstancesPolicy"])
    policy["LaunchTemplate"]["LaunchTemplateSpecification"].pop("LaunchTemplateName")
    asg.create_auto_scaling_group(AutoScalingGroupName="batch", MinSize=0, MaxSize=1, VPCZoneIdentifier=ours["VPCZoneIdentifier"], MixedInstancesPolicy=policy)
    batch = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch"])["AutoScalingGroups"][0]["AutoScalingGroupARN"]
    ecs.create_capacity_provider(name="batch", autoScalingGroupProvider={"autoScalingGroupArn": batch})
    cluster = ecs.describe_clusters(clusters=["demo-api"])["clusters"][0]
    ecs.put_cluster_capacity_providers(
        cluster="demo-api", capacityProviders=[*cluster["capacityProviders"], "batch"], defaultCapacityProviderStrategy=cluster["defaultCapacityProviderStrategy"]
    )

    def refuse(model: Any, params: Any, **kwargs: Any) -> None:
        if model.name == "DeleteCapacityProvider" and params["capacityProvider"] == "demo-api-spot":
            raise ClientError({"Error": {"Code": "ClientException", "Message": "The capacity provider is in use."}}, model.name)

    refusing = Manager(region=REGION, clock=sim.clock, event_handlers=[("before-parameter-build", refuse)])
    with pytest.raises(AwsError) as info:
        refusing.teardown("demo-api", deadline=300)
    assert info.value.code == "ClientException"
    # Run again, it finds the providers the first run had already detached, and deletes them.
    result = manager.teardown("demo-api", deadline=300)
    assert "capacity_provider/demo-api-spot" in result.deleted
    assert "capacity_provider/batch" not in result.deleted
    left = ecs.describe_capacity_providers(capacityProviders=["demo-api-spot", "demo-api-on-demand"])["capacityProviders"]
    assert [p for p in left if p.get("status") == "ACTIVE"] == []
    [kept] = ecs.describe_capacity_providers(capacityProviders=["batch"])["capacityProviders"]
    assert kept["status"] == "ACTIVE"


def test_ecs_managed_draining_hook_is_left_to_ecs_and_never_holds_up_teardown(sim: Simulator, manager: Manager) -> None:
    """ECS puts its own termination hook on every group of a provider with managed draining
    (the spec's default). apply leaves it alone (no diff, never deleted), and teardown retires
    the groups while the providers are still on the cluster, so ECS completes its hook at once
    instead of holding every instance in Terminating:Wait for its 3600 s timeout."""
    from ecsspot.sim.draining import HOOK_NAME

    spec = load_spec(demo_spec_dict())
    manager.apply(spec)
    asg = sim.client("autoscaling")
    for name in ("demo-api-spot", "demo-api-on-demand"):
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
    sim.advance(90)
    for name in ("demo-api-spot", "demo-api-on-demand"):
        hooks = {h["LifecycleHookName"] for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]}
        assert hooks == {"ecsspot-drain", HOOK_NAME}
    assert manager.plan(spec).changes == ()
    manager.apply(spec)
    assert HOOK_NAME in {h["LifecycleHookName"] for h in asg.describe_lifecycle_hooks(AutoScalingGroupName="demo-api-spot")["LifecycleHooks"]}

    start = sim.clock.now()
    result = manager.teardown("demo-api", deadline=900)
    assert "autoscaling_group/demo-api-spot" in result.deleted and "cluster/demo-api" in result.deleted
    assert sim.clock.now() - start < 300
    # ECS let its instances go itself; nothing timed out and ecsspot never completed ECS's hook.
    completions = [r for r in sim.records("asg.lifecycle_complete") if r.detail["hook"] == HOOK_NAME]
    assert len(completions) == 2
    assert not [r for r in sim.records("asg.lifecycle_timeout")]
