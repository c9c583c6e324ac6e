"""Attribute-based instance type selection on the simulator: GetInstanceTypesFromInstanceRequirements
answers from the instance-type table as AWS documents the attributes, groups launch only types that
have them (within price protection), and Auto Scaling's refusals hold."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecsspot.sim import Simulator, instancetypes
from tests.sim.stack import launch_template, subnets

BASE = {"VCpuCount": {"Min": 2, "Max": 2}, "MemoryMiB": {"Min": 0}}


def resolve(sim: Simulator, requirements: dict[str, Any], architecture: str = "x86_64") -> list[str]:
    answer = sim.client("ec2").get_instance_types_from_instance_requirements(
        ArchitectureTypes=[architecture], VirtualizationTypes=["hvm"], InstanceRequirements=requirements
    )
    return [t["InstanceType"] for t in answer["InstanceTypes"]]


def test_vcpu_and_memory_ranges_select_and_burstable_types_are_excluded_by_default(sim: Simulator) -> None:
    two = resolve(sim, BASE)
    assert two == sorted(two) and all(instancetypes.CATALOG[t].vcpus == 2 for t in two)
    # BurstablePerformance "Default: excluded"; arm64 types do not run an x86_64 image.
    assert not {"t3.large", "t3a.large", "m6g.large"} & set(two)
    assert {"m5.large", "c5.large", "r5.large", "m4.large"} <= set(two)
    assert resolve(sim, {**BASE, "MemoryMiB": {"Min": 16384}}) == ["r5.large", "r6i.large"]
    assert set(resolve(sim, {"VCpuCount": {"Min": 4}, "MemoryMiB": {"Min": 0, "Max": 8192}})) == {"c4.xlarge", "c5.xlarge", "c6a.xlarge", "c6i.xlarge"}
    assert resolve(sim, {**BASE, "BurstablePerformance": "required"}) == ["t3.large", "t3a.large"]
    assert "t3.large" in resolve(sim, {**BASE, "BurstablePerformance": "included"})


def test_manufacturers_generations_storage_and_architecture(sim: Simulator) -> None:
    amd = resolve(sim, {**BASE, "CpuManufacturers": ["amd"]})
    assert amd == ["c6a.large", "m5a.large", "m6a.large"]
    assert "m4.large" not in resolve(sim, {**BASE, "InstanceGenerations": ["current"]})
    assert resolve(sim, {**BASE, "InstanceGenerations": ["previous"]}) == ["c4.large", "m4.large"]
    assert resolve(sim, {**BASE, "LocalStorage": "required"}) == ["m5d.large"]
    assert "m5d.large" not in resolve(sim, {**BASE, "LocalStorage": "excluded"})
    assert resolve(sim, {**BASE, "LocalStorage": "required", "LocalStorageTypes": ["hdd"]}) == []
    assert resolve(sim, BASE, "arm64") == ["c6g.large", "m6g.large"]
    # BareMetal "Default: excluded"; the table has no metal sizes, so requiring them finds none.
    assert resolve(sim, {**BASE, "BareMetal": "required"}) == []


def test_allowed_and_excluded_types_take_wildcards(sim: Simulator) -> None:
    # "if you specify c5*, you are excluding the entire C5 instance family, which includes all
    # C5a and C5n instance types. If you specify m5a.*, ... but not the M5n instance types."
    assert "c5.large" not in resolve(sim, {**BASE, "ExcludedInstanceTypes": ["c5*"]})
    assert resolve(sim, {**BASE, "AllowedInstanceTypes": ["m5*.*"]}) == ["m5.large", "m5a.large", "m5d.large"]
    assert resolve(sim, {**BASE, "AllowedInstanceTypes": ["m5a.*", "r6i.large"]}) == ["m5a.large", "r6i.large"]
    assert resolve(sim, {**BASE, "AllowedInstanceTypes": ["*6*"]}) == ["c6a.large", "c6i.large", "m6a.large", "m6i.large", "r6i.large"]
    with pytest.raises(ClientError) as refused:
        resolve(sim, {**BASE, "AllowedInstanceTypes": ["m5.*"], "ExcludedInstanceTypes": ["m5.large"]})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"


def requirements_group(sim: Simulator, name: str, requirements: dict[str, Any], *, percent: int, desired: int, **distribution: Any) -> None:
    sim.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=20,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets(sim)),
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": launch_template(sim, f"{name}-lt", "c1"), "Version": "$Latest"},
                "Overrides": [{"InstanceRequirements": requirements}],
            },
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": percent, "SpotAllocationStrategy": "capacity-optimized", **distribution},
        },
    )


def launched(sim: Simulator, group: str) -> list[Any]:
    return [m for m in sim.world.machines.values() if m.group == group and m.running]


def test_a_group_launches_only_types_with_the_attributes(sim: Simulator) -> None:
    requirements = {"VCpuCount": {"Min": 2, "Max": 4}, "MemoryMiB": {"Min": 8192}, "ExcludedInstanceTypes": ["m5*"]}
    requirements_group(sim, "spot", requirements, percent=0, desired=12)
    sim.advance(300)
    allowed = set(resolve(sim, requirements))
    machines = launched(sim, "spot")
    assert len(machines) == 12 and all(m.lifecycle == "spot" for m in machines)
    assert {m.instance_type for m in machines} <= allowed
    # A pool running dry: the next launches take other types that have the attributes.
    for t in {m.instance_type for m in machines}:
        sim.world.market.set_capacity(False, group="spot", instance_type=t)
    sim.client("autoscaling").set_desired_capacity(AutoScalingGroupName="spot", DesiredCapacity=15)
    sim.advance(300)
    later = launched(sim, "spot")
    assert len(later) == 15 and {m.instance_type for m in later} <= allowed
    assert len({m.instance_type for m in later}) > len({m.instance_type for m in machines})


def test_on_demand_launches_stay_within_the_default_price_protection(sim: Simulator) -> None:
    # OnDemandMaxPricePercentageOverLowestPrice "Default: 20", counted from the lowest priced
    # current generation C, M or R type with the attributes (c6a.xlarge here, 0.153 an hour);
    # on-demand's default strategy with requirements is lowest-price.
    requirements = {"VCpuCount": {"Min": 4, "Max": 4}, "MemoryMiB": {"Min": 0}}
    requirements_group(sim, "od", requirements, percent=100, desired=3)
    sim.advance(300)
    machines = launched(sim, "od")
    assert len(machines) == 3 and all(m.lifecycle == "on-demand" for m in machines)
    limit = instancetypes.CATALOG["c6a.xlarge"].on_demand_price * 1.2
    assert all(instancetypes.CATALOG[m.instance_type].on_demand_price <= limit for m in machines)
    assert {m.instance_type for m in machines} == {"c6a.xlarge"}
    eligible = [t.name for t in instancetypes.price_protected(instancetypes.matching(requirements), requirements, spot=False)]
    assert "m5.xlarge" not in eligible and "c6a.xlarge" in eligible
    # Turned off with a high value, as AWS advises ("specify a high value, such as 999999").
    wide = {**requirements, "OnDemandMaxPricePercentageOverLowestPrice": 999999}
    assert "m7i.xlarge" in [t.name for t in instancetypes.price_protected(instancetypes.matching(wide), wide, spot=False)]


@pytest.mark.parametrize(
    ("overrides", "distribution"),
    [
        ([{"InstanceType": "m5.large", "InstanceRequirements": BASE}], {}),
        ([{"InstanceRequirements": BASE}] * 5, {}),
        ([{"InstanceRequirements": {**BASE, "AllowedInstanceTypes": ["m5.*"], "ExcludedInstanceTypes": ["m5.large"]}}], {}),
        ([{"InstanceRequirements": {**BASE, "SpotMaxPricePercentageOverLowestPrice": 50, "MaxSpotPriceAsPercentageOfOptimalOnDemandPrice": 50}}], {}),
        ([{"InstanceRequirements": BASE}], {"SpotAllocationStrategy": "capacity-optimized-prioritized"}),
        ([{"InstanceRequirements": BASE}], {"OnDemandAllocationStrategy": "prioritized"}),
    ],
    ids=["with-instance-type", "five-sets", "allowed-and-excluded", "two-spot-protections", "co-prioritized", "od-prioritized"],
)
def test_auto_scaling_refuses_what_aws_refuses(sim: Simulator, overrides: list[dict[str, Any]], distribution: dict[str, Any]) -> None:
    template = launch_template(sim, "bad-lt", "c1")
    with pytest.raises(ClientError) as refused:
        sim.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName="bad",
            MinSize=0,
            MaxSize=2,
            VPCZoneIdentifier=subnets(sim)[0]["SubnetId"],
            MixedInstancesPolicy={
                "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": template, "Version": "$Latest"}, "Overrides": overrides},
                "InstancesDistribution": distribution,
            },
        )
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["bad"])["AutoScalingGroups"] == []


def test_an_update_is_judged_with_the_group_s_policy(sim: Simulator) -> None:
    requirements_group(sim, "g", BASE, percent=0, desired=0)
    with pytest.raises(ClientError):
        sim.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName="g", MixedInstancesPolicy={"InstancesDistribution": {"SpotAllocationStrategy": "capacity-optimized-prioritized"}}
        )
