"""The fallback controller's pure decisions: detect, fall back within the limit, hysteresis, restore."""

from __future__ import annotations

import attrs

from ecsspot.fallback import Memory, PoolView, base_for, decide, on_demand_share

MIN = 60.0
SETTINGS = {"detect_after": 5 * MIN, "cooldown": 15 * MIN, "max_on_demand": 6}
FAILED = "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request."


def view(**kw: object) -> PoolView:
    base = dict(pool="spot", group="demo-api-spot", desired=4, in_service=4, counted=4, on_demand=0, base=0, percent=0, spec_base=0)
    return PoolView(**{**base, **kw})  # type: ignore[arg-type]


def test_share_rounds_up_in_favour_of_on_demand_and_the_base_covers_what_is_missing() -> None:
    assert on_demand_share(10, 2, 25) == 2 + 2  # 8 above the base, 25% is 2
    assert on_demand_share(3, 0, 50) == 2  # 1.5 rounds up
    assert base_for(3, desired=6, percent=0, low=0, cap=10) == 3
    assert base_for(3, desired=6, percent=50, low=0, cap=10) == 0  # the percentage already gives 3
    assert base_for(9, desired=6, percent=0, low=0, cap=4) == 4  # capped


def test_a_shortage_without_a_spot_failure_is_only_watched() -> None:
    d = decide([view(in_service=2, counted=4)], {"spot": Memory(short_since=0.0)}, now=20 * MIN, **SETTINGS)
    assert [(a.kind, a.status) for a in d.actions] == [("watch", "waiting")]
    assert "no spot launch failed meanwhile" in d.actions[0].reason and not d.bases


def test_a_spot_failure_shorter_than_detect_after_waits_then_falls_back_for_what_is_missing() -> None:
    short = view(in_service=2, counted=2, spot_failed_at=60.0, spot_failure=FAILED)
    first = decide([short], {}, now=60.0, **SETTINGS)
    assert first.actions[0].kind == "watch" and "detect_after" in first.actions[0].reason
    assert first.memory["spot"].short_since == 60.0 and not first.bases

    later = decide([attrs.evolve(short, spot_failed_at=5 * MIN)], first.memory, now=6 * MIN, **SETTINGS)
    (action,) = later.actions
    assert (action.kind, action.status, action.base) == ("fallback", "planned", 2)
    assert "InService 2 of desired 4 for 5 min" in action.reason and "InsufficientInstanceCapacity" in action.reason
    assert later.bases == {"demo-api-spot": 2} and later.memory["spot"].active


def test_the_base_never_goes_above_max_on_demand() -> None:
    short = view(desired=10, in_service=2, counted=2, spot_failed_at=0.0, spot_failure=FAILED)
    d = decide([short], {"spot": Memory(short_since=0.0)}, now=10 * MIN, **SETTINGS)
    assert d.bases == {"demo-api-spot": 6} and "capped at max_on_demand 6" in d.actions[0].reason


def test_while_spot_fails_the_pool_stays_on_demand_and_each_failure_restarts_the_cooldown() -> None:
    active = {"spot": Memory(active=True, since=0.0)}
    full = view(on_demand=2, base=2, spot_failed_at=10 * MIN, spot_failure=FAILED)
    d = decide([full], active, now=20 * MIN, **SETTINGS)
    assert (d.actions[0].kind, d.actions[0].status) == ("watch", "waiting") and not d.bases
    assert "spot quiet for 10 min of the 15 min cooldown" in d.actions[0].reason
    # A blink: the failure ten minutes later restarts the count.
    d = decide([attrs.evolve(full, spot_failed_at=24 * MIN)], d.memory, now=30 * MIN, **SETTINGS)
    assert d.actions[0].kind == "watch" and d.memory["spot"].active


def test_after_the_cooldown_the_base_goes_back_and_the_surplus_is_drained_one_instance_a_tick() -> None:
    active = {"spot": Memory(active=True, since=0.0)}
    full = view(on_demand=2, base=2, spot_failed_at=5 * MIN, on_demand_instances=("i-od1", "i-od2"))
    d = decide([full], active, now=21 * MIN, **SETTINGS)
    assert [(a.kind, a.base) for a in d.actions] == [("restore", 0)] and d.bases == {"demo-api-spot": 0}
    assert d.memory["spot"] == Memory(None, False, 21 * MIN, True)

    restored = attrs.evolve(full, base=0)
    d = decide([restored], d.memory, now=22 * MIN, **SETTINGS)
    assert [(a.kind, a.instance_id) for a in d.actions] == [("drain", "i-od1")] and d.drains == {"demo-api-spot": "i-od1"}

    # A spot failure since the restore: the surplus is kept (and no drain while short).
    d2 = decide([attrs.evolve(restored, spot_failed_at=21.5 * MIN, spot_failure=FAILED)], d.memory, now=23 * MIN, **SETTINGS)
    assert d2.actions[0].kind == "watch" and not d2.drains

    done = decide([attrs.evolve(restored, on_demand=0, on_demand_instances=())], d.memory, now=30 * MIN, **SETTINGS)
    assert (done.actions[0].kind, done.actions[0].status) == ("watch", "ok") and done.memory["spot"] == Memory()


def test_not_ecsspots_groups_are_ignored_with_a_reason() -> None:
    d = decide([view(foreign="group demo-api-spot is not tagged ecsspot:cluster=demo-api: not ecsspot's")], {}, now=0.0, **SETTINGS)
    assert [(a.kind, a.status) for a in d.actions] == [("ignore", "ignored")] and "not ecsspot's" in d.actions[0].reason
