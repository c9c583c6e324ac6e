"""EC2 instance types the simulator knows: vCPUs, memory and an on-demand price.

Sizes and memory are those of the EC2 instance type pages
(https://aws.amazon.com/ec2/instance-types/); prices are us-east-1 Linux on-demand list prices,
used only to rank types for the ``lowest-price`` allocation strategies. The ECS agent registers
``vCPU x 1024`` CPU units and somewhat less memory than the instance has (the OS and the agent
keep the rest, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/memory-management.html).
"""

from __future__ import annotations

import attrs

_SIZES = {"large": 2, "xlarge": 4, "2xlarge": 8}
# family: (GiB per vCPU, on-demand USD per hour of the .large size)
_FAMILIES = {
    "m5": (4, 0.096),
    "m5a": (4, 0.086),
    "m5d": (4, 0.113),
    "m6i": (4, 0.096),
    "c5": (2, 0.085),
    "c6i": (2, 0.085),
    "r5": (8, 0.126),
    "t3": (4, 0.0832),
}
# Share of the instance's memory the agent reports as registered (observed ~94 % on AL2023).
_REGISTERED_MEMORY_SHARE = 0.94


@attrs.frozen
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    on_demand_price: float

    @property
    def cpu_units(self) -> int:
        """ECS CPU units: 1024 per vCPU."""
        return self.vcpus * 1024

    @property
    def registered_memory_mib(self) -> int:
        return int(self.memory_mib * _REGISTERED_MEMORY_SHARE)


CATALOG: dict[str, InstanceType] = {
    f"{family}.{size}": InstanceType(
        f"{family}.{size}", vcpus, vcpus * gib_per_vcpu * 1024, round(price * vcpus / 2, 4)
    )
    for family, (gib_per_vcpu, price) in _FAMILIES.items()
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
