"""What a cluster runs right now: instances by pool and lifecycle, with ECS's view of each.

Cost is independent of the instance count per page size: one tagged ASG describe, the container
instance list and 100-ARN describes, and EC2 describes filtered by the cluster tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ecsspot.aws.calls import Workflow, call, chunks, paginate
from ecsspot.errors import NotFoundError
from ecsspot.state import CLUSTER_TAG, POOL_TAG, tags_of


@attrs.frozen
class InstanceStatus:
    instance_id: str
    pool: str | None
    lifecycle: str
    instance_type: str
    availability_zone: str
    image_id: str | None
    container_instance_status: str | None
    running_tasks: int
    protected_from_scale_in: bool
    #: The ASG's view (InService, Terminating:Wait, …).
    lifecycle_state: str = ""
    launch_template_version: str | None = None


@attrs.frozen
class PoolCounts:
    pool: str
    auto_scaling_group: str
    desired_capacity: int
    spot: int
    on_demand: int
    draining: int


@attrs.frozen
class Status:
    cluster: str
    instances: tuple[InstanceStatus, ...]
    pools: tuple[PoolCounts, ...] = ()
    #: Progress of a rolling AMI refresh, when one is under way (see ecsspot.refresh).
    refresh: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


def status(cluster: str) -> Workflow[Status]:
    """Instances of the cluster's ecsspot pools with their ECS state."""
    from ecsspot import progress, refresh
    from ecsspot.spec import table_name

    groups_answer, instances_answer, listed, clusters, saved = yield (
        paginate("autoscaling", "describe_auto_scaling_groups", Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]),
        paginate("ec2", "describe_instances", Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]),
        paginate("ecs", "list_container_instances", absent=("ClusterNotFoundException",), cluster=cluster),
        call("ecs", "describe_clusters", clusters=[cluster]),
        progress.read_call(table_name(cluster)),
    )
    exists = any(c.get("status") == "ACTIVE" for c in clusters.get("clusters", ()))
    if not exists and not groups_answer.get("AutoScalingGroups"):
        raise NotFoundError(f"no cluster {cluster!r} and no ecsspot Auto Scaling groups tagged for it (wrong name or region?)")
    arns = list((listed or {}).get("containerInstanceArns", []))
    described = (
        (yield tuple(call("ecs", "describe_container_instances", cluster=cluster, containerInstances=b) for b in chunks(arns, 100)))
        if arns
        else ()
    )
    container = {ci["ec2InstanceId"]: ci for a in described for ci in a.get("containerInstances", ()) if ci.get("status") != "INACTIVE"}
    ec2 = {i["InstanceId"]: i for r in instances_answer.get("Reservations", ()) for i in r.get("Instances", ())}

    rows: list[InstanceStatus] = []
    pools: list[PoolCounts] = []
    for g in sorted(groups_answer.get("AutoScalingGroups", ()), key=lambda g: g["AutoScalingGroupName"]):
        pool = tags_of(g.get("Tags")).get(POOL_TAG)
        counts = {"spot": 0, "on-demand": 0, "draining": 0}
        for member in g.get("Instances", ()):
            iid = member["InstanceId"]
            inst = ec2.get(iid, {})
            ci = container.get(iid)
            lifecycle = "spot" if inst.get("InstanceLifecycle") == "spot" else "on-demand"
            counts[lifecycle] += 1
            if ci and ci.get("status") == "DRAINING":
                counts["draining"] += 1
            rows.append(
                InstanceStatus(
                    instance_id=iid,
                    pool=pool,
                    lifecycle=lifecycle,
                    instance_type=inst.get("InstanceType") or member.get("InstanceType") or "",
                    availability_zone=member.get("AvailabilityZone") or inst.get("Placement", {}).get("AvailabilityZone", ""),
                    image_id=inst.get("ImageId"),
                    container_instance_status=ci.get("status") if ci else None,
                    running_tasks=int(ci.get("runningTasksCount", 0)) if ci else 0,
                    protected_from_scale_in=bool(member.get("ProtectedFromScaleIn")),
                    lifecycle_state=member.get("LifecycleState", ""),
                    launch_template_version=(member.get("LaunchTemplate") or {}).get("Version"),
                )
            )
        pools.append(
            PoolCounts(
                pool=pool or "",
                auto_scaling_group=g["AutoScalingGroupName"],
                desired_capacity=g.get("DesiredCapacity", 0),
                spot=counts["spot"],
                on_demand=counts["on-demand"],
                draining=counts["draining"],
            )
        )
    return Status(cluster=cluster, instances=tuple(rows), pools=tuple(pools), refresh=refresh.summary(progress.from_answer(saved, table_name(cluster))))
