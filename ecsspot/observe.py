"""The workflows that read AWS state into :mod:`ecsspot.state` snapshots, in few calls.

``observe(spec)`` reads what plan and lint need in two concurrent rounds plus one for services:
clusters, capacity providers, tagged ASGs (instances included), the launch template and the
table in round one; template versions in use, lifecycle hooks and the table's TTL and recovery
in round two. Describe-per-instance never happens: a 1,000-instance cluster costs the same as a
10-instance one.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        for arn, answer in zip(group_arns, attrs_answers, strict=True):
            if answer is None:
                continue  # a spec target group that is gone: lint says so, plan does not fail
            attributes = {a["Key"]: a["Value"] for a in answer.get("Attributes", ())}
            groups[arn] = TargetGroupState(
                arn=arn,
                name=arn.split(":targetgroup/")[-1].split("/")[0],
                deregistration_delay=int(attributes.get("deregistration_delay.timeout_seconds", 300)),
            )
    return tuple(services), groups


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
