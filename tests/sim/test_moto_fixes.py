"""The fixes of moto bugs AWS does not have (``ecsspot.sim.seam``'s first group): on plain moto
with :class:`~ecsspot.sim.seam.MotoFixes`, and under the simulator, which installs them too.

ecsspot's own code follows AWS here (an update leaves out what it does not change, the
``…/recommended`` value is read as JSON, a ListContainerInstances filter is trusted), so each
test is what AWS does and moto 5.2.5 alone does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ecsspot.sim import Simulator
from ecsspot.sim.seam import MotoFixes
from tests.sim.stack import AMI, launch_template, mixed_group

REGION = "us-east-1"
RECOMMENDED = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended"


class PlainMoto:
    """In-process moto with only the fixes; ``client`` as the simulator's."""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.fixture(name="aws", params=["moto-fixes", "simulator"])
def aws_fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "simulator":
        with Simulator(region=REGION, seed=7) as sim:
            yield sim
    else:
        with MotoFixes(), mock_aws():
            yield PlainMoto()


@pytest.fixture(name="plain")
def plain_fixture() -> Iterator[PlainMoto]:
    with MotoFixes(), mock_aws():
        yield PlainMoto()


def _group(aws: Any, *, by: str = "LaunchTemplateName") -> dict[str, Any]:
    template = launch_template(aws, "tmpl", "demo")
    if by == "LaunchTemplateId":
        template_id = aws.client("ec2").describe_launch_templates(LaunchTemplateNames=[template])["LaunchTemplates"][0]["LaunchTemplateId"]
        spec = {"LaunchTemplateId": template_id, "Version": "1"}
        aws.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName="g",
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=0,
            AvailabilityZones=[f"{REGION}a"],
            MixedInstancesPolicy={"LaunchTemplate": {"LaunchTemplateSpecification": spec, "Overrides": [{"InstanceType": "c5.large"}]}},
        )
    else:
        mixed_group(aws, "g", template, desired=0)
    return _describe(aws)


def _describe(aws: Any) -> dict[str, Any]:
    return aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]


def test_recommended_ami_parameter_is_json(aws: Any) -> None:
    """The …/recommended value is the JSON document AWS publishes (moto: a Python repr)."""
    ssm = aws.client("ssm")
    document = json.loads(ssm.get_parameter(Name=RECOMMENDED)["Parameter"]["Value"])
    assert document["image_id"] == ssm.get_parameter(Name=f"{RECOMMENDED}/image_id")["Parameter"]["Value"]
    assert document["image_id"].startswith("ami-")


@pytest.mark.parametrize("by", ["LaunchTemplateName", "LaunchTemplateId"])
def test_update_without_policy_keeps_it(aws: Any, by: str) -> None:
    """Any parameter an UpdateAutoScalingGroup does not send is not changed (moto drops the
    mixed instances policy)."""
    before = _group(aws, by=by)
    aws.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="g", MinSize=1, MaxSize=3)
    after = _describe(aws)
    assert (after["MinSize"], after["MaxSize"]) == (1, 3)
    assert after["MixedInstancesPolicy"] == before["MixedInstancesPolicy"]


def test_mixed_group_launches_an_override_type(plain: PlainMoto) -> None:
    """A mixed group's instances have one of its overrides' types (moto: ``""``, its template
    having none). The simulator's own launches are tested in test_spot.py."""
    plain.client("ec2").create_launch_template(LaunchTemplateName="bare", LaunchTemplateData={"ImageId": AMI})
    plain.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="g",
        MinSize=1,
        MaxSize=2,
        AvailabilityZones=[f"{REGION}a"],
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "bare", "Version": "1"},
                "Overrides": [{"InstanceType": "c5.large"}, {"InstanceType": "m5.large"}],
            },
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100},
        },
    )
    member = _describe(plain)["Instances"][0]
    described = plain.client("ec2").describe_instances(InstanceIds=[member["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert member["InstanceType"] == described["InstanceType"] == "c5.large"  # the first, as "prioritized" launches


def _container_instances(aws: Any, count: int) -> dict[str, str]:
    """ec2 instance id -> container instance ARN, ``count`` of them in cluster ``c``."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="c")
    reservation = aws.client("ec2").run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="m5.large")
    found = {}
    for instance in reservation["Instances"]:
        document = json.dumps({"instanceId": instance["InstanceId"], "region": REGION, "availabilityZone": f"{REGION}a"})
        answer = ecs.register_container_instance(cluster="c", instanceIdentityDocument=document)
        found[instance["InstanceId"]] = answer["containerInstance"]["containerInstanceArn"]
    return found


def test_list_container_instances_applies_an_instance_id_filter(plain: PlainMoto) -> None:
    """ListContainerInstances answers only the instances its cluster query language filter
    names (moto ignores the filter and lists all)."""
    registered = _container_instances(plain, 3)
    first, second, third = registered
    ecs = plain.client("ecs")
    listed = ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId in ['{first}', '{third}', 'i-0000000000000000']")
    assert sorted(listed["containerInstanceArns"]) == sorted([registered[first], registered[third]])
    assert ecs.list_container_instances(cluster="c", filter=f"ec2InstanceId == '{second}'")["containerInstanceArns"] == [registered[second]]
    assert sorted(ecs.list_container_instances(cluster="c")["containerInstanceArns"]) == sorted(registered.values())


def test_an_instance_id_filter_and_a_status_filter_combine(plain: PlainMoto) -> None:
    """What the drain's first two rounds rely on
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListContainerInstances.html,
    API_UpdateContainerInstancesState.html): ``status`` narrows a filtered listing to that status,
    without it every status but INACTIVE is listed; UpdateContainerInstancesState answers the
    container instances it changed, each with its ec2InstanceId."""
    registered = _container_instances(plain, 3)
    first, second, third = registered
    ecs = plain.client("ecs")
    answer = ecs.update_container_instances_state(cluster="c", containerInstances=[registered[second]], status="DRAINING")
    assert [(ci["ec2InstanceId"], ci["status"]) for ci in answer["containerInstances"]] == [(second, "DRAINING")]
    ecs.deregister_container_instance(cluster="c", containerInstance=registered[third], force=True)
    named = f"ec2InstanceId in ['{first}', '{second}', '{third}']"
    assert ecs.list_container_instances(cluster="c", filter=named, status="ACTIVE")["containerInstanceArns"] == [registered[first]]
    assert ecs.list_container_instances(cluster="c", filter=named, status="DRAINING")["containerInstanceArns"] == [registered[second]]
    assert sorted(ecs.list_container_instances(cluster="c", filter=named)["containerInstanceArns"]) == sorted([registered[first], registered[second]])


def test_a_filter_the_simulator_cannot_evaluate_is_refused(plain: PlainMoto) -> None:
    """Refused rather than ignored: ignoring it would list instances AWS would not."""
    _container_instances(plain, 1)
    with pytest.raises(ClientError, match="only ec2InstanceId filters"):
        plain.client("ecs").list_container_instances(cluster="c", filter="runningTasksCount > 1")


def test_a_filter_over_2000_characters_is_refused(plain: PlainMoto) -> None:
    """AWS documents 2,000 characters for a cluster query expression (a placement constraint's)
    and no other length for ListContainerInstances' filter: the simulator refuses a longer one,
    and the drain's filters (:func:`ecsspot.drain.id_filters`) fit."""
    from ecsspot.drain import id_filters

    registered = _container_instances(plain, 1)
    (only,) = registered
    ecs = plain.client("ecs")
    ids = [only] + [f"i-{k:017x}" for k in range(199)]
    filters = id_filters(ids)
    assert len(filters) == 3 and all(len(f) <= 2000 for f in filters)
    assert ecs.list_container_instances(cluster="c", filter=filters[0])["containerInstanceArns"] == [registered[only]]
    too_long = "ec2InstanceId in [" + ",".join(f"'{i}'" for i in ids[:91]) + "]"
    assert len(too_long) > 2000
    with pytest.raises(ClientError, match="at most 2000 characters"):
        ecs.list_container_instances(cluster="c", filter=too_long)


def test_dynamodb_transactions_at_once_are_serialised(aws: Any) -> None:
    """Two TransactWriteItems of leases sent together (one batch of the thread-pool driver):
    moto alone fails them ("dictionary changed size during iteration") or, when one is
    cancelled, rolls whole tables back over the other's writes."""
    from ecsspot.apply import create_table
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.clock import FakeClock
    from ecsspot.store import acquire_leases, let_go, read_lease

    driver = Driver(ClientOptions(region=REGION), clock=FakeClock())
    try:
        driver.run(create_table("t", "c"))
        driver.run(acquire_leases("t", ["drain#held"], "other", now=1000.0, ttl=600))
        names = [f"drain#i-{n}" for n in range(120)]
        got = driver.run(acquire_leases("t", [*names, "drain#held"], "me", now=1000.0, ttl=60))
        assert [n for n, lease in got.items() if lease is None] == ["drain#held"]
        assert driver.run(let_go("t", (), names, "me")) == []
        assert all(driver.run(read_lease("t", n)) is None for n in names[::20])
        held = driver.run(read_lease("t", "drain#held"))
        assert held is not None and held.owner == "other"
    finally:
        driver.close()


def test_a_reset_leaves_nothing_behind_and_default_images_keep_their_form() -> None:
    """The seam's cheaper reset and AMI loading change cost, not what moto answers."""
    import re

    default_image = "ami-03cf127a"  # the first of moto's own default images
    with Simulator(region=REGION, seed=3) as sim:
        sim.client("ecs").create_cluster(clusterName="left-behind")
        assert sim.client("ec2").describe_images(ImageIds=[default_image])["Images"][0]["ImageId"] == default_image
        snapshots = {a.ebs_snapshot.id for a in sim.world.ec2.amis.values()} | {a.ebs_snapshot.volume.id for a in sim.world.ec2.amis.values()}
        assert len(snapshots) == 2 * len(sim.world.ec2.amis) > 1000  # every id distinct
        assert all(re.fullmatch(r"(snap|vol)-[0-9a-f]{17}", i) for i in snapshots)
    with Simulator(region=REGION, seed=3) as sim:
        assert sim.client("ecs").list_clusters()["clusterArns"] == []
        assert sim.client("ec2").describe_images(ImageIds=[default_image])["Images"][0]["ImageId"] == default_image


def test_a_service_without_network_configuration_has_none(aws: Any) -> None:
    """A bridge-mode service answers no networkConfiguration, as AWS (moto: ``{}``, which the
    aws Terraform provider crashes on)."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(
        family="web", networkMode="bridge", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_service(cluster="c", serviceName="web", taskDefinition="web", desiredCount=0, launchType="EC2")
    (service,) = ecs.describe_services(cluster="c", services=["web"])["services"]
    assert "networkConfiguration" not in service


def test_launch_template_tags_stay_out_of_its_data(aws: Any) -> None:
    """CreateLaunchTemplate's own TagSpecifications tag the template; its data keeps only the
    TagSpecifications sent in LaunchTemplateData (moto copies both into the data)."""
    ec2 = aws.client("ec2")
    instance_tags = [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "worker"}]}]
    ec2.create_launch_template(
        LaunchTemplateName="tagged",
        LaunchTemplateData={"ImageId": AMI, "TagSpecifications": instance_tags},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "owner", "Value": "ecsspot"}]}],
    )
    ec2.create_launch_template(
        LaunchTemplateName="bare",
        LaunchTemplateData={"ImageId": AMI},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "owner", "Value": "ecsspot"}]}],
    )
    (tagged,) = ec2.describe_launch_template_versions(LaunchTemplateName="tagged")["LaunchTemplateVersions"]
    (bare,) = ec2.describe_launch_template_versions(LaunchTemplateName="bare")["LaunchTemplateVersions"]
    assert tagged["LaunchTemplateData"]["TagSpecifications"] == instance_tags
    assert "TagSpecifications" not in bare["LaunchTemplateData"]
    (template,) = ec2.describe_launch_templates(LaunchTemplateNames=["tagged"])["LaunchTemplates"]
    assert template["Tags"] == [{"Key": "owner", "Value": "ecsspot"}]


def test_redrive_policy_reads_back_compact(aws: Any) -> None:
    """RedrivePolicy reads back as AWS writes it: compact JSON, maxReceiveCount a number, so
    the text Terraform's jsonencode sent is the text read (moto: json.dumps's spaced form)."""
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5}, separators=(",", ":"))
    queue = sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": sent})["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"] == sent
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})})
    read = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    assert read == f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":3}}'


def test_availability_zone_rebalancing_is_kept(aws: Any) -> None:
    """CreateService keeps availabilityZoneRebalancing, ENABLED when not given, and UpdateService
    changes it (moto drops it at creation)."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    ecs.create_service(cluster="c", serviceName="given", taskDefinition="web", desiredCount=0, availabilityZoneRebalancing="DISABLED")
    ecs.create_service(cluster="c", serviceName="default", taskDefinition="web", desiredCount=0)
    described = {s["serviceName"]: s for s in ecs.describe_services(cluster="c", services=["given", "default"])["services"]}
    assert described["given"]["availabilityZoneRebalancing"] == "DISABLED"
    assert described["default"]["availabilityZoneRebalancing"] == "ENABLED"
    ecs.update_service(cluster="c", service="default", availabilityZoneRebalancing="DISABLED")
    (updated,) = ecs.describe_services(cluster="c", services=["default"])["services"]
    assert updated["availabilityZoneRebalancing"] == "DISABLED"


def test_groups_described_without_their_instances(aws: Any) -> None:
    """DescribeAutoScalingGroups with IncludeInstances false leaves the instances out, by name or
    by tag filter, and lists them by default (moto ignores the parameter)."""
    template = launch_template(aws, "tmpl", "demo")
    mixed_group(aws, "g", template, desired=2, Tags=[{"Key": "team", "Value": "api", "PropagateAtLaunch": True}])
    asg = aws.client("autoscaling")
    assert len(asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]["Instances"]) == 2
    for query in ({"AutoScalingGroupNames": ["g"]}, {"Filters": [{"Name": "tag:team", "Values": ["api"]}]}):
        (group,) = asg.describe_auto_scaling_groups(IncludeInstances=False, **query)["AutoScalingGroups"]
        assert group["AutoScalingGroupName"] == "g"
        assert group["DesiredCapacity"] == 2
        assert group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] == template
        assert not group.get("Instances")
