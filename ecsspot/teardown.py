"""Tear a cluster down without hanging on scale-in-protected instances.

AWS's own order of events is the trap: an ASG whose instances are protected from scale-in (as
managed termination protection makes them) never shrinks, so deleting the capacity provider
or the group waits forever. ecsspot drains the instances, lifts protection (50 ids a call),
sets the groups to zero, waits with a deadline (the providers stay on the cluster meanwhile,
so ECS completes its managed-draining hook), deletes the groups, then detaches and deletes the
providers and deletes template, cluster and table. Past the deadline it stops with an error
naming what is left. It never deletes or completes ECS's hook: the hook is ECS's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Report, Sleep, Workflow, call, chunks, lookup, paginate
from ecsspot.errors import AwsError, DeadlineError, InputError
from ecsspot.spec import LIFECYCLE_HOOK_NAME, table_name
from ecsspot.state import (
    CLUSTER_TAG,
    POOL_TAG,
    AsgState,
    LifecycleHook,
    asg_from,
    tags_of,
)

POLL_SECONDS = 5


@attrs.frozen
class TeardownResult:
    cluster: str
    deleted: tuple[str, ...]


def drain_container_instances(cluster: str, instance_ids: Sequence[str]) -> Workflow[list[str]]:
    """Set the container instances of these EC2 instances DRAINING; return their ARNs."""
    arns = yield from container_instance_arns(cluster, instance_ids)
    if arns:
        yield tuple(
            call("ecs", "update_container_instances_state", cluster=cluster, containerInstances=batch, status="DRAINING")
            for batch in chunks(list(arns.values()), 10)
        )
    return list(arns.values())


def container_instance_arns(cluster: str, instance_ids: Sequence[str] | None = None) -> Workflow[dict[str, str]]:
    """EC2 instance id → container instance ARN for the cluster (all, or just ``instance_ids``)."""
    listed = yield paginate("ecs", "list_container_instances", absent=("ClusterNotFoundException",), cluster=cluster)
    all_arns = (listed or {}).get("containerInstanceArns", [])
    if not all_arns:
        return {}
    described = yield tuple(
        call("ecs", "describe_container_instances", cluster=cluster, containerInstances=batch) for batch in chunks(all_arns, 100)
    )
    found = {
        ci["ec2InstanceId"]: ci["containerInstanceArn"]
        for answer in described
        for ci in answer.get("containerInstances", ())
        if ci.get("status") != "INACTIVE"
    }
    if instance_ids is None:
        return found
    wanted = set(instance_ids)
    return {i: a for i, a in found.items() if i in wanted}


def retire_groups(cluster: str, groups: Sequence[AsgState], *, deadline_seconds: float) -> Workflow[None]:
    """Empty and delete Auto Scaling groups: drain, unprotect, scale to zero, wait, delete."""
    if not groups:
        return
    start = yield NOW
    instance_ids = [i.instance_id for g in groups for i in g.instances]
    if instance_ids:
        yield Report("teardown", f"setting {len(instance_ids)} instance(s) of {len(groups)} group(s) DRAINING")
        yield from drain_container_instances(cluster, instance_ids)
    calls: list[Any] = []
    for g in groups:
        # Our hook would hold each instance in Terminating:Wait for a handler that may be gone.
        if any(h.name == LIFECYCLE_HOOK_NAME for h in g.lifecycle_hooks):
            calls.append(call("autoscaling", "delete_lifecycle_hook", AutoScalingGroupName=g.name, LifecycleHookName=LIFECYCLE_HOOK_NAME))
        protected = [i.instance_id for i in g.instances if i.protected_from_scale_in]
        calls += [
            call("autoscaling", "set_instance_protection", AutoScalingGroupName=g.name, InstanceIds=batch, ProtectedFromScaleIn=False)
            for batch in chunks(protected, 50)
        ]
    if calls:
        yield tuple(calls)
    # Only once protection is off: a group told to shrink while its instances are protected
    # terminates them only after their protection is removed, at a later scaling attempt
    # (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html).
    yield tuple(call("autoscaling", "update_auto_scaling_group", **_zero(g)) for g in groups)
    names = [g.name for g in groups]
    by_name = {g.name: g for g in groups}
    while True:
        answer = yield paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=names)
        live = answer.get("AutoScalingGroups", ())
        left = {g["AutoScalingGroupName"]: [i["InstanceId"] for i in g.get("Instances", ())] for g in live}
        if not any(left.values()):
            break
        running = sum(len(ids) for ids in left.values())
        yield Report("teardown", f"waiting for {running} instance(s) to terminate in {', '.join(n for n, ids in left.items() if ids)}")
        # Instances that came back protected (a capacity provider re-protecting) are unprotected
        # again, and the groups told again to be empty.
        again = [
            call("autoscaling", "set_instance_protection", AutoScalingGroupName=g["AutoScalingGroupName"], InstanceIds=batch, ProtectedFromScaleIn=False)
            for g in live
            for batch in chunks([i["InstanceId"] for i in g.get("Instances", ()) if i.get("ProtectedFromScaleIn")], 50)
        ]
        if again:
            yield tuple(again)
        yield tuple(call("autoscaling", "update_auto_scaling_group", **_zero(by_name[n])) for n, ids in left.items() if ids)
        now = yield Sleep(POLL_SECONDS)
        if now - start > deadline_seconds:
            what = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in left.items() if ids)
            raise DeadlineError(f"instances still running after {deadline_seconds:.0f} s: {what}")
    yield tuple(call("autoscaling", "delete_auto_scaling_group", AutoScalingGroupName=n, ForceDelete=True) for n in names)


def check_deleted(answer: Any, name: str) -> None:
    """DeleteCapacityProvider answers success with ``updateStatus: DELETE_FAILED`` when ECS keeps
    the provider (still on a cluster or in a service's strategy): raise that."""
    provider = answer.get("capacityProvider") or {}
    if provider.get("updateStatus") == "DELETE_FAILED":
        raise AwsError("DeleteCapacityProvider", "DELETE_FAILED", f"{name}: {provider.get('updateStatusReason') or 'no reason given'}", service="ecs")


def _zero(g: AsgState) -> dict[str, Any]:
    # Sizes only: the group keeps its launch settings (see the UpdateAutoScalingGroup reference).
    return {"AutoScalingGroupName": g.name, "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0}


def teardown(cluster: str, *, deadline_seconds: float = 900) -> Workflow[TeardownResult]:
    """Delete everything ecsspot created for ``cluster``; never hangs on protected instances."""
    clusters, tagged, templates = yield (
        call("ecs", "describe_clusters", clusters=[cluster]),
        paginate("autoscaling", "describe_auto_scaling_groups", Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]),
        call("ec2", "describe_launch_templates", Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]),
    )
    live = [c for c in clusters.get("clusters", ()) if c.get("status") == "ACTIVE"]
    table = table_name(cluster)
    table_answer = yield lookup("dynamodb", "describe_table", ("ResourceNotFoundException",), TableName=table)
    recorded: list[str] = []
    if table_answer is not None:

        # The providers of the recorded pools too: a teardown that stopped after detaching them
        # from the cluster still finds them when run again.
        settings = store.settings_from((yield store.settings_lookup(table)))
        recorded = [f"{cluster}-{p['name']}" for p in json.loads(settings).get("pools", ())] if settings else []
    if not live and not tagged.get("AutoScalingGroups") and not templates.get("LaunchTemplates") and table_answer is None:
        # Already gone: a teardown run twice (a retried CI job, Terraform destroy after it) succeeds.
        return TeardownResult(cluster, ())
    deleted: list[str] = []
    if live:
        services = yield paginate("ecs", "list_services", cluster=cluster)
        if services.get("serviceArns"):
            described = yield tuple(
                call("ecs", "describe_services", cluster=cluster, services=batch) for batch in chunks(services["serviceArns"], 10)
            )
            active = [s["serviceName"] for a in described for s in a.get("services", ()) if s.get("status") == "ACTIVE"]
            if active:
                # Checked before anything changes: a refused teardown leaves the cluster as it was.
                raise InputError(f"cluster {cluster} still has active services ({', '.join(sorted(active))}); delete them first")
    raw_groups = tagged.get("AutoScalingGroups", [])
    hooks = (
        (yield tuple(call("autoscaling", "describe_lifecycle_hooks", AutoScalingGroupName=g["AutoScalingGroupName"]) for g in raw_groups))
        if raw_groups
        else ()
    )
    groups = [
        asg_from(g, tuple(LifecycleHook(h["LifecycleHookName"], h.get("LifecycleTransition", ""), 0, "") for h in hk.get("LifecycleHooks", ())))
        for g, hk in zip(raw_groups, hooks, strict=True)
    ]
    providers: list[str] = []
    attached = [n for n in live[0].get("capacityProviders", ()) if not n.startswith("FARGATE")] if live else []
    candidates = sorted({*attached, *recorded, *(f"{cluster}-{g.tags[POOL_TAG]}" for g in groups if g.tags.get(POOL_TAG))})
    if candidates:
        described = yield call("ecs", "describe_capacity_providers", capacityProviders=candidates, include=["TAGS"])
        # Only ecsspot's own providers are deleted; others are merely detached with the cluster.
        providers = [
            p["name"]
            for p in described.get("capacityProviders", ())
            if p.get("status") == "ACTIVE" and tags_of(p.get("tags"), "key", "value").get(CLUSTER_TAG) == cluster
        ]
    # The groups go while their providers are still on the cluster: ECS managed draining's own
    # lifecycle hook holds each leaving instance until ECS completes it, and ECS does so only for
    # a provider on a cluster. Detached first, nothing completes it for an hour.
    yield from retire_groups(cluster, groups, deadline_seconds=deadline_seconds)
    if live:
        yield call("ecs", "put_cluster_capacity_providers", cluster=cluster, capacityProviders=[], defaultCapacityProviderStrategy=[])
    deleted += [f"autoscaling_group/{g.name}" for g in groups]
    for name in providers:
        # Not swallowed: a provider ECS keeps (still in a service's strategy) must not be reported deleted.
        answer = yield call("ecs", "delete_capacity_provider", capacityProvider=name)
        check_deleted(answer, name)
        deleted.append(f"capacity_provider/{name}")
    for lt in templates.get("LaunchTemplates", ()):
        yield call("ec2", "delete_launch_template", LaunchTemplateId=lt["LaunchTemplateId"])
        deleted.append(f"launch_template/{lt['LaunchTemplateName']}")
    if live:
        # DeleteCluster needs every container instance deregistered, and ECS deregisters those of
        # terminated instances only if their agent was connected: "stopped container instances or
        # instances with disconnected agents aren't automatically deregistered when terminated"
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterContainerInstance.html).
        arns = yield from container_instance_arns(cluster)
        for arn in arns.values():
            yield call("ecs", "deregister_container_instance", cluster=cluster, containerInstance=arn, force=True)
        yield call("ecs", "delete_cluster", cluster=cluster)
        deleted.append(f"cluster/{cluster}")
    if table_answer is not None:
        yield call("dynamodb", "delete_table", TableName=table)
        deleted.append(f"dynamodb_table/{table}")
    return TeardownResult(cluster=cluster, deleted=tuple(deleted))
