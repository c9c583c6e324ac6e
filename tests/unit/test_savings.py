"""The capacity ledger's accrual and the savings report's pricing, checked by hand (no AWS)."""

from __future__ import annotations

import pytest

from ecsspot.errors import InputError
from ecsspot.ledger import Ledger, Running, accrue, day_start
from ecsspot.prices import ON_DEMAND, prices_from
from ecsspot.savings import average_price, bill

MIDNIGHT = day_start("2026-11-30")
HOUR = 3600.0


def spot(iid: str, launched: float, instance_type: str = "m5.large", zone: str = "us-east-1a") -> Running:
    return Running(iid, "spot", "spot", instance_type, zone, launched)


def od(iid: str, launched: float) -> Running:
    return Running(iid, "on-demand", "on-demand", "m5.large", "us-east-1b", launched)


def test_an_instance_accrues_from_its_launch_then_from_its_last_look_split_at_midnight() -> None:
    first = accrue(Ledger(), [spot("i-1", MIDNIGHT - 2 * HOUR)], MIDNIGHT + HOUR)
    assert first.hours == {"2026-11-29": {"spot|spot|m5.large|us-east-1a": 2.0}, "2026-11-30": {"spot|spot|m5.large|us-east-1a": 1.0}}
    assert first.seen == {"i-1": MIDNIGHT + HOUR}
    # Looked at again 30 minutes later: only those 30 minutes are added.
    second = accrue(first, [spot("i-1", MIDNIGHT - 2 * HOUR)], MIDNIGHT + 1.5 * HOUR)
    assert second.hours["2026-11-30"] == {"spot|spot|m5.large|us-east-1a": 1.5}
    # Gone at the next look: forgotten, its hours kept (counted up to the last look).
    third = accrue(second, [], MIDNIGHT + 3 * HOUR)
    assert third.seen == {} and third.hours == second.hours
    assert Ledger.from_document(third.to_document()) == third


def test_days_past_the_retention_are_dropped_and_never_accrued() -> None:
    old = Ledger({}, {"2026-10-01": {"spot|spot|m5.large|us-east-1a": 5.0}})
    after = accrue(old, [spot("i-1", MIDNIGHT - 60 * 24 * HOUR)], MIDNIGHT)
    assert "2026-10-01" not in after.hours
    assert min(after.hours) == "2026-10-31"  # 31 days: 2026-10-31 .. 2026-11-30
    assert sum(after.hours["2026-10-31"].values()) == 24.0


def test_the_average_spot_price_weighs_each_step_by_its_time() -> None:
    # 0.04 in effect from before the window, 0.05 from its second hour, 0.02 from its fourth.
    steps = [(MIDNIGHT - 10 * HOUR, 0.04), (MIDNIGHT + HOUR, 0.05), (MIDNIGHT + 3 * HOUR, 0.02)]
    assert average_price(steps, MIDNIGHT, MIDNIGHT + 4 * HOUR) == pytest.approx((0.04 + 2 * 0.05 + 0.02) / 4)
    assert average_price([], MIDNIGHT, MIDNIGHT + HOUR) is None


def test_a_hand_computed_bill() -> None:
    """Day 1 (full day): 48 spot hours of m5.large at 0.03 for 12 h then 0.05 for 12 h (average
    0.04), and 24 on-demand hours of m5.large at 0.096. Day 2 until 06:00: 6 spot hours of
    c5.large at a flat 0.03; and 6 hours of a type with no on-demand price.

    cost: 48 x 0.04 + 24 x 0.096 + 6 x 0.03 = 1.92 + 2.304 + 0.18 = 4.404
    on demand: 48 x 0.096 + 24 x 0.096 + 6 x 0.085 = 4.608 + 2.304 + 0.51 = 7.422
    savings 3.018, 40.66 %."""
    day1, day2 = "2026-11-29", "2026-11-30"
    ledger = Ledger(
        {},
        {
            day1: {"spot|spot|m5.large|us-east-1a": 48.0, "base|on-demand|m5.large|us-east-1b": 24.0},
            day2: {"spot|spot|c5.large|us-east-1a": 6.0, "spot|spot|x9.large|us-east-1a": 6.0},
        },
    )
    start = day_start(day1)
    prices = {
        ("m5.large", "us-east-1a"): [(start - HOUR, 0.03), (start + 12 * HOUR, 0.05)],
        ("c5.large", "us-east-1a"): [(start - 5 * 24 * HOUR, 0.03)],
        ("x9.large", "us-east-1a"): [(start, 0.01)],
    }
    report = bill("c", ledger, prices, {"m5.large": 0.096, "c5.large": 0.085}, since=start, until=day_start(day2) + 6 * HOUR)
    assert (report.cost, report.on_demand_cost, report.savings) == (pytest.approx(4.404), pytest.approx(7.422), pytest.approx(3.018))
    assert report.savings_percent == pytest.approx(40.66, abs=0.01)
    assert report.instance_hours == 84.0
    by = {(line.pool, line.lifecycle): line for line in report.lines}
    assert by["spot", "spot"].instance_hours == 60.0 and by["spot", "spot"].cost == pytest.approx(2.1)
    assert by["base", "on-demand"].savings == 0.0
    assert report.unpriced == ("x9.large (us-east-1a, spot): 6.00 h",)
    assert [(d.day, d.spot_hours, d.on_demand_hours) for d in report.days] == [(day1, 48.0, 24.0), (day2, 12.0, 0.0)]
    week = bill("c", ledger, prices, ON_DEMAND, since=start - 5 * 24 * HOUR, until=day_start(day2) + 6 * HOUR)
    assert [d.day for d in week.days] == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28", day1, day2]
    assert week.days[0].spot_hours == week.days[0].on_demand_hours == 0.0
    # A window that starts on day 2 leaves day 1 out.
    assert bill("c", ledger, prices, ON_DEMAND, since=day_start(day2), until=day_start(day2) + 6 * HOUR).instance_hours == 12.0


def test_price_overrides_are_checked_and_every_bad_one_named() -> None:
    assert prices_from({"m5.large": 0.1, "c7gn.16xlarge": 4}) == {"m5.large": 0.1, "c7gn.16xlarge": 4.0}
    with pytest.raises(InputError) as caught:
        prices_from({"m5.large": -1, "rm -rf /": 0.1, "c5.large": True, "r5.large": 5000})
    message = str(caught.value)
    assert "prices.m5.large: must be a price per hour" in message and "'rm -rf /' is not an instance type" in message
    assert "prices.c5.large" in message and "prices.r5.large" in message
    with pytest.raises(InputError, match="must be a map"):
        prices_from(["m5.large"])


def test_an_instance_without_a_launch_time_counts_from_its_first_look() -> None:
    import math

    first = accrue(Ledger(), [spot("i-1", math.inf)], MIDNIGHT + HOUR)
    assert first.hours == {} and first.seen == {"i-1": MIDNIGHT + HOUR}
    assert accrue(first, [spot("i-1", math.inf)], MIDNIGHT + 2 * HOUR).hours == {"2026-11-30": {"spot|spot|m5.large|us-east-1a": 1.0}}
