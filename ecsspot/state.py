"""Frozen snapshots of observed AWS state, and the workflows that read them in few calls.

``observe(spec)`` reads what plan and lint need in two concurrent rounds plus one for services:
clusters, capacity providers, tagged ASGs (instances included), the launch template and the
table in round one; template versions in use, lifecycle hooks and the table's TTL and recovery
in round two. Describe-per-instance never happens: a 1,000-instance cluster costs the same as a
10-instance one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ecsspot.aws.calls import Workflow, call, chunks, lookup, paginate
from ecsspot.spec import ClusterSpec

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
            return self.mixed_instances_policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
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


# --- reading workflows ----------------------------------------------------------------------


def observe(spec: ClusterSpec, *, services: bool = True) -> Workflow[Observed]:
    """Read the cluster's current state: two concurrent rounds (+ services and target groups)."""
    cluster_name = spec.cluster
    expected_cps = [spec.capacity_provider_name(p) for p in spec.pools]
    expected_asgs = [spec.asg_name(p) for p in spec.pools]
    clusters, cps, tagged, named, templates, table_raw = yield (
        call("ecs", "describe_clusters", clusters=[cluster_name], include=["TAGS"]),
        call("ecs", "describe_capacity_providers", capacityProviders=expected_cps, include=["TAGS"]),
        paginate("autoscaling", "describe_auto_scaling_groups", Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster_name]}]),
        paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=expected_asgs),
        call("ec2", "describe_launch_templates", Filters=[{"Name": "launch-template-name", "Values": [spec.launch_template_name]}]),
        lookup("dynamodb", "describe_table", ("ResourceNotFoundException",), TableName=spec.table_name),
    )

    cluster = next((cluster_from(c) for c in clusters.get("clusters", ()) if c.get("status") != "INACTIVE"), None)
    providers = {c["name"]: capacity_provider_from(c) for c in cps.get("capacityProviders", ())}
    raw_asgs = {g["AutoScalingGroupName"]: g for g in [*tagged.get("AutoScalingGroups", ()), *named.get("AutoScalingGroups", ())]}
    template_raw = next(iter(templates.get("LaunchTemplates", ())), None)

    # Round two: what round one pointed at.
    extra_cps = [n for n in (cluster.capacity_providers if cluster else ()) if n not in providers and not n.startswith("FARGATE")]
    versions_wanted: set[str] = set()
    if template_raw:
        versions_wanted = {str(template_raw["LatestVersionNumber"]), str(template_raw["DefaultVersionNumber"])}
        for g in raw_asgs.values():
            spec_ = asg_from(g).template_spec
            if spec_.get("LaunchTemplateId") == template_raw["LaunchTemplateId"] or spec_.get("LaunchTemplateName") == template_raw["LaunchTemplateName"]:
                versions_wanted.add(str(spec_.get("Version")))
    round_two: list[Any] = [call("autoscaling", "describe_lifecycle_hooks", AutoScalingGroupName=name) for name in raw_asgs]
    if extra_cps:
        round_two.append(call("ecs", "describe_capacity_providers", capacityProviders=extra_cps, include=["TAGS"]))
    if template_raw:
        round_two.append(
            call(
                "ec2",
                "describe_launch_template_versions",
                LaunchTemplateId=template_raw["LaunchTemplateId"],
                Versions=sorted(versions_wanted),
            )
        )
    if table_raw:
        # A table whose TTL or recovery call was lost after create_table must show as a change.
        round_two.append(call("dynamodb", "describe_time_to_live", TableName=spec.table_name))
        round_two.append(call("dynamodb", "describe_continuous_backups", TableName=spec.table_name))
    answers = list((yield tuple(round_two))) if round_two else []
    hook_answers = answers[: len(raw_asgs)]
    rest = answers[len(raw_asgs) :]
    if extra_cps:
        providers.update({c["name"]: capacity_provider_from(c) for c in rest.pop(0).get("capacityProviders", ())})
    template = None
    if template_raw:
        versions = {int(v["VersionNumber"]): v.get("LaunchTemplateData", {}) for v in rest.pop(0).get("LaunchTemplateVersions", ())}
        template = LaunchTemplateState(
            id=template_raw["LaunchTemplateId"],
            name=template_raw["LaunchTemplateName"],
            default_version=int(template_raw["DefaultVersionNumber"]),
            latest_version=int(template_raw["LatestVersionNumber"]),
            versions=versions,
            tags=tags_of(template_raw.get("Tags")),
        )
    asgs = {}
    for (name, raw), hooks in zip(raw_asgs.items(), hook_answers):
        asgs[name] = asg_from(
            raw,
            tuple(
                LifecycleHook(
                    name=h["LifecycleHookName"],
                    transition=h.get("LifecycleTransition", ""),
                    heartbeat_timeout=int(h.get("HeartbeatTimeout", 3600)),
                    default_result=h.get("DefaultResult", "ABANDON"),
                )
                for h in hooks.get("LifecycleHooks", ())
            ),
        )
    service_states: tuple[ServiceState, ...] = ()
    target_groups: dict[str, TargetGroupState] = {}
    if services and cluster is not None:
        service_states, target_groups = yield from observe_services(cluster.name, spec.target_groups)
    table = table_from(table_raw, rest.pop(0), rest.pop(0)) if table_raw else None
    return Observed(
        cluster=cluster,
        launch_template=template,
        asgs=asgs,
        capacity_providers=providers,
        table=table,
        services=service_states,
        target_groups=target_groups,
    )


def observe_services(cluster: str, extra_target_groups: tuple[str, ...] = ()) -> Workflow[tuple[tuple[ServiceState, ...], dict[str, TargetGroupState]]]:
    """The cluster's services (10 per describe) and their target groups' deregistration delays."""
    listed = yield paginate("ecs", "list_services", cluster=cluster)
    arns = listed.get("serviceArns", [])
    services: list[ServiceState] = []
    if arns:
        described = yield tuple(call("ecs", "describe_services", cluster=cluster, services=batch) for batch in chunks(arns, 10))
        services = [service_from(s) for answer in described for s in answer.get("services", ()) if s.get("status") != "INACTIVE"]
    group_arns = sorted({*extra_target_groups, *(arn for s in services for arn in s.target_group_arns)})
    groups: dict[str, TargetGroupState] = {}
    if group_arns:
        attrs_answers = yield tuple(
            lookup("elbv2", "describe_target_group_attributes", ("TargetGroupNotFound",), TargetGroupArn=arn) for arn in group_arns
        )
        for arn, answer in zip(group_arns, attrs_answers):
            if answer is None:
                continue  # a spec target group that is gone: lint says so, plan does not fail
            attributes = {a["Key"]: a["Value"] for a in answer.get("Attributes", ())}
            groups[arn] = TargetGroupState(
                arn=arn,
                name=arn.split(":targetgroup/")[-1].split("/")[0],
                deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", 300)),
            )
    return tuple(services), groups
