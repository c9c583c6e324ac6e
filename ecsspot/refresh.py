"""Rolling AMI refresh: new capacity first, verified drains in batches, resumable and leased.

AWS's instance refresh does not drain ECS tasks (unless managed draining is on), lets tasks bounce
onto instances that are about to be replaced, refuses `$Latest` templates and scale-in-protected
instances, and cannot roll back an image that came from an SSM parameter. This is our own:

1. resolve the target image (the spec's ``refresh.ami_parameter``, or ``--ami``);
2. a new launch template version with the full launch data and that image; the pools' groups
   point at its explicit number;
3. per pool, per batch: raise desired (and max) by the batch, wait until the group is at its
   desired capacity with every new instance an ACTIVE container instance, set the batch of old
   instances DRAINING (so nothing new lands on them) with a verified drain (targets deregistered
   first), terminate them with decrement; finally restore the original sizes. Before a batch is
   drained, the pool's other ACTIVE instances must be at least ``min_healthy_percent`` of its
   original desired capacity (with new capacity first this holds unless something else died);
4. rollback when new instances do not become ACTIVE in time: groups back to their previous
   versions, the batch's new instances drained and terminated, sizes restored, the reason reported.

Progress (:mod:`ecsspot.progress`) is a JSON document in the cluster's table, saved after every
step; each step is safe to repeat, so a crash (or a Lambda reaching its 900 s) resumes exactly
where it was. What a repeat could do twice is decided and saved *before* the calls (the previous
template versions, which instances we terminate with decrement). A lease, renewed while waiting,
makes one refresher per cluster at a time.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ecsspot import ami as amis
from ecsspot import store
from ecsspot.apply import asg_params, version_params
from ecsspot.aws.calls import NOW, Sleep, Workflow, call, chunks, lookup, paginate
from ecsspot.drain import DrainResult, drain
from ecsspot.errors import ConflictError, InputError, NotFoundError
from ecsspot.plan import desired_template_data
from ecsspot.progress import (
    ACTIVE_PHASES,
    STORED_AT,
    Batch,
    DrainRecord,
    Original,
    PoolProgress,
    RefreshProgress,
    Removal,
    dump,
    from_answer,
    load,
    read_call,
)
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, batch_count

_T = TypeVar("_T")
PROGRESS = STORED_AT
LEASE = "refresh"
LEASE_SECONDS = 300.0
#: Renew the lease once this much of it is spent (so a slow step never outlives it).
LEASE_RENEW_SECONDS = LEASE_SECONDS / 3
POLL_SECONDS = 10.0
#: Keep this much of a Lambda's time to save progress and return.
STOP_MARGIN_SECONDS = 60.0
#: Auto Scaling lifecycle states that count toward desired capacity.
_COUNTED = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")


@attrs.frozen
class RefreshResult:
    cluster: str
    status: str  # up_to_date | done | paused | rolled_back | idle
    image_id: str | None
    previous_version: int | None = None
    new_version: int | None = None
    replaced: tuple[str, ...] = ()
    reason: str = ""
    progress: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


class _Paused(Exception):
    """Raised inside the workflow when the time budget is used up; the caller saves progress."""


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

    spec, cached_groups = yield from store.load_cluster(cluster)
    if spec is None:
        raise NotFoundError(f"cluster {cluster} has no ecsspot state table; run `ecsspot apply` first")
    table = spec.table_name
    now = yield NOW
    try:
        yield from store.acquire_lease(table, LEASE, owner, now=now, ttl=LEASE_SECONDS)
    except ConflictError:
        holder = yield from store.read_lease(table, LEASE)
        left = f" for another {max(holder.expires_at - now, 0):.0f} s" if holder else ""
        raise ConflictError(
            f"another refresh of {cluster} holds its lease ({holder.owner if holder else 'unknown owner'}{left}); "
            "if that process is gone, run again with --resume once the lease has expired"
        ) from None
    try:
        progress = yield from _load(table)
        active = progress is not None and progress.phase in ACTIVE_PHASES
        if progress is not None and active and not resume:
            raise ConflictError(
                f"a refresh of {cluster} to {progress.image_id} is in progress (phase {progress.phase}); "
                "continue it with --resume"
            )
        if progress is None or not active:
            if not start_new:
                return (yield from _released(table, owner, RefreshResult(cluster, "idle", progress.image_id if progress else None, reason="no refresh in progress")))
            target = yield from _target_image(spec, ami)
            progress = yield from _start(spec, target, batch_size, min_healthy_percent)
            if progress is None:
                return (yield from _released(table, owner, RefreshResult(cluster, "up_to_date", target, reason="every instance already runs the target image")))
            yield from _save(table, progress)
        run = _Run(spec, progress, owner, stop_at, on_progress, leased_at=now, target_groups=(*spec.target_groups, *cached_groups))
        result = yield from run.go()
    except GeneratorExit:
        # Closed without being driven on (the process is going away): the lease expires by itself.
        raise
    except BaseException:
        yield from _release_quietly(table, owner)
        raise
    return (yield from _released(table, owner, result))


def _released(table: str, owner: str, result: RefreshResult) -> Workflow[RefreshResult]:
    yield from _release_quietly(table, owner)
    return result


def _release_quietly(table: str, owner: str) -> Workflow[None]:
    """Give the lease back; a failure here must not hide the error that got us here (it expires anyway)."""
    from ecsspot.errors import EcsspotError

    with contextlib.suppress(EcsspotError):
        yield from store.release_lease(table, LEASE, owner)


def _target_image(spec: ClusterSpec, ami: str | None) -> Workflow[str]:
    if ami:
        return (yield from amis.resolve(ami, "--ami"))
    if spec.refresh.ami_parameter:
        return (yield from amis.resolve(amis.SSM_PREFIX + spec.refresh.ami_parameter, "refresh.ami_parameter"))
    return (yield from amis.resolve(spec.instances.ami))


def _groups(spec: ClusterSpec, names: Sequence[str] | None = None) -> Workflow[dict[str, dict[str, Any]]]:
    names = list(names) if names is not None else [spec.asg_name(p) for p in spec.pools]
    answer = yield paginate("autoscaling", "describe_auto_scaling_groups", AutoScalingGroupNames=names)
    return {g["AutoScalingGroupName"]: g for g in answer.get("AutoScalingGroups", ())}


def _images(instance_ids: Sequence[str]) -> Workflow[dict[str, str]]:
    if not instance_ids:
        return {}
    # EC2 takes at most 200 values in one filter: large pools go out in concurrent chunks.
    answers = yield tuple(
        paginate("ec2", "describe_instances", Filters=[{"Name": "instance-id", "Values": batch}]) for batch in chunks(list(instance_ids), 200)
    )
    return {i["InstanceId"]: i.get("ImageId", "") for a in answers for r in a.get("Reservations", ()) for i in r.get("Instances", ())}


def _counted(group: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Members that count toward desired capacity (not Terminating*, Detach*, Standby)."""
    return [i for i in (group or {}).get("Instances", ()) if i.get("LifecycleState") in _COUNTED]


@attrs.frozen
class NextBatch:
    """What a pool does next: the old instances it has known, and the batch that replaces the
    next of them (None: no old instance is left, the pool is done)."""

    old: tuple[str, ...]
    surplus: int
    batch: Batch | None


def next_batch(
    progress: RefreshProgress, pool: PoolProgress, group: Mapping[str, Any] | None, images: Mapping[str, str | None], *, now: float
) -> NextBatch:
    """Pure: from the group as described now and its instances' images, the pool's next batch."""
    members = _counted(group)
    # Old = not on the target image, whatever the saved list says: an instance launched from the
    # previous version meanwhile is old too, a dead one is gone. Those known longest go first.
    left = sorted(
        (i["InstanceId"] for i in members if images.get(i["InstanceId"]) != progress.image_id),
        key=lambda i: (i not in pool.old, i),
    )
    old = (*pool.old, *(i for i in left if i not in pool.old))
    if group is None or not left:
        return NextBatch(old, pool.surplus, None)
    k = min(batch_count(progress.batch_size, max(pool.original.desired, 1)), len(left))
    # Instances that replaced lost old ones (spot reclaimed them) already stand in for this batch.
    add = max(k - pool.surplus, 0)
    desired = group["DesiredCapacity"] + add
    batch = Batch(
        old=left[:k],
        desired=desired,
        max=max(group["MaxSize"], desired),
        fresh_before=sorted(i["InstanceId"] for i in members if images.get(i["InstanceId"]) == progress.image_id),
        step="scale_up",
        since=now,
    )
    return NextBatch(old, pool.surplus - (k - add), batch)


def _units(members: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(m.get("WeightedCapacity") or 1) for m in members)


def _start(spec: ClusterSpec, target: str, batch_size: int | str | None, min_healthy: int | None) -> Workflow[RefreshProgress | None]:
    groups = yield from _groups(spec)
    images = yield from _images([i["InstanceId"] for g in groups.values() for i in _counted(g)])
    if all(images.get(i["InstanceId"]) == target for g in groups.values() for i in _counted(g)):
        # Nothing runs an old image; up to date only if every group's launches get the target too.
        versions = sorted({_version_of(g) or "$Default" for g in groups.values()})
        template = yield from _template(spec, versions or ["$Latest"])
        if template["versions"] and all(data.get("ImageId") == target for data in template["versions"].values()):
            return None
    now = yield NOW
    pools = []
    for pool in spec.pools:
        g = groups.get(spec.asg_name(pool))
        if g is None:
            continue
        old = sorted(i["InstanceId"] for i in _counted(g) if images.get(i["InstanceId"]) != target)
        pools.append(
            PoolProgress(
                pool=pool.name,
                asg=g["AutoScalingGroupName"],
                original=Original(min=g["MinSize"], max=g["MaxSize"], desired=g["DesiredCapacity"], running=_units(_counted(g))),
                old=old,
                state="pending" if old else "done",
            )
        )
    return RefreshProgress(
        id=uuid.uuid4().hex[:12],
        cluster=spec.cluster,
        image_id=target,
        phase="template",
        batch_size=batch_size if batch_size is not None else spec.refresh.batch_size,
        min_healthy_percent=min_healthy if min_healthy is not None else spec.refresh.min_healthy_percent,
        pools=pools,
        started_at=now,
    )


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


def _decided(value: _T | None, name: str) -> _T:
    """A value an earlier step decided and saved (the template step: versions, template id)."""
    if value is None:
        raise InputError(f"the saved refresh progress has no {name}, which its template step records")
    return value


def _load(table: str) -> Workflow[RefreshProgress | None]:
    return from_answer((yield read_call(table)), table)


def _save(table: str, progress: RefreshProgress) -> Workflow[dict[str, Any]]:
    """Store the progress; returns the document stored."""
    progress.updated_at = now = yield NOW
    document = dump(progress)
    yield from store.put_document(table, *PROGRESS, document, now=now)
    return document


class _Run:
    """One invocation's walk through the saved progress (steps are repeatable)."""

    def __init__(
        self,
        spec: ClusterSpec,
        progress: RefreshProgress,
        owner: str,
        stop_at: float | None,
        on_progress: Any,
        *,
        leased_at: float | None = None,
        target_groups: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self.p = progress
        self.owner = owner
        self.stop_at = stop_at
        self.on_progress = on_progress
        self.table = spec.table_name
        self.leased_at = leased_at
        self.target_groups = tuple(dict.fromkeys(target_groups))
        self._images: dict[str, str] = {}

    def images(self, instance_ids: Sequence[str]) -> Workflow[dict[str, str]]:
        """Instance id → image id; an instance's image never changes, so each is described once."""
        unknown = [i for i in instance_ids if i not in self._images]
        if unknown:
            self._images.update((yield from _images(unknown)))
        return {i: self._images[i] for i in instance_ids if i in self._images}

    def keep_lease(self) -> Workflow[None]:
        """Renew the lease once a third of it is spent; ConflictError if someone took it over."""
        now = yield NOW
        if self.leased_at is None or now - self.leased_at >= LEASE_RENEW_SECONDS:
            yield from store.acquire_lease(self.table, LEASE, self.owner, now=now, ttl=LEASE_SECONDS)
            self.leased_at = now

    def save(self) -> Workflow[None]:
        # The lease first: never write progress over a refresher that took over an expired lease.
        yield from self.keep_lease()
        document = yield from _save(self.table, self.p)
        if self.on_progress is not None:
            self.on_progress(document)

    def budget(self) -> Workflow[float | None]:
        """Seconds left before we must stop (None: no limit); pauses when none is left."""
        if self.stop_at is None:
            return None
        now: float = yield NOW
        left = self.stop_at - now
        if left <= 0:
            raise _Paused()
        return left

    def result(self, status: str, reason: str = "") -> RefreshResult:
        return RefreshResult(
            cluster=self.spec.cluster,
            status=status,
            image_id=self.p.image_id,
            previous_version=self.p.previous_version,
            new_version=self.p.new_version,
            replaced=tuple(i for pool in self.p.pools for i in pool.replaced),
            reason=reason or self.p.reason,
            progress=dump(self.p),
        )

    def go(self) -> Workflow[RefreshResult]:
        try:
            if self.p.phase == "template":
                yield from self.new_version()
            if self.p.phase == "rolling":
                for pool in self.p.pools:
                    if pool.state != "done":
                        ok = yield from self.roll(pool)
                        if not ok:
                            break
            if self.p.phase == "rolling":
                self.p.phase = "done"
                yield from self.save()
            if self.p.phase == "rolling_back":
                yield from self.rollback()
        except _Paused:
            yield from self.save()
            return self.result("paused", "time budget used up; the next run continues from here")
        status = {"done": "done", "rolled_back": "rolled_back"}.get(self.p.phase, self.p.phase)
        return self.result(status)

    # --- steps ---------------------------------------------------------------------------

    def group(self, pool: PoolProgress) -> Workflow[dict[str, Any] | None]:
        return (yield from _groups(self.spec, [pool.asg])).get(pool.asg)

    def new_version(self) -> Workflow[None]:
        template = yield from _template(self.spec)
        if self.p.previous_version is None:
            # Decided once and saved before any change: after the groups point at the new version,
            # a repeat of this step could no longer tell what they used before.
            groups = yield from _groups(self.spec)
            previous = {}
            for pool in self.p.pools:
                v = _version_of(groups.get(pool.asg, {}))
                pool.previous_version = previous[pool.pool] = int(v) if v.isdigit() else template["latest"]
            self.p.previous_version = max(previous.values(), default=template["latest"])
            self.p.template_id = template["id"]
            yield from self.save()
        marker = f"ecsspot refresh {self.p.id}"
        latest = template["latest"]
        if template["descriptions"].get(latest) == marker:
            version = latest  # created before a crash: reuse rather than make another
        else:
            data = desired_template_data(self.spec, self.p.image_id)
            params = version_params(template["id"], data, marker)
            answer = yield call("ec2", "create_launch_template_version", **params)
            version = int(answer["LaunchTemplateVersion"]["VersionNumber"])
        self.p.new_version = version
        self.p.template_id = template["id"]
        yield from self.point_groups({pool.pool: version for pool in self.p.pools})
        self.p.phase = "rolling"
        yield from self.save()

    def point_groups(self, versions: Mapping[str, int]) -> Workflow[None]:
        calls = []
        for pool in self.p.pools:
            spec_pool = self.spec.pool(pool.pool)
            params = asg_params(self.spec, spec_pool, self.template_id, versions[pool.pool])
            # Only the template pointer changes here; sizes stay whatever they are now.
            for key in ("MinSize", "MaxSize"):
                params.pop(key)
            calls.append(call("autoscaling", "update_auto_scaling_group", **params))
        if calls:
            yield tuple(calls)

    def roll(self, pool: PoolProgress) -> Workflow[bool]:
        """Replace a pool's old instances batch by batch; False when it must roll back."""
        while True:
            batch = pool.batch
            if batch is None:
                yield from self.budget()  # no new batch without time left for it
                group = yield from self.group(pool)
                images = yield from self.images([i["InstanceId"] for i in _counted(group)])
                step = next_batch(self.p, pool, group, images, now=(yield NOW))
                pool.old, pool.surplus = list(step.old), step.surplus
                if step.batch is None:
                    yield from self.restore(pool)
                    pool.state = "done"
                    yield from self.save()
                    return True
                pool.batch = batch = step.batch
                pool.state = "rolling"
                yield from self.save()
            if batch.step == "scale_up":
                yield from self.scale_up(pool, batch)
            # The two steps that can fail the batch (new capacity never ready, replacements never
            # healthy), in order: the first moves the batch on to the second.
            for name, check in (("wait_new", self.wait_new), ("drain", self.drain_batch)):
                if batch.step == name and not (yield from check(pool, batch)):
                    self.p.phase = "rolling_back"
                    yield from self.save()
                    return False
            if batch.step == "terminate":
                yield from self.terminate(pool, batch)

    def scale_up(self, pool: PoolProgress, batch: Batch) -> Workflow[None]:
        params = asg_params(self.spec, self.spec.pool(pool.pool), self.template_id, self.target_version)
        # MinSize held at the raised count: ECS managed scaling's target tracking cannot take the
        # batch's new capacity back (its low alarm fires after 15 quiet minutes, and a refresh's
        # spare instance looks quiet) while we still count on it.
        params.update(MinSize=max(pool.original.min, batch.desired), MaxSize=batch.max, DesiredCapacity=batch.desired)
        yield call("autoscaling", "update_auto_scaling_group", **params)
        batch.step = "wait_new"
        batch.since = yield NOW
        yield from self.save()

    def wait_new(self, pool: PoolProgress, batch: Batch) -> Workflow[bool]:
        """Until the group is at desired capacity with every new instance InService and an ACTIVE
        container instance, and the pool keeps ``min_healthy_percent`` once the batch drains."""
        timeout = self.spec.refresh.timeout_seconds
        base = min(pool.original.desired, pool.original.running)
        required = math.ceil(base * self.p.min_healthy_percent / 100)
        while True:
            group = yield from self.group(pool)
            members = _counted(group)
            # New by image, as old is (see roll): what the refresh is about, and each instance's
            # image is described once, so polling costs no more than the group's describe.
            images = yield from self.images([i["InstanceId"] for i in members])
            new = sorted(i["InstanceId"] for i in members if images.get(i["InstanceId"]) == self.p.image_id)
            in_service = [i["InstanceId"] for i in members if i.get("LifecycleState") == "InService"]
            active = set((yield from self.active_container_instances(in_service)))
            waiting = [i for i in new if i not in active]
            launched = group is not None and _units(members) >= group["DesiredCapacity"]
            healthy = len(active - set(batch.old))
            if launched and not waiting and healthy >= required:
                batch.step = "drain"
                batch.new = new
                batch.since = yield NOW
                yield from self.save()
                return True
            now = yield NOW
            if now - batch.since > timeout:
                missing = max((group or {}).get("DesiredCapacity", 0) - _units(members), 0)
                if waiting:
                    why = f"{len(waiting)} new instance(s) on {self.p.image_id} did not become ACTIVE container instances"
                elif missing:
                    why = f"{missing} instance(s) of the group's desired capacity did not launch"
                else:
                    why = f"only {healthy} ACTIVE instance(s) would remain, below min_healthy_percent ({required} needed)"
                self.p.reason = f"pool {pool.pool}: {why} within {timeout} s"
                pool.failed_new = waiting
                return False
            yield from self.budget()
            yield from self.keep_lease()
            yield Sleep(POLL_SECONDS)

    def active_container_instances(self, instance_ids: list[str]) -> Workflow[list[str]]:
        return [ci["ec2InstanceId"] for ci in (yield from self.container_instances(instance_ids, "ACTIVE"))]

    def container_instances(self, instance_ids: list[str], status: str) -> Workflow[list[dict[str, Any]]]:
        """The container instances (describe form) of these EC2 instances that are in ``status``."""
        if not instance_ids:
            return []
        listed = yield paginate("ecs", "list_container_instances", absent=("ClusterNotFoundException",), cluster=self.spec.cluster, status=status)
        arns = (listed or {}).get("containerInstanceArns", [])
        if not arns:
            return []
        described = yield tuple(call("ecs", "describe_container_instances", cluster=self.spec.cluster, containerInstances=b) for b in chunks(arns, 100))
        wanted = set(instance_ids)
        return [ci for a in described for ci in a.get("containerInstances", ()) if ci.get("status") == status and ci.get("ec2InstanceId") in wanted]

    def verified_drain(self, instance_ids: list[str], removal: Removal) -> Workflow[DrainResult]:
        """The verified drain, given ``lifecycle_timeout_seconds`` of running time in all (``removal``
        keeps what was spent, saved between slices): a resume after a long crash still verifies
        rather than finding its deadline passed. In slices, so the lease is renewed between them
        and a Lambda pauses when its budget ends first."""
        total = float(self.spec.drain.lifecycle_timeout_seconds)
        while True:
            left = max(total - removal.drain_seconds, 0.0)
            budget = yield from self.budget()
            window = min(left, LEASE_RENEW_SECONDS, left if budget is None else budget)
            began = yield NOW
            result = yield from drain(self.spec.cluster, instance_ids, deadline=window, target_groups=self.target_groups, every_service=True)
            removal.drain_seconds += (yield NOW) - began
            if result.drained or window >= left:
                return result  # drained, or the drain's own deadline passed (timed_out actions)
            yield from self.save()

    def drain_batch(self, pool: PoolProgress, batch: Batch) -> Workflow[bool]:
        """Drain the batch's old instances; False (roll back) when the services never got back to
        their desired count, i.e. the replacement tasks on the new image never became healthy."""
        result = yield from self.verified_drain(batch.old, batch.removal)
        batch.drain = [DrainRecord(a.instance_id or "", a.status, a.reason) for a in result.actions]
        # A drain that ran out of time because a target still drains (it takes no new requests)
        # or a task still stops may go on; services short of healthy replacements may not.
        short = sorted({s for a in result.actions if a.status == "timed_out" for s in a.left.get("services_below_desired", ())})
        if short:
            self.p.reason = (
                f"pool {pool.pool}: replacement tasks did not become healthy on {self.p.image_id} within "
                f"{self.spec.drain.lifecycle_timeout_seconds} s (services below desired count: {', '.join(short)})"
            )
            pool.failed_new = list(batch.new)
            return False
        batch.step = "terminate"
        yield from self.save()
        return True

    def terminate_decrementing(self, removal: Removal, pool: PoolProgress, instance_ids: list[str]) -> Workflow[None]:
        """Terminate with decrement exactly once each, also across a crash: which instances we
        terminate is decided and saved before the calls; a repeat skips those already terminating."""
        asg = pool.asg
        group = yield from _groups(self.spec, [asg])
        counted = {i["InstanceId"] for i in _counted(group.get(asg))}
        if removal.terminating is None:
            removal.terminating = [i for i in instance_ids if i in counted]
            removal.desired_before = (group.get(asg) or {}).get("DesiredCapacity")
            yield from self.save()
        todo = [i for i in removal.terminating if i in counted]
        if todo:
            desired = (group.get(asg) or {}).get("DesiredCapacity", 0)
            floor = max(min(pool.original.min, desired), desired - len(todo), 0)
            if (group.get(asg) or {}).get("MinSize", 0) > floor:
                # Room for the decrement (AWS refuses one below MinSize), and no more.
                # Only MinSize: "any parameters that you don't specify are not changed"
                # (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html).
                yield call("autoscaling", "update_auto_scaling_group", AutoScalingGroupName=asg, MinSize=floor)
            yield tuple(
                lookup("autoscaling", "terminate_instance_in_auto_scaling_group", ("ValidationError",), InstanceId=i, ShouldDecrementDesiredCapacity=True)
                for i in todo
            )
        yield from self.complete_hooks(asg, instance_ids)

    def terminate(self, pool: PoolProgress, batch: Batch) -> Workflow[None]:
        yield from self.terminate_decrementing(batch.removal, pool, batch.old)
        # A batch instance that was gone before we terminated it (spot reclaimed it) was replaced by
        # the group without a decrement: that replacement stands in for the next batch's new capacity.
        lost = len(batch.old) - len(batch.removal.terminating or ())
        # ... unless someone else terminated it with decrement (the group's desired says which).
        decremented = max(batch.desired - (batch.removal.desired_before or batch.desired), 0)
        pool.surplus += max(lost - decremented, 0)
        pool.replaced = sorted(set(pool.replaced) | set(batch.old))
        pool.batch = None
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

    def restore(self, pool: PoolProgress, *, desired: int | None = None) -> Workflow[None]:
        """Back to the pool's original min/max and ``desired`` (default: the group's own, less any
        surplus a lost instance's replacement left)."""
        original = pool.original
        group = yield from self.group(pool)
        if group is None:
            return
        params = asg_params(self.spec, self.spec.pool(pool.pool), self.template_id, self.version_for(pool))
        params.update(MinSize=original.min, MaxSize=original.max)
        want = group["DesiredCapacity"] - pool.surplus if desired is None else desired
        params["DesiredCapacity"] = min(max(want, original.min), original.max)
        yield call("autoscaling", "update_auto_scaling_group", **params)

    def version_for(self, pool: PoolProgress) -> int:
        """The template version the pool's group should point at now: the new one, or while
        rolling back the one it had before."""
        if self.p.phase == "rolling_back":
            return self.previous_version(pool)
        return self.target_version

    def previous_version(self, pool: PoolProgress) -> int:
        return _decided(pool.previous_version if pool.previous_version is not None else self.p.previous_version, "previous_version")

    @property
    def target_version(self) -> int:
        return _decided(self.p.new_version, "new_version")

    @property
    def template_id(self) -> str:
        return _decided(self.p.template_id, "template_id")

    def reactivate(self, instance_ids: list[str]) -> Workflow[None]:
        """Set the batch's old instances ACTIVE again, except those going away for another reason,
        and put their running tasks back behind the load balancer (:func:`restore_targets`).

        An instance the interruption handler is draining (spot warning, terminate hook) is marked
        "going away" in the table and must stay DRAINING: a task placed on it now would die with it.
        So must one its group is no longer keeping ``InService``: one being taken out
        (``Terminating:Wait``, whoever's hook holds it: ECS managed draining set it DRAINING and
        does not drain it again once set ACTIVE, so it would hold the instance up to 48 hours), or
        already gone.
        The instance's drain lease keeps a concurrent ``ecsspot drain`` out while we do this, and a
        mark that appears meanwhile is checked again afterwards (and the instance set DRAINING back).
        """
        now = yield NOW
        doomed = yield from store.doomed(self.table, instance_ids, now=now)
        doomed |= yield from not_in_service([i for i in instance_ids if i not in doomed])
        leases = yield from store.acquire_leases(self.table, [f"drain#{i}" for i in instance_ids if i not in doomed], self.owner, now=now, ttl=120.0)
        mine = [i for i in instance_ids if leases.get(f"drain#{i}") is not None]
        names = [f"drain#{i}" for i in mine]
        try:
            found = yield from self.container_instances(mine, "DRAINING")
            yield from self._set_state([ci["containerInstanceArn"] for ci in found], "ACTIVE")
            late = yield from store.doomed(self.table, [ci["ec2InstanceId"] for ci in found], now=(yield NOW))
            yield from self._set_state([ci["containerInstanceArn"] for ci in found if ci["ec2InstanceId"] in late], "DRAINING")
            # From the ACTIVE ones, not from ``found``: a resume after a crash here finds them ACTIVE already.
            active = yield from self.container_instances([i for i in mine if i not in late], "ACTIVE")
            yield from restore_targets(self.spec.cluster, active)
        except GeneratorExit:
            raise  # the process is going away: the leases expire
        except BaseException:
            yield from store.let_go(self.table, (), names, self.owner)
            raise
        yield from store.let_go(self.table, (), names, self.owner)
        kept = sorted(set(instance_ids) - set(mine) | (late if mine else set()))
        if kept:
            self.p.kept_draining = sorted(set(self.p.kept_draining) | set(kept))

    def _set_state(self, arns: list[str], status: str) -> Workflow[None]:
        if arns:
            yield tuple(
                call("ecs", "update_container_instances_state", cluster=self.spec.cluster, containerInstances=b, status=status)
                for b in chunks(arns, 10)
            )

    def rollback(self) -> Workflow[None]:
        """Groups back to their previous versions; the failed batch's new instances drained and
        terminated; sizes restored. Instances earlier batches replaced keep running (they worked)."""
        yield from self.point_groups({pool.pool: self.previous_version(pool) for pool in self.p.pools})
        for pool in self.p.pools:
            batch = pool.batch
            if batch is not None and pool.state == "rolling":
                # Old instances the failed batch had set DRAINING take tasks again, before the new
                # ones are drained (their tasks need somewhere to go).
                yield from self.reactivate(batch.old)
                group = yield from self.group(pool)
                launched = sorted(
                    i["InstanceId"] for i in _counted(group) if i["InstanceId"] not in batch.old and i["InstanceId"] not in batch.fresh_before
                )
                images = yield from self.images(launched)
                launched = [i for i in launched if images.get(i) == self.p.image_id]
                if launched:
                    # Those that became ACTIVE may have tasks by now (the drain passes over the others).
                    yield from self.verified_drain(launched, batch.rollback)
                yield from self.terminate_decrementing(batch.rollback, pool, launched)
            if pool.state == "rolling":
                yield from self.restore(pool, desired=pool.original.desired)
            if pool.state != "done":
                pool.state = "rolled_back"
            pool.batch = None
            yield from self.save()
        self.p.phase = "rolled_back"
        yield from self.save()


def restore_targets(cluster: str, container_instances: Sequence[Mapping[str, Any]]) -> Workflow[None]:
    """Register the targets of the service tasks still RUNNING on ``container_instances`` again.

    The drain deregistered them, and ECS registers a task's targets only when the task starts
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html):
    an instance set ACTIVE again keeps its old tasks running with no traffic. Derived from the
    live tasks rather than from what the drain recorded, so a resume after a crash does the same.
    A target of a bridge/host task is (instance, host port), of an awsvpc task (ENI address,
    container port); one call per group and instance, so a target AWS refuses (its instance
    stopped meanwhile) costs only that instance's.
    """
    instance_of = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in container_instances}
    if not instance_of:
        return
    lists = yield tuple(paginate("ecs", "list_tasks", cluster=cluster, containerInstance=arn, desiredStatus="RUNNING") for arn in sorted(instance_of))
    task_arns = sorted({t for a in lists for t in a.get("taskArns", ())})
    if not task_arns:
        return
    described = yield tuple(call("ecs", "describe_tasks", cluster=cluster, tasks=b) for b in chunks(task_arns, 100))
    tasks = [
        t
        for a in described
        for t in a.get("tasks", ())
        if t.get("containerInstanceArn") in instance_of
        and t.get("lastStatus") == "RUNNING"
        and t.get("desiredStatus") == "RUNNING"
        and t.get("group", "").startswith("service:")
    ]
    names = sorted({t["group"].split(":", 1)[1] for t in tasks})
    if not names:
        return
    answers = yield tuple(call("ecs", "describe_services", cluster=cluster, services=b) for b in chunks(names, 10))
    balanced = {
        s["serviceName"]: [lb for lb in s.get("loadBalancers", ()) if lb.get("targetGroupArn")]
        for a in answers
        for s in a.get("services", ())
        if s.get("status") == "ACTIVE"
    }
    targets: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for task in tasks:
        instance_id = instance_of[task["containerInstanceArn"]]
        for lb in balanced.get(task["group"].split(":", 1)[1], ()):
            for target in _targets_of(task, instance_id, lb):
                entries = targets.setdefault((lb["targetGroupArn"], instance_id), [])
                if target not in entries:
                    entries.append(target)
    if targets:
        yield tuple(
            lookup("elbv2", "register_targets", ("TargetGroupNotFound", "InvalidTarget"), TargetGroupArn=group, Targets=entries)
            for (group, _), entries in sorted(targets.items())
        )


def _targets_of(task: Mapping[str, Any], instance_id: str, lb: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The targets a task registers for one of its service's load balancers (DescribeTasks form)."""
    port = lb.get("containerPort")
    addresses = [
        d["value"]
        for a in task.get("attachments", ())
        if a.get("type") == "ElasticNetworkInterface"
        for d in a.get("details", ())
        if d.get("name") == "privateIPv4Address" and d.get("value")
    ]
    if addresses:
        return [{"Id": addresses[0], "Port": int(port)}] if port else []
    return [
        {"Id": instance_id, "Port": int(b["hostPort"])}
        for c in task.get("containers", ())
        if c.get("name") == lb.get("containerName")
        for b in c.get("networkBindings", ())
        if b.get("containerPort") == port and b.get("hostPort")
    ]


def load_progress(cluster: str) -> Workflow[RefreshProgress | None]:
    """The saved progress of the cluster's refresh, or None; InputError when it is not readable."""
    from ecsspot.spec import table_name

    return (yield from _load(table_name(cluster)))


def progress_of(cluster: str) -> Workflow[dict[str, Any] | None]:
    """The saved progress of the cluster's refresh as a JSON-able mapping (for status), or None."""
    progress = yield from load_progress(cluster)
    return None if progress is None else dump(progress)


def summary(progress: RefreshProgress | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A compact view of saved progress for ``status`` (None when no refresh is under way)."""
    if not progress:
        return None
    p = progress if isinstance(progress, RefreshProgress) else load(progress)
    if p.phase not in ACTIVE_PHASES:
        return None
    return {
        "id": p.id,
        "phase": p.phase,
        "image_id": p.image_id,
        "previous_version": p.previous_version,
        "new_version": p.new_version,
        "started_at": p.started_at,
        "updated_at": p.updated_at,
        "pools": [
            {
                "pool": pool.pool,
                "state": pool.state,
                "replaced": len(pool.replaced),
                "old": len(pool.old),
                "step": pool.batch.step if pool.batch else None,
                "batch": list(pool.batch.old) if pool.batch else [],
            }
            for pool in p.pools
        ],
    }


__all__ = ["ACTIVE_PHASES", "RefreshProgress", "RefreshResult", "load_progress", "progress_of", "refresh", "summary"]


def not_in_service(instance_ids: Sequence[str]) -> Workflow[set[str]]:
    """The instances that are no longer ``InService`` in an Auto Scaling group: being taken out
    (``Terminating*``, ``Detaching``), in ``Standby``, or gone. DescribeAutoScalingInstances takes
    at most 50 ids a call."""
    if not instance_ids:
        return set()
    answers = yield tuple(call("autoscaling", "describe_auto_scaling_instances", InstanceIds=b) for b in chunks(list(instance_ids), 50))
    in_service = {i["InstanceId"] for a in answers for i in a.get("AutoScalingInstances", ()) if i.get("LifecycleState") == "InService"}
    return set(instance_ids) - in_service
