"""EC2 instance types the simulator knows: vCPUs, memory and an on-demand price.

Sizes and memory are those of the EC2 instance type pages
(https://aws.amazon.com/ec2/instance-types/); prices are us-east-1 Linux on-demand list prices,
used only to rank types for the ``lowest-price`` allocation strategies. The ECS agent registers
``vCPU x 1024`` CPU units and somewhat less memory than the instance has (the OS and the agent
keep the rest, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/memory-management.html).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

_SIZES = {"large": 2, "xlarge": 4, "2xlarge": 8}


@attrs.frozen
class _Family:
    gib_per_vcpu: float
    #: On-demand USD per hour of the .large size.
    price: float
    architecture: str = "x86_64"
    manufacturer: str = "intel"
    generation: str = "current"
    burstable: bool = False
    #: Instance store ("ssd"), or None for EBS only.
    local_storage: str | None = None


# Attributes as the instance type pages and DescribeInstanceTypes give them: processor
# (ProcessorInfo: architecture and manufacturer), CurrentGeneration, BurstablePerformanceSupported,
# InstanceStorageSupported (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-types.html,
# "Previous generation instance types" for m4 and c4).
_FAMILIES = {
    "m5": _Family(4, 0.096),
    "m5a": _Family(4, 0.086, manufacturer="amd"),
    "m5d": _Family(4, 0.113, local_storage="ssd"),
    "m6i": _Family(4, 0.096),
    "m6a": _Family(4, 0.0864, manufacturer="amd"),
    "m7i": _Family(4, 0.1008),
    "m6g": _Family(4, 0.077, "arm64", "amazon-web-services"),
    "m4": _Family(4, 0.10, generation="previous"),
    "c5": _Family(2, 0.085),
    "c6i": _Family(2, 0.085),
    "c6a": _Family(2, 0.0765, manufacturer="amd"),
    "c6g": _Family(2, 0.068, "arm64", "amazon-web-services"),
    "c4": _Family(1.875, 0.10, generation="previous"),
    "r5": _Family(8, 0.126),
    "r6i": _Family(8, 0.126),
    "t3": _Family(4, 0.0832, burstable=True),
    "t3a": _Family(4, 0.0752, manufacturer="amd", burstable=True),
    "t4g": _Family(4, 0.0672, "arm64", "amazon-web-services", burstable=True),
}
# Share of the instance's memory the agent reports as registered (observed ~94 % on AL2023).
_REGISTERED_MEMORY_SHARE = 0.94


@attrs.frozen
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    on_demand_price: float
    architecture: str = "x86_64"
    manufacturer: str = "intel"
    generation: str = "current"
    burstable: bool = False
    local_storage: str | None = None

    @property
    def cpu_units(self) -> int:
        """ECS CPU units: 1024 per vCPU."""
        return self.vcpus * 1024

    @property
    def registered_memory_mib(self) -> int:
        return int(self.memory_mib * _REGISTERED_MEMORY_SHARE)

    @property
    def family(self) -> str:
        return self.name.partition(".")[0]


CATALOG: dict[str, InstanceType] = {
    f"{name}.{size}": InstanceType(
        f"{name}.{size}",
        vcpus,
        int(vcpus * f.gib_per_vcpu * 1024),
        round(f.price * vcpus / 2, 4),
        f.architecture,
        f.manufacturer,
        f.generation,
        f.burstable,
        f.local_storage,
    )
    for name, f in _FAMILIES.items()
    for size, vcpus in _SIZES.items()
}

def lookup(name: str) -> InstanceType:
    """The type's figures; unknown types get a general-purpose guess from their size suffix."""
    known = CATALOG.get(name)
    if known is not None:
        return known
    size = name.partition(".")[2]
    if size == "medium":
        vcpus = 1
    elif size == "large":
        vcpus = 2
    elif size == "xlarge":
        vcpus = 4
    elif size.endswith("xlarge") and size[:-6].isdigit():
        vcpus = 4 * int(size[:-6])
    else:
        vcpus = 2
    return InstanceType(name or "unknown", vcpus, vcpus * 4 * 1024, round(0.048 * vcpus, 4))


def matching(requirements: Mapping[str, Any], architectures: Iterable[str] = ("x86_64",), virtualization_types: Iterable[str] = ("hvm",)) -> list[InstanceType]:
    """The catalog's types with every attribute ``requirements`` (an API ``InstanceRequirements``)
    asks for, in name order.

    As AWS documents it (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRequirements.html,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetInstanceTypesFromInstanceRequirements.html):
    "When you specify multiple attributes, you get instance types that satisfy all of the
    specified attributes. If you specify multiple values for an attribute, you get instance types
    that satisfy any of the specified values." Unspecified attributes take their defaults:
    burstable performance and bare metal excluded, local storage included, any manufacturer and
    generation. Allowed and excluded types take ``*`` wildcards ("c5*.*, m5a.*, r*, *3*").
    Every catalog type is HVM and none is bare metal. Price protection is not an attribute: see
    :func:`price_protected`.
    """
    arch = set(architectures)
    if "hvm" not in set(virtualization_types):
        return []

    def within(value: float, rng: Mapping[str, Any] | None) -> bool:
        rng = rng or {}
        low, high = rng.get("Min"), rng.get("Max")
        return (low is None or value >= low) and (high is None or value <= high)

    def included(flag: bool, setting: str | None, default: str) -> bool:
        setting = setting or default
        return setting == "included" or (setting == "required") == flag

    allowed = [_pattern(p) for p in requirements.get("AllowedInstanceTypes") or ()]
    excluded = [_pattern(p) for p in requirements.get("ExcludedInstanceTypes") or ()]
    manufacturers = set(requirements.get("CpuManufacturers") or ())
    generations = set(requirements.get("InstanceGenerations") or ())
    storage_types = set(requirements.get("LocalStorageTypes") or ())
    out = []
    for t in sorted(CATALOG.values(), key=lambda t: t.name):
        if (
            t.architecture in arch
            and within(t.vcpus, requirements.get("VCpuCount"))
            and within(t.memory_mib, requirements.get("MemoryMiB"))
            and within(t.memory_mib / 1024 / t.vcpus, requirements.get("MemoryGiBPerVCpu"))
            and (not manufacturers or t.manufacturer in manufacturers)
            and (not generations or t.generation in generations)
            and included(t.burstable, requirements.get("BurstablePerformance"), "excluded")
            and included(False, requirements.get("BareMetal"), "excluded")
            and included(t.local_storage is not None, requirements.get("LocalStorage"), "included")
            and (not storage_types or t.local_storage is None or t.local_storage in storage_types)
            and (not allowed or any(p.fullmatch(t.name) for p in allowed))
            and not any(p.fullmatch(t.name) for p in excluded)
        ):
            out.append(t)
    return out


#: OnDemandMaxPricePercentageOverLowestPrice when not given ("Default: 20").
DEFAULT_ON_DEMAND_PRICE_PROTECTION = 20


def price_protected(types: list[InstanceType], requirements: Mapping[str, Any], spot: bool) -> list[InstanceType]:
    """``types`` (from :func:`matching`) within the requirements' price protection for one
    purchase option, cheapest price per instance compared.

    AWS: the identified price "is the price of the lowest priced current generation C, M, or R
    instance type with your specified attributes. If no current generation C, M, or R instance
    type matches your attributes, then the identified price is from either the lowest priced
    current generation instance types or, failing that, the lowest priced previous generation
    instance types"; on-demand protection defaults to 20 %. For spot,
    SpotMaxPricePercentageOverLowestPrice counts from the identified spot price and
    MaxSpotPriceAsPercentageOfOptimalOnDemandPrice from the identified on-demand one; without
    either AWS applies an "optimal price protection" it does not define, which the simulator
    does not narrow further. The simulated spot price of a type is a share of its on-demand
    price that varies by pool, so spot protection is judged on on-demand prices here.
    """
    if not types:
        return types
    cmr = [t for t in types if t.generation == "current" and t.family[:1] in "cmr"]
    current = [t for t in types if t.generation == "current"]
    identified = min(t.on_demand_price for t in (cmr or current or types))
    if spot:
        over = requirements.get("SpotMaxPricePercentageOverLowestPrice")
        of_on_demand = requirements.get("MaxSpotPriceAsPercentageOfOptimalOnDemandPrice")
        if over is not None:
            limit = identified * (100 + int(over)) / 100
        elif of_on_demand is not None:
            limit = identified * int(of_on_demand) / 100 / _SPOT_SHARE
        else:
            return types
    else:
        over = requirements.get("OnDemandMaxPricePercentageOverLowestPrice")
        limit = identified * (100 + int(DEFAULT_ON_DEMAND_PRICE_PROTECTION if over is None else over)) / 100
    return [t for t in types if t.on_demand_price <= limit + 1e-9]


#: The mean share of the on-demand price a simulated spot pool charges (``spot.SpotMarket.pool``).
_SPOT_SHARE = 0.5


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))
