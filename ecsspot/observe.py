"""The workflows that read AWS state into :mod:`ecsspot.state` snapshots, in few calls.

``observe(spec)`` reads what plan and lint need in two concurrent rounds plus those for services:
clusters, capacity providers, the ASGs tagged for the cluster (without their instances), the
launch template and the table in round one; template versions in use, lifecycle hooks, spec
groups the tag did not find and the table's TTL and recovery in round two. Describe-per-instance
never happens, and no answer lists the instances: a 1,000-instance cluster costs the same as a
10-instance one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ecsspot.aws.calls import Call, Workflow, call, chunks, lookup, paginate
from ecsspot.errors import Problem
from ecsspot.spec import ClusterSpec
from ecsspot.state import (
    CLUSTER_TAG,
    LaunchTemplateState,
    LifecycleHook,
    Observed,
    ServiceState,
    TargetGroupState,
    asg_from,
    capacity_provider_from,
    cluster_from,
    service_from,
    table_from,
    tags_of,
)

# --- reading workflows ----------------------------------------------------------------------


#: The architecture and virtualization type asked for when the AMI cannot be described (not
#: shared with the caller): the ECS-optimized Amazon Linux AMI's default, x86_64 HVM.
_DEFAULT_ARCHITECTURE, _DEFAULT_VIRTUALIZATION = "x86_64", "hvm"


def resolve_requirements(spec: ClusterSpec, image_id: str) -> Workflow[dict[str, tuple[str, ...]]]:
    """The instance types each pool's ``instance_requirements`` resolve to: two rounds, only
    when a pool gives requirements.

    Auto Scaling launches "with a compatible CPU architecture based on the Amazon Machine Image
    (AMI) that you specify in your launch template" (InstanceRequirements, CpuManufacturers), so
    the architecture and virtualization type asked for are the image's (DescribeImages).
    """
    pools = [p for p in spec.pools if p.instance_requirements is not None]
    if not pools:
        return {}
    images = yield call("ec2", "describe_images", Filters=[{"Name": "image-id", "Values": [image_id]}])
    image: Mapping[str, Any] = next(iter(images.get("Images", ())), {})
    architecture = image.get("Architecture") or _DEFAULT_ARCHITECTURE
    virtualization = image.get("VirtualizationType") or _DEFAULT_VIRTUALIZATION
    answers = yield tuple(
        paginate(
            "ec2",
            "get_instance_types_from_instance_requirements",
            ArchitectureTypes=[architecture],
            VirtualizationTypes=[virtualization],
            InstanceRequirements=p.instance_requirements.to_api() if p.instance_requirements else {},
        )
        for p in pools
    )
    return {p.name: tuple(sorted(t["InstanceType"] for t in a.get("InstanceTypes", ()))) for p, a in zip(pools, answers, strict=True)}


def observe(spec: ClusterSpec, *, services: bool = True, cached_delays: Mapping[str, int] | None = None) -> Workflow[Observed]:
    """Read the cluster's current state: two concurrent rounds (+ services and target groups).

    The groups are described without their instances (``IncludeInstances`` false): plan and lint
    judge configuration, so the answer's size does not grow with the cluster. ``cached_delays``:
    target groups' deregistration delays a drain cached, still fresh (see :func:`observe_services`).
    """
    cluster_name = spec.cluster
    expected_cps = [spec.capacity_provider_name(p) for p in spec.pools]
    expected_asgs = [spec.asg_name(p) for p in spec.pools]
    clusters, cps, tagged, templates, table_raw = yield (
        call("ecs", "describe_clusters", clusters=[cluster_name], include=["TAGS"]),
        call("ecs", "describe_capacity_providers", capacityProviders=expected_cps, include=["TAGS"]),
        paginate(
            "autoscaling",
            "describe_auto_scaling_groups",
            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster_name]}],
            IncludeInstances=False,
        ),
        call("ec2", "describe_launch_templates", Filters=[{"Name": "launch-template-name", "Values": [spec.launch_template_name]}]),
        lookup("dynamodb", "describe_table", ("ResourceNotFoundException",), TableName=spec.table_name),
    )

    cluster = next((cluster_from(c) for c in clusters.get("clusters", ()) if c.get("status") != "INACTIVE"), None)
    providers = {c["name"]: capacity_provider_from(c) for c in cps.get("capacityProviders", ())}
    raw_asgs = {g["AutoScalingGroupName"]: g for g in tagged.get("AutoScalingGroups", ())}
    template_raw = next(iter(templates.get("LaunchTemplates", ())), None)
    # Spec groups the tag did not find (not made yet, or their tag removed): described by name in
    # round two, so a group ecsspot already tags is never described twice.
    untagged = [n for n in expected_asgs if n not in raw_asgs]

    # Round two: what round one pointed at.
    extra_cps = [n for n in (cluster.capacity_providers if cluster else ()) if n not in providers and not n.startswith("FARGATE")]
    round_two: list[Any] = [call("autoscaling", "describe_lifecycle_hooks", AutoScalingGroupName=name) for name in raw_asgs]
    if untagged:
        round_two.append(paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=untagged, IncludeInstances=False))
    if extra_cps:
        round_two.append(call("ecs", "describe_capacity_providers", capacityProviders=extra_cps, include=["TAGS"]))
    if template_raw:
        round_two.append(
            call(
                "ec2",
                "describe_launch_template_versions",
                LaunchTemplateId=template_raw["LaunchTemplateId"],
                Versions=sorted(_versions_wanted(template_raw, raw_asgs.values())),
            )
        )
    if table_raw:
        # A table whose TTL or recovery call was lost after create_table must show as a change.
        round_two.append(call("dynamodb", "describe_time_to_live", TableName=spec.table_name))
        round_two.append(call("dynamodb", "describe_continuous_backups", TableName=spec.table_name))
    answers = list((yield tuple(round_two))) if round_two else []
    hook_answers = answers[: len(raw_asgs)]
    rest = answers[len(raw_asgs) :]
    found = {g["AutoScalingGroupName"]: g for g in rest.pop(0).get("AutoScalingGroups", ())} if untagged else {}
    if extra_cps:
        providers.update({c["name"]: capacity_provider_from(c) for c in rest.pop(0).get("capacityProviders", ())})
    template = None
    if template_raw:
        versions = {int(v["VersionNumber"]): v.get("LaunchTemplateData", {}) for v in rest.pop(0).get("LaunchTemplateVersions", ())}
        missing = _versions_wanted(template_raw, found.values()) - {str(n) for n in versions}
        if found:
            # Rare: a spec group without ecsspot's tag. Its hooks and template version take one more round.
            late = yield (
                *(call("autoscaling", "describe_lifecycle_hooks", AutoScalingGroupName=name) for name in found),
                *((call("ec2", "describe_launch_template_versions", LaunchTemplateId=template_raw["LaunchTemplateId"], Versions=sorted(missing)),) if missing else ()),
            )
            hook_answers = [*hook_answers, *late[: len(found)]]
            if missing:
                versions.update({int(v["VersionNumber"]): v.get("LaunchTemplateData", {}) for v in late[len(found)].get("LaunchTemplateVersions", ())})
        template = LaunchTemplateState(
            id=template_raw["LaunchTemplateId"],
            name=template_raw["LaunchTemplateName"],
            default_version=int(template_raw["DefaultVersionNumber"]),
            latest_version=int(template_raw["LatestVersionNumber"]),
            versions=versions,
            tags=tags_of(template_raw.get("Tags")),
        )
    elif found:
        late = yield tuple(call("autoscaling", "describe_lifecycle_hooks", AutoScalingGroupName=name) for name in found)
        hook_answers = [*hook_answers, *late]
    raw_asgs.update(found)
    asgs = {}
    for (name, raw), hooks in zip(raw_asgs.items(), hook_answers, strict=True):
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
        service_states, target_groups = yield from observe_services(cluster.name, spec.target_groups, cached_delays or {})
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


def _versions_wanted(template_raw: Mapping[str, Any], groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """The template's latest and default versions and those the groups launch from."""
    wanted = {str(template_raw["LatestVersionNumber"]), str(template_raw["DefaultVersionNumber"])}
    for g in groups:
        ref = asg_from(g).template_spec
        if ref.get("LaunchTemplateId") == template_raw["LaunchTemplateId"] or ref.get("LaunchTemplateName") == template_raw["LaunchTemplateName"]:
            wanted.add(str(ref.get("Version")))
    return wanted


def observe_services(
    cluster: str, extra_target_groups: tuple[str, ...] = (), cached_delays: Mapping[str, int] | None = None
) -> Workflow[tuple[tuple[ServiceState, ...], dict[str, TargetGroupState]]]:
    """The cluster's services (10 per describe) and their target groups' deregistration delays.

    ELB reads attributes one target group per call, so a delay a drain cached in the state table
    lately is used instead (``cached_delays``, see ``apply.cached_delays``); the others are read.
    The spec's ``target_groups`` are always read, so one that is gone shows (lint's ES206).
    """
    # AWS lists 10 services a page unless asked for up to 100 (moto lists all in one).
    listed = yield paginate("ecs", "list_services", cluster=cluster, maxResults=100)
    arns = listed.get("serviceArns", [])
    services: list[ServiceState] = []
    if arns:
        described = yield tuple(call("ecs", "describe_services", cluster=cluster, services=batch) for batch in chunks(arns, 10))
        services = [service_from(s) for answer in described for s in answer.get("services", ()) if s.get("status") != "INACTIVE"]
    group_arns = sorted({*extra_target_groups, *(arn for s in services for arn in s.target_group_arns)})
    groups: dict[str, TargetGroupState] = {}
    for arn in group_arns:
        # The spec's own groups are always read: lint says when one is gone (ES206).
        if arn in (cached_delays or {}) and arn not in extra_target_groups:
            groups[arn] = TargetGroupState(arn=arn, name=_group_name(arn), deregistration_delay=int((cached_delays or {})[arn]))
    to_read = [arn for arn in group_arns if arn not in groups]
    if to_read:
        attrs_answers = yield tuple(
            lookup("elbv2", "describe_target_group_attributes", ("TargetGroupNotFound",), TargetGroupArn=arn) for arn in to_read
        )
        for arn, answer in zip(to_read, attrs_answers, strict=True):
            if answer is None:
                continue  # a spec target group that is gone: lint says so, plan does not fail
            attributes = {a["Key"]: a["Value"] for a in answer.get("Attributes", ())}
            groups[arn] = TargetGroupState(
                arn=arn,
                name=_group_name(arn),
                deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", 300)),
            )
    return tuple(services), {arn: groups[arn] for arn in group_arns if arn in groups}


def _group_name(arn: str) -> str:
    return arn.split(":targetgroup/")[-1].split("/")[0]


def network_calls(spec: ClusterSpec) -> tuple[Call, ...]:
    """Reads that show whether the spec's subnets and security groups exist."""
    calls = [call("ec2", "describe_subnets", Filters=[{"Name": "subnet-id", "Values": list(spec.network.subnets)}])]
    if spec.network.security_groups:
        calls.append(call("ec2", "describe_security_groups", Filters=[{"Name": "group-id", "Values": list(spec.network.security_groups)}]))
    return tuple(calls)


def network_problems(spec: ClusterSpec, answers: Sequence[Any]) -> list[Problem]:
    """Subnets and security groups the answers to :func:`network_calls` do not show."""
    subnets = {x["SubnetId"] for x in answers[0].get("Subnets", ())}
    problems = [
        Problem(f"network.subnets[{i}]", f"{s!r} does not exist in this account and region")
        for i, s in enumerate(spec.network.subnets)
        if s not in subnets
    ]
    if spec.network.security_groups:
        groups = {g["GroupId"] for g in answers[1].get("SecurityGroups", ())}
        problems += [
            Problem(f"network.security_groups[{i}]", f"{g!r} does not exist in this account and region")
            for i, g in enumerate(spec.network.security_groups)
            if g not in groups
        ]
    return problems
