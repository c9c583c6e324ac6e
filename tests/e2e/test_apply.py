"""apply / plan / status / teardown end to end against a moto server, through both drivers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecsspot import load_spec
from ecsspot.errors import SpecError
from tests.conftest import REGION, CallCounter, SyncOrAsync, demo_spec_dict


@pytest.fixture(params=["sync", "async"], name="manager")
def manager_fixture(request: pytest.FixtureRequest, aws_server: str) -> Iterator[SyncOrAsync]:
    m = SyncOrAsync(request.param, region=REGION, endpoint_url=aws_server)
    yield m
    m.close()


@pytest.fixture(params=["sync", "async"], name="sim_manager")
def sim_manager_fixture(request: pytest.FixtureRequest) -> Iterator[tuple[SyncOrAsync, str]]:
    """A manager against the simulator's server: AWS behaviour moto lacks (template versions, launches)."""
    from ecsspot.sim import Simulator

    with Simulator(region=REGION, seed=3, server=True) as sim:
        m = SyncOrAsync(request.param, region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock)
        yield m, sim.endpoint_url
        m.close()


def boto(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def test_apply_creates_everything_with_exact_attributes(manager: SyncOrAsync, aws_server: str) -> None:
    spec = load_spec(demo_spec_dict(aws_server))
    result = manager.apply(spec)
    assert result.summary == {"create": 10, "update": 1, "replace": 0, "delete": 0}

    asg = boto("autoscaling", aws_server)
    groups = {g["AutoScalingGroupName"]: g for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]}
    assert set(groups) == {"demo-api-spot", "demo-api-on-demand"}
    spot = groups["demo-api-spot"]
    policy = spot["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "prioritized",
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["m5.large", "m5a.large", "m5d.large", "m6i.large"]
    version = policy["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"]
    assert version == "1"  # explicit, never $Latest/$Default
    assert spot["CapacityRebalance"] is True
    assert spot["NewInstancesProtectedFromScaleIn"] is True
    assert (spot["MinSize"], spot["MaxSize"]) == (0, 20)
    assert {t["Key"]: t["Value"] for t in spot["Tags"]} == {"ecsspot:cluster": "demo-api", "ecsspot:pool": "spot", "AmazonECSManaged": ""}
    assert groups["demo-api-on-demand"]["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName="demo-api-spot")["LifecycleHooks"]
    assert [(h["LifecycleHookName"], h["LifecycleTransition"], h["DefaultResult"]) for h in hooks] == [
        ("ecsspot-drain", "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE")
    ]

    ec2 = boto("ec2", aws_server)
    lt = ec2.describe_launch_template_versions(LaunchTemplateName="demo-api-ecsspot", Versions=["1"])["LaunchTemplateVersions"][0]
    data = lt["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["ImageId"].startswith("ami-")
    from ecsspot import userdata

    parsed = userdata.parse(data["UserData"])
    assert parsed.cluster == "demo-api" and parsed.spot_draining and parsed.sets_lifecycle_attribute

    ecs = boto("ecs", aws_server)
    cluster = ecs.describe_clusters(clusters=["demo-api"], include=["TAGS"])["clusters"][0]
    assert sorted(cluster["capacityProviders"]) == ["demo-api-on-demand", "demo-api-spot"]
    strategy = sorted((s["capacityProvider"], s["base"], s["weight"]) for s in cluster["defaultCapacityProviderStrategy"])
    assert strategy == [("demo-api-on-demand", 1, 1), ("demo-api-spot", 0, 3)]
    cps = ecs.describe_capacity_providers(capacityProviders=["demo-api-spot"])["capacityProviders"]
    provider = cps[0]["autoScalingGroupProvider"]
    assert provider["autoScalingGroupArn"] == spot["AutoScalingGroupARN"]
    assert provider["managedTerminationProtection"] == "ENABLED"
    assert provider["managedScaling"]["status"] == "ENABLED" and provider["managedScaling"]["targetCapacity"] == 100
    assert provider["managedDraining"] == "ENABLED"

    table = boto("dynamodb", aws_server).describe_table(TableName="ecsspot-demo-api")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    again = manager.plan(spec)
    assert again.changes == ()
    assert manager.apply(spec).summary == {"create": 0, "update": 0, "replace": 0, "delete": 0}


def test_changed_instance_types_is_one_asg_update(manager: SyncOrAsync, aws_server: str) -> None:
    d = demo_spec_dict(aws_server)
    manager.apply(load_spec(d))
    d["pools"][0]["instance_types"] = ["m5.large", "c5.large", "m6i.large"]
    plan = manager.plan(load_spec(d))
    infra = [c for c in plan.changes if c.resource != "settings"]
    assert [(c.action, c.resource, c.name) for c in infra] == [("update", "autoscaling_group", "demo-api-spot")]
    assert list(infra[0].diff) == ["instance_types"]
    manager.apply(load_spec(d))
    overrides = boto("autoscaling", aws_server).describe_auto_scaling_groups(AutoScalingGroupNames=["demo-api-spot"])[
        "AutoScalingGroups"
    ][0]["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert [o["InstanceType"] for o in overrides] == ["m5.large", "c5.large", "m6i.large"]
    assert manager.plan(load_spec(d)).changes == ()


def test_changed_asg_link_is_a_replace(manager: SyncOrAsync, aws_server: str) -> None:
    d = demo_spec_dict(aws_server)
    manager.apply(load_spec(d))
    d["pools"][0]["asg_name"] = "demo-api-spot-v2"
    plan = manager.plan(load_spec(d))
    actions = {(c.action, c.resource, c.name) for c in plan.changes}
    assert ("replace", "capacity_provider", "demo-api-spot") in actions
    assert ("create", "autoscaling_group", "demo-api-spot-v2") in actions
    assert ("delete", "autoscaling_group", "demo-api-spot") in actions
    replace = next(c for c in plan.changes if c.action == "replace")
    assert "cannot be changed" in replace.reason
    manager.apply(load_spec(d))
    ecs = boto("ecs", aws_server)
    provider = ecs.describe_capacity_providers(capacityProviders=["demo-api-spot"])["capacityProviders"][0]
    new_group = boto("autoscaling", aws_server).describe_auto_scaling_groups(AutoScalingGroupNames=["demo-api-spot-v2"])["AutoScalingGroups"][0]
    assert provider["autoScalingGroupProvider"]["autoScalingGroupArn"] == new_group["AutoScalingGroupARN"]
    assert boto("autoscaling", aws_server).describe_auto_scaling_groups(AutoScalingGroupNames=["demo-api-spot"])["AutoScalingGroups"] == []
    assert sorted(ecs.describe_clusters(clusters=["demo-api"])["clusters"][0]["capacityProviders"]) == ["demo-api-on-demand", "demo-api-spot"]
    assert manager.plan(load_spec(d)).changes == ()


def test_ami_change_makes_a_new_template_version_and_points_groups_at_it(sim_manager: tuple[SyncOrAsync, str]) -> None:
    manager, aws_server = sim_manager
    d = demo_spec_dict(aws_server)
    manager.apply(load_spec(d))
    # Another ECS-optimized image than the spec's (listing all of moto's images takes seconds).
    image = boto("ssm", aws_server).get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id")["Parameter"]["Value"]
    d["instances"]["ami"] = image
    plan = manager.plan(load_spec(d))
    lt_change = next(c for c in plan.changes if c.resource == "launch_template")
    assert lt_change.action == "update" and lt_change.diff["version"] == [1, 2]
    assert lt_change.diff["image_id"][1] == image
    asg_changes = [c for c in plan.changes if c.resource == "autoscaling_group"]
    assert {c.name for c in asg_changes} == {"demo-api-spot", "demo-api-on-demand"}
    assert all(c.diff == {"launch_template_version": [1, 2]} for c in asg_changes)
    manager.apply(load_spec(d))
    groups = boto("autoscaling", aws_server).describe_auto_scaling_groups()["AutoScalingGroups"]
    assert {g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] for g in groups} == {"2"}
    # The new version was sent whole (user data included): nothing left to plan.
    assert manager.plan(load_spec(d)).changes == ()
    version = boto("ec2", aws_server).describe_launch_template_versions(LaunchTemplateName="demo-api-ecsspot", Versions=["2"])
    from ecsspot import userdata

    assert userdata.parse(version["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]).cluster == "demo-api"


def test_status_and_teardown(manager: SyncOrAsync, aws_server: str) -> None:
    manager.apply(load_spec(demo_spec_dict(aws_server)))
    status = manager.status("demo-api")
    assert [(i.pool, i.lifecycle, i.protected_from_scale_in) for i in status.instances] == [("on-demand", "on-demand", True)]
    assert {p.pool: p.desired_capacity for p in status.pools} == {"on-demand": 1, "spot": 0}
    result = manager.teardown("demo-api", deadline=60)
    assert "cluster/demo-api" in result.deleted and "dynamodb_table/ecsspot-demo-api" in result.deleted
    assert boto("autoscaling", aws_server).describe_auto_scaling_groups()["AutoScalingGroups"] == []
    ec2 = boto("ec2", aws_server)
    running = [
        i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    assert running == []
    clusters = boto("ecs", aws_server).describe_clusters(clusters=["demo-api"])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in clusters)
    assert boto("ecs", aws_server).describe_capacity_providers(capacityProviders=["demo-api-spot"])["capacityProviders"] == []


def test_invalid_spec_makes_no_aws_call(aws_server: str) -> None:
    from ecsspot import ClusterSpec, Instances, Manager, Network, Pool

    counter = CallCounter()
    m = Manager(region=REGION, endpoint_url=aws_server, event_handlers=[counter.handler()])
    bad = ClusterSpec(
        cluster="demo",
        network=Network(subnets=["subnet-1"]),
        instances=Instances(ami="ami-123"),
        pools=[Pool(name="spot", max_size=1, min_size=5, instance_types=["m5.large"], on_demand_percentage_above_base=150)],
    )
    with pytest.raises(SpecError) as info:
        m.plan(bad)
    paths = [p.path for p in info.value.problems]
    assert paths == ["pools[0].min_size", "pools[0].on_demand_percentage_above_base"]
    with pytest.raises(SpecError):
        m.apply(bad)
    assert len(counter) == 0


def test_one_reader_of_the_saved_refresh_strict_for_status_and_lenient_for_plan(aws_server: str) -> None:
    """A refresh record this release cannot read (here not even JSON): ``status`` and the refresh
    say so naming the table (no raw decoding error), and ``plan``, which only uses the record to
    explain an image change, plans on without it."""
    from ecsspot import Manager
    from ecsspot.errors import InputError
    from ecsspot.refresh import load_progress

    spec = load_spec(demo_spec_dict(aws_server))
    m = Manager(region=REGION, endpoint_url=aws_server)
    m.apply(spec)
    boto("dynamodb", aws_server).put_item(TableName=spec.table_name, Item={"pk": {"S": "refresh"}, "sk": {"S": "progress"}, "doc": {"S": "{not json"}})
    said = f"the saved refresh progress in table {spec.table_name} is not readable: not JSON"
    with pytest.raises(InputError, match=said):
        m.status(spec.cluster)
    with pytest.raises(InputError, match=said):
        m.run(load_progress(spec.cluster))
    assert m.plan(spec).changes == ()
