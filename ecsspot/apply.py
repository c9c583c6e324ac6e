"""The plan and apply workflows: read what plan needs, then run a :class:`~ecsspot.plan.Plan`'s
changes in dependency order.

Workflow generators (see ``ecsspot.aws.calls``); what to change is decided by the pure
``ecsspot.plan.plan``. Every step is repeatable: an apply interrupted anywhere is finished by the
next plan and apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from ecsspot import advise, ami, progress, store
from ecsspot.aws.calls import NOW, Report, Sleep, Workflow, call, paginate
from ecsspot.errors import ConflictError, DeadlineError, SpecError
from ecsspot.lint import lint
from ecsspot.observe import network_calls, network_problems, observe, resolve_requirements
from ecsspot.plan import (
    ECS_MANAGED_TAG,
    Change,
    Plan,
    Refreshed,
    desired_settings,
    desired_strategy,
    desired_table_view,
    desired_template_data,
    field_diff,
    is_ours,
    plan,
)
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, Pool, validate
from ecsspot.state import CLUSTER_TAG, POOL_TAG, Observed, asg_from
from ecsspot.store import TTL_ATTRIBUTE, settings_item
from ecsspot.teardown import check_deleted


@attrs.frozen
class ApplyResult:
    cluster: str
    changes: tuple[Change, ...]
    summary: Mapping[str, int] = attrs.field(hash=False)
    launch_template_version: int | None = None


def plan_cluster(spec: ClusterSpec) -> Workflow[tuple[Plan, Observed]]:
    """Validate (before any call), then read the AMI, the network and the recorded settings in one
    round, observe, lint, and diff."""
    validate(spec)
    yield Report("plan", f"reading the AMI, the network and the state of cluster {spec.cluster}")
    read = ami.read(spec.instances.ami)
    network = network_calls(spec)
    # The recorded settings, the last refresh and the drains' target-group cache: one BatchGetItem.
    # ... and the interruption history whose advice plan shows as information.
    now = yield NOW
    history = advise.history_keys(now, advise.PLAN_DAYS)
    keys = (store.SETTINGS_AT, progress.STORED_AT, store.GROUP_CACHE_AT, store.FALLBACK_AT, *history)
    answers = list((yield (*((read,) if read else ()), *network, store.get_items_call(spec.table_name, keys))))
    image_id = ami.image_from(spec.instances.ami, answers.pop(0) if read else None)
    problems = network_problems(spec, answers[: len(network)])
    if problems:
        # Checked before anything is created: a bad subnet must not leave apply half done.
        raise SpecError(problems)
    items = yield from store.items_of(spec.table_name, keys, answers[len(network)])
    settings = store.settings_from(items[store.SETTINGS_AT])
    refreshed = _refreshed(items[progress.STORED_AT], spec.table_name)
    observed = yield from observe(spec, cached_delays=store.group_cache_from(items[store.GROUP_CACHE_AT], strict=False).delays_at(now))
    resolved = yield from resolve_requirements(spec, image_id)
    if resolved:
        observed = attrs.evolve(observed, resolved_types=resolved)
    falling_back = _falling_back(spec, observed, _document_or_none(items[store.FALLBACK_AT]))
    the_plan = plan(spec, observed, image_id, lint(spec, observed), settings, refreshed, frozenset(falling_back))
    advice = (*falling_back.values(), *advise.plan_lines(spec, advise.history_of(items, history), now=now))
    return attrs.evolve(the_plan, advice=advice), observed


def _falling_back(spec: ClusterSpec, observed: Observed, memory: Mapping[str, Any] | None) -> dict[str, str]:
    """Pool → why plan keeps its group's raised OnDemandBaseCapacity: the fallback controller runs
    it on demand (or drains its surplus) and puts the spec's base back itself when spot returns."""
    out = {}
    pools = (memory or {}).get("pools")
    for pool in spec.pools:
        m = pools.get(pool.name) if isinstance(pools, Mapping) else None
        asg = observed.asgs.get(spec.asg_name(pool))
        if not isinstance(m, Mapping) or not (m.get("active") or m.get("draining")) or asg is None:
            continue
        since = m.get("since")
        when = f" since {datetime.fromtimestamp(float(since), UTC):%Y-%m-%d %H:%M UTC}" if isinstance(since, int | float) else ""
        out[pool.name] = (
            f"pool {pool.name} runs on demand{when} (spot → on-demand fallback): its group's OnDemandBaseCapacity stays as the "
            f"fallback set it (spec: {pool.on_demand_base_capacity}); the controller puts it back when spot returns"
        )
    return out


def _document_or_none(answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An advisory document for plan: one it cannot read is as good as none (plan must not fail
    on it; the fallback controller, which owns it, reports it)."""
    try:
        return store.document_of(answer)
    except ValueError:
        return None




def _refreshed(answer: Mapping[str, Any] | None, table: str) -> Refreshed | None:
    """The image of the last refresh that finished; None without one (or with an unreadable
    record, which ``status`` and ``refresh`` report: plan only uses it to explain a change)."""
    saved = progress.from_answer(answer, table, strict=False)
    return Refreshed(saved.image_id, saved.updated_at) if saved is not None and saved.phase == "done" else None


def apply_cluster(spec: ClusterSpec, approved: Plan | None = None) -> Workflow[ApplyResult]:
    """Plan again and converge; with ``approved``, refuse if the plan no longer matches it."""
    fresh, observed = yield from plan_cluster(spec)
    if approved is not None and fresh.changes != approved.changes:
        raise ConflictError("the cluster changed since the plan was shown; review the new plan and apply again")
    return (yield from apply_plan(spec, observed, fresh))


def apply_plan(spec: ClusterSpec, observed: Observed, the_plan: Plan, *, deadline_seconds: float = 900) -> Workflow[ApplyResult]:
    """Execute ``the_plan`` in dependency order; returns what was done."""
    by = {(c.resource, c.name): c for c in the_plan.changes}
    tags_ecs = [{"key": CLUSTER_TAG, "value": spec.cluster}]

    def changed(resource: str, name: str) -> Change | None:
        return by.get((resource, name))

    yield Report("apply", f"{len(the_plan.changes)} change(s) to make", 0, len(the_plan.changes))
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
            yield call("ecs", "create_capacity_provider", name=c.name, autoScalingGroupProvider=provider, tags=[*tags_ecs, {"key": POOL_TAG, "value": pool.name}])

    # After a replace the providers were detached above, so attach them again even when the
    # final set equals the one planned against.
    if changed("cluster_capacity_providers", spec.cluster) or leaving:
        foreign = [
            n for n in (observed.cluster.capacity_providers if observed.cluster else ())
            if n not in {spec.capacity_provider_name(p) for p in spec.pools} and not is_ours(observed, n, spec)
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
        yield Report("apply", f"retiring {len(retiring)} Auto Scaling group(s): their instances are drained first")
        from ecsspot.teardown import retire_groups

        # Plan described the groups without instances; retiring them needs their instances now.
        answer = yield paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=retiring)
        hooks_of = {n: observed.asgs[n].lifecycle_hooks for n in retiring}
        groups = [asg_from(g, hooks_of.get(g["AutoScalingGroupName"], ())) for g in answer.get("AutoScalingGroups", ())]
        yield from retire_groups(spec.cluster, groups, deadline_seconds=deadline_seconds)

    if changed("settings", spec.table_name):
        now = yield NOW
        yield call(
            "dynamodb",
            "put_item",
            TableName=spec.table_name,
            Item=settings_item(desired_settings(spec), now=now),
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
    overrides: list[dict[str, Any]] = [{"InstanceType": t.type, **({"WeightedCapacity": str(t.weight)} if weighted else {})} for t in pool.instance_types]
    if pool.instance_requirements is not None:
        overrides = [{"InstanceRequirements": pool.instance_requirements.to_api()}]
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
    yield from table_settings(table, field_diff({}, desired_table_view()))


def _wait_table_active(table: str, timeout: float = 300) -> Workflow[None]:
    start = yield NOW
    while True:
        yield Report("apply", f"waiting for table {table} to become ACTIVE")
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
        yield Report("apply", f"waiting for ECS to finish deleting capacity provider(s) {', '.join(names)}")
        answer = yield call("ecs", "describe_capacity_providers", capacityProviders=names)
        for provider in answer.get("capacityProviders", ()):
            check_deleted({"capacityProvider": provider}, provider["name"])
        alive = [c["name"] for c in answer.get("capacityProviders", ()) if c.get("status") != "INACTIVE"]
        if not alive:
            return
        now = yield Sleep(5)
        if now - start > timeout:
            raise DeadlineError(f"capacity providers still being deleted after {timeout:.0f} s: {', '.join(alive)}")

