"""The placement advice's pure decisions, and the interruption history's counters (no AWS)."""

from __future__ import annotations

from ecsspot.advise import decide
from ecsspot.spec import Pool
from ecsspot.store import count_interruption_call, history_key, interruptions_from

ZONES = [("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"), ("us-east-1c", "use1-az4")]


def pool(*types: str) -> Pool:
    return Pool("spot", max_size=10, instance_types=types, on_demand_percentage_above_base=0)


def test_a_type_interrupted_far_more_than_the_others_is_dropped_never_below_three() -> None:
    history = {("2026-11-20", "m5.large", "us-east-1a"): 4, ("2026-11-21", "m5.large", "us-east-1b"): 2, ("2026-11-22", "m5a.large", "us-east-1a"): 1}
    advice = decide(pool("m5.large", "m5a.large", "m5d.large", "m6i.large"), ZONES, {"use1-az1": 3, "use1-az2": 9, "use1-az4": 7}, history, since="2026-11-01")
    verdicts = {t.instance_type: (t.verdict, t.interruptions) for t in advice.types}
    assert verdicts["m5.large"] == ("drop", 6) and verdicts["m5a.large"] == ("keep", 1) and verdicts["m6i.large"] == ("keep", 0)
    # Three kept: more same-size types of other x86 families proposed, up to six.
    added = [t.instance_type for t in advice.types if t.verdict == "add"]
    assert len(added) == 3 and all(t.endswith(".large") and not t.startswith(("t3", "m6g", "m7g", "c6g", "c7g", "r6g")) for t in added)
    assert [z.availability_zone for z in advice.zones] == ["us-east-1b", "us-east-1c", "us-east-1a"]  # by score
    assert [z.interruptions for z in advice.zones] == [2, 0, 5]
    assert advice.notes == ("us-east-1a scores 3/10: spot requests there are unlikely to succeed now",)

    three = decide(pool("m5.large", "m5a.large", "m6i.large"), ZONES, {}, {("2026-11-20", "m5.large", "us-east-1a"): 9}, since="2026-11-01")
    assert {t.verdict for t in three.types if t.instance_type == "m5.large"} == {"keep"}  # the pool would fall below three


def test_history_before_the_window_is_not_counted_and_an_unscored_pool_says_why() -> None:
    advice = decide(pool("m6g.large", "c6g.large"), ZONES, None, {("2026-10-01", "m6g.large", "us-east-1a"): 9}, since="2026-11-01")
    assert all(t.interruptions == 0 for t in advice.types)
    assert advice.notes[0].startswith("no placement score: AWS scores fewer than 3 instance types as always low")
    added = [t.instance_type for t in advice.types if t.verdict == "add"]
    assert added and all("g." in t for t in added)  # arm64 pools get arm64 families only


def test_the_counter_names_the_day_type_and_zone_on_the_months_item() -> None:
    now = 1_764_547_200.0  # 2025-12-01T00:00:00Z
    c = count_interruption_call("t", "m5.large", "us-east-1a", now=now)
    assert (c.params["Key"]["pk"]["S"], c.params["Key"]["sk"]["S"]) == history_key("2025-12")
    assert c.params["ExpressionAttributeNames"] == {"#c": "2025-12-01|m5.large|us-east-1a"}
    item = {"pk": {"S": "history"}, "sk": {"S": "interruptions#2025-12"}, "expires_at": {"N": "1"}, "2025-12-01|m5.large|us-east-1a": {"N": "2"}}
    assert interruptions_from(item) == {("2025-12-01", "m5.large", "us-east-1a"): 2}
