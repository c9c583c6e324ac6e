"""The doctor's pure diagnosis: one test per finding code, and the queue policy reader."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ecsspot import load_spec
from ecsspot.doctor import Rule, Wiring, diagnose, module_prefix, queue_policy_allows
from tests.conftest import example_spec_dict

SPEC = load_spec(example_spec_dict())
PREFIX = "ecsspot-demo-api"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:ecsspot-demo-api-events"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:ecsspot-demo-api-interruption"


def rule_arn(key: str) -> str:
    return f"arn:aws:events:us-east-1:123456789012:rule/{PREFIX}-{key}"


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {"ArnEquals": {"aws:SourceArn": [rule_arn(k) for k in ("spot", "rebalance", "lifecycle")]}},
        }
    ],
}


def healthy() -> Wiring:
    rules = {k: Rule(f"{PREFIX}-{k}", rule_arn(k), "ENABLED", "{}", None, (QUEUE,), (True,) * (len(SPEC.pools) if k == "lifecycle" else 1)) for k in ("spot", "rebalance", "lifecycle")}
    rules["tick"] = Rule(f"{PREFIX}-tick", rule_arn("tick"), "ENABLED", None, "rate(5 minutes)", ("arn:aws:lambda:us-east-1:123456789012:function:refresh",))
    groups = [SPEC.asg_name(p) for p in SPEC.pools]
    return Wiring(rules, f"{PREFIX}-events", QUEUE, POLICY, {"deadLetterTargetArn": QUEUE + "-dlq", "maxReceiveCount": 5}, ((FUNCTION, "Enabled", ("ReportBatchItemFailures",)),), {g: ("ecsspot-drain",) for g in groups}, {g: "true" for g in groups})


def codes(wiring: Wiring) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in diagnose(SPEC, PREFIX, wiring):
        out.setdefault(f.status, set()).add(f.code)
    return out


def failed(wiring: Wiring) -> list[Any]:
    return [f for f in diagnose(SPEC, PREFIX, wiring) if f.status == "fail"]


def with_rule(wiring: Wiring, key: str, **changes: Any) -> Wiring:
    return attrs.evolve(wiring, rules={**wiring.rules, key: attrs.evolve(wiring.rules[key], **changes)})


def test_a_healthy_deployment_passes_every_check() -> None:
    assert codes(healthy()) == {"ok": {"DR101", "DR102", "DR103", "DR104", "DR105", "DR106", "DR107", "DR108", "DR201", "DR202"}}


def test_module_prefix_matches_terraforms_short_name() -> None:
    assert module_prefix("demo-api") == "ecsspot-demo-api"
    long = "c" * 41
    assert module_prefix(long).startswith("ecsspot-" + "c" * 31 + "-") and len(module_prefix(long)) == len("ecsspot-") + 40


def test_dr101_a_missing_or_disabled_rule() -> None:
    (missing,) = failed(with_rule(healthy(), "spot", arn=None))
    assert (missing.code, missing.subject) == ("DR101", f"rule {PREFIX}-spot") and "missing" in missing.detail
    (disabled,) = failed(with_rule(healthy(), "rebalance", state="DISABLED"))
    assert disabled.code == "DR101" and "enable-rule" in disabled.fix


def test_dr102_a_pattern_that_misses_the_events() -> None:
    (f,) = failed(with_rule(healthy(), "lifecycle", matched=(True, False)))
    assert f.code == "DR102" and "1 of 2 samples" in f.detail


def test_dr103_a_rule_that_targets_something_else() -> None:
    (f,) = failed(with_rule(healthy(), "spot", targets=("arn:aws:sns:us-east-1:123456789012:other",)))
    assert f.code == "DR103" and "arn:aws:sns" in f.detail


def test_dr104_no_queue() -> None:
    found = failed(attrs.evolve(healthy(), queue_arn=None))
    assert {f.code for f in found} == {"DR103", "DR104"}  # nothing can target a missing queue


def test_dr105_a_queue_policy_that_lets_no_rule_send() -> None:
    found = failed(attrs.evolve(healthy(), queue_policy=None))
    assert [f.code for f in found] == ["DR105"] * 3


def test_dr106_no_dead_letter_queue() -> None:
    (f,) = failed(attrs.evolve(healthy(), redrive_policy=None))
    assert f.code == "DR106"


def test_dr107_no_mapping_with_partial_batch_failures() -> None:
    (f,) = failed(attrs.evolve(healthy(), mappings=((FUNCTION, "Enabled", ()),)))
    assert f.code == "DR107" and FUNCTION in f.detail
    (f,) = failed(attrs.evolve(healthy(), mappings=((FUNCTION, "Disabled", ("ReportBatchItemFailures",)),)))
    assert f.code == "DR107"


def test_dr108_no_refresh_tick() -> None:
    (f,) = failed(with_rule(healthy(), "tick", targets=()))
    assert f.code == "DR108" and "without a target" in f.detail


def test_dr201_a_pool_without_the_drain_hook() -> None:
    group = SPEC.asg_name(SPEC.pools[0])
    (f,) = failed(attrs.evolve(healthy(), hooks={**healthy().hooks, group: ("ecs-managed-draining-termination-hook",)}))
    assert (f.code, f.subject) == ("DR201", f"group {group}")


def test_dr202_user_data_without_spot_draining() -> None:
    group = SPEC.asg_name(SPEC.pools[-1])
    (f,) = failed(attrs.evolve(healthy(), spot_draining={**healthy().spot_draining, group: None}))
    assert (f.code, f.subject) == ("DR202", f"group {group}") and "not set" in f.detail


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        (POLICY["Statement"][0], True),
        ({**POLICY["Statement"][0], "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:events:us-east-1:123456789012:rule/{PREFIX}-*"}}}, True),
        ({**POLICY["Statement"][0], "Condition": {}}, True),
        ({**POLICY["Statement"][0], "Action": ["sqs:*"]}, True),
        ({**POLICY["Statement"][0], "Principal": "*"}, True),
        ({**POLICY["Statement"][0], "Effect": "Deny"}, False),
        ({**POLICY["Statement"][0], "Principal": {"Service": "sns.amazonaws.com"}}, False),
        ({**POLICY["Statement"][0], "Action": "sqs:ReceiveMessage"}, False),
        ({**POLICY["Statement"][0], "Resource": QUEUE + "-dlq"}, False),
        ({**POLICY["Statement"][0], "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn("other")}}}, False),
        ({**POLICY["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}, True),
        ({**POLICY["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}, False),
        ({**POLICY["Statement"][0], "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
    ],
)
def test_the_queue_policy_reader(statement: dict[str, Any], allowed: bool) -> None:
    assert queue_policy_allows({"Statement": [statement]}, QUEUE, rule_arn("spot")) is allowed
