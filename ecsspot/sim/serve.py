"""The simulator as a local AWS endpoint (``ecsspot sim serve``).

Plain ``moto_server`` answers the APIs but nothing happens afterwards: instances never register
with ECS, tasks never move, a drain never finishes, and moto's own bugs show (see
``ecsspot.sim.seam``). This serves moto with the simulator's seam, ECS agent, scheduler, spot
market and load balancers on a local port, with the world's clock running ``speed`` virtual
seconds per real second, so the CLI, the Lambda handlers and Terraform can all be pointed at it
with ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from ecsspot.sim.simulator import _CREDENTIALS, Simulator

#: What ``network=True`` creates: names a spec can use as they are.
NETWORK_CIDR = "10.42.0.0/16"
INSTANCE_PROFILE = "ecsInstanceRole"


@attrs.frozen
class Network:
    vpc_id: str
    subnets: tuple[str, ...]
    security_group: str
    instance_profile: str


@attrs.frozen
class Served:
    """Where the simulator answers, and what it was seeded with."""

    endpoint_url: str
    region: str
    #: virtual seconds per real second
    speed: float
    network: Network | None = None

    def environment(self) -> dict[str, str]:
        """The variables that point the CLI, boto3, the handlers and Terraform's aws provider here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": _CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": _CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": _CREDENTIALS["aws_session_token"],
        }


def seed_network(sim: Simulator) -> Network:
    """A VPC with one subnet in each of three AZs, a security group and the ECS instance profile."""
    ec2, iam = sim.client("ec2"), sim.client("iam")
    vpc = ec2.create_vpc(CidrBlock=NETWORK_CIDR, TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "ecsspot-sim"}]}])["Vpc"]["VpcId"]
    zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:3]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"] for n, zone in enumerate(zones)
    )
    group = ec2.create_security_group(GroupName="ecsspot-sim", Description="ecsspot sim serve", VpcId=vpc)["GroupId"]
    role = iam.create_role(RoleName=INSTANCE_PROFILE, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')["Role"]["RoleName"]
    iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=INSTANCE_PROFILE, RoleName=role)
    return Network(vpc, subnets, group, INSTANCE_PROFILE)


def serve(
    *,
    ready: Callable[[Served], None],
    stop: threading.Event,
    port: int = 0,
    speed: float = 1.0,
    seed: int = 0,
    region: str = "us-east-1",
    network: bool = False,
    tick: float = 0.2,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Serve until ``stop`` is set: ``ready`` is called once the endpoint answers; the world
    then moves ``speed`` virtual seconds per real second, in steps of about ``tick`` real seconds."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    with Simulator(region=region, seed=seed, server=True, port=port, managed_scaling=True) as sim:
        if sim.endpoint_url is None:  # server=True always sets it
            raise RuntimeError("the simulator's server did not start")
        seeded = seed_network(sim) if network else None
        ready(Served(sim.endpoint_url, region, speed, seeded))
        last = monotonic()
        while not stop.wait(tick):
            now = monotonic()
            sim.advance((now - last) * speed)
            last = now


def describe(served: Served) -> dict[str, Any]:
    """The JSON-able description ``ecsspot sim serve -o json`` prints."""
    return attrs.asdict(served) | {"environment": served.environment()}
