"""The protection reconciler's pure decisions (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from ecsspot.aws.calls import Call
from ecsspot.errors import AwsError
from ecsspot.protection import Decisions, ProtectionAction, Seen, _carry_out, decide

NOW = 1_700_000_000.0
TEN_MINUTES = 600.0


def seen(iid: str, **changes: Any) -> Seen:
    values: dict[str, Any] = dict(
        instance_id=iid, group="c-spot", pool="spot", protected=True, lifecycle_state="InService", container_status="ACTIVE", tasks=0, daemon_tasks=1
    )
    values.update(changes)
    return Seen(**values)


def kinds(decisions: Decisions) -> dict[str, tuple[str, str]]:
    return {a.instance_id: (a.kind, a.status) for a in decisions.actions}


def test_idle_protected_instance_waits_for_the_threshold_then_is_unprotected() -> None:
    first = decide([seen("i-1")], {}, now=NOW, idle_after=TEN_MINUTES)
    assert kinds(first) == {"i-1": ("wait", "waiting")}
    assert first.idle_since == {"i-1": NOW} and not first.unprotect

    almost = decide([seen("i-1")], first.idle_since, now=NOW + TEN_MINUTES - 1, idle_after=TEN_MINUTES)
    assert kinds(almost) == {"i-1": ("wait", "waiting")}

    due = decide([seen("i-1")], first.idle_since, now=NOW + TEN_MINUTES, idle_after=TEN_MINUTES)
    assert kinds(due) == {"i-1": ("unprotect", "planned")}
    assert due.unprotect == {"c-spot": ("i-1",)}
    assert due.actions[0].reason == "only 1 daemon task(s) for 10 min (idle_after 10 min): protection off so managed scaling can scale it in"
    assert due.idle_since == {"i-1": NOW}  # the clock is kept while it stays idle


def test_hours_read_as_hours_in_the_reasons_as_in_the_watchdogs() -> None:
    three_hours = 3 * 3600.0
    due = decide([seen("i-1")], {"i-1": NOW - three_hours}, now=NOW, idle_after=three_hours)
    assert due.actions[0].reason.startswith("only 1 daemon task(s) for 3.0 h (idle_after 3.0 h)")


def test_a_task_resets_the_idle_clock_and_an_unprotected_busy_instance_is_protected() -> None:
    busy = decide([seen("i-1", tasks=2, protected=False)], {"i-1": NOW - 3600}, now=NOW, idle_after=TEN_MINUTES)
    assert kinds(busy) == {"i-1": ("protect", "planned")}
    assert busy.protect == {"c-spot": ("i-1",)}
    assert busy.idle_since == {}  # forgotten: idle again means from then on
    # A busy instance already protected: nothing to say.
    assert decide([seen("i-1", tasks=1)], {}, now=NOW, idle_after=TEN_MINUTES).actions == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"lifecycle_state": "Pending"},
        {"lifecycle_state": "Terminating:Wait"},
        {"container_status": None},  # the agent has not registered it: tasks are about to land
    ],
)
def test_instances_on_their_way_in_or_out_are_left_alone(changes: dict[str, Any]) -> None:
    decisions = decide([seen("i-1", **changes)], {"i-1": NOW - 3600}, now=NOW, idle_after=TEN_MINUTES)
    assert decisions.actions == () and not decisions.unprotect and decisions.idle_since == {}


def test_foreign_instances_and_unmanaged_pools_are_ignored_with_a_reason() -> None:
    decisions = decide(
        [
            seen("i-theirs", pool=None, group="theirs", foreign="container instance of c in group theirs, not one of ecsspot's pools"),
            seen("i-od", pool="on-demand", group="c-on-demand", managed=False),
            seen("i-od-free", pool="on-demand", group="c-on-demand", managed=False, protected=False),
        ],
        {"i-theirs": NOW - 3600, "i-od": NOW - 3600},
        now=NOW,
        idle_after=TEN_MINUTES,
    )
    assert kinds(decisions) == {"i-theirs": ("ignore", "ignored"), "i-od": ("ignore", "ignored")}
    assert decisions.actions[0].reason.startswith("pool on-demand does not use managed termination protection")
    assert decisions.actions[1].reason == "container instance of c in group theirs, not one of ecsspot's pools"
    assert not decisions.unprotect and not decisions.protect and decisions.idle_since == {}


def test_a_clock_recorded_in_the_future_counts_from_now() -> None:
    assert decide([seen("i-1")], {"i-1": NOW + 999}, now=NOW, idle_after=TEN_MINUTES).idle_since == {"i-1": NOW}


def run(workflow: Any, answer: Any) -> tuple[list[Any], Any]:
    """Drive a workflow, answering each request with ``answer(request)``; the requests and its value."""
    requests = []
    try:
        request = next(workflow)
        while True:
            requests.append(request)
            request = workflow.send(answer(request))
    except StopIteration as stop:
        return requests, stop.value


def test_set_instance_protection_takes_50_ids_a_call_and_failures_are_per_call() -> None:
    ids = [f"i-{n:03d}" for n in range(120)]
    decisions = decide([seen(i) for i in ids], {i: NOW - 3600 for i in ids}, now=NOW, idle_after=TEN_MINUTES)
    refused = AwsError("SetInstanceProtection", "ResourceContention", "pending update", service="autoscaling")

    def answer(request: Any) -> Any:
        return tuple(refused if c.params["InstanceIds"][0] == "i-050" else {} for c in request.calls)

    requests, actions = run(_carry_out(decisions), answer)

    (batch,) = requests  # one round
    calls: list[Call] = list(batch.calls)
    assert [len(c.params["InstanceIds"]) for c in calls] == [50, 50, 20]
    assert {c.params["ProtectedFromScaleIn"] for c in calls} == {False}
    statuses: dict[str, ProtectionAction] = {a.instance_id: a for a in actions}
    assert {statuses[i].status for i in ids[50:100]} == {"failed"}
    assert {statuses[i].status for i in ids[:50] + ids[100:]} == {"done"}
    assert "ResourceContention" in statuses["i-050"].reason
