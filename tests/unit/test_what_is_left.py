"""``drain.what_is_left``: when a drain is over, decided from one look at AWS's answers (pure)."""

from __future__ import annotations

from typing import Any

from ecsspot.drain import Look, Task, what_is_left

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
I1, I2 = "i-0000000000000000a", "i-0000000000000000b"


def ci(iid: str, status: str = "DRAINING", running: int = 0, pending: int = 0) -> dict[str, Any]:
    return {"ec2InstanceId": iid, "containerInstanceArn": f"arn:ci/{iid}", "status": status, "runningTasksCount": running, "pendingTasksCount": pending}


def target(target_id: str, state: str, port: int = 32768) -> dict[str, Any]:
    return {"Target": {"Id": target_id, "Port": port}, "TargetHealth": {"State": state}}


def service(running: int = 2, desired: int = 2) -> dict[str, Any]:
    return {"serviceName": "web", "runningCount": running, "desiredCount": desired, "loadBalancers": [{"targetGroupArn": TG}]}


def task(n: int, iid: str, last: str, desired: str = "STOPPED", group: str = "service:web", addresses: tuple[str, ...] = ()) -> Task:
    return Task(f"arn:task/{n}", iid, last, desired, group, addresses)


def look(cis: list[dict[str, Any]], targets: list[dict[str, Any]], services: list[dict[str, Any]], tasks: list[Task]) -> Look:
    return Look(tuple(cis), {TG: {"TargetHealthDescriptions": targets}}, tuple(services), {t.arn: t for t in tasks})


HEALTHY_ELSEWHERE = [target(I2, "healthy", 32768), target(I2, "healthy", 32769)]


def test_drained_when_tasks_stopped_targets_gone_and_replacements_healthy() -> None:
    decided = what_is_left(look([ci(I1)], HEALTHY_ELSEWHERE, [service()], [task(1, I1, "STOPPED")]), [I1])
    assert decided.left == {} and decided.gone == frozenset() and decided.relist == frozenset()


def test_a_task_still_stopping_holds_the_instance() -> None:
    """runningTasksCount counts desired RUNNING only: a STOPPING task is seen task by task."""
    decided = what_is_left(look([ci(I1, running=0)], HEALTHY_ELSEWHERE, [service()], [task(1, I1, "STOPPING")]), [I1])
    assert decided.left[I1] == {"tasks": 1, "task_states": {"STOPPING": 1}}


def test_daemon_tasks_do_not_hold_it_and_standalone_ones_are_named() -> None:
    tasks = [task(1, I1, "RUNNING", "RUNNING", group="service:agent"), task(2, I1, "RUNNING", "RUNNING", group="family:batch")]
    decided = what_is_left(look([ci(I1, running=2)], HEALTHY_ELSEWHERE, [service()], tasks), [I1], daemon_groups=["service:agent"])
    assert decided.left[I1]["tasks"] == 1
    assert decided.left[I1]["standalone_tasks"] == ["2 (family:batch, RUNNING)"]


def test_a_registered_or_draining_target_holds_it() -> None:
    targets = [target(I1, "draining"), *HEALTHY_ELSEWHERE]
    decided = what_is_left(look([ci(I1)], targets, [service()], []), [I1])
    assert decided.left[I1] == {"targets": ["web:32768 (draining)"]}


def test_an_ip_target_of_a_task_there_is_its_own_and_not_healthy_elsewhere() -> None:
    """awsvpc: the target's id is the task ENI's address; while that task lives it belongs to
    the instance, and a healthy one does not count as a replacement."""
    tasks = [task(1, I1, "RUNNING", "RUNNING", addresses=("10.0.1.5",))]
    targets = [target("10.0.1.5", "healthy", 80), target("10.0.2.9", "healthy", 80)]
    decided = what_is_left(look([ci(I1, running=1)], targets, [service()], tasks), [I1])
    assert decided.left[I1]["targets"] == ["web:10.0.1.5:80 (healthy)"]
    assert decided.left[I1]["services_below_desired"] == ["web 1/2"]


def test_a_replacement_running_but_unhealthy_keeps_the_drain_open() -> None:
    targets = [target(I2, "healthy"), target(I2, "unhealthy", 32769)]
    decided = what_is_left(look([ci(I1)], targets, [service(running=2)], []), [I1])
    assert decided.left[I1] == {"services_below_desired": ["web 1/2"]}


def test_an_unhealthy_draining_target_is_not_a_replacement() -> None:
    targets = [target(I2, "healthy"), target(I2, "unhealthy.draining", 32769)]
    assert what_is_left(look([ci(I1)], targets, [service()], []), [I1]).left[I1] == {"services_below_desired": ["web 1/2"]}


def test_a_terminated_instance_is_gone_with_nothing_left() -> None:
    decided = what_is_left(look([ci(I1, status="INACTIVE")], [], [service(running=1)], [task(1, I1, "RUNNING", "RUNNING")]), [I1])
    assert decided.gone == {I1} and decided.left == {I1: {}}


def test_set_active_again_is_not_drained_and_is_listed_again() -> None:
    decided = what_is_left(look([ci(I1, status="ACTIVE")], HEALTHY_ELSEWHERE, [service()], []), [I1])
    assert decided.left[I1] == {"status": "ACTIVE"} and decided.relist == {I1}


def test_more_tasks_counted_than_seen_means_listing_again() -> None:
    """ECS counts a task the drain has not described yet: look for it next time."""
    decided = what_is_left(look([ci(I1, running=2)], HEALTHY_ELSEWHERE, [service()], [task(1, I1, "RUNNING", "RUNNING")]), [I1])
    assert decided.relist == {I1} and decided.left[I1]["tasks"] == 1


def test_a_gone_target_group_holds_nothing() -> None:
    gone_group = Look((ci(I1),), {TG: None}, (), {})
    assert what_is_left(gone_group, [I1]).left == {}
