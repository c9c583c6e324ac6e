"""The fallback controller's pure decisions: detect, fall back within the limit, hysteresis, restore."""

from __future__ import annotations

from typing import Any

import attrs

from ecsspot.fallback import Memory, PoolView, base_for, decide, on_demand_share

MIN = 60.0
SETTINGS: dict[str, Any] = {"detect_after": 5 * MIN, "cooldown": 15 * MIN, "max_on_demand": 6}
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


def test_after_the_cooldown_spot_launches_first_then_the_surplus_is_drained_one_instance_a_tick() -> None:
    active = {"spot": Memory(active=True, since=0.0)}
    full = view(on_demand=2, base=2, spot_failed_at=5 * MIN, on_demand_instances=("i-od1", "i-od2"), max_size=20)
    d = decide([full], active, now=21 * MIN, **SETTINGS)
    (action,) = d.actions
    assert (action.kind, action.base, action.desired) == ("restore", 0, 5) and d.bases == {"demo-api-spot": 0} and d.desired == {"demo-api-spot": 5}
    assert "desired 4 → 5: a spot instance first" in action.reason
    assert d.memory["spot"] == Memory(None, False, 21 * MIN, True)

    # The extra unit is still booting: nothing goes.
    booting = attrs.evolve(full, base=0, desired=5, counted=5)
    d2 = decide([booting], d.memory, now=22 * MIN, **SETTINGS)
    assert d2.actions[0].kind == "watch" and not d2.drains

    # It came up on spot: the oldest on-demand instance goes, without decrementing (one more to go).
    up = attrs.evolve(booting, in_service=5, spot_launched_at=21.2 * MIN)
    d3 = decide([up], d.memory, now=26 * MIN, **SETTINGS)
    assert [(a.kind, a.instance_id) for a in d3.actions] == [("drain", "i-od1")] and d3.drains == {"demo-api-spot": ("i-od1", False)}
    # The next one waits for a spot instance launched since (the replacement of the first).
    d4 = decide([attrs.evolve(up, on_demand=1, on_demand_instances=("i-od2",))], d3.memory, now=27 * MIN, **SETTINGS)
    assert d4.actions[0].kind == "probe" and d4.desired == {"demo-api-spot": 6} and not d4.drains
    d5 = decide([attrs.evolve(up, on_demand=1, on_demand_instances=("i-od2",), spot_launched_at=26.5 * MIN)], d3.memory, now=31 * MIN, **SETTINGS)
    assert d5.drains == {"demo-api-spot": ("i-od2", True)}  # the last: the probe's extra unit goes with it

    done = decide([attrs.evolve(up, on_demand=0, on_demand_instances=())], d5.memory, now=36 * MIN, **SETTINGS)
    assert (done.actions[0].kind, done.actions[0].status) == ("watch", "ok") and done.memory["spot"] == Memory()


def test_a_group_at_its_max_size_keeps_its_surplus() -> None:
    draining = {"spot": Memory(since=0.0, draining=True)}
    d = decide([view(desired=4, max_size=4, on_demand=2, on_demand_instances=("i-od1", "i-od2"))], draining, now=MIN, **SETTINGS)
    assert d.actions[0].kind == "watch" and "max_size 4" in d.actions[0].reason and not d.drains and not d.desired


def test_not_ecsspots_groups_are_ignored_with_a_reason() -> None:
    d = decide([view(foreign="group demo-api-spot is not tagged ecsspot:cluster=demo-api: not ecsspot's")], {}, now=0.0, **SETTINGS)
    assert [(a.kind, a.status) for a in d.actions] == [("ignore", "ignored")] and "not ecsspot's" in d.actions[0].reason


def test_spot_still_short_after_a_restore_goes_back_on_demand_and_backs_off_the_next_try() -> None:
    restored = {"spot": Memory(active=False, since=20 * MIN, draining=True)}
    after = view(desired=5, counted=4, in_service=4, on_demand=2, base=0, spot_failed_at=21 * MIN, spot_failure=FAILED, on_demand_instances=("i-od1", "i-od2"))
    d = decide([after], restored, now=22 * MIN, **SETTINGS)
    (action,) = d.actions
    # The unlaunched extra unit of the try is taken back, not launched on demand.
    assert (action.kind, action.base, action.desired) == ("fallback", 2, 4) and "still short after the restore" in action.reason
    assert d.desired == {"demo-api-spot": 4}
    assert "next try after 30 min" in action.reason  # the 15 min cooldown, doubled
    assert d.memory["spot"] == Memory(22 * MIN, True, 22 * MIN, False, 1)

    # Quiet for the plain cooldown is not enough any more; for twice that it is.
    full = attrs.evolve(after, desired=4, base=3, on_demand=3, spot_failed_at=21 * MIN)
    early = decide([full], d.memory, now=40 * MIN, **SETTINGS)
    assert early.actions[0].kind == "watch" and "of the 30 min cooldown" in early.actions[0].reason
    late = decide([full], d.memory, now=53 * MIN, **SETTINGS)
    assert late.actions[0].kind == "restore" and late.memory["spot"].probes == 1


def test_a_pool_on_demand_keeps_what_it_runs_covered_by_the_base() -> None:
    # A tried-and-kept surplus left the base at the spec's 0 while 2 instances run on demand:
    # the next tick covers them again, so none is replaced while spot is short.
    d = decide([view(on_demand=2, base=0)], {"spot": Memory(active=True, since=0.0, probes=1)}, now=MIN, **SETTINGS)
    assert d.bases == {"demo-api-spot": 2} and d.actions[0].kind == "fallback"


def test_carrying_out_lowers_the_base_before_adding_the_spot_unit_and_puts_off_a_drain_near_the_end_of_the_run() -> None:
    from ecsspot.fallback import Decisions, FallbackAction, _carry_out
    from ecsspot.spec import load_spec
    from ecsspot.testing import ScriptedDriver
    from tests.conftest import example_spec_dict

    spec = load_spec(example_spec_dict())
    group = {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "demo-api-ecsspot", "Version": "3"}},
            "InstancesDistribution": {"OnDemandBaseCapacity": 2, "OnDemandPercentageAboveBaseCapacity": 0},
        }
    }
    restore = FallbackAction("restore", "spot", "planned", "cooled down", "demo-api-spot", 0, desired=5)
    drain = FallbackAction("drain", "other", "planned", "surplus", "demo-api-other", instance_id="i-od1")
    decisions = Decisions((restore, drain), {"demo-api-spot": 0}, {"demo-api-spot": 5}, {"demo-api-other": ("i-od1", False)}, {})
    driver = ScriptedDriver(lambda call: {})
    start = driver.clock.now()
    actions = driver.run(_carry_out(spec, decisions, {"demo-api-spot": group}, "me", stop_at=start + 120))

    assert driver.operations() == ["update_auto_scaling_group", "set_desired_capacity"]  # in that order, no drain
    sent = driver.calls[0].params["MixedInstancesPolicy"]
    assert sent["InstancesDistribution"]["OnDemandBaseCapacity"] == 0 and "LaunchTemplateName" not in sent["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert [(a.kind, a.status) for a in actions] == [("restore", "done"), ("drain", "waiting")]
    assert "put off: 120 s of this run left, a drain may take 600 s" in actions[1].reason


def test_plan_reads_the_controllers_memory_where_the_controller_writes_it() -> None:
    from ecsspot import fallback, store

    assert store.FALLBACK_AT == fallback.MEMORY


def test_plan_reads_an_unreadable_or_odd_memory_as_none() -> None:
    from ecsspot import apply, load_spec
    from ecsspot.state import Observed
    from tests.conftest import example_spec_dict

    assert apply._document_or_none({"Item": {"doc": {"S": "{not json"}}}) is None
    spec = load_spec(example_spec_dict())
    observed = Observed(None, None, asgs={spec.asg_name(p): object() for p in spec.pools})  # only looked up
    for memory in ({"pools": ["spot"]}, {"pools": {"spot": "yes"}}, {"pools": None}, None, {"pools": {"spot": {"active": False}}}):
        assert apply._falling_back(spec, observed, memory) == {}
    (line,) = apply._falling_back(spec, observed, {"pools": {"spot": {"active": True, "since": 0}}}).values()
    assert line.startswith("pool spot runs on demand since 1970-01-01 00:00 UTC (spot → on-demand fallback)")
