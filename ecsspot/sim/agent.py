"""The ECS container agent on each instance an Auto Scaling group launches.

moto registers a container instance only when asked to, with fixed resources, and keeps it
ACTIVE after its EC2 instance is gone. Here the agent of a booted instance reads its user data
(``/etc/ecs/ecs.config`` as ecsspot's or anyone's script writes it), registers with the cluster
named by ``ECS_CLUSTER``, sets the instance DRAINING on a spot interruption notice when
``ECS_ENABLE_SPOT_INSTANCE_DRAINING=true``, and ECS marks the container instance INACTIVE once
its EC2 instance has terminated.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot import userdata
from ecsspot.sim import instancetypes
from ecsspot.sim.autoscaling import user_data_text

if TYPE_CHECKING:
    from ecsspot.sim.world import World

#: Ports the agent reserves on every instance (SSH, Docker, the agent's own introspection ports),
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html (ECS_RESERVED_PORTS).
RESERVED_PORTS = (22, 2375, 2376, 51678, 51679)
AGENT_VERSION = "1.89.2"
# The agent keeps retrying registration while its cluster does not exist.
REGISTRATION_RETRY = 30.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@attrs.frozen
class Node:
    """A registered container instance, as the agent configured it."""

    instance_id: str
    cluster: str
    arn: str
    cpu: int
    memory: int
    availability_zone: str
    instance_type: str
    lifecycle: str
    group: str | None
    #: ``ECS_ENABLE_SPOT_INSTANCE_DRAINING`` from the instance's user data.
    spot_draining: bool
    #: ``ECS_CONTAINER_STOP_TIMEOUT``: SIGTERM to SIGKILL.
    stop_timeout: float
    registered_at: float


def parse_duration(text: str | None, default: float) -> float:
    """A Go duration as the agent reads it (``30s``, ``1m``, ``1m30s``)."""
    if not text:
        return default
    parts = _DURATION.findall(text.strip())
    if not parts:
        return default
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


class Agent:
    def __init__(self, world: World) -> None:
        self.world = world
        self.nodes: dict[str, Node] = {}
        self._seen: dict[str, str] = {}  # container instance ARN -> last status announced
        self._versions: dict[str, int] = {}
        self._waiting: set[str] = set()

    def booted(self, instance_id: str) -> None:
        self.world.at(self.world.timings.agent_start, lambda: self._start(instance_id))

    def _start(self, instance_id: str) -> None:
        world = self.world
        machine = world.machine(instance_id)
        if machine is None or not machine.running or instance_id in self.nodes:
            return
        instance = world.ec2.get_instance_by_id(instance_id)
        parsed = userdata.parse(user_data_text(instance.user_data))
        config = parsed.ecs_config
        cluster_name = config.get(userdata.CLUSTER_KEY) or "default"
        cluster = world.ecs.clusters.get(cluster_name)
        if cluster is None or cluster.status != "ACTIVE":
            if instance_id not in self._waiting:
                world.record("agent.no_cluster", instance_id, cluster=cluster_name)
                self._waiting.add(instance_id)
            world.at(REGISTRATION_RETRY, lambda: self._start(instance_id))
            return
        self._waiting.discard(instance_id)
        kind = instancetypes.lookup(machine.instance_type)
        container_instance = world.ecs.register_container_instance(cluster_name, instance_id)
        container_instance.registered_resources = _resources(kind.cpu_units, kind.registered_memory_mib, RESERVED_PORTS)
        container_instance.remaining_resources = _resources(kind.cpu_units, kind.registered_memory_mib, RESERVED_PORTS)
        container_instance.registered_at = world.datetime()
        container_instance.version_info = {
            "agentVersion": AGENT_VERSION,
            "agentHash": "f5ae1d8a",
            "dockerVersion": "DockerVersion: 25.0.8",
        }
        container_instance.attributes.update(
            {
                "ecs.instance-type": machine.instance_type,
                "ecs.availability-zone": machine.availability_zone,
                "ecs.cpu-architecture": "x86_64",
                "ecs.capability.task-eni": None,
                "com.amazonaws.ecs.capability.docker-remote-api.1.44": None,
                "ecs.capability.container-health-check": None,
            }
        )
        container_instance.attributes.update(_custom_attributes(parsed, machine.lifecycle))
        node = Node(
            instance_id=instance_id,
            cluster=cluster_name,
            arn=container_instance.container_instance_arn,
            cpu=kind.cpu_units,
            memory=kind.registered_memory_mib,
            availability_zone=machine.availability_zone,
            instance_type=machine.instance_type,
            lifecycle=machine.lifecycle,
            group=machine.group,
            spot_draining=parsed.spot_draining,
            stop_timeout=parse_duration(config.get(userdata.STOP_TIMEOUT_KEY), 30.0),
            registered_at=world.now(),
        )
        self.nodes[instance_id] = node
        world.record("ecs.registered", instance_id, cluster=cluster_name, container_instance=node.arn)
        self._announce(node)
        if machine.reclaim_at is not None:
            self.spot_warning(instance_id)

    def container_instance(self, node: Node) -> Any:
        """moto's container instance of ``node``; None once deregistered through the API."""
        return self.world.ecs.container_instances.get(node.cluster, {}).get(node.arn.split("/")[-1])

    def status(self, node: Node) -> str:
        container_instance = self.container_instance(node)
        return container_instance.status if container_instance is not None else "INACTIVE"

    def spot_warning(self, instance_id: str) -> None:
        """https://docs.aws.amazon.com/AmazonECS/latest/developerguide/spot-instance-draining-linux-container.html:
        with ``ECS_ENABLE_SPOT_INSTANCE_DRAINING=true`` the agent sets its instance DRAINING when
        it sees the interruption notice; without it, nothing happens until the instance is gone."""
        node = self.nodes.get(instance_id)
        if node is None:
            return
        if not node.spot_draining:
            self.world.record("agent.spot_warning_ignored", instance_id)
            return
        container_instance = self.container_instance(node)
        if container_instance is not None and container_instance.status == "ACTIVE":
            container_instance.status = "DRAINING"
            self.world.record("ecs.status", instance_id, status="DRAINING", cause="spot interruption notice")
            self._announce(node)

    def instance_gone(self, instance_id: str) -> None:
        """"If you terminate a container instance ... that container instance is automatically
        removed, or deregistered, from the cluster"
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deregister_container_instance.html),
        once ECS has noticed the agent is gone."""
        if instance_id in self.nodes:
            self.world.at(self.world.timings.termination_detection, lambda: self._lost(instance_id))

    def _lost(self, instance_id: str) -> None:
        node = self.nodes[instance_id]
        container_instance = self.container_instance(node)
        if container_instance is not None and container_instance.status != "INACTIVE":
            deregister(self.world, container_instance)
            self.world.record("ecs.status", instance_id, status="INACTIVE", cause="EC2 instance terminated")
            self._announce(node)

    def tick(self) -> None:
        # Status changes made through the API (UpdateContainerInstancesState, deregistration)
        # are announced too, as ECS does.
        for node in self.nodes.values():
            if self._seen.get(node.arn) != self.status(node):
                self.world.record("ecs.status", node.instance_id, status=self.status(node), cause="API")
                self._announce(node)

    def _announce(self, node: Node) -> None:
        """An "ECS Container Instance State Change" event
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html)."""
        world = self.world
        status = self.status(node)
        self._seen[node.arn] = status
        version = self._versions.get(node.arn, 0) + 1
        self._versions[node.arn] = version
        container_instance = self.container_instance(node)
        detail: dict[str, Any] = {
            "agentConnected": status != "INACTIVE",
            "clusterArn": f"arn:aws:ecs:{world.region}:{world.account_id}:cluster/{node.cluster}",
            "containerInstanceArn": node.arn,
            "ec2InstanceId": node.instance_id,
            "status": status,
            "version": version,
            "updatedAt": world.iso(millis=True),
        }
        if container_instance is not None:
            detail["attributes"] = [
                {"name": k} if v is None else {"name": k, "value": v} for k, v in container_instance.attributes.items()
            ]
            detail["registeredResources"] = _public_resources(container_instance.registered_resources)
            detail["remainingResources"] = _public_resources(container_instance.remaining_resources)
            detail["versionInfo"] = dict(container_instance.version_info)
        world.events.emit("aws.ecs", "ECS Container Instance State Change", detail, resources=[node.arn])


def deregister(world: World, container_instance: Any) -> None:
    """Mark a container instance INACTIVE the way ECS does: it stays describable, leaves lists."""
    if container_instance.status == "INACTIVE":
        return
    container_instance.status = "INACTIVE"
    container_instance.agent_connected = False
    cluster = world.ecs.clusters.get(container_instance.cluster_name)
    if cluster is not None:
        cluster.registered_container_instances_count = max(0, cluster.registered_container_instances_count - 1)


def _resources(cpu: int, memory: int, ports: tuple[int, ...]) -> list[dict[str, Any]]:
    return [
        {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory, "doubleValue": 0.0, "longValue": 0},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": [str(p) for p in ports], "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": [], "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
    ]


def _public_resources(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for resource in resources:
        entry = {"name": resource["name"], "type": resource["type"]}
        if resource["type"] == "INTEGER":
            entry["integerValue"] = resource["integerValue"]
        else:
            entry["stringSetValue"] = list(resource["stringSetValue"])
        out.append(entry)
    return out


def _custom_attributes(parsed: userdata.UserData, lifecycle: str) -> dict[str, str]:
    """``ECS_INSTANCE_ATTRIBUTES`` as the agent would read it after the user data script ran.

    ecsspot's script fills in ``ecsspot.lifecycle`` from the instance metadata
    (``instance-life-cycle``) at boot; the simulator knows that answer.
    """
    raw = parsed.ecs_config.get(userdata.ATTRIBUTES_KEY)
    attributes: dict[str, str] = {}
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            attributes = {str(k): str(v) for k, v in loaded.items()}
    if parsed.sets_lifecycle_attribute:
        attributes[userdata.LIFECYCLE_ATTRIBUTE] = lifecycle
    return attributes
