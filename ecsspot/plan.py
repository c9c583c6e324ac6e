"""Pure plan (spec + observed state → ordered changes) and the apply workflow that runs one.

``plan`` never talks to AWS: it compares normalised *desired* documents (built from the spec)
with the same documents built from what AWS returned, field by field, so defaults an answer
fills in (or leaves out) never show up as phantom changes. ``apply_plan`` is a workflow
generator (see ``ecsspot.aws.calls``) that executes the changes in dependency order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot import userdata
from ecsspot.aws.calls import NOW, Call, Sleep, Workflow, call, lookup
from ecsspot.errors import DeadlineError, InputError, Problem, SpecError
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, Pool, StrategyItem, dump_spec
from ecsspot.state import CLUSTER_TAG, POOL_TAG, Observed, tags_of
from ecsspot.teardown import check_deleted

if TYPE_CHECKING:
    from ecsspot.lint import LintWarning

ACTIONS = ("create", "update", "replace", "delete")
#: Tag ECS puts on ASGs it manages; ecsspot adds it at creation and ignores it in diffs.
ECS_MANAGED_TAG = "AmazonECSManaged"
SETTINGS_KEY = {"pk": {"S": "cluster"}, "sk": {"S": "settings"}}
#: The state table's TTL attribute (leases, idempotency keys; see ``ecsspot.store``).
TTL_ATTRIBUTE = "expires_at"


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

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


@attrs.frozen
class ApplyResult:
    cluster: str
    changes: tuple[Change, ...]
    summary: Mapping[str, int] = attrs.field(hash=False)
    launch_template_version: int | None = None


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
    ebs = next((b.get("Ebs", {}) for b in data.get("BlockDeviceMappings") or () if b.get("DeviceName") == "/dev/xvda"), {})
    instance_tags = next((tags_of(t.get("Tags")) for t in data.get("TagSpecifications") or () if t.get("ResourceType") == "instance"), {})
    nic = next(iter(data.get("NetworkInterfaces") or ()), {})
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
        "instance_types": [[t.type, t.weight] for t in pool.instance_types],
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
        "instance_types": [[o.get("InstanceType"), int(o.get("WeightedCapacity") or 1)] for o in overrides],
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


def _strategy_view(items: Any) -> list[list[Any]]:
    return sorted([i["capacityProvider"], int(i.get("weight", 0)), int(i.get("base", 0))] for i in items)


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


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
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


def plan(spec: ClusterSpec, observed: Observed, image_id: str, warnings: tuple[LintWarning, ...] = (), settings: str | None = None) -> Plan:
    """Compare spec and observed state; return the ordered changes apply would make."""
    changes: list[Change] = []
    if observed.table is None:
        changes.append(Change("create", "dynamodb_table", spec.table_name, _diff({}, desired_table_view())))
    elif table_delta := _diff(_observed_table_view(observed.table), desired_table_view()):
        changes.append(Change("update", "dynamodb_table", spec.table_name, table_delta))

    desired_lt = _template_view(desired_template_data(spec, image_id))
    lt = observed.launch_template
    version = current_template_version(spec, observed)
    next_version: int | None
    if lt is None:
        changes.append(Change("create", "launch_template", spec.launch_template_name, _diff({}, _redact(desired_lt))))
        next_version = 1
    else:
        current = _template_view(lt.versions.get(version or lt.latest_version, {}))
        delta = _diff(current, desired_lt)
        latest = lt.versions.get(lt.latest_version)
        if delta and latest is not None and not _diff(_template_view(latest), desired_lt):
            # A newer version already holds the desired data (an apply that failed before the
            # groups were pointed at it): use it rather than pile up copies.
            next_version = lt.latest_version
        elif delta:
            next_version = lt.latest_version + 1
            changes.append(Change("update", "launch_template", spec.launch_template_name, {**_redact(delta), "version": [version, next_version]}))
        else:
            next_version = version

    replaced_asgs: set[str] = set()
    for pool in spec.pools:
        name = spec.asg_name(pool)
        want = desired_asg_view(spec, pool, next_version)
        have = observed.asgs.get(name)
        if have is None:
            changes.append(Change("create", "autoscaling_group", name, _diff({}, want)))
            replaced_asgs.add(name)
        else:
            delta = _diff(_observed_asg_view(have), want)
            if delta:
                changes.append(Change("update", "autoscaling_group", name, delta))
        want_hook = {"heartbeat_timeout": spec.drain.lifecycle_timeout_seconds, "default_result": "CONTINUE"}
        hook = next((h for h in (have.lifecycle_hooks if have else ()) if h.name == LIFECYCLE_HOOK_NAME), None)
        hook_delta = _diff(_hook_view(hook) if hook else {}, want_hook)
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
        have = observed.capacity_providers.get(name)
        if have is None or have.status == "INACTIVE":
            changes.append(Change("create", "capacity_provider", name, _diff({}, want)))
            continue
        current = _observed_capacity_provider_view(have)
        if current["asg_arn"] != want["asg_arn"]:
            changes.append(
                Change(
                    "replace",
                    "capacity_provider",
                    name,
                    _diff(current, want),
                    reason="a capacity provider's Auto Scaling group cannot be changed; it is deleted and created again",
                )
            )
            continue
        delta = _diff(current, want)
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
    foreign = [n for n in (cluster.capacity_providers if cluster else ()) if n not in ours and not _is_ours(observed, n, spec)]
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
    return Plan(cluster=spec.cluster, changes=tuple(changes), warnings=warnings, image_id=image_id, template_version=next_version)


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


def _is_ours(observed: Observed, name: str, spec: ClusterSpec) -> bool:
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


# --- reading what plan needs -----------------------------------------------------------------


def ami_lookup(ami: str) -> Call | None:
    """The SSM read an ``ssm:/param`` AMI needs (None for a literal ``ami-…``)."""
    if not ami.startswith("ssm:"):
        return None
    return lookup("ssm", "get_parameter", ("ParameterNotFound",), Name=ami[len("ssm:") :])


def image_from(ami: str, answer: Mapping[str, Any] | None) -> str:
    """The AMI id, from ``ami`` itself or from the answer to :func:`ami_lookup`."""
    if not ami.startswith("ssm:"):
        return ami
    name = ami[len("ssm:") :]
    if answer is None:
        raise InputError(f"instances.ami: SSM parameter {name} not found")
    return image_id_from_parameter(answer["Parameter"]["Value"], name)


def resolve_ami(ami: str) -> Workflow[str]:
    """An AMI id from ``ami-…`` or ``ssm:/param`` (plain id or the JSON ``…/recommended`` value)."""
    read = ami_lookup(ami)
    return image_from(ami, (yield read) if read is not None else None)


def image_id_from_parameter(value: str, name: str = "") -> str:
    """The image id in an SSM AMI parameter value: a plain id, or the JSON object of a
    ``…/recommended`` parameter (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html)."""
    value = value.strip()
    if value.startswith("ami-"):
        return value
    if value.startswith("{"):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = {}
        if isinstance(doc, dict) and str(doc.get("image_id", "")).startswith("ami-"):
            return str(doc["image_id"])
    raise InputError(f"SSM parameter {name or '?'} does not hold an AMI id: {value[:60]!r}")


def settings_lookup(table: str) -> Call:
    """The read of the spec JSON apply recorded in the state table (see :func:`settings_from`)."""
    return lookup("dynamodb", "get_item", ("ResourceNotFoundException",), TableName=table, Key=SETTINGS_KEY, ConsistentRead=True)


def settings_from(answer: Mapping[str, Any] | None) -> str | None:
    if not answer or "Item" not in answer:
        return None
    return answer["Item"].get("spec", {}).get("S")


# --- apply -----------------------------------------------------------------------------------


def apply_plan(spec: ClusterSpec, observed: Observed, the_plan: Plan, *, deadline_seconds: float = 900) -> Workflow[ApplyResult]:
    """Execute ``the_plan`` in dependency order; returns what was done."""
    by = {(c.resource, c.name): c for c in the_plan.changes}
    tags_ecs = [{"key": CLUSTER_TAG, "value": spec.cluster}]

    def changed(resource: str, name: str) -> Change | None:
        return by.get((resource, name))

    table_change = changed("dynamodb_table", spec.table_name)
    if table_change is not None and table_change.action == "create":
        yield from create_table(spec.table_name, spec.cluster)
    elif table_change is not None:
        if observed.table is not None and observed.table.status != "ACTIVE":
            yield from _wait_table_active(spec.table_name)
        yield from table_settings(spec.table_name, table_change.diff)

    template_id = observed.launch_template.id if observed.launch_template else None
    version = the_plan.template_version
    if changed("launch_template", spec.launch_template_name):
        data = desired_template_data(spec, the_plan.image_id)
        if template_id is None:
            answer = yield call(
                "ec2",
                "create_launch_template",
                LaunchTemplateName=spec.launch_template_name,
                LaunchTemplateData=data,
                VersionDescription="ecsspot",
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": CLUSTER_TAG, "Value": spec.cluster}]}],
            )
            template_id = answer["LaunchTemplate"]["LaunchTemplateId"]
            version = int(answer["LaunchTemplate"]["LatestVersionNumber"])
        else:
            answer = yield call("ec2", "create_launch_template_version", **version_params(template_id, data, "ecsspot"))
            version = int(answer["LaunchTemplateVersion"]["VersionNumber"])

    asg_arns: dict[str, str] = {name: asg.arn for name, asg in observed.asgs.items()}
    for pool in spec.pools:
        name = spec.asg_name(pool)
        change = changed("autoscaling_group", name)
        if change is None:
            continue
        params = asg_params(spec, pool, template_id or "", version or 1)
        if change.action == "create":
            yield call(
                "autoscaling",
                "create_auto_scaling_group",
                **params,
                DesiredCapacity=pool.min_size,
                Tags=[
                    {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                    for k, v in {CLUSTER_TAG: spec.cluster, POOL_TAG: pool.name, ECS_MANAGED_TAG: ""}.items()
                ],
            )
        else:
            yield call("autoscaling", "update_auto_scaling_group", **params)
            if "tags" in change.diff:
                yield call(
                    "autoscaling",
                    "create_or_update_tags",
                    Tags=[
                        {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                        for k, v in {CLUSTER_TAG: spec.cluster, POOL_TAG: pool.name}.items()
                    ],
                )
    created = [spec.asg_name(p) for p in spec.pools if (c := changed("autoscaling_group", spec.asg_name(p))) and c.action == "create"]
    if created:
        answer = yield call("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=created)
        asg_arns.update({g["AutoScalingGroupName"]: g["AutoScalingGroupARN"] for g in answer["AutoScalingGroups"]})

    hooks = [c for c in the_plan.changes if c.resource == "lifecycle_hook"]
    if hooks:
        yield tuple(
            call(
                "autoscaling",
                "put_lifecycle_hook",
                AutoScalingGroupName=c.name.rsplit("/", 1)[0],
                LifecycleHookName=LIFECYCLE_HOOK_NAME,
                LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                HeartbeatTimeout=spec.drain.lifecycle_timeout_seconds,
                DefaultResult="CONTINUE",
            )
            for c in hooks
        )

    if changed("cluster", spec.cluster):
        yield call("ecs", "create_cluster", clusterName=spec.cluster, tags=tags_ecs)

    cp_changes = [c for c in the_plan.changes if c.resource == "capacity_provider"]
    leaving = [c.name for c in cp_changes if c.action in ("replace", "delete")]
    if leaving and observed.cluster is not None:
        # A provider still attached to the cluster cannot be deleted: detach first.
        keep = [n for n in observed.cluster.capacity_providers if n not in leaving]
        strategy = [s for s in observed.cluster.default_strategy if s["capacityProvider"] not in leaving]
        yield call("ecs", "put_cluster_capacity_providers", cluster=spec.cluster, capacityProviders=keep, defaultCapacityProviderStrategy=strategy)
        for name in leaving:
            answer = yield call("ecs", "delete_capacity_provider", capacityProvider=name)
            check_deleted(answer, name)
        yield from _wait_capacity_providers_gone(leaving, deadline_seconds)
    for c in cp_changes:
        if c.action not in ("create", "replace", "update"):
            continue
        pool = next(p for p in spec.pools if spec.capacity_provider_name(p) == c.name)
        provider = capacity_provider_params(pool, asg_arns[spec.asg_name(pool)])
        if c.action == "update":
            provider.pop("autoScalingGroupArn")
            yield call("ecs", "update_capacity_provider", name=c.name, autoScalingGroupProvider=provider)
        else:
            yield call("ecs", "create_capacity_provider", name=c.name, autoScalingGroupProvider=provider, tags=tags_ecs + [{"key": POOL_TAG, "value": pool.name}])

    # After a replace the providers were detached above, so attach them again even when the
    # final set equals the one planned against.
    if changed("cluster_capacity_providers", spec.cluster) or leaving:
        foreign = [
            n for n in (observed.cluster.capacity_providers if observed.cluster else ())
            if n not in {spec.capacity_provider_name(p) for p in spec.pools} and not _is_ours(observed, n, spec)
        ]
        yield call(
            "ecs",
            "put_cluster_capacity_providers",
            cluster=spec.cluster,
            capacityProviders=sorted({spec.capacity_provider_name(p) for p in spec.pools} | set(foreign)),
            defaultCapacityProviderStrategy=desired_strategy(spec),
        )

    retiring = [c.name for c in the_plan.changes if c.resource == "autoscaling_group" and c.action == "delete"]
    if retiring:
        from ecsspot.teardown import retire_groups

        yield from retire_groups(spec.cluster, [observed.asgs[n] for n in retiring], deadline_seconds=deadline_seconds)

    if changed("settings", spec.table_name):
        now = yield NOW
        yield call(
            "dynamodb",
            "put_item",
            TableName=spec.table_name,
            Item={**SETTINGS_KEY, "spec": {"S": desired_settings(spec)}, "updated_at": {"N": str(int(now))}},
        )
    return ApplyResult(cluster=spec.cluster, changes=the_plan.changes, summary=dict(the_plan.summary), launch_template_version=version)


def version_params(template_id: str, data: Mapping[str, Any], description: str) -> dict[str, Any]:
    """CreateLaunchTemplateVersion parameters: the complete data, never ``SourceVersion``.

    With a source version AWS copies every field not sent, so a field the spec dropped (a key
    pair) would never go, and ``SecurityGroupIds`` would stay beside ``NetworkInterfaces`` once a
    public IP is assigned, which EC2 refuses at launch.
    """
    return {"LaunchTemplateId": template_id, "LaunchTemplateData": dict(data), "VersionDescription": description}


def asg_params(spec: ClusterSpec, pool: Pool, template_id: str, version: int) -> dict[str, Any]:
    """Create/update parameters of a pool's group, the whole mixed policy included: one update
    converges every field the spec sets (template version, overrides, distribution) at once."""
    weighted = any(t.weight != 1 for t in pool.instance_types)
    overrides = [{"InstanceType": t.type, **({"WeightedCapacity": str(t.weight)} if weighted else {})} for t in pool.instance_types]
    return {
        "AutoScalingGroupName": spec.asg_name(pool),
        "MinSize": pool.min_size,
        "MaxSize": pool.max_size,
        "VPCZoneIdentifier": ",".join(spec.network.subnets),
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                # An explicit version number: $Latest/$Default would let any template edit roll out unplanned.
                "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": str(version)},
                "Overrides": overrides,
            },
            "InstancesDistribution": {
                "OnDemandAllocationStrategy": pool.on_demand_allocation_strategy,
                "OnDemandBaseCapacity": pool.on_demand_base_capacity,
                "OnDemandPercentageAboveBaseCapacity": pool.on_demand_percentage_above_base,
                "SpotAllocationStrategy": pool.spot_allocation_strategy,
            },
        },
        "CapacityRebalance": pool.capacity_rebalance,
        "NewInstancesProtectedFromScaleIn": pool.managed_termination_protection,
    }


def capacity_provider_params(pool: Pool, asg_arn: str) -> dict[str, Any]:
    ms = pool.managed_scaling
    provider: dict[str, Any] = {
        "autoScalingGroupArn": asg_arn,
        "managedScaling": (
            {
                "status": "ENABLED",
                "targetCapacity": ms.target_capacity,
                "minimumScalingStepSize": ms.minimum_scaling_step_size,
                "maximumScalingStepSize": ms.maximum_scaling_step_size,
                "instanceWarmupPeriod": ms.instance_warmup_period,
            }
            if ms
            else {"status": "DISABLED"}
        ),
        "managedTerminationProtection": "ENABLED" if pool.managed_termination_protection else "DISABLED",
        "managedDraining": "ENABLED" if pool.managed_draining else "DISABLED",
    }
    return provider


def create_table(table: str, cluster: str, *, timeout: float = 300) -> Workflow[None]:
    """The state table: on-demand billing, (pk, sk) keys, TTL on ``expires_at`` for leases and
    keys, point-in-time recovery (as the Terraform module's table has)."""
    yield call(
        "dynamodb",
        "create_table",
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        Tags=[{"Key": CLUSTER_TAG, "Value": cluster}],
    )
    yield from _wait_table_active(table, timeout)
    yield from table_settings(table, _diff({}, desired_table_view()))


def _wait_table_active(table: str, timeout: float = 300) -> Workflow[None]:
    start = yield NOW
    while True:
        answer = yield call("dynamodb", "describe_table", TableName=table)
        if answer["Table"]["TableStatus"] == "ACTIVE":
            return
        now = yield Sleep(2)
        if now - start > timeout:
            raise DeadlineError(f"table {table} did not become ACTIVE within {timeout:.0f} s")


def table_settings(table: str, diff: Mapping[str, Any]) -> Workflow[None]:
    """Turn on what ``diff`` shows missing: TTL, point-in-time recovery (separate calls, so a
    failure between them is seen by the next plan and finished by the next apply)."""
    if "ttl_attribute" in diff:
        yield call("dynamodb", "update_time_to_live", TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    if "point_in_time_recovery" in diff:
        yield call(
            "dynamodb",
            "update_continuous_backups",
            TableName=table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _wait_capacity_providers_gone(names: list[str], timeout: float) -> Workflow[None]:
    # AWS deletes a capacity provider asynchronously (DELETE_IN_PROGRESS); its name is only free after.
    start = yield NOW
    while True:
        answer = yield call("ecs", "describe_capacity_providers", capacityProviders=names)
        for provider in answer.get("capacityProviders", ()):
            check_deleted({"capacityProvider": provider}, provider["name"])
        alive = [c["name"] for c in answer.get("capacityProviders", ()) if c.get("status") != "INACTIVE"]
        if not alive:
            return
        now = yield Sleep(5)
        if now - start > timeout:
            raise DeadlineError(f"capacity providers still being deleted after {timeout:.0f} s: {', '.join(alive)}")

