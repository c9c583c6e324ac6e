"""Launch template versions as EC2 keeps them, and launches EC2 refuses."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from ecsspot import userdata
from ecsspot.sim import Simulator
from tests.sim.stack import AMI, subnets


def _template(sim: Simulator, **data: object) -> str:
    sim.client("ec2").create_launch_template(LaunchTemplateName="tmpl", LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.large", **data})
    return "tmpl"


def _version(sim: Simulator, number: int) -> dict:
    answer = sim.client("ec2").describe_launch_template_versions(LaunchTemplateName="tmpl", Versions=[str(number)])
    return answer["LaunchTemplateVersions"][0]["LaunchTemplateData"]


def _group(sim: Simulator, version: str) -> None:
    sim.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="g",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnets(sim)[0]["SubnetId"],
        LaunchTemplate={"LaunchTemplateName": "tmpl", "Version": version},
    )


def test_source_version_copies_every_field_not_sent(sim: Simulator) -> None:
    """A removed field never goes and a switched one stays beside its replacement: why ecsspot
    sends the complete data."""
    sg = sim.client("ec2").describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    sim.client("ec2").create_key_pair(KeyName="ops")
    _template(sim, KeyName="ops", SecurityGroupIds=[sg])
    ec2 = sim.client("ec2")
    ec2.create_launch_template_version(LaunchTemplateName="tmpl", SourceVersion="1", LaunchTemplateData={"ImageId": AMI})
    assert _version(sim, 2)["KeyName"] == "ops"  # "removed" from what was sent, still there
    ec2.create_launch_template_version(
        LaunchTemplateName="tmpl",
        SourceVersion="1",
        LaunchTemplateData={"NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [sg]}]},
    )
    both = _version(sim, 3)
    assert both["SecurityGroupIds"] == [sg] and both["NetworkInterfaces"][0]["Groups"] == [sg]
    # Without a source version, only what was sent.
    ec2.create_launch_template_version(LaunchTemplateName="tmpl", LaunchTemplateData={"ImageId": AMI})
    assert "KeyName" not in _version(sim, 4) and "SecurityGroupIds" not in _version(sim, 4)


def test_security_groups_beside_network_interfaces_are_refused(sim: Simulator) -> None:
    sg = sim.client("ec2").describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    _template(sim, SecurityGroupIds=[sg], NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [sg]}])
    with pytest.raises(ClientError) as info:
        sim.client("ec2").run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "tmpl", "Version": "1"})
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(ClientError) as info:
        _group(sim, "1")
    assert info.value.response["Error"]["Code"] == "InvalidQueryParameter"
    assert "security groups must be a part of it" in info.value.response["Error"]["Message"]
    assert sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []

    # Groups inside the interface only: accepted, and the group launches.
    sim.client("ec2").create_launch_template_version(
        LaunchTemplateName="tmpl",
        LaunchTemplateData={"ImageId": AMI, "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [sg]}]},
    )
    _group(sim, "2")
    sim.advance(1)
    assert len(sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]) == 1
    # Pointing the group at the refused version is refused too, and leaves it on version 2.
    with pytest.raises(ClientError):
        sim.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName="g", LaunchTemplate={"LaunchTemplateName": "tmpl", "Version": "1"})
    group = sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"


def test_a_version_created_with_user_data_launches(sim: Simulator) -> None:
    """moto stores a new version's UserData unwrapped, and launches from it fail (HTTP 500); the
    simulator keeps it as EC2 does, so full data (user data included) can be sent every time."""
    _template(sim, UserData=userdata.encode(userdata.render("demo")))
    sim.client("ec2").create_launch_template_version(
        LaunchTemplateName="tmpl", LaunchTemplateData={"ImageId": AMI, "UserData": userdata.encode(userdata.render("demo", {"ECS_LOGLEVEL": "debug"}))}
    )
    assert "ECS_LOGLEVEL=debug" in base64.b64decode(_version(sim, 2)["UserData"]).decode()
    _group(sim, "2")
    sim.advance(1)
    [member] = sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]
    attribute = sim.client("ec2").describe_instance_attribute(InstanceId=member["InstanceId"], Attribute="userData")
    assert "ECS_LOGLEVEL=debug" in base64.b64decode(attribute["UserData"]["Value"]).decode()
