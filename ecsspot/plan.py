"""Pure plan: spec + observed state → the ordered changes ``ecsspot.apply`` makes.

``plan`` never talks to AWS: it compares normalised *desired* documents (built from the spec)
with the same documents built from what AWS returned, field by field, so defaults an answer
fills in (or leaves out) never show up as phantom changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot import userdata
from ecsspot.errors import Problem, SpecError
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, Pool, StrategyItem, dump_spec
from ecsspot.state import CLUSTER_TAG, POOL_TAG, Observed, tags_of
from ecsspot.store import TTL_ATTRIBUTE

if TYPE_CHECKING:
    from ecsspot.lint import LintWarning

ACTIONS = ("create", "update", "replace", "delete")
#: Tag ECS puts on ASGs it manages; ecsspot adds it at creation and ignores it in diffs.
ECS_MANAGED_TAG = "AmazonECSManaged"


@attrs.frozen
class Change:
    """One planned change; ``diff`` maps a field to ``[before, after]``."""

    action: str
    resource: str
    name: str
    diff: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    #: Why a replace or delete is needed, in words.
    reason: str = ""


def _summary(changes: tuple[Change, ...]) -> dict[str, int]:
    return {a: sum(1 for c in changes if c.action == a) for a in ACTIONS}


@attrs.frozen
class Plan:
    cluster: str
    changes: tuple[Change, ...]
    warnings: tuple[LintWarning, ...] = ()
    summary: Mapping[str, int] = attrs.field(hash=False, default=attrs.Factory(lambda s: _summary(s.changes), takes_self=True))
    #: The AMI the launch template should use (resolved from SSM when the spec names a parameter).
    image_id: str = ""
    #: The launch template version the groups should run when the plan makes none (an existing
    #: version already holding the desired data is used rather than another copy of it).
    template_version: int | None = None
    #: Information, never a change: pool name -> the instance types its instance_requirements
    #: resolve to now (AWS adds new types as they come).
    resolved_instance_types: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, hash=False)
    #: Information, never a change: spot types the recorded interruptions advise dropping
    #: (``ecsspot advise`` adds the placement scores).
    advice: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


# --- desired documents -----------------------------------------------------------------------


def desired_template_data(spec: ClusterSpec, image_id: str) -> dict[str, Any]:
    """Full launch template data (sent whole every time, never as a ``SourceVersion`` edit: see
    :func:`version_params`)."""
    inst = spec.instances
    data: dict[str, Any] = {
        "ImageId": image_id,
        "UserData": userdata.encode(userdata.render(spec.cluster, inst.ecs_config, inst.user_data)),
        # IMDSv2 only; hop limit 1 (the default) keeps the instance role from bridge-mode containers.
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": inst.metadata_hop_limit},
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"VolumeSize": inst.root_volume_gib, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
            }
        ],
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": k, "Value": v} for k, v in {**inst.tags, CLUSTER_TAG: spec.cluster}.items()],
            }
        ],
    }
    if inst.instance_profile:
        key = "Arn" if inst.instance_profile.startswith("arn:") else "Name"
        data["IamInstanceProfile"] = {key: inst.instance_profile}
    if spec.network.assign_public_ip:
        data["NetworkInterfaces"] = [
            {"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": list(spec.network.security_groups)}
        ]
    elif spec.network.security_groups:
        data["SecurityGroupIds"] = list(spec.network.security_groups)
    if inst.key_name:
        data["KeyName"] = inst.key_name
    return data


def _template_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """The launch template fields ecsspot manages, normalised for comparison."""
    meta = data.get("MetadataOptions") or {}
    ebs: Mapping[str, Any] = next((b.get("Ebs", {}) for b in data.get("BlockDeviceMappings") or () if b.get("DeviceName") == "/dev/xvda"), {})
    instance_tags = next((tags_of(t.get("Tags")) for t in data.get("TagSpecifications") or () if t.get("ResourceType") == "instance"), {})
    nic: Mapping[str, Any] = next(iter(data.get("NetworkInterfaces") or ()), {})
    return {
        "image_id": data.get("ImageId"),
        "user_data": userdata.decode(data.get("UserData") or ""),
        "http_tokens": meta.get("HttpTokens", "optional"),
        "http_put_response_hop_limit": int(meta.get("HttpPutResponseHopLimit", 1)),
        "root_volume_gib": ebs.get("VolumeSize"),
        "root_volume_type": ebs.get("VolumeType"),
        "root_volume_encrypted": bool(ebs.get("Encrypted")),
        "instance_profile": (data.get("IamInstanceProfile") or {}).get("Arn") or (data.get("IamInstanceProfile") or {}).get("Name"),
        "security_groups": sorted(data.get("SecurityGroupIds") or nic.get("Groups") or []),
        "public_ip": bool(nic.get("AssociatePublicIpAddress")),
        "key_name": data.get("KeyName"),
        "instance_tags": instance_tags,
    }


def desired_asg_view(spec: ClusterSpec, pool: Pool, template_version: int | None) -> dict[str, Any]:
    return {
        "min_size": pool.min_size,
        "max_size": pool.max_size,
        "subnets": sorted(spec.network.subnets),
        # Labelled as in the spec (a script reads names, not positions).
        "instance_types": [{"type": t.type, "weight": t.weight} for t in pool.instance_types],
        "instance_requirements": requirements_view(pool.instance_requirements.to_api() if pool.instance_requirements else None),
        "on_demand_base_capacity": pool.on_demand_base_capacity,
        "on_demand_percentage_above_base": pool.on_demand_percentage_above_base,
        "spot_allocation_strategy": pool.spot_allocation_strategy,
        "on_demand_allocation_strategy": pool.on_demand_allocation_strategy,
        "capacity_rebalance": pool.capacity_rebalance,
        "new_instances_protected_from_scale_in": pool.managed_termination_protection,
        "launch_template_version": template_version,
        "tags": {CLUSTER_TAG: spec.cluster, POOL_TAG: pool.name},
    }


def _observed_asg_view(asg: Any) -> dict[str, Any]:
    policy = asg.mixed_instances_policy or {}
    dist = policy.get("InstancesDistribution") or {}
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    version = asg.template_version
    return {
        "min_size": asg.min_size,
        "max_size": asg.max_size,
        "subnets": sorted(asg.subnets),
        "instance_types": [{"type": o.get("InstanceType"), "weight": int(o.get("WeightedCapacity") or 1)} for o in overrides if not o.get("InstanceRequirements")],
        "instance_requirements": requirements_view(next((o["InstanceRequirements"] for o in overrides if o.get("InstanceRequirements")), None)),
        # AWS's documented defaults, for fields a response may leave out.
        "on_demand_base_capacity": int(dist.get("OnDemandBaseCapacity", 0)),
        "on_demand_percentage_above_base": int(dist.get("OnDemandPercentageAboveBaseCapacity", 100)),
        "spot_allocation_strategy": dist.get("SpotAllocationStrategy", "lowest-price"),
        "on_demand_allocation_strategy": dist.get("OnDemandAllocationStrategy", "prioritized"),
        "capacity_rebalance": asg.capacity_rebalance,
        "new_instances_protected_from_scale_in": asg.new_instances_protected,
        "launch_template_version": int(version) if version and version.isdigit() else version,
        "tags": {k: v for k, v in asg.tags.items() if k in (CLUSTER_TAG, POOL_TAG)},
    }


#: AWS's defaults of the InstanceRequirements fields the spec sets, for answers that leave them
#: out (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRequirements.html).
_REQUIREMENT_DEFAULTS = {"BurstablePerformance": "excluded", "BareMetal": "excluded", "LocalStorage": "included"}
_REQUIREMENT_LISTS = ("CpuManufacturers", "InstanceGenerations", "LocalStorageTypes", "AllowedInstanceTypes", "ExcludedInstanceTypes")
_REQUIREMENT_NUMBERS = (
    "SpotMaxPricePercentageOverLowestPrice",
    "MaxSpotPriceAsPercentageOfOptimalOnDemandPrice",
    "OnDemandMaxPricePercentageOverLowestPrice",
)


def requirements_view(api: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An ``InstanceRequirements`` structure normalised for comparison: AWS's defaults filled
    in, lists as sets (sorted), ranges with an explicit (possibly absent) maximum."""
    if not api:
        return None

    def rng(value: Any) -> dict[str, Any]:
        value = value or {}
        return {"Min": int(value.get("Min") or 0), "Max": None if value.get("Max") is None else int(value["Max"])}

    out: dict[str, Any] = {"VCpuCount": rng(api.get("VCpuCount")), "MemoryMiB": rng(api.get("MemoryMiB"))}
    out.update({k: api.get(k) or d for k, d in _REQUIREMENT_DEFAULTS.items()})
    out.update({k: sorted(api.get(k) or ()) for k in _REQUIREMENT_LISTS})
    out.update({k: None if api.get(k) is None else int(api[k]) for k in _REQUIREMENT_NUMBERS})
    # Anything else AWS may answer (fields the spec does not set) is left out of the comparison.
    return out


def desired_capacity_provider_view(pool: Pool, asg_arn: str | None) -> dict[str, Any]:
    ms = pool.managed_scaling
    return {
        "asg_arn": asg_arn,
        "managed_scaling": "ENABLED" if ms else "DISABLED",
        "target_capacity": ms.target_capacity if ms else None,
        "minimum_scaling_step_size": ms.minimum_scaling_step_size if ms else None,
        "maximum_scaling_step_size": ms.maximum_scaling_step_size if ms else None,
        "instance_warmup_period": ms.instance_warmup_period if ms else None,
        "managed_termination_protection": "ENABLED" if pool.managed_termination_protection else "DISABLED",
        "managed_draining": "ENABLED" if pool.managed_draining else "DISABLED",
    }


def _observed_capacity_provider_view(cp: Any) -> dict[str, Any]:
    ms = cp.managed_scaling or {}
    enabled = ms.get("status") == "ENABLED"
    return {
        "asg_arn": cp.asg_arn,
        "managed_scaling": "ENABLED" if enabled else "DISABLED",
        "target_capacity": ms.get("targetCapacity", 100) if enabled else None,
        "minimum_scaling_step_size": ms.get("minimumScalingStepSize", 1) if enabled else None,
        "maximum_scaling_step_size": ms.get("maximumScalingStepSize", 10_000) if enabled else None,
        "instance_warmup_period": ms.get("instanceWarmupPeriod", 300) if enabled else None,
        "managed_termination_protection": cp.managed_termination_protection,
        "managed_draining": cp.managed_draining,
    }


def desired_strategy(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The cluster's default capacity provider strategy (every pool weight 1 when the spec has none)."""
    items = spec.strategy or tuple(StrategyItem(p.name) for p in spec.pools)
    return [
        {"capacityProvider": spec.capacity_provider_name(spec.pool(s.pool)), "weight": s.weight, "base": s.base} for s in items
    ]


def _strategy_view(items: Any) -> list[dict[str, Any]]:
    """A strategy as labelled entries (a diff a person and a script can read), in a stable order."""
    entries = [{"capacity_provider": i["capacityProvider"], "weight": int(i.get("weight", 0)), "base": int(i.get("base", 0))} for i in items]
    return sorted(entries, key=lambda e: (e["capacity_provider"], e["weight"], e["base"]))


def _hook_view(hook: Any) -> dict[str, Any]:
    return {"heartbeat_timeout": hook.heartbeat_timeout, "default_result": hook.default_result}


def desired_settings(spec: ClusterSpec) -> str:
    """What the state table records for the cluster (canonical JSON of the spec)."""
    return json.dumps(dump_spec(spec), sort_keys=True, separators=(",", ":"))


def desired_table_view() -> dict[str, Any]:
    return {"billing_mode": "PAY_PER_REQUEST", "ttl_attribute": TTL_ATTRIBUTE, "point_in_time_recovery": True}


def _observed_table_view(table: Any) -> dict[str, Any]:
    # Billing mode is set at creation only; TTL and recovery are separate calls that can be lost.
    return {"billing_mode": "PAY_PER_REQUEST", "ttl_attribute": table.ttl_attribute, "point_in_time_recovery": table.point_in_time_recovery}


def field_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


# --- plan ------------------------------------------------------------------------------------


def current_template_version(spec: ClusterSpec, observed: Observed) -> int | None:
    """The launch template version the cluster's ASGs run (the newest one they reference)."""
    lt = observed.launch_template
    if lt is None:
        return None
    used = [
        int(v)
        for asg in observed.asgs.values()
        if (v := asg.template_version) and str(v).isdigit()
        and (asg.template_spec.get("LaunchTemplateId") == lt.id or asg.template_spec.get("LaunchTemplateName") == lt.name)
    ]
    return max(used) if used else lt.latest_version


@attrs.frozen
class Refreshed:
    """The image a finished rolling refresh put the groups on (``ecsspot refresh``), and when."""

    image_id: str
    at: float | None = None


def plan(
    spec: ClusterSpec,
    observed: Observed,
    image_id: str,
    warnings: tuple[LintWarning, ...] = (),
    settings: str | None = None,
    refreshed: Refreshed | None = None,
    falling_back: frozenset[str] = frozenset(),
) -> Plan:
    """Compare spec and observed state; return the ordered changes apply would make.

    ``refreshed``: when the template's image is the one a refresh rolled to, the change back to
    the spec's image says so rather than silently proposing to revert the refresh.
    ``falling_back``: pools the spot → on-demand fallback runs on demand now; their groups'
    raised ``OnDemandBaseCapacity`` is the controller's to put back, not apply's.
    """
    changes: list[Change] = []
    if observed.table is None:
        changes.append(Change("create", "dynamodb_table", spec.table_name, field_diff({}, desired_table_view())))
    elif table_delta := field_diff(_observed_table_view(observed.table), desired_table_view()):
        changes.append(Change("update", "dynamodb_table", spec.table_name, table_delta))

    desired_lt = _template_view(desired_template_data(spec, image_id))
    lt = observed.launch_template
    version = current_template_version(spec, observed)
    next_version: int | None
    if lt is None:
        changes.append(Change("create", "launch_template", spec.launch_template_name, field_diff({}, _redact(desired_lt))))
        next_version = 1
    else:
        current = _template_view(lt.versions.get(version or lt.latest_version, {}))
        delta = field_diff(current, desired_lt)
        latest = lt.versions.get(lt.latest_version)
        if delta and latest is not None and not field_diff(_template_view(latest), desired_lt):
            # A newer version already holds the desired data (an apply that failed before the
            # groups were pointed at it): use it rather than pile up copies.
            next_version = lt.latest_version
        elif delta:
            next_version = lt.latest_version + 1
            changes.append(
                Change("update", "launch_template", spec.launch_template_name, {**_redact(delta), "version": [version, next_version]}, _why_image(delta, refreshed))
            )
        else:
            next_version = version

    replaced_asgs: set[str] = set()
    for pool in spec.pools:
        name = spec.asg_name(pool)
        want = desired_asg_view(spec, pool, next_version)
        have = observed.asgs.get(name)
        if have is None:
            changes.append(Change("create", "autoscaling_group", name, field_diff({}, want)))
            replaced_asgs.add(name)
        else:
            seen = _observed_asg_view(have)
            if pool.name in falling_back:
                want = {**want, "on_demand_base_capacity": seen["on_demand_base_capacity"]}
            delta = field_diff(seen, want)
            if delta:
                changes.append(Change("update", "autoscaling_group", name, delta))
        want_hook = {"heartbeat_timeout": spec.drain.lifecycle_timeout_seconds, "default_result": "CONTINUE"}
        hook = next((h for h in (have.lifecycle_hooks if have else ()) if h.name == LIFECYCLE_HOOK_NAME), None)
        hook_delta = field_diff(_hook_view(hook) if hook else {}, want_hook)
        if hook_delta:
            changes.append(Change("create" if hook is None else "update", "lifecycle_hook", f"{name}/{LIFECYCLE_HOOK_NAME}", hook_delta))

    if observed.cluster is None:
        changes.append(Change("create", "cluster", spec.cluster, {}))

    ours = {spec.capacity_provider_name(p) for p in spec.pools}
    for pool in spec.pools:
        name = spec.capacity_provider_name(pool)
        asg = observed.asgs.get(spec.asg_name(pool))
        asg_arn = asg.arn if asg and spec.asg_name(pool) not in replaced_asgs else None
        want = desired_capacity_provider_view(pool, asg_arn or "(new group)")
        provider = observed.capacity_providers.get(name)
        if provider is None or provider.status == "INACTIVE":
            changes.append(Change("create", "capacity_provider", name, field_diff({}, want)))
            continue
        current = _observed_capacity_provider_view(provider)
        if current["asg_arn"] != want["asg_arn"]:
            changes.append(
                Change(
                    "replace",
                    "capacity_provider",
                    name,
                    field_diff(current, want),
                    reason="a capacity provider's Auto Scaling group cannot be changed; it is deleted and created again",
                )
            )
            continue
        delta = field_diff(current, want)
        if delta:
            changes.append(Change("update", "capacity_provider", name, delta))

    # Groups and providers ecsspot made for pools that are gone from the spec.
    wanted_asgs = {spec.asg_name(p) for p in spec.pools}
    for name, cp in sorted(observed.capacity_providers.items()):
        if name not in ours and cp.tags.get(CLUSTER_TAG) == spec.cluster and cp.status != "INACTIVE":
            changes.append(Change("delete", "capacity_provider", name, {}, reason="its pool is no longer in the spec"))
    for name, asg in sorted(observed.asgs.items()):
        if name not in wanted_asgs and asg.tags.get(CLUSTER_TAG) == spec.cluster:
            changes.append(Change("delete", "autoscaling_group", name, {}, reason="its pool is no longer in the spec (instances are drained first)"))

    _refuse_providers_in_use(spec, observed, changes)

    cluster = observed.cluster
    foreign = [n for n in (cluster.capacity_providers if cluster else ()) if n not in ours and not is_ours(observed, n, spec)]
    want_cps = sorted(ours | set(foreign))
    want_strategy = _strategy_view(desired_strategy(spec))
    have_cps = sorted(cluster.capacity_providers) if cluster else []
    have_strategy = _strategy_view(cluster.default_strategy) if cluster else []
    if want_cps != have_cps or want_strategy != have_strategy:
        delta = {}
        if want_cps != have_cps:
            delta["capacity_providers"] = [have_cps, want_cps]
        if want_strategy != have_strategy:
            delta["default_strategy"] = [have_strategy, want_strategy]
        changes.append(Change("update", "cluster_capacity_providers", spec.cluster, delta))

    want_settings = desired_settings(spec)
    if settings != want_settings:
        before = json.loads(settings) if settings else {}
        after = json.loads(want_settings)
        keys = sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
        changes.append(Change("create" if settings is None else "update", "settings", spec.table_name, {"changed_keys": [None, keys]}))
    return Plan(
        cluster=spec.cluster,
        changes=tuple(changes),
        warnings=warnings,
        image_id=image_id,
        template_version=next_version,
        resolved_instance_types=dict(observed.resolved_types),
    )


def _refuse_providers_in_use(spec: ClusterSpec, observed: Observed, changes: list[Change]) -> None:
    """Refuse (before any change) to replace or delete a capacity provider a service uses.

    ECS refuses to take a provider in use off its cluster (PutClusterCapacityProviders:
    ResourceInUseException) or to delete one still in a service's strategy; apply would stop
    halfway, with the new group made and the provider never swapped. Moving services is theirs
    to decide (their strategy, a new deployment), so ecsspot names them and changes nothing.
    """
    problems = []
    for change in changes:
        if change.resource != "capacity_provider" or change.action not in ("replace", "delete"):
            continue
        users = sorted(
            s.name for s in observed.services if any(i.get("capacityProvider") == change.name for i in s.capacity_provider_strategy)
        )
        if not users:
            continue
        services = f"service{'s' if len(users) > 1 else ''} {', '.join(users)}"
        if change.action == "replace":
            index = next(i for i, p in enumerate(spec.pools) if spec.capacity_provider_name(p) == change.name)
            problems.append(
                Problem(
                    f"pools[{index}].asg_name",
                    f"capacity provider {change.name} is used by {services}; a provider in use cannot be replaced: "
                    "move those services to another provider first (update their capacity provider strategy and deploy) or keep the group",
                )
            )
        else:
            problems.append(
                Problem(
                    "pools",
                    f"capacity provider {change.name} (a pool no longer in the spec) is used by {services}; a provider in use "
                    "cannot be deleted: move those services to another provider first or keep the pool",
                )
            )
    if problems:
        raise SpecError(problems)


def _why_image(delta: Mapping[str, Any], refreshed: Refreshed | None) -> str:
    """Why the image changes, when a refresh put the current one there (else "")."""
    if "image_id" not in delta or refreshed is None:
        return ""
    current, wanted = delta["image_id"]
    if current != refreshed.image_id:
        return ""
    when = "" if refreshed.at is None else " at " + datetime.fromtimestamp(refreshed.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"the groups run {current}, rolled to by `ecsspot refresh`{when}; apply would go back to {wanted}: "
        f"set instances.ami to {current} (or to the refresh's SSM parameter) to keep it"
    )


def is_ours(observed: Observed, name: str, spec: ClusterSpec) -> bool:
    cp = observed.capacity_providers.get(name)
    return cp is not None and cp.tags.get(CLUSTER_TAG) == spec.cluster


def _redact(view: Mapping[str, Any]) -> dict[str, Any]:
    # User data is long; the plan shows its ecs.config keys, which is what people review.
    out = dict(view)
    for key in ("user_data",):
        if key in out:
            value = out[key]
            if isinstance(value, list):
                out[key] = [_user_data_summary(v) for v in value]
            else:
                out[key] = _user_data_summary(value)
    return out


def _user_data_summary(text: str | None) -> Any:
    if text is None:
        return None
    return dict(userdata.parse(text).ecs_config)
