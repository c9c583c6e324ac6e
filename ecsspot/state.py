"""Frozen snapshots of observed AWS state and their pure builders from describe_* answers.

``ecsspot.observe`` reads the answers; plan and lint compare the snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

CLUSTER_TAG = "ecsspot:cluster"
POOL_TAG = "ecsspot:pool"


def tags_of(items: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS's list-of-pairs tags as a dict (EC2/ASG spell Key/Value, ECS key/value)."""
    return {t[key]: t[value] for t in items or ()}


@attrs.frozen
class LaunchTemplateState:
    id: str
    name: str
    default_version: int
    latest_version: int
    #: Launch template data by version number, for the versions ecsspot looked at.
    versions: Mapping[int, Mapping[str, Any]] = attrs.field(factory=dict, hash=False)
    tags: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class AsgInstance:
    instance_id: str
    availability_zone: str
    lifecycle_state: str
    health_status: str
    protected_from_scale_in: bool
    instance_type: str
    launch_template_version: str | None


@attrs.frozen
class LifecycleHook:
    name: str
    transition: str
    heartbeat_timeout: int
    default_result: str


@attrs.frozen
class AsgState:
    name: str
    arn: str
    min_size: int
    max_size: int
    desired_capacity: int
    #: The raw MixedInstancesPolicy as AWS returns it (None for a plain launch template ASG).
    mixed_instances_policy: Mapping[str, Any] | None = attrs.field(hash=False)
    launch_template: Mapping[str, Any] | None = attrs.field(hash=False)
    capacity_rebalance: bool
    new_instances_protected: bool
    subnets: tuple[str, ...]
    tags: Mapping[str, str] = attrs.field(hash=False)
    instances: tuple[AsgInstance, ...] = ()
    lifecycle_hooks: tuple[LifecycleHook, ...] = ()

    @property
    def template_spec(self) -> Mapping[str, Any]:
        """The launch template specification the group launches from."""
        if self.mixed_instances_policy:
            spec: Mapping[str, Any] = self.mixed_instances_policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
            return spec
        return self.launch_template or {}

    @property
    def template_version(self) -> str | None:
        return self.template_spec.get("Version")


@attrs.frozen
class CapacityProviderState:
    name: str
    arn: str
    status: str
    asg_arn: str
    managed_scaling: Mapping[str, Any] = attrs.field(hash=False)
    managed_termination_protection: str = "DISABLED"
    managed_draining: str = "DISABLED"
    tags: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class ClusterState:
    name: str
    arn: str
    status: str
    capacity_providers: tuple[str, ...]
    default_strategy: tuple[Mapping[str, Any], ...]
    tags: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class TableState:
    name: str
    status: str
    #: The attribute TTL deletes by, while TTL is ENABLED or ENABLING (None otherwise).
    ttl_attribute: str | None = None
    point_in_time_recovery: bool = False


@attrs.frozen
class ServiceState:
    name: str
    arn: str
    desired_count: int
    running_count: int
    launch_type: str | None
    capacity_provider_strategy: tuple[Mapping[str, Any], ...]
    minimum_healthy_percent: int
    maximum_percent: int
    target_group_arns: tuple[str, ...]


@attrs.frozen
class TargetGroupState:
    arn: str
    name: str
    deregistration_delay: int


@attrs.frozen
class Observed:
    """Everything plan and lint look at for one cluster."""

    cluster: ClusterState | None
    launch_template: LaunchTemplateState | None
    asgs: Mapping[str, AsgState] = attrs.field(factory=dict, hash=False)
    capacity_providers: Mapping[str, CapacityProviderState] = attrs.field(factory=dict, hash=False)
    table: TableState | None = None
    services: tuple[ServiceState, ...] = ()
    target_groups: Mapping[str, TargetGroupState] = attrs.field(factory=dict, hash=False)
    #: Pool name -> the instance types its ``instance_requirements`` resolve to
    #: (GetInstanceTypesFromInstanceRequirements), for pools that give requirements.
    resolved_types: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, hash=False)

    @property
    def exists(self) -> bool:
        return self.cluster is not None and self.cluster.status != "INACTIVE"


# --- builders from describe_* responses ------------------------------------------------------


def asg_from(raw: Mapping[str, Any], hooks: tuple[LifecycleHook, ...] = ()) -> AsgState:
    return AsgState(
        name=raw["AutoScalingGroupName"],
        arn=raw["AutoScalingGroupARN"],
        min_size=raw["MinSize"],
        max_size=raw["MaxSize"],
        desired_capacity=raw["DesiredCapacity"],
        mixed_instances_policy=raw.get("MixedInstancesPolicy"),
        launch_template=raw.get("LaunchTemplate"),
        capacity_rebalance=bool(raw.get("CapacityRebalance")),
        new_instances_protected=bool(raw.get("NewInstancesProtectedFromScaleIn")),
        subnets=tuple(s for s in (raw.get("VPCZoneIdentifier") or "").split(",") if s),
        tags=tags_of(raw.get("Tags")),
        instances=tuple(
            AsgInstance(
                instance_id=i["InstanceId"],
                availability_zone=i.get("AvailabilityZone", ""),
                lifecycle_state=i.get("LifecycleState", ""),
                health_status=i.get("HealthStatus", ""),
                protected_from_scale_in=bool(i.get("ProtectedFromScaleIn")),
                instance_type=i.get("InstanceType", ""),
                launch_template_version=(i.get("LaunchTemplate") or {}).get("Version"),
            )
            for i in raw.get("Instances", ())
        ),
        lifecycle_hooks=hooks,
    )


def capacity_provider_from(raw: Mapping[str, Any]) -> CapacityProviderState:
    provider = raw.get("autoScalingGroupProvider", {})
    return CapacityProviderState(
        name=raw["name"],
        arn=raw.get("capacityProviderArn", ""),
        status=raw.get("status", "ACTIVE"),
        asg_arn=provider.get("autoScalingGroupArn", ""),
        managed_scaling=provider.get("managedScaling", {}),
        managed_termination_protection=provider.get("managedTerminationProtection", "DISABLED"),
        managed_draining=provider.get("managedDraining", "DISABLED"),
        tags=tags_of(raw.get("tags"), "key", "value"),
    )


def cluster_from(raw: Mapping[str, Any]) -> ClusterState:
    return ClusterState(
        name=raw["clusterName"],
        arn=raw["clusterArn"],
        status=raw.get("status", "ACTIVE"),
        capacity_providers=tuple(raw.get("capacityProviders") or ()),
        default_strategy=tuple(raw.get("defaultCapacityProviderStrategy") or ()),
        tags=tags_of(raw.get("tags"), "key", "value"),
    )


def table_from(raw: Mapping[str, Any], ttl: Mapping[str, Any] | None, backups: Mapping[str, Any] | None) -> TableState:
    """The table with its TTL (DescribeTimeToLive) and point-in-time recovery (DescribeContinuousBackups)."""
    ttl_desc = (ttl or {}).get("TimeToLiveDescription") or {}
    pitr = ((backups or {}).get("ContinuousBackupsDescription") or {}).get("PointInTimeRecoveryDescription") or {}
    return TableState(
        name=raw["Table"]["TableName"],
        status=raw["Table"]["TableStatus"],
        ttl_attribute=ttl_desc.get("AttributeName") if ttl_desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
        point_in_time_recovery=pitr.get("PointInTimeRecoveryStatus") == "ENABLED",
    )


def service_from(raw: Mapping[str, Any]) -> ServiceState:
    deployment = raw.get("deploymentConfiguration") or {}
    return ServiceState(
        name=raw["serviceName"],
        arn=raw["serviceArn"],
        desired_count=raw.get("desiredCount", 0),
        running_count=raw.get("runningCount", 0),
        launch_type=raw.get("launchType"),
        capacity_provider_strategy=tuple(raw.get("capacityProviderStrategy") or ()),
        minimum_healthy_percent=deployment.get("minimumHealthyPercent", 100),
        maximum_percent=deployment.get("maximumPercent", 200),
        target_group_arns=tuple(lb["targetGroupArn"] for lb in raw.get("loadBalancers") or () if lb.get("targetGroupArn")),
    )
