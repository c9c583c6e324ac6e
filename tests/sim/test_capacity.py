"""ECS cluster auto scaling on the simulator: managed scaling and managed termination protection
of the capacity providers ecsspot apply creates (no group sized by hand)."""

from __future__ import annotations

from typing import Any

from ecsspot import Manager, load_spec
from ecsspot.sim import Simulator
from tests.conftest import demo_spec_dict


def _service(sim: Simulator, cluster: str, tasks: int) -> None:
    ecs = sim.client("ecs")
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 1024, "memory": 512, "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
    )
    # No launch type and no strategy: the cluster's default (on-demand base 1, spot weight 3).
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition="web", desiredCount=tasks)


def _groups(sim: Simulator) -> dict[str, Any]:
    return {g["AutoScalingGroupName"]: g for g in sim.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]}


def _running(sim: Simulator, cluster: str) -> int:
    return sim.client("ecs").describe_services(cluster=cluster, services=["web"])["services"][0]["runningCount"]


def test_managed_scaling_grows_the_pools_to_fit_the_tasks_and_protects_busy_instances() -> None:
    with Simulator(seed=5, managed_scaling=True) as sim:
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        _service(sim, spec.cluster, tasks=8)
        assert _groups(sim)["demo-api-spot"]["DesiredCapacity"] == 0  # min_size 0: nothing yet

        assert sim.run_until(lambda: _running(sim, spec.cluster) == 8, timeout=900, step=10)
        groups = _groups(sim)
        spot = groups["demo-api-spot"]
        # Base 1 on on-demand, the other 7 split 1:3: 3 on-demand tasks and 5 spot ones. Two
        # 1024-CPU tasks fit an m5.large-class instance: 3 spot instances, 2 on-demand ones.
        assert spot["DesiredCapacity"] == 3
        assert groups["demo-api-on-demand"]["DesiredCapacity"] == 2
        scaled = sim.records("ecs.managed_scaling", "demo-api-spot")
        assert scaled and scaled[0].detail["previous"] == 0
        reservation = sim.records("ecs.capacity_provider_reservation", "demo-api-spot")[0]
        assert reservation.detail["value"] == 200.0  # no instance yet and tasks waiting
        # Managed termination protection: every instance with a task is protected from scale-in.
        assert all(i["ProtectedFromScaleIn"] for i in spot["Instances"])


def test_scale_in_waits_15_minutes_and_takes_only_empty_instances() -> None:
    with Simulator(seed=5, managed_scaling=True) as sim:
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        _service(sim, spec.cluster, tasks=8)
        assert sim.run_until(lambda: _running(sim, spec.cluster) == 8, timeout=900, step=10)

        sim.client("ecs").update_service(cluster=spec.cluster, service="web", desiredCount=2)
        sim.advance(12 * 60)
        assert _groups(sim)["demo-api-spot"]["DesiredCapacity"] == 3  # the low alarm needs 15 minutes
        assert not any(i["ProtectedFromScaleIn"] for i in _groups(sim)["demo-api-spot"]["Instances"] if _tasks_on(sim, spec.cluster, i["InstanceId"]) == 0)
        sim.advance(5 * 60)
        spot = _groups(sim)["demo-api-spot"]
        busy = [i for i in spot["Instances"] if _tasks_on(sim, spec.cluster, i["InstanceId"])]
        assert spot["DesiredCapacity"] == len(busy) < 3
        assert _running(sim, spec.cluster) == 2


def _tasks_on(sim: Simulator, cluster: str, instance_id: str) -> int:
    ecs = sim.client("ecs")
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    for ci in ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"] if arns else ():
        if ci["ec2InstanceId"] == instance_id:
            return int(ci["runningTasksCount"])
    return 0
