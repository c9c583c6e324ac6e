"""Rolling AMI refresh: new capacity first, verified drains in batches, resumable and leased.

AWS's instance refresh does not drain ECS tasks (unless managed draining is on), lets tasks bounce
onto instances about to be replaced, refuses `$Latest` templates and scale-in-protected
instances, and cannot roll back an image that came from an SSM parameter. This is our own:

1. resolve the target image (the spec's ``refresh.ami_parameter``, or ``--ami``);
2. a new launch template version with the full launch data and that image; the pools' groups
   point at its explicit number;
3. per pool, per batch: raise desired (and max) by the batch, wait until the new instances are
   ACTIVE container instances, set the batch of old instances DRAINING (so nothing new lands on
   them) with a verified drain (targets deregistered first), terminate them with decrement;
   finally restore the original sizes. Running capacity never drops below the original desired
   count, so ``min_healthy_percent`` holds by construction;
4. rollback when new instances do not become ACTIVE in time: groups back to the previous
   version, the failed new instances terminated, sizes restored, the reason reported.

Progress is a JSON document in the cluster's table, saved after every step; each step is safe to
repeat, so a crash (or a Lambda reaching its 900 s) resumes exactly where it was. A lease makes
one refresher per cluster at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Sleep, Workflow, call, chunks, lookup, paginate
from ecsspot.drain import drain
from ecsspot.errors import ConflictError, InputError, NotFoundError
from ecsspot.plan import asg_params, desired_template_data, resolve_ami, version_params
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, batch_count

PROGRESS = ("refresh", "progress")
LEASE = "refresh"
LEASE_SECONDS = 300.0
POLL_SECONDS = 10.0
#: Keep this much of a Lambda's time to save progress and return.
STOP_MARGIN_SECONDS = 60.0
ACTIVE_PHASES = ("template", "rolling", "rolling_back")


@attrs.frozen
class RefreshResult:
    cluster: str
    status: str  # up_to_date | done | paused | rolled_back
    image_id: str | None
    previous_version: int | None = None
    new_version: int | None = None
    replaced: tuple[str, ...] = ()
    reason: str = ""
    progress: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


class _Paused(Exception):
    """Raised inside the workflow when the time budget is used up; progress is already saved."""


def refresh(
    cluster: str,
    *,
    owner: str,
    ami: str | None = None,
    batch_size: int | str | None = None,
    min_healthy_percent: int | None = None,
    resume: bool = False,
    start_new: bool = True,
    stop_at: float | None = None,
    on_progress: Any = None,
) -> Workflow[RefreshResult]:
    """Start (or, with ``resume``, continue) a rolling refresh of ``cluster``'s pools.

    ``stop_at`` (absolute clock time) makes the workflow save and return ``paused`` in time;
    ``start_new=False`` only continues a refresh in progress (a scheduled tick).
    """
    from ecsspot.interruption import load_cluster

    spec, _ = yield from load_cluster(cluster)
    if spec is None:
        raise NotFoundError(f"cluster {cluster} has no ecsspot state table; run `ecsspot apply` first")
    table = spec.table_name
    now = yield NOW
    yield from store.acquire_lease(table, LEASE, owner, now=now, ttl=LEASE_SECONDS)
    try:
        progress = yield from store.get_document(table, *PROGRESS)
        active = progress is not None and progress.get("phase") in ACTIVE_PHASES
        if active and not resume:
            raise ConflictError(
                f"a refresh of {cluster} to {progress['image_id']} is in progress (phase {progress['phase']}); "
                "continue it with --resume"
            )
        if not active:
            if not start_new:
                return RefreshResult(cluster, "idle", progress.get("image_id") if progress else None, reason="no refresh in progress")
            target = yield from _target_image(spec, ami)
            progress = yield from _start(spec, target, batch_size, min_healthy_percent)
            if progress is None:
                return RefreshResult(cluster, "up_to_date", target, reason="every instance already runs the target image")
            yield from _save(table, progress)
        run = _Run(spec, progress, owner, stop_at, on_progress)
        return (yield from run.go())
    finally:
        yield from store.release_lease(table, LEASE, owner)


def _target_image(spec: ClusterSpec, ami: str | None) -> Workflow[str]:
    if ami:
        if not ami.startswith(("ami-", "ssm:")):
            raise InputError(f"--ami: {ami!r} is not an AMI id (ami-…) or ssm:/parameter")
        return (yield from resolve_ami(ami))
    if spec.refresh.ami_parameter:
        return (yield from resolve_ami("ssm:" + spec.refresh.ami_parameter))
    return (yield from resolve_ami(spec.instances.ami))


def _groups(spec: ClusterSpec) -> Workflow[dict[str, dict[str, Any]]]:
    names = [spec.asg_name(p) for p in spec.pools]
    answer = yield paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=names)
    return {g["AutoScalingGroupName"]: g for g in answer.get("AutoScalingGroups", ())}


def _images(instance_ids: list[str]) -> Workflow[dict[str, str]]:
    if not instance_ids:
        return {}
    answer = yield paginate("ec2", "describe_instances", Filters=[{"Name": "instance-id", "Values": instance_ids}])
    return {i["InstanceId"]: i.get("ImageId", "") for r in answer.get("Reservations", ()) for i in r.get("Instances", ())}


def _live(group: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [i for i in group.get("Instances", ()) if not str(i.get("LifecycleState", "")).startswith(("Terminat", "Detach"))]


def _start(spec: ClusterSpec, target: str, batch_size: int | str | None, min_healthy: int | None) -> Workflow[dict[str, Any] | None]:
    groups = yield from _groups(spec)
    images = yield from _images([i["InstanceId"] for g in groups.values() for i in _live(g)])
    if all(images.get(i["InstanceId"]) == target for g in groups.values() for i in _live(g)):
        # Nothing runs an old image; still up to date only if new launches get the target too.
        used = sorted({int(v) for g in groups.values() if (v := _version_of(g)).isdigit()})
        template = yield from _template(spec, used[-1:] or ["$Latest"])
        if all(data.get("ImageId") == target for data in template["versions"].values()):
            return None
    now = yield NOW
    pools = []
    for pool in spec.pools:
        g = groups.get(spec.asg_name(pool))
        if g is None:
            continue
        old = sorted(i["InstanceId"] for i in _live(g) if images.get(i["InstanceId"]) != target)
        pools.append(
            {
                "pool": pool.name,
                "asg": g["AutoScalingGroupName"],
                "original": {"min": g["MinSize"], "max": g["MaxSize"], "desired": g["DesiredCapacity"]},
                "old": old,
                "replaced": [],
                "batch": None,
                "state": "pending" if old else "done",
            }
        )
    return {
        "id": uuid.uuid4().hex[:12],
        "cluster": spec.cluster,
        "image_id": target,
        "phase": "template",
        "batch_size": batch_size if batch_size is not None else spec.refresh.batch_size,
        "min_healthy_percent": min_healthy if min_healthy is not None else spec.refresh.min_healthy_percent,
        "previous_version": None,
        "new_version": None,
        "pools": pools,
        "started_at": now,
        "reason": "",
    }


def _version_of(group: Mapping[str, Any]) -> str:
    policy = group.get("MixedInstancesPolicy") or {}
    lt = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or group.get("LaunchTemplate") or {}
    return str(lt.get("Version", ""))


def _template(spec: ClusterSpec, versions: Any = ("$Latest",)) -> Workflow[dict[str, Any]]:
    answer = yield call("ec2", "describe_launch_templates", LaunchTemplateNames=[spec.launch_template_name])
    lt = answer["LaunchTemplates"][0]
    versions = yield call(
        "ec2", "describe_launch_template_versions", LaunchTemplateId=lt["LaunchTemplateId"], Versions=[str(v) for v in versions]
    )
    return {
        "id": lt["LaunchTemplateId"],
        "latest": int(lt["LatestVersionNumber"]),
        "versions": {int(v["VersionNumber"]): v.get("LaunchTemplateData", {}) for v in versions.get("LaunchTemplateVersions", ())},
        "descriptions": {int(v["VersionNumber"]): v.get("VersionDescription", "") for v in versions.get("LaunchTemplateVersions", ())},
    }


def _save(table: str, progress: Mapping[str, Any]) -> Workflow[None]:
    now = yield NOW
    yield from store.put_document(table, *PROGRESS, {**progress, "updated_at": now}, now=now)


class _Run:
    """One invocation's walk through the saved progress (steps are repeatable)."""

    def __init__(self, spec: ClusterSpec, progress: dict[str, Any], owner: str, stop_at: float | None, on_progress: Any) -> None:
        self.spec = spec
        self.p = progress
        self.owner = owner
        self.stop_at = stop_at
        self.on_progress = on_progress
        self.table = spec.table_name

    def save(self) -> Workflow[None]:
        yield from _save(self.table, self.p)
        now = yield NOW
        # Renew the lease as we go: a long refresh outlives one lease period.
        yield from store.acquire_lease(self.table, LEASE, self.owner, now=now, ttl=LEASE_SECONDS)
        if self.on_progress is not None:
            self.on_progress(self.p)

    def budget(self) -> Workflow[float | None]:
        """Seconds left before we must stop (None: no limit); pauses when too little is left."""
        if self.stop_at is None:
            return None
        now = yield NOW
        left = self.stop_at - now
        if left <= 0:
            raise _Paused()
        return left

    def result(self, status: str, reason: str = "") -> RefreshResult:
        return RefreshResult(
            cluster=self.spec.cluster,
            status=status,
            image_id=self.p["image_id"],
            previous_version=self.p.get("previous_version"),
            new_version=self.p.get("new_version"),
            replaced=tuple(i for pool in self.p["pools"] for i in pool["replaced"]),
            reason=reason or self.p.get("reason", ""),
            progress=dict(self.p),
        )

    def go(self) -> Workflow[RefreshResult]:
        try:
            if self.p["phase"] == "template":
                yield from self.new_version()
            if self.p["phase"] == "rolling":
                for pool in self.p["pools"]:
                    if pool["state"] != "done":
                        ok = yield from self.roll(pool)
                        if not ok:
                            break
            if self.p["phase"] == "rolling":
                self.p["phase"] = "done"
                yield from self.save()
            if self.p["phase"] == "rolling_back":
                yield from self.rollback()
        except _Paused:
            yield from self.save()
            return self.result("paused", "time budget used up; the next run continues from here")
        status = {"done": "done", "rolled_back": "rolled_back"}.get(self.p["phase"], self.p["phase"])
        return self.result(status)

    # --- steps ---------------------------------------------------------------------------

    def new_version(self) -> Workflow[None]:
        template = yield from _template(self.spec)
        groups = yield from _groups(self.spec)
        used = sorted({int(v) for g in groups.values() if (v := _version_of(g)).isdigit()})
        self.p["previous_version"] = used[-1] if used else template["latest"]
        marker = f"ecsspot refresh {self.p['id']}"
        latest = template["latest"]
        if template["descriptions"].get(latest) == marker:
            version = latest  # created before a crash: reuse rather than make another
        else:
            previous = yield from _template(self.spec, [self.p["previous_version"]])
            data = desired_template_data(self.spec, self.p["image_id"])
            params = version_params(template["id"], data, self.p["previous_version"], previous["versions"].get(self.p["previous_version"], {}), marker)
            answer = yield call("ec2", "create_launch_template_version", **params)
            version = int(answer["LaunchTemplateVersion"]["VersionNumber"])
        self.p["new_version"] = version
        self.p["template_id"] = template["id"]
        yield from self.point_groups(version)
        self.p["phase"] = "rolling"
        yield from self.save()

    def point_groups(self, version: int) -> Workflow[None]:
        calls = []
        for pool in self.p["pools"]:
            spec_pool = self.spec.pool(pool["pool"])
            params = asg_params(self.spec, spec_pool, self.p["template_id"], version)
            # Only the template pointer changes here; sizes stay whatever they are now.
            for key in ("MinSize", "MaxSize"):
                params.pop(key)
            calls.append(call("autoscaling", "update_auto_scaling_group", **params))
        if calls:
            yield tuple(calls)

    def roll(self, pool: dict[str, Any]) -> Workflow[bool]:
        """Replace a pool's old instances batch by batch; False when it rolled back."""
        while True:
            batch = pool.get("batch")
            if batch is None:
                left = [i for i in pool["old"] if i not in pool["replaced"]]
                groups = yield from _groups(self.spec)
                group = groups.get(pool["asg"])
                alive = {i["InstanceId"] for i in _live(group)} if group else set()
                left = [i for i in left if i in alive]
                if not left:
                    yield from self.restore(pool)
                    pool["state"] = "done"
                    yield from self.save()
                    return True
                k = min(batch_count(self.p["batch_size"], max(pool["original"]["desired"], 1)), len(left))
                desired = group["DesiredCapacity"] + k
                pool["batch"] = batch = {
                    "old": left[:k],
                    "desired": desired,
                    "max": max(group["MaxSize"], desired),
                    "step": "scale_up",
                    "since": (yield NOW),
                }
                pool["state"] = "rolling"
                yield from self.save()
            if batch["step"] == "scale_up":
                yield from self.scale_up(pool, batch)
            if batch["step"] == "wait_new":
                ok = yield from self.wait_new(pool, batch)
                if not ok:
                    self.p["phase"] = "rolling_back"
                    yield from self.save()
                    return False
            if batch["step"] == "drain":
                yield from self.drain_batch(pool, batch)
            if batch["step"] == "terminate":
                yield from self.terminate(pool, batch)

    def scale_up(self, pool: dict[str, Any], batch: dict[str, Any]) -> Workflow[None]:
        params = asg_params(self.spec, self.spec.pool(pool["pool"]), self.p["template_id"], self.p["new_version"])
        params.update(MinSize=min(pool["original"]["min"], batch["desired"]), MaxSize=batch["max"], DesiredCapacity=batch["desired"])
        yield call("autoscaling", "update_auto_scaling_group", **params)
        batch["step"] = "wait_new"
        batch["since"] = yield NOW
        yield from self.save()

    def wait_new(self, pool: dict[str, Any], batch: dict[str, Any]) -> Workflow[bool]:
        """Until the batch's new instances (on the new version) are InService and ACTIVE container instances."""
        timeout = self.spec.refresh.timeout_seconds
        # Earlier batches each brought their own replacements: this batch needs that many more.
        needed = len(pool["replaced"]) + len(batch["old"])
        while True:
            groups = yield from _groups(self.spec)
            members = _live(groups.get(pool["asg"], {}))
            # New by image, not by the ASG's per-instance template version (moto misreports it).
            images = yield from _images([i["InstanceId"] for i in members if i["InstanceId"] not in pool["old"]])
            new = sorted(i for i, image in images.items() if image == self.p["image_id"])
            in_service = [i["InstanceId"] for i in members if i.get("LifecycleState") == "InService" and i["InstanceId"] in new]
            active = yield from self.active_container_instances(in_service)
            if len(active) >= needed:
                batch["step"] = "drain"
                batch["new"] = new
                batch["since"] = yield NOW
                yield from self.save()
                return True
            now = yield NOW
            if now - batch["since"] > timeout:
                self.p["reason"] = (
                    f"pool {pool['pool']}: {needed - len(active)} new instance(s) on {self.p['image_id']} did not become "
                    f"ACTIVE container instances within {timeout} s"
                )
                pool["failed_new"] = sorted(set(new) - set(active))
                return False
            yield from self.budget()
            yield Sleep(POLL_SECONDS)

    def active_container_instances(self, instance_ids: list[str]) -> Workflow[list[str]]:
        if not instance_ids:
            return []
        listed = yield lookup("ecs", "list_container_instances", ("ClusterNotFoundException",), cluster=self.spec.cluster, status="ACTIVE")
        arns = (listed or {}).get("containerInstanceArns", [])
        while listed and listed.get("nextToken"):
            listed = yield call("ecs", "list_container_instances", cluster=self.spec.cluster, status="ACTIVE", nextToken=listed["nextToken"])
            arns += listed.get("containerInstanceArns", [])
        if not arns:
            return []
        described = yield tuple(call("ecs", "describe_container_instances", cluster=self.spec.cluster, containerInstances=b) for b in chunks(arns, 100))
        wanted = set(instance_ids)
        return [ci["ec2InstanceId"] for a in described for ci in a.get("containerInstances", ()) if ci.get("status") == "ACTIVE" and ci.get("ec2InstanceId") in wanted]

    def drain_batch(self, pool: dict[str, Any], batch: dict[str, Any]) -> Workflow[None]:
        now = yield NOW
        deadline_total = float(self.spec.drain.lifecycle_timeout_seconds)
        spent = now - batch["since"]
        left = max(deadline_total - spent, 0.0)
        budget = yield from self.budget()
        window = left if budget is None else min(left, max(budget - STOP_MARGIN_SECONDS, 0.0))
        result = yield from drain(self.spec.cluster, batch["old"], deadline=window, target_groups=self.spec.target_groups)
        if not result.drained and window < left:
            raise _Paused()  # the budget ran out, not the drain's deadline: continue next time
        batch["drain"] = [{"instance_id": a.instance_id, "status": a.status, "reason": a.reason} for a in result.actions]
        batch["step"] = "terminate"
        yield from self.save()

    def terminate(self, pool: dict[str, Any], batch: dict[str, Any]) -> Workflow[None]:
        yield tuple(
            # Absent when a previous run already terminated it (or it died meanwhile).
            lookup("autoscaling", "terminate_instance_in_auto_scaling_group", ("ValidationError",), InstanceId=i, ShouldDecrementDesiredCapacity=True)
            for i in batch["old"]
        )
        yield from self.complete_hooks(pool["asg"], batch["old"])
        pool["replaced"] = sorted(set(pool["replaced"]) | set(batch["old"]))
        pool["batch"] = None
        yield from self.save()

    def complete_hooks(self, asg: str, instance_ids: list[str]) -> Workflow[None]:
        """Our terminate hook holds drained instances; answer it for them (they are drained already)."""
        answer = yield call("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=[asg])
        waiting = [
            i["InstanceId"]
            for g in answer.get("AutoScalingGroups", ())
            for i in g.get("Instances", ())
            if i["InstanceId"] in instance_ids and i.get("LifecycleState") == "Terminating:Wait"
        ]
        if waiting:
            yield tuple(
                lookup(
                    "autoscaling",
                    "complete_lifecycle_action",
                    ("ValidationError",),
                    AutoScalingGroupName=asg,
                    LifecycleHookName=LIFECYCLE_HOOK_NAME,
                    LifecycleActionResult="CONTINUE",
                    InstanceId=i,
                )
                for i in waiting
            )

    def restore(self, pool: dict[str, Any], *, desired: int | None = None) -> Workflow[None]:
        """Back to the pool's original min/max (and ``desired`` when given)."""
        original = pool["original"]
        groups = yield from _groups(self.spec)
        group = groups.get(pool["asg"])
        if group is None:
            return
        rolling_back = self.p["phase"] == "rolling_back"
        params = asg_params(self.spec, self.spec.pool(pool["pool"]), self.p["template_id"], self.p["previous_version" if rolling_back else "new_version"])
        params.update(MinSize=original["min"], MaxSize=original["max"])
        want = group["DesiredCapacity"] if desired is None else desired
        params["DesiredCapacity"] = min(max(want, original["min"]), original["max"])
        yield call("autoscaling", "update_auto_scaling_group", **params)

    def rollback(self) -> Workflow[None]:
        previous = self.p["previous_version"]
        yield from self.point_groups(previous)
        for pool in self.p["pools"]:
            batch = pool.get("batch")
            failed = sorted(set(pool.get("failed_new", [])) | set((batch or {}).get("new", [])))
            if failed:
                yield tuple(
                    lookup("autoscaling", "terminate_instance_in_auto_scaling_group", ("ValidationError",), InstanceId=i, ShouldDecrementDesiredCapacity=True)
                    for i in failed
                )
                yield from self.complete_hooks(pool["asg"], failed)
            if pool["state"] != "done":
                yield from self.restore(pool, desired=pool["original"]["desired"])
                pool["state"] = "rolled_back"
            pool["batch"] = None
        self.p["phase"] = "rolled_back"
        yield from self.save()


def progress_of(cluster: str) -> Workflow[dict[str, Any] | None]:
    """The saved progress of the cluster's refresh (for status), or None."""
    from ecsspot.spec import table_name

    return (yield from store.get_document(table_name(cluster), *PROGRESS))


def handle_tick(driver: Any, event: Mapping[str, Any], *, remaining_seconds: float | None, default_cluster: str | None, owner: str) -> dict[str, Any]:
    """The refresh Lambda: continue a refresh in progress, or start one when the AMI parameter changed."""
    import os

    from ecsspot import events as ev

    cluster = default_cluster or os.environ.get("ECSSPOT_CLUSTER")
    if not cluster:
        return {"status": "ignored", "reason": "ECSSPOT_CLUSTER is not set"}
    start_new = os.environ.get("ECSSPOT_REFRESH_ON_SCHEDULE", "true").lower() == "true"
    try:
        parsed = ev.parse_event(event)
    except Exception:  # a schedule event or anything else: a tick
        parsed = None
    if isinstance(parsed, ev.ParameterChange):
        start_new = parsed.operation != "Delete"
    now = driver.clock.now()
    stop_at = None if remaining_seconds is None else now + remaining_seconds - STOP_MARGIN_SECONDS
    try:
        result = driver.run(refresh(cluster, owner=owner, resume=True, start_new=start_new, stop_at=stop_at))
    except ConflictError as exc:
        return {"status": "busy", "reason": str(exc)}
    return {"status": result.status, "image_id": result.image_id, "reason": result.reason, "replaced": list(result.replaced)}


__all__ = ["RefreshResult", "handle_tick", "progress_of", "refresh"]
