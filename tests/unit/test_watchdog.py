"""The drain watchdog's pure decisions (no AWS)."""

from __future__ import annotations

from typing import Any

from ecsspot.handlers import Handlers
from ecsspot.testing import ScriptedDriver
from ecsspot.watchdog import Draining, decide

NOW = 1_700_000_000.0
HOUR = 3600.0
TASKS = ("abc (service:web, RUNNING)", "def (service:web, RUNNING)")
SERVICES = ("service web 4/6: (service web) was unable to place a task because no container instance met all of its requirements.",)


def draining(iid: str = "i-1", **changes: Any) -> Draining:
    values: dict[str, Any] = dict(instance_id=iid, container_instance_arn=f"arn:ci/{iid}", pool="spot", tasks=TASKS, services=SERVICES)
    values.update(changes)
    return Draining(**values)


def test_draining_is_watched_until_the_timeout_then_reported_with_tasks_and_services() -> None:
    first = decide([draining()], {}, now=NOW, timeout=HOUR, reactivate=False)
    assert [(a.kind, a.status) for a in first.actions] == [("watch", "waiting")]
    assert first.draining_since == {"i-1": NOW}

    later = decide([draining()], first.draining_since, now=NOW + HOUR, timeout=HOUR, reactivate=False)
    (action,) = later.actions
    assert (action.kind, action.status, action.tasks, action.services) == ("stuck", "reported", TASKS, SERVICES)
    assert action.reason == (
        "DRAINING for 60 min (drain_timeout 60 min) with 2 task(s) ECS has not moved; services that cannot place their tasks: " + SERVICES[0]
    )
    assert later.reactivate == {} and later.draining_since == {"i-1": NOW}


def test_reactivation_only_when_asked_and_allowed() -> None:
    since = {"i-1": NOW - 2 * HOUR, "i-2": NOW - 2 * HOUR}
    decisions = decide(
        [draining("i-1"), draining("i-2", keep="its drain lease is held: ecsspot is draining it right now")], since, now=NOW, timeout=HOUR, reactivate=True
    )
    assert [(a.instance_id, a.status) for a in decisions.actions] == [("i-1", "reactivated"), ("i-2", "kept")]
    assert decisions.reactivate == {"i-1": "arn:ci/i-1"}
    assert decisions.actions[1].reason.endswith("; kept DRAINING: its drain lease is held: ecsspot is draining it right now")
    # A reactivated instance is forgotten; one kept DRAINING keeps its clock.
    assert decisions.draining_since == {"i-2": NOW - 2 * HOUR}


def test_an_instance_without_tasks_is_not_stuck_and_a_foreign_one_is_ignored() -> None:
    since = {"i-1": NOW - 2 * HOUR, "i-x": NOW - 2 * HOUR}
    decisions = decide(
        [draining("i-1", tasks=(), services=()), draining("i-x", pool=None, foreign="container instance of c outside ecsspot's pools")],
        since,
        now=NOW,
        timeout=HOUR,
        reactivate=True,
    )
    assert [(a.instance_id, a.kind, a.status) for a in decisions.actions] == [("i-1", "watch", "skipped"), ("i-x", "ignore", "ignored")]
    assert decisions.reactivate == {}
    assert decisions.draining_since == {"i-1": NOW - 2 * HOUR}  # nothing kept of the foreign one


def test_instances_no_longer_draining_are_forgotten() -> None:
    assert decide([], {"i-gone": NOW - HOUR}, now=NOW, timeout=HOUR, reactivate=False).draining_since == {}


def test_the_refresh_tick_skips_the_watchdog_when_the_refresh_used_the_invocation() -> None:
    driver = ScriptedDriver(lambda call: {})
    tick = Handlers(driver, default_cluster="c")
    assert tick.guard("c", stop_at=driver.clock.now())["guard"]["status"] == "skipped"
    assert driver.calls == []  # not even the settings were read
