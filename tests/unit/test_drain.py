"""The drain workflow's decisions, against an in-memory fake of the APIs it uses (no moto)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from ecsspot.aws.calls import NOW, Call, Report, Sleep
from ecsspot.drain import drain
from ecsspot.errors import AwsError

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


@attrs.define
class Fake:
    """Just enough ECS + ELBv2 for drain: instances, one service, one target group."""

    instances: dict[str, dict[str, Any]] = attrs.Factory(dict)
    targets: list[dict[str, Any]] = attrs.Factory(list)
    service: dict[str, Any] = attrs.Factory(lambda: {"serviceName": "web", "serviceArn": "arn:svc/web", "status": "ACTIVE", "desiredCount": 2, "runningCount": 2, "loadBalancers": [{"targetGroupArn": TG}]})
    delay: int = 30
    now: float = 1000.0
    calls: list[str] = attrs.Factory(list)
    rounds: int = 0
    reports: list[Report] = attrs.Factory(list)
    #: The round in which each operation was first called.
    first_round: dict[str, int] = attrs.Factory(dict)
    on_sleep: Callable[[Fake], None] | None = None
    #: Answers for operations the fake does not model (operation → answer function).
    extra: dict[str, Callable[[Call], Any]] = attrs.Factory(dict)

    def add(self, iid: str, running: int = 1, port: int = 32768) -> None:
        self.instances[iid] = {"ec2InstanceId": iid, "containerInstanceArn": f"arn:ci/{iid}", "status": "ACTIVE", "runningTasksCount": running, "pendingTasksCount": 0}
        self.targets.append({"Target": {"Id": iid, "Port": port}, "TargetHealth": {"State": "healthy"}})

    def answer(self, c: Call) -> Any:
        self.calls.append(c.operation)
        self.first_round.setdefault(c.operation, self.rounds)
        p = c.params
        if c.operation in self.extra:
            return self.extra[c.operation](c)
        if c.operation == "list_container_instances":
            # The filter drain sends, as ECS applies it: "ec2InstanceId in ['i-…', …]".
            # and its status parameter (without it, every status but INACTIVE). As the simulator
            # does, a filter longer than the 2,000 characters AWS documents is refused.
            assert len(p.get("filter", "")) <= 2000
            wanted = set(re.findall(r"'([^']+)'", p["filter"])) if "filter" in p else set(self.instances)
            listed = [ci for ci in self.instances.values() if ci["ec2InstanceId"] in wanted]
            listed = [ci for ci in listed if ci["status"] == p["status"]] if "status" in p else [ci for ci in listed if ci["status"] != "INACTIVE"]
            return {"containerInstanceArns": [ci["containerInstanceArn"] for ci in listed]}
        if c.operation == "describe_container_instances":
            return {"containerInstances": [ci for ci in self.instances.values() if ci["containerInstanceArn"] in p["containerInstances"]]}
        if c.operation == "update_container_instances_state":
            assert len(p["containerInstances"]) <= 10
            changed = []
            for ci in self.instances.values():
                if ci["containerInstanceArn"] in p["containerInstances"]:
                    ci["status"] = p["status"]
                    changed.append(dict(ci))
            # As ECS answers: the container instances it changed, ec2InstanceId included.
            return {"containerInstances": changed, "failures": []}
        if c.operation == "list_tasks":
            # Its runningTasksCount tasks, desired RUNNING; none stopping or stopped.
            (ci,) = [ci for ci in self.instances.values() if ci["containerInstanceArn"] == p["containerInstance"]]
            running = range(ci["runningTasksCount"]) if p["desiredStatus"] == "RUNNING" else ()
            return {"taskArns": [f"arn:task/{ci['ec2InstanceId']}/{n}" for n in running]}
        if c.operation == "describe_tasks":
            assert len(p["tasks"]) <= 100
            tasks = []
            for arn in p["tasks"]:
                _, iid, n = arn.rsplit("/", 2)
                ci = self.instances[iid]
                status = "RUNNING" if int(n) < ci["runningTasksCount"] else "STOPPED"
                task = {"taskArn": arn, "containerInstanceArn": ci["containerInstanceArn"], "lastStatus": status, "desiredStatus": status, "group": "service:web"}
                if ci.get("ip"):
                    task["attachments"] = [{"type": "ElasticNetworkInterface", "details": [{"name": "privateIPv4Address", "value": f"{ci['ip']}{n}"}]}]
                tasks.append(task)
            return {"tasks": tasks}
        if c.operation == "list_services":
            return {"serviceArns": [self.service["serviceArn"]]}
        if c.operation == "describe_services":
            return {"services": [self.service]}
        if c.operation == "describe_target_health":
            return {"TargetHealthDescriptions": list(self.targets)}
        if c.operation == "deregister_targets":
            gone = {(t["Id"], t.get("Port")) for t in p["Targets"]}
            for t in self.targets:
                if (t["Target"]["Id"], t["Target"].get("Port")) in gone:
                    t["TargetHealth"] = {"State": "draining"}
                    t["until"] = self.now + self.delay
            return {}
        if c.operation == "describe_target_group_attributes":
            return {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": str(self.delay)}]}
        raise AssertionError(c.operation)

    def run(self, workflow: Any) -> Any:
        send: Any = None
        while True:
            try:
                request = workflow.send(send)
            except StopIteration as stop:
                return stop.value
            if isinstance(request, Call):
                self.rounds += 1
                send = self.answer(request)
            elif isinstance(request, tuple):
                self.rounds += 1
                send = tuple(self.answer(c) for c in request)
            elif isinstance(request, Sleep):
                self.now += request.seconds
                self.targets = [t for t in self.targets if t.get("until", float("inf")) > self.now]
                if self.on_sleep:
                    self.on_sleep(self)
                send = self.now
            elif request is NOW:
                send = self.now
            elif isinstance(request, Report):
                self.reports.append(request)
                send = None


def tasks_move_off(fake: Fake) -> None:
    """ECS moves tasks off DRAINING instances: each starts again, healthy, on an ACTIVE one."""
    hosts = [ci for ci in fake.instances.values() if ci["status"] == "ACTIVE"]
    for ci in fake.instances.values():
        if ci["status"] == "DRAINING" and ci["runningTasksCount"]:
            for n in range(ci["runningTasksCount"]):
                if hosts:
                    host = hosts[n % len(hosts)]
                    host["runningTasksCount"] += 1
                    port = 33000 + len(fake.targets)
                    fake.targets.append({"Target": {"Id": host["ec2InstanceId"], "Port": port}, "TargetHealth": {"State": "healthy"}})
            ci["runningTasksCount"] = 0


@pytest.mark.parametrize(("known", "dereg_round", "rounds"), [((TG,), 2, 3), ((), 4, 4)])
def test_draining_and_deregistration_come_first_in_constant_rounds(known: tuple[str, ...], dereg_round: int, rounds: int) -> None:
    fake = Fake(on_sleep=tasks_move_off)
    ids = [f"i-{n:017x}" for n in range(25)]
    for iid in ids:
        fake.add(iid)
    result = fake.run(drain("c", ids, deadline=100, wait=False, target_groups=known))
    assert {a.status for a in result.actions} == {"draining"}
    assert result.service_target_groups == (TG,)
    assert all(ci["status"] == "DRAINING" for ci in fake.instances.values())
    assert all(t["TargetHealth"]["State"] == "draining" for t in fake.targets)
    assert fake.calls.count("update_container_instances_state") == 3  # 10 per call
    assert fake.calls.count("deregister_targets") == 1  # one group, all its targets at once
    # Whatever N: DRAINING in round 2 (issue 12: no round only to describe the instances);
    # deregistration in round 2 when the group was known (spec or cache), round 4 when it is
    # only found through the services (its targets in round 3).
    assert fake.first_round["update_container_instances_state"] == 2
    assert fake.first_round["deregister_targets"] == dereg_round
    assert fake.rounds == rounds


def test_waits_until_tasks_and_targets_are_gone() -> None:
    fake = Fake(on_sleep=tasks_move_off)
    fake.add("i-0000000000000000a", running=3)
    fake.add("i-0000000000000000b", running=1)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=100))
    (action,) = result.actions
    assert action.status == "drained", action
    assert fake.now >= 1030  # the 30 s deregistration delay had to pass
    assert fake.instances["i-0000000000000000b"]["status"] == "ACTIVE"


def test_times_out_and_says_what_is_left() -> None:
    fake = Fake(delay=300)  # tasks never move and the delay outlives the deadline
    fake.add("i-0000000000000000a", running=2)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=60))
    (action,) = result.actions
    assert action.status == "timed_out"
    assert action.left["tasks"] == 2 and action.left["targets"] == ["web:32768 (draining)"]
    assert "exceeds the 60 s deadline" in action.reason
    assert not result.drained and result.timed_out == ("i-0000000000000000a",)
    assert fake.now == pytest.approx(1060)


def test_never_drained_while_service_is_below_desired() -> None:
    fake = Fake(on_sleep=tasks_move_off, delay=5)
    fake.add("i-0000000000000000a")
    fake.service["runningCount"] = 1
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=20))
    assert result.actions[0].status == "timed_out"
    # One task runs, but nowhere healthy apart from the instance being drained.
    assert result.actions[0].left["services_below_desired"] == ["web 0/2"]


def test_reactivated_instance_is_not_drained() -> None:
    def reactivate(fake: Fake) -> None:
        tasks_move_off(fake)
        fake.instances["i-0000000000000000a"]["status"] = "ACTIVE"

    fake = Fake(on_sleep=reactivate, delay=1)
    fake.add("i-0000000000000000a")
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=15))
    assert result.actions[0].status == "timed_out"
    assert result.actions[0].left["status"] == "ACTIVE"


def test_verify_only_changes_nothing() -> None:
    fake = Fake(on_sleep=tasks_move_off)
    fake.add("i-0000000000000000a")
    fake.run(drain("c", ["i-0000000000000000a"], deadline=10, act=False))
    assert "update_container_instances_state" not in fake.calls and "deregister_targets" not in fake.calls


def test_per_instance_deadlines_and_heartbeats() -> None:
    fake = Fake(delay=1000)
    fake.add("i-0000000000000000a")
    fake.add("i-0000000000000000b")
    beats: list[float] = []
    fake.extra["record_lifecycle_action_heartbeat"] = lambda c: beats.append(fake.now) or {}
    heartbeat = [Call("autoscaling", "record_lifecycle_action_heartbeat", {})]
    result = fake.run(drain("c", ["i-0000000000000000a", "i-0000000000000000b"], deadline=100, deadlines={"i-0000000000000000a": 10}, heartbeat=heartbeat, heartbeat_every=30))
    assert [a.status for a in result.actions] == ["timed_out", "timed_out"]
    assert fake.now == pytest.approx(1100)
    assert len(beats) >= 3


def test_unknown_instance_is_reported_not_crashed() -> None:
    fake = Fake()
    result = fake.run(drain("c", ["i-0000000000000000f"], deadline=5))
    # Neither a container instance nor a target holder: not found, never "drained" (issue 9 item 11).
    assert result.actions[0].status == "not_found"
    assert "no container instance of cluster c" in result.actions[0].reason
    assert result.not_found == ("i-0000000000000000f",)


def test_aws_errors_propagate_as_ecsspot_errors() -> None:
    wf = drain("c", ["i-0000000000000000a"], deadline=5)
    assert wf.send(None) is NOW
    wf.send(1000.0)
    with pytest.raises(AwsError):
        wf.throw(AwsError("ListServices", "AccessDenied", "no"))


def test_ip_targets_are_found_through_the_tasks_and_deregistered_in_round_4() -> None:
    """awsvpc tasks: the group's targets are the tasks' ENI addresses. Their tasks are listed
    (ListTasks per container instance, desired RUNNING and STOPPED) next to the describes of
    round 2 and described next to DRAINING in round 3; their targets go in round 4."""
    fake = Fake()
    ids = [f"i-{n:017x}" for n in range(25)]
    for n, iid in enumerate(ids):
        fake.add(iid)
        fake.instances[iid]["ip"] = f"10.0.{n}."
    fake.targets = [{"Target": {"Id": f"10.0.{n}.0", "Port": 8080}, "TargetHealth": {"State": "healthy"}} for n in range(26)]
    result = fake.run(drain("c", ids, deadline=100, wait=False, target_groups=(TG,)))
    assert {a.status for a in result.actions} == {"draining"}
    assert (fake.first_round["list_tasks"], fake.first_round["describe_tasks"], fake.first_round["deregister_targets"]) == (2, 3, 4)
    assert fake.calls.count("list_tasks") == 2 * 25 and fake.calls.count("describe_tasks") == 1
    states = {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in fake.targets}
    # Every task's address on the drained instances; the one on no drained instance stays.
    assert states == {**{f"10.0.{n}.0": "draining" for n in range(25)}, "10.0.25.0": "healthy"}
    assert fake.rounds == 4


def test_first_heartbeat_is_due_from_the_lifecycle_actions_start() -> None:
    """Issue 10 item 6: the hook's heartbeat timeout runs from the action's start; an event handled
    25 s late gets its first heartbeat 30 s after the action began, not 30 s after the handler did."""
    fake = Fake(delay=1000)
    fake.add("i-0000000000000000a")
    beats: list[float] = []
    fake.extra["record_lifecycle_action_heartbeat"] = lambda c: beats.append(fake.now) or {}
    heartbeat = [Call("autoscaling", "record_lifecycle_action_heartbeat", {})]
    began = fake.now - 25
    fake.run(drain("c", ["i-0000000000000000a"], deadline=100, heartbeat=heartbeat, heartbeat_every=30, heartbeat_since=began, poll=1))
    assert beats[0] - began == pytest.approx(30, abs=1.5)
    assert all(b - a == pytest.approx(30, abs=1.5) for a, b in zip(beats, beats[1:]))


def test_list_services_asks_for_pages_of_100() -> None:
    """Issue 10 item 6: ListServices returns 10 services a page unless asked for up to 100; the
    call the drain makes reaches ECS as maxResults=100 through botocore's paginator (what the
    drivers do with a paginated call)."""
    import boto3
    from botocore.stub import Stubber

    from ecsspot.drain import _list_services_call

    c = _list_services_call("demo")
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_services", {"serviceArns": ["arn:svc/a"], "nextToken": "t"}, {"cluster": "demo", "maxResults": 100})
        stub.add_response("list_services", {"serviceArns": ["arn:svc/b"]}, {"cluster": "demo", "maxResults": 100, "nextToken": "t"})
        assert c.paginate
        merged = client.get_paginator(c.operation).paginate(**c.params).build_full_result()
    assert merged["serviceArns"] == ["arn:svc/a", "arn:svc/b"]


def test_the_drain_reports_what_it_waits_for_at_every_look() -> None:
    """Progress (issue 13 item 1): the library says what it is waiting for; the CLI shows it."""
    fake = Fake(delay=300)
    fake.add("i-0000000000000000a", running=2)
    fake.add("i-0000000000000000b", running=1)
    fake.run(drain("c", ["i-0000000000000000a", "i-0000000000000000b"], deadline=60))
    first, *waits = fake.reports
    assert first == Report("drain", "2 instance(s) set DRAINING; 2 target(s) deregistering")
    assert waits, "no report while waiting"
    assert {(r.done, r.total) for r in waits} == {(0, 2)}
    assert waits[0].message.startswith("0/2 instance(s) drained; waiting for i-0000000000000000a and 1 more: 2 task(s) (2 RUNNING); ")
    assert "targets web:32768 (draining)" in waits[0].message


@pytest.mark.parametrize("n", [1, 60, 100, 1000, 1001])
def test_the_no_wait_start_costs_n_over_10_plus_a_constant_with_the_groups_known(n: int) -> None:
    """Issue 12 goals 2-3: with the groups and their delays known (spec or the state table's
    cache) and no ip target among them, starting a drain lists no task and reads no group
    attribute: N/10 UpdateContainerInstancesState (whose answer names the instances: no
    DescribeContainerInstances), 2·N/90 ListContainerInstances (every status but INACTIVE, and
    ACTIVE, by filters of up to 2,000 characters), one DeregisterTargets per group (up to the
    group quota's 1,000 targets; 200 before) and one call per group or per service page, in 2
    rounds."""
    fake = Fake()
    ids = [f"i-{k:017x}" for k in range(n)]
    for iid in ids:
        fake.add(iid)
    result = fake.run(drain("c", ids, deadline=100, wait=False, target_groups=(TG,), delays={TG: 30}))
    assert {a.status for a in result.actions} == {"draining"}
    assert all(t["TargetHealth"]["State"] == "draining" for t in fake.targets)
    ceil = lambda size: -(-n // size)  # noqa: E731
    assert sorted(fake.calls) == sorted(
        ["update_container_instances_state"] * ceil(10)
        + ["list_container_instances"] * 2 * ceil(90)
        + ["deregister_targets"] * ceil(1000)
        + ["list_services", "describe_services", "describe_target_health"]
    )
    assert "list_tasks" not in fake.calls and "describe_target_group_attributes" not in fake.calls
    assert fake.rounds == 2
    assert result.deregistration_delays == {TG: 30}


def test_without_cached_delays_they_are_read_after_the_deregistration() -> None:
    fake = Fake(delay=300)
    fake.add("i-0000000000000000a")
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=100, wait=False, target_groups=(TG,)))
    assert fake.first_round["describe_target_group_attributes"] == 3 and fake.rounds == 3
    assert result.deregistration_delays == {TG: 300}
    assert "deregistration delay 300 s exceeds the 100 s deadline" in result.actions[0].reason


def test_tasks_not_listed_at_the_start_are_listed_at_the_first_look() -> None:
    """The wait path still judges "drained" task by task: the tasks skipped before DRAINING are
    listed by the first look of the verification, after the DRAINING round."""
    fake = Fake(delay=300)
    fake.add("i-0000000000000000a", running=2)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=20, target_groups=(TG,), delays={TG: 300}))
    assert fake.first_round["list_tasks"] > fake.first_round["update_container_instances_state"]
    assert result.actions[0].status == "timed_out" and result.actions[0].left["tasks"] == 2


def test_ip_targets_of_a_group_found_through_the_services_are_deregistered() -> None:
    """A stale cache: the known group holds instance targets, the services bring an ip group.
    Its tasks are listed beside its targets (round 3) and its addresses deregistered."""
    ip_group = TG.replace("/web/", "/api/")
    fake = Fake()
    fake.add("i-0000000000000000a")
    fake.instances["i-0000000000000000a"]["ip"] = "10.0.0."
    ip_targets = [{"Target": {"Id": "10.0.0.0", "Port": 8080}, "TargetHealth": {"State": "healthy"}}]
    fake.service["loadBalancers"] = [{"targetGroupArn": TG}, {"targetGroupArn": ip_group}]
    instance_targets = fake.targets
    fake.extra["describe_target_health"] = lambda c: {"TargetHealthDescriptions": ip_targets if c.params["TargetGroupArn"] == ip_group else instance_targets}
    dereg: list[str] = []
    fake.extra["deregister_targets"] = lambda c: dereg.extend(t["Id"] for t in c.params["Targets"]) or {}
    fake.run(drain("c", ["i-0000000000000000a"], deadline=100, wait=False, target_groups=(TG,), delays={TG: 30, ip_group: 30}))
    assert fake.first_round["list_tasks"] == 3
    assert sorted(dereg) == ["10.0.0.0", "i-0000000000000000a"]


def test_draining_instances_are_described_not_set_again_and_refusals_are_named() -> None:
    """Round 2 sets DRAINING on the ACTIVE instances only (listed with status ACTIVE); one
    already DRAINING is described beside it, not set again. A refusal carries only the ARN: the
    refused instance is described next (round 3) so the action names it and the reason."""
    fake = Fake()
    for iid in ("i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"):
        fake.add(iid)
    fake.instances["i-0000000000000000b"]["status"] = "DRAINING"
    sent: list[list[str]] = []

    def update(c: Call) -> Any:
        sent.append(list(c.params["containerInstances"]))
        fake.instances["i-0000000000000000a"]["status"] = "DRAINING"
        ok = [dict(fake.instances["i-0000000000000000a"])]
        return {"containerInstances": ok, "failures": [{"arn": "arn:ci/i-0000000000000000c", "reason": "MISSING"}]}

    fake.extra["update_container_instances_state"] = update
    ids = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]
    result = fake.run(drain("c", ids, deadline=100, wait=False, target_groups=(TG,), delays={TG: 30}))
    assert sent == [["arn:ci/i-0000000000000000a", "arn:ci/i-0000000000000000c"]]
    assert fake.first_round == {**fake.first_round, "update_container_instances_state": 2, "describe_container_instances": 2}
    reasons = {a.instance_id: (a.status, a.reason) for a in result.actions}
    assert reasons["i-0000000000000000b"] == ("draining", "DRAINING; targets deregistering")
    assert reasons["i-0000000000000000c"] == ("draining", "DRAINING; targets deregistering; ECS refused DRAINING: MISSING")
    assert fake.calls.count("describe_container_instances") == 2 and fake.rounds == 3


TG_OTHER = TG.replace("/web/", "/other/")
TG_API = TG.replace("/web/", "/api/")


@attrs.define
class ManyServices(Fake):
    """Three services, each with its group: ``web`` (TG, targets on the drained instance),
    ``other`` (no task there) and ``api``, whose task is placed on the drained instance only once
    the drain has begun (before DRAINING took) and registers its target in the api group."""

    api_on: str | None = None
    api_stopped: bool = False
    api_daemon: bool = False
    api_targets: list[dict[str, Any]] = attrs.Factory(list)
    health_asked: list[str] = attrs.Factory(list)

    def answer(self, c: Call) -> Any:
        p = c.params
        if c.operation == "list_services":
            self.calls.append(c.operation)
            return {"serviceArns": ["arn:svc/web", "arn:svc/other", "arn:svc/api"]}
        if c.operation == "describe_services":
            self.calls.append(c.operation)
            others = [
                {"serviceName": n, "serviceArn": f"arn:svc/{n}", "status": "ACTIVE", "desiredCount": 1, "runningCount": 1, "loadBalancers": [{"targetGroupArn": g}]}
                for n, g in (("other", TG_OTHER), ("api", TG_API))
            ]
            if self.api_daemon:
                others[1]["schedulingStrategy"] = "DAEMON"
            return {"services": [s for s in (self.service, *others) if s["serviceArn"] in p["services"] or s["serviceName"] in p["services"]]}
        if c.operation == "describe_target_health" and p["TargetGroupArn"] != TG:
            self.calls.append(c.operation)
            self.health_asked.append(p["TargetGroupArn"])
            if p["TargetGroupArn"] == TG_OTHER:
                return {"TargetHealthDescriptions": [{"Target": {"Id": "i-0000000000000000b", "Port": 40000}, "TargetHealth": {"State": "healthy"}}]}
            return {"TargetHealthDescriptions": list(self.api_targets)}
        if c.operation == "describe_container_instances":
            # The api task counts beside the web ones (tasks_move_off moves only those).
            described = super().answer(c)
            api_here = self.api_on is not None and not self.api_stopped
            return {"containerInstances": [{**ci, "runningTasksCount": ci["runningTasksCount"] + int(api_here and ci["ec2InstanceId"] == self.api_on)} for ci in described["containerInstances"]]}
        if c.operation == "list_tasks":
            listed = super().answer(c)
            ci = next(ci for ci in self.instances.values() if ci["containerInstanceArn"] == p["containerInstance"])
            if self.api_on == ci["ec2InstanceId"] and (p["desiredStatus"] == "STOPPED") == self.api_stopped:
                listed["taskArns"].append("arn:task-api/1")
            return listed
        if c.operation == "describe_tasks" and "arn:task-api/1" in p["tasks"]:
            rest = [t for t in p["tasks"] if t != "arn:task-api/1"]
            tasks = super().answer(Call("ecs", "describe_tasks", {**p, "tasks": rest}))["tasks"] if rest else []
            status = "STOPPED" if self.api_stopped else "RUNNING"
            ci = self.instances[self.api_on or ""]
            tasks.append({"taskArn": "arn:task-api/1", "containerInstanceArn": ci["containerInstanceArn"], "lastStatus": status, "desiredStatus": status, "group": "service:api"})
            return {"tasks": tasks}
        return super().answer(c)


def _api_task_comes_and_goes(a: str, *, arrives: float, leaves: float, daemon: bool = False) -> ManyServices:
    """:class:`ManyServices` with ``a`` and a second instance (its api target healthy): the api
    task lands on ``a`` at the first look from ``arrives`` on (its target registering) and leaves
    at the first from ``leaves`` on (its target gone); the other tasks move off as usual."""

    def step(fake: Fake) -> None:
        assert isinstance(fake, ManyServices)
        tasks_move_off(fake)
        if fake.api_on is None and fake.now >= arrives:
            fake.api_on = a
            fake.api_targets.append({"Target": {"Id": a, "Port": 41000}, "TargetHealth": {"State": "healthy"}})
        elif fake.now >= leaves and fake.api_on and not fake.api_stopped:
            fake.api_stopped = True
            fake.api_targets = [t for t in fake.api_targets if t["Target"]["Id"] != a]

    b = "i-0000000000000000b"
    fake = ManyServices(on_sleep=step, api_daemon=daemon)
    fake.add(a)
    fake.add(b)
    fake.api_targets.append({"Target": {"Id": b, "Port": 41002}, "TargetHealth": {"State": "healthy"}})
    return fake


def test_a_look_reads_the_groups_of_the_instances_tasks_and_one_gaining_a_target_later() -> None:
    """Issue 12 goal 6: a look reads the groups that held the instances' targets and those of the
    services with a task there, not every group of the cluster (``other`` is never read). A
    task placed before DRAINING took registers a target in a group that held none (``api``):
    its task is listed, its service's group read in the same look, and the drain waits for
    that target too."""
    a = "i-0000000000000000a"
    fake = _api_task_comes_and_goes(a, arrives=0, leaves=1040)
    result = fake.run(drain("c", [a], deadline=100, target_groups=(TG,)))
    (action,) = result.actions
    assert action.status == "drained", action
    assert fake.now >= 1040  # not before the api task's target on the instance was gone
    # Both read once when first found through the services; then only api, once its task is seen.
    assert fake.health_asked.count(TG_OTHER) == 1 and fake.health_asked.count(TG_API) > 2
    waiting = [r.message for r in fake.reports if "api:41000" in r.message]
    assert waiting, "the api target was never seen holding the drain"


def test_a_daemon_task_seen_in_the_look_that_would_end_the_drain_has_its_group_read_first() -> None:
    """A daemon task does not hold a drain, its target does. Seen for the first time in the look
    where everything else is gone, its service's group is read in that same look: the drain
    waits for its target instead of saying "drained" one look too early."""
    a = "i-0000000000000000a"
    fake = _api_task_comes_and_goes(a, arrives=1030, leaves=1045, daemon=True)
    result = fake.run(drain("c", [a], deadline=100, target_groups=(TG,)))
    (action,) = result.actions
    assert action.status == "drained", action
    assert fake.now >= 1045, action  # not at 1030, when only the daemon task's target was left


def test_no_look_while_the_deregistered_targets_must_still_show_draining() -> None:
    """Issue 12 goal 6: a target this drain deregistered shows "draining" for its group's whole
    delay (AWS documents it), so looks in between cannot end the drain: one look at the start,
    the next when the delay is over, not one every 5 s (7 looks before)."""
    fake = Fake(on_sleep=tasks_move_off, delay=30)
    fake.add("i-0000000000000000a")
    fake.add("i-0000000000000000b", running=0)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=100, target_groups=(TG,), delays={TG: 30}))
    (action,) = result.actions
    assert action.status == "drained" and action.reason == "drained in 30 s"
    assert fake.calls.count("describe_container_instances") == 2


def test_a_target_already_draining_before_the_drain_is_polled_as_before() -> None:
    """Its delay may have begun long before: nothing bounds when it goes, so the drain looks every
    ``poll`` seconds."""
    fake = Fake(on_sleep=tasks_move_off, delay=30)
    fake.add("i-0000000000000000a")
    fake.targets[0]["TargetHealth"] = {"State": "draining"}
    fake.targets[0]["until"] = fake.now + 12
    fake.add("i-0000000000000000b", running=0)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=100, target_groups=(TG,), delays={TG: 30}))
    assert result.actions[0].reason == "drained in 15 s"
    assert fake.calls.count("describe_container_instances") == 4


def test_the_wait_for_a_delay_still_beats_on_time() -> None:
    fake = Fake(delay=1000)
    fake.add("i-0000000000000000a")
    beats: list[float] = []
    fake.extra["record_lifecycle_action_heartbeat"] = lambda c: beats.append(fake.now) or {}
    heartbeat = [Call("autoscaling", "record_lifecycle_action_heartbeat", {})]
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=100, delays={TG: 1000}, heartbeat=heartbeat, heartbeat_every=30))
    assert result.actions[0].status == "timed_out" and fake.now == pytest.approx(1100)
    assert [b - 1000 for b in beats] == [30, 60, 90]
    # A look at the start, before each beat and at the deadline: none in between.
    assert fake.calls.count("describe_container_instances") == 5


def test_next_look_and_not_before_are_pure() -> None:
    from ecsspot.drain import Look, next_look, not_before, what_is_left

    draining = {"TargetHealthDescriptions": [{"Target": {"Id": "i-a", "Port": 80}, "TargetHealth": {"State": "draining"}}]}
    look = Look(container_instances=(), target_health={TG: draining}, services=(), tasks={})
    seen = what_is_left(look, {"i-a"})
    assert not_before(seen, {"i-a"}, {(TG, "i-a", 80): 100.0}, {TG: 30}) == 130.0
    # Not deregistered by this drain, or its delay unknown: no bound.
    assert not_before(seen, {"i-a"}, {}, {TG: 30}) == 0.0
    assert not_before(seen, {"i-a"}, {(TG, "i-a", 80): 100.0}, {}) == 0.0
    # Another pending instance holding nothing could be drained at any look.
    assert not_before(what_is_left(look, {"i-a", "i-b"}), {"i-a", "i-b"}, {(TG, "i-a", 80): 100.0}, {TG: 30}) == 0.0
    assert next_look(100.0, 5.0, 0.0, 200.0) == 5.0
    assert next_look(100.0, 5.0, 130.0, 200.0) == 30.0
    assert next_look(100.0, 5.0, 130.0, 120.0) == 20.0
    assert next_look(100.0, 5.0, 130.0, 200.0, beat_due=110.0) == 10.0
    assert next_look(100.0, 5.0, 130.0, 200.0, beat_due=101.0) == 5.0
    # Never more than LONGEST_SKIP between looks, whatever the bound (it may be stale).
    assert next_look(100.0, 5.0, 400.0, 1000.0) == 30.0
    assert next_look(100.0, 60.0, 400.0, 1000.0) == 60.0  # a poll longer than that stays the poll


def test_a_lowered_delay_or_a_terminated_instance_is_seen_within_the_longest_skip() -> None:
    """The cached delay (300 s) is an hour old at most, and the group's is 10 s now: the drain
    looks again within LONGEST_SKIP, not after 300 s (a review found "drained in 300 s")."""
    fake = Fake(on_sleep=tasks_move_off, delay=10)
    fake.add("i-0000000000000000a")
    fake.add("i-0000000000000000b", running=0)
    result = fake.run(drain("c", ["i-0000000000000000a"], deadline=600, target_groups=(TG,), delays={TG: 300}))
    (action,) = result.actions
    assert action.status == "drained" and action.reason == "drained in 30 s"
