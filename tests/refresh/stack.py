"""An applied ecsspot cluster on the simulator, and checks over the simulator's history."""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ecsspot import ClusterSpec, Manager, load_spec
from ecsspot.aws.calls import Call
from ecsspot.aws.driver import Driver
from ecsspot.sim import Simulator
from tests.conftest import REGION, demo_spec_dict

CLUSTER = "demo-api"
POOLS = ("spot", "on-demand")
#: Other ECS-optimized AMIs moto knows (the example spec runs the Amazon Linux 2023 one).
OTHER_IMAGES = (
    "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id",
    "/aws/service/ecs/optimized-ami/amazon-linux-2/kernel-5.10/recommended/image_id",
)


@attrs.frozen
class Cluster:
    """What :func:`build` made: the applied spec, a manager on the simulator's clock, the service's target group."""

    sim: Simulator
    spec: ClusterSpec
    manager: Manager
    target_group_arn: str | None
    #: AMIs the cluster does not run yet (refresh targets).
    new_images: tuple[str, ...]
    original_image: str

    def group(self, pool: str) -> dict[str, Any]:
        name = f"{CLUSTER}-{pool}"
        return self.sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def members(self, pool: str) -> list[str]:
        """Instances counting toward the pool's desired capacity."""
        counted = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
        return sorted(i["InstanceId"] for i in self.group(pool)["Instances"] if i["LifecycleState"] in counted)

    def images(self, instance_ids: Iterable[str]) -> dict[str, str]:
        ids = list(instance_ids)
        if not ids:
            return {}
        reservations = self.sim.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}

    def version_of(self, pool: str) -> str:
        return self.group(pool)["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"]

    def sizes(self, pool: str) -> tuple[int, int, int]:
        g = self.group(pool)
        return g["MinSize"], g["MaxSize"], g["DesiredCapacity"]


_sessions: weakref.WeakKeyDictionary[Simulator, Any] = weakref.WeakKeyDictionary()


def manager(sim: Simulator, **kwargs: Any) -> Manager:
    """A Manager (a new lease owner) on the simulator's clock; one boto3 Session per simulator
    keeps making them cheap (the service models load once)."""
    import boto3

    session = _sessions.setdefault(sim, boto3.Session(region_name=REGION))
    return Manager(region=REGION, endpoint_url=sim.endpoint_url, clock=sim.clock, session=session, **kwargs)


def build(
    sim: Simulator,
    *,
    spot: int = 2,
    on_demand: int = 2,
    tasks: int = 0,
    deregistration_delay: int = 30,
    rps: float = 0.0,
    spec: dict[str, Any] | None = None,
) -> Cluster:
    """``apply`` the example spec, set each pool's desired capacity by hand (the simulator has no
    ECS managed scaling), optionally a load-balanced service with steady traffic; then boot."""
    d = spec or demo_spec_dict(sim.endpoint_url)
    applied = load_spec(d)
    m = manager(sim)
    m.apply(applied)
    autoscaling = sim.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-spot", DesiredCapacity=spot)
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-on-demand", DesiredCapacity=on_demand)
    tg = None
    if tasks:
        from tests.sim import stack

        tg = stack.target_group(sim, "web", delay=deregistration_delay)
        stack.web_task_definition(sim)
        # No launch type: the cluster's default capacity provider strategy (on-demand base, spot weight 3).
        sim.client("ecs").create_service(
            cluster=CLUSTER,
            serviceName="web",
            taskDefinition="web",
            desiredCount=tasks,
            deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
            loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
        )
    booted = sim.run_until(lambda: _ready(sim, spot + on_demand, tg, tasks), timeout=600, step=5)
    assert booted, "the cluster did not come up"
    if tg and rps:
        sim.start_traffic(tg, rps)
    running = _running_images(sim)
    assert len(set(running.values())) == 1, running
    current = next(iter(running.values()))
    found = sim.client("ssm").get_parameters(Names=list(OTHER_IMAGES))["Parameters"]
    images = tuple(sorted(p["Value"] for p in found if p["Value"] != current))
    return Cluster(sim, applied, m, tg, images, current)


def _ready(sim: Simulator, instances: int, tg: str | None, tasks: int) -> bool:
    ecs = sim.client("ecs")
    active = ecs.list_container_instances(cluster=CLUSTER, status="ACTIVE")["containerInstanceArns"]
    if len(active) < instances:
        return False
    if tg:
        healthy = [d for d in sim.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"] if d["TargetHealth"]["State"] == "healthy"]
        return len(healthy) >= tasks
    return True


def _running_images(sim: Simulator) -> dict[str, str]:
    reservations = sim.client("ec2").describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}])["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


# --- crashes ---------------------------------------------------------------------------------


class Crash(BaseException):
    """The process died (a BaseException: nothing in the workflow catches it or runs after it)."""


def mutating(call: Call) -> bool:
    return not call.operation.startswith(("describe_", "list_", "get_", "batch_get_"))


class CrashingDriver(Driver):
    """Dies right after its ``crash_after``-th mutating AWS call (or the first one ``crash_on``
    picks) has taken effect, raising ``crash``."""

    def __init__(
        self,
        *args: Any,
        crash_after: int | None = None,
        crash_on: Callable[[Call], bool] | None = None,
        crash: type[BaseException] = Crash,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.crash_after = crash_after
        self.crash_on = crash_on
        self.crash = crash
        self.mutations: list[str] = []

    def execute(self, call: Call) -> Any:
        answer = super().execute(call)
        if mutating(call):
            self.mutations.append(f"{call.service}:{call.operation}")
            if len(self.mutations) == self.crash_after or (self.crash_on is not None and self.crash_on(call)):
                self.crash_on = None
                raise self.crash(f"crashed after mutating call {len(self.mutations)} ({self.mutations[-1]})")
        return answer


def crashing_manager(
    sim: Simulator, crash_after: int | None = None, *, crash_on: Callable[[Call], bool] | None = None, crash: type[BaseException] = Crash
) -> tuple[Manager, CrashingDriver]:
    m = manager(sim)
    driver = CrashingDriver(m.driver.options, session=m.driver.session, clock=sim.clock, crash_after=crash_after, crash_on=crash_on, crash=crash)
    m.driver = driver  # the Manager's one seam to AWS
    return m, driver


# --- the history -----------------------------------------------------------------------------


def group_of(sim: Simulator) -> dict[str, str]:
    """Instance id → the Auto Scaling group that launched it."""
    return {r.subject: r.detail["group"] for r in sim.records("ec2.launched")}


def draining_marks(sim: Simulator, since: int = 0) -> Counter[str]:
    """How many times each instance was set DRAINING (history records from index ``since``).

    The agent records a change made through the API on its next tick: advance the simulator a
    second after the last call before counting.
    """
    return Counter(r.subject for r in sim.history[since:] if r.kind == "ecs.status" and r.detail.get("status") == "DRAINING")


def placements_after_marking(sim: Simulator) -> list[str]:
    """Tasks placed on an instance after it was set DRAINING (in history order, which is exact:
    the agent records a status change before the scheduler places anything in the same tick)."""
    drained: set[str] = set()
    seen: set[str] = set()
    bad = []
    for r in sim.history:
        if r.kind == "ecs.status" and r.detail.get("status") == "DRAINING":
            drained.add(r.subject)
        elif r.kind == "task.status" and r.subject not in seen:
            seen.add(r.subject)  # a task's first record is its placement
            if r.detail.get("instance_id") in drained:
                bad.append(f"{r.subject} on {r.detail['instance_id']} at {r.time}")
    return bad


def lowest_active(sim: Simulator, since: int = 0) -> dict[str, int]:
    """Per group, the fewest ACTIVE container instances at any point from history index ``since``."""
    groups = group_of(sim)
    status: dict[str, str] = {}
    for r in sim.history[:since]:
        _track(r, status)
    counts = _active_counts(status, groups)
    lowest = dict(counts)
    for r in sim.history[since:]:
        if _track(r, status):
            for group, n in _active_counts(status, groups).items():
                lowest[group] = min(lowest.get(group, n), n)
    return lowest


def _track(r: Any, status: dict[str, str]) -> bool:
    if r.kind == "ecs.registered":
        status[r.subject] = "ACTIVE"
        return True
    if r.kind == "ecs.status":
        status[r.subject] = r.detail["status"]
        return True
    return False


def _active_counts(status: dict[str, str], groups: dict[str, str]) -> dict[str, int]:
    counts = {f"{CLUSTER}-{p}": 0 for p in POOLS}
    for iid, s in status.items():
        if s == "ACTIVE" and groups.get(iid) in counts:
            counts[groups[iid]] += 1
    return counts


def min_healthy(original: int, percent: int = 90) -> int:
    return math.ceil(original * percent / 100)


def assert_refreshed(c: Cluster, image: str, *, sizes: dict[str, int], version: str | None = None) -> None:
    """Every counted instance of every pool on ``image``, desired sizes back to ``sizes``."""
    for pool, desired in sizes.items():
        members = c.members(pool)
        assert set(c.images(members).values()) == {image}, (pool, c.images(members))
        assert c.group(pool)["DesiredCapacity"] == desired, pool
        assert len(members) == desired, (pool, members)
        if version is not None:
            assert c.version_of(pool) == version


def active_instances(sim: Simulator) -> list[str]:
    ecs = sim.client("ecs")
    arns = ecs.list_container_instances(cluster=CLUSTER, status="ACTIVE")["containerInstanceArns"]
    if not arns:
        return []
    return sorted(ci["ec2InstanceId"] for ci in ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"])
