"""The spec's protection and watchdog sections."""

from __future__ import annotations

from typing import Any

import pytest

from ecsspot import dump_spec, load_spec
from ecsspot.errors import SpecError
from ecsspot.plan import desired_settings
from ecsspot.spec import Protection, Watchdog, duration_seconds
from tests.conftest import example_spec_dict


def problems(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(d)
    return {p.path: p.message for p in info.value.problems}


def test_defaults_and_the_settings_of_specs_without_the_sections_stay_as_they_were() -> None:
    spec = load_spec(example_spec_dict())
    assert spec.protection == Protection(idle_after="10m", on_schedule=False)
    assert spec.watchdog == Watchdog(drain_timeout="1h", reactivate=False)
    assert duration_seconds(spec.protection.idle_after) == 600 and duration_seconds(spec.watchdog.drain_timeout) == 3600
    # Not written when left at their defaults: clusters applied before keep a re-plan empty.
    assert "protection" not in dump_spec(spec) and "watchdog" not in desired_settings(spec)


def test_sections_load_and_round_trip() -> None:
    spec = load_spec({**example_spec_dict(), "protection": {"idle_after": "15m", "on_schedule": True}, "watchdog": {"drain_timeout": "2h30m", "reactivate": True}})
    assert spec.protection == Protection("15m", True) and spec.watchdog == Watchdog("2h30m", True)
    assert load_spec(dump_spec(spec)) == spec
    assert duration_seconds(spec.watchdog.drain_timeout) == 9000


@pytest.mark.parametrize(
    ("section", "value", "path", "message"),
    [
        ("protection", {"idle_after": "10 minutes"}, "protection.idle_after", "'10 minutes' is not a duration like 10m or 1h"),
        ("protection", {"idle_after": "5s"}, "protection.idle_after", "must be 30s..24h, got '5s'"),
        ("protection", {"idle_after": "25h"}, "protection.idle_after", "must be 30s..24h, got '25h'"),
        ("watchdog", {"drain_timeout": "48h"}, "watchdog.drain_timeout", "must be 1m..47h (ECS managed draining gives up at 48h), got '48h'"),
        ("watchdog", {"drain_timeout": "1" * 40 + "s"}, "watchdog.drain_timeout", "is not a duration like 10m or 1h"),
    ],
)
def test_bad_values_are_named_by_path(section: str, value: dict[str, Any], path: str, message: str) -> None:
    found = problems({**example_spec_dict(), section: value})
    assert path in found and found[path].endswith(message)


def test_unknown_keys_in_the_sections_are_errors() -> None:
    found = problems({**example_spec_dict(), "watchdog": {"reactivte": True}})
    assert any(p.startswith("watchdog.reactivte") for p in found)


def test_fallback_section() -> None:
    from ecsspot.spec import Fallback

    spec = load_spec(example_spec_dict())
    assert spec.fallback == Fallback(enabled=False, detect_after="5m", cooldown="15m", max_on_demand=0)
    assert "fallback" not in dump_spec(spec) and "fallback" not in desired_settings(spec)
    on = load_spec({**example_spec_dict(), "fallback": {"enabled": True, "detect_after": "3m", "cooldown": "20m", "max_on_demand": 4}})
    assert on.fallback == Fallback(True, "3m", "20m", 4) and load_spec(dump_spec(on)) == on


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"enabled": True}, "fallback.max_on_demand", "must be at least 1 when fallback.enabled (the capacity units a spot pool may run on demand)"),
        ({"max_on_demand": -1}, "fallback.max_on_demand", "must be 0..100000 capacity units, got -1"),
        ({"detect_after": "10s"}, "fallback.detect_after", "must be 1m..6h, got '10s'"),
        ({"cooldown": "soon"}, "fallback.cooldown", "'soon' is not a duration like 10m or 1h"),
        ({"enabled": "yes"}, "fallback.enabled", "must be true or false, got a string"),
    ],
)
def test_bad_fallback_values_are_named_by_path(value: dict[str, Any], path: str, message: str) -> None:
    found = problems({**example_spec_dict(), "fallback": value})
    assert path in found and found[path].endswith(message), found


def test_fallback_needs_a_pool_that_can_run_spot() -> None:
    d = example_spec_dict()
    d["pools"] = [p for p in d["pools"] if p["name"] == "on-demand"]
    d["strategy"] = [{"pool": "on-demand", "base": 1, "weight": 1}]
    found = problems({**d, "fallback": {"enabled": True, "max_on_demand": 2}})
    assert found == {"fallback.enabled": "no pool can run spot instances (every on_demand_percentage_above_base is 100): nothing to fall back from"}
