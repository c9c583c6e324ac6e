"""ECS service scheduler: placement with dynamic ports, draining within the deployment limits,
capacity provider strategies, tasks dying with their host."""

from __future__ import annotations

from collections import Counter

from ecsspot.sim import Simulator
from tests.sim.stack import (
    build_stack,
    capacity_provider,
    container_instances,
    launch_template,
    mixed_group,
    target_group,
    target_health,
    tasks_of,
    web_task_definition,
)


def hosts(tasks: list[dict]) -> dict[str, str]:
    """task ARN -> container instance ARN"""
    return {t["taskArn"]: t["containerInstanceArn"] for t in tasks}


def test_several_dynamic_port_tasks_fit_per_instance(sim: Simulator) -> None:
    stack = build_stack(sim, instances=2, tasks=6, boot=45)  # instances up at 40 s
    sim.advance(10 + 30)  # task start, then 3 passing checks 10 s apart

    tasks = tasks_of(sim, "demo")
    assert len(tasks) == 6 and {t["lastStatus"] for t in tasks} == {"RUNNING"}
    assert sorted(Counter(hosts(tasks).values()).values()) == [3, 3]  # moto: one task per instance
    bindings = [(t["containerInstanceArn"], b["hostPort"]) for t in tasks for b in t["containers"][0]["networkBindings"]]
    assert len(set(bindings)) == 6 and all(32768 <= port <= 60999 for _, port in bindings)
    health = target_health(sim, stack.target_group_arn)
    assert len(health) == 6 and set(health.values()) == {"healthy"}
    service = sim.client("ecs").describe_services(cluster="demo", services=["web"])["services"][0]
    assert (service["runningCount"], service["pendingCount"]) == (6, 0)
    assert service["events"][0]["message"] == "(service web) has reached a steady state."
    # serviceName filters (moto ignores it): a stray task of another family is not listed.
    sim.client("ecs").register_task_definition(family="other", containerDefinitions=[{"name": "o", "image": "x", "memory": 64}])
    sim.client("ecs").run_task(cluster="demo", taskDefinition="other", launchType="EC2")
    assert len(sim.client("ecs").list_tasks(cluster="demo", serviceName="web")["taskArns"]) == 6


def test_draining_instance_tasks_move_within_minimum_healthy_percent(sim: Simulator) -> None:
    """3 tasks on a DRAINING instance, minimumHealthyPercent 50, maximumPercent 200: replacements
    start at once, the old targets drain for the deregistration delay, then the old tasks get
    SIGTERM and stop after the stop timeout (ecsspot's user data sets 1m)."""
    stack = build_stack(sim, instances=2, tasks=6, delay=60, minimum=50, maximum=200, boot=90)
    tasks = tasks_of(sim, "demo")
    drained_arn, old = next(
        (arn, [t for t in tasks if t["containerInstanceArn"] == arn]) for arn in set(hosts(tasks).values())
    )
    assert len(old) == 3
    old_targets = {(sim.world.scheduler.runs[t["taskArn"]].instance_id, t["containers"][0]["networkBindings"][0]["hostPort"]) for t in old}

    sim.client("ecs").update_container_instances_state(cluster="demo", containerInstances=[drained_arn], status="DRAINING")
    sim.advance(1)
    health = target_health(sim, stack.target_group_arn)
    assert {health[t] for t in old_targets} == {"draining"}
    replacements = [t for t in tasks_of(sim, "demo") if t["containerInstanceArn"] != drained_arn and t["taskArn"] not in hosts(tasks)]
    assert len(replacements) == 3
    stopping = tasks_of(sim, "demo", desired="STOPPED")
    assert {t["lastStatus"] for t in stopping} == {"DEACTIVATING"} and len(stopping) == 3

    sim.advance(60)  # deregistration delay over: targets gone, SIGTERM
    health = target_health(sim, stack.target_group_arn)
    assert not old_targets & set(health)
    assert {t["lastStatus"] for t in tasks_of(sim, "demo", desired="STOPPED")} == {"STOPPING"}

    sim.advance(59)
    assert {t["lastStatus"] for t in tasks_of(sim, "demo", desired="STOPPED")} == {"STOPPING"}
    sim.advance(1)  # stop timeout
    assert {t["lastStatus"] for t in tasks_of(sim, "demo", desired="STOPPED")} == {"STOPPED"}
    current = tasks_of(sim, "demo")
    assert len(current) == 6 and drained_arn not in hosts(current).values()
    assert set(target_health(sim, stack.target_group_arn).values()) == {"healthy"}
    drained = container_instances(sim, "demo", status="DRAINING")
    assert drained[0]["runningTasksCount"] == 0


def test_with_minimum_healthy_100_old_targets_wait_for_healthy_replacements(sim: Simulator) -> None:
    stack = build_stack(sim, instances=2, tasks=2, delay=30, minimum=100, maximum=200, boot=90)
    tasks = tasks_of(sim, "demo")
    victim_arn = tasks[0]["containerInstanceArn"]
    sim.client("ecs").update_container_instances_state(cluster="demo", containerInstances=[victim_arn], status="DRAINING")
    sim.advance(39)  # replacement: 10 s to start, 30 s of health checks
    states = Counter(target_health(sim, stack.target_group_arn).values())
    assert states == {"healthy": 2, "initial": 1}
    sim.advance(2)
    states = Counter(target_health(sim, stack.target_group_arn).values())
    assert states == {"healthy": 2, "draining": 1}


def test_capacity_provider_strategy_base_then_weights(sim: Simulator) -> None:
    ecs = sim.client("ecs")
    ecs.create_cluster(clusterName="demo")
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-od", template, desired=2, base=0, percent=100)
    mixed_group(sim, "demo-spot", template, desired=3, base=0, percent=0)
    capacity_provider(sim, "demo-od", "demo-od")
    capacity_provider(sim, "demo-spot", "demo-spot")
    ecs.put_cluster_capacity_providers(
        cluster="demo",
        capacityProviders=["demo-od", "demo-spot"],
        defaultCapacityProviderStrategy=[
            {"capacityProvider": "demo-od", "base": 1, "weight": 1},
            {"capacityProvider": "demo-spot", "weight": 3},
        ],
    )
    web_task_definition(sim)
    tg = target_group(sim, "demo-tg")
    ecs.create_service(cluster="demo", serviceName="web", taskDefinition="web", desiredCount=8,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    described = ecs.describe_services(cluster="demo", services=["web"])["services"][0]
    assert described["capacityProviderStrategy"][0]["capacityProvider"] == "demo-od"
    sim.advance(60)

    tasks = tasks_of(sim, "demo")
    # base 1 on demand-od, then the other 7 in the ratio 1:3 -> 1 + 2 on-demand, 5 spot.
    assert Counter(t["capacityProviderName"] for t in tasks) == {"demo-od": 3, "demo-spot": 5}
    groups = {m.instance_id: m.group for m in sim.world.machines.values()}
    for t in tasks:
        assert groups[sim.world.scheduler.runs[t["taskArn"]].instance_id] == t["capacityProviderName"]


def test_tasks_die_with_their_host_and_are_replaced(sim: Simulator) -> None:
    build_stack(sim, instances=3, tasks=3, with_load_balancer=False, spot_draining=False, boot=60)
    victim = sim.spot_instances()[0]
    doomed = [t["taskArn"] for t in tasks_of(sim, "demo") if sim.world.scheduler.runs[t["taskArn"]].instance_id == victim]
    assert doomed
    sim.interrupt([victim])
    sim.advance(141)  # reclaimed at 120 s, noticed by ECS at 140 s
    stopped = {t["taskArn"]: t for t in tasks_of(sim, "demo", desired="STOPPED")}
    assert set(doomed) <= set(stopped)
    assert stopped[doomed[0]]["stoppedReason"] == f"Host EC2 (instance {victim}) terminated."
    sim.advance(60)  # the group's replacement instance, or room elsewhere
    running = tasks_of(sim, "demo")
    assert len(running) == 3 and {t["lastStatus"] for t in running} == {"RUNNING"}
