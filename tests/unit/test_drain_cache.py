"""Issue 12 goal 2: what ``ecsspot drain --no-wait`` costs through ``drain_instances`` (settings,
leases, the group cache), counted on the calls it yields, and the cache of the groups' delays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot import load_spec, store
from ecsspot.aws.calls import Call
from ecsspot.drain import drain_instances
from ecsspot.plan import desired_settings
from ecsspot.testing import ScriptedDriver, aws_error
from tests.conftest import example_spec_dict
from tests.unit.scripted_dynamodb import batch_get
from tests.unit.test_drain import TG, Fake

NOW = 1_700_000_000.0


def _driver(fake: Fake, cache: dict[str, Any] | None, written: list[dict[str, Any]]) -> ScriptedDriver:
    spec = load_spec(example_spec_dict())

    def answer(c: Call) -> Any:
        if c.service != "dynamodb":
            return fake.answer(c)
        if c.operation == "batch_get_item":
            return batch_get(answer)(c)
        if c.operation == "get_item":
            if c.params["Key"]["sk"]["S"] == "settings":
                return {"Item": {"spec": {"S": desired_settings(spec)}}}
            if cache is None:
                return {}
            return {"Item": {"doc": {"S": json.dumps(cache)}, "updated_at": {"N": str(NOW - 60)}}}
        if c.operation == "put_item" and "doc" in c.params["Item"]:
            written.append(json.loads(c.params["Item"]["doc"]["S"]))
        return {}

    return ScriptedDriver(answer)


@pytest.mark.parametrize("n", [60, 100])
def test_the_cli_no_wait_start_with_a_warm_cache(n: int) -> None:
    """Settings and cache (one BatchGetItem), the drain's two rounds with the leases (one
    transaction per 100) in the first, beside the listing, the leases given back (one
    transaction): no ListTasks, no group attributes, no cache write. The figures against the
    issue's goals (≤ 14 at 60, ≤ 18 at 100) are in benchmarks/."""
    fake = Fake()
    ids = [f"i-{k:017x}" for k in range(n)]
    for iid in ids:
        fake.add(iid)
    written: list[dict[str, Any]] = []
    driver = _driver(fake, {"service_target_groups": [TG], "deregistration_delays": {TG: 30}}, written)
    result = driver.run(drain_instances("demo-api", ids, deadline=None, wait=False, owner="me"))
    assert {a.status for a in result.actions} == {"draining"}
    ops = driver.operations()
    assert "list_tasks" not in ops and "describe_target_group_attributes" not in ops and not written
    assert ops.count("transact_write_items") == 2 and ops.count("batch_get_item") == 1 and "get_item" not in ops
    # + the container instances listed twice per 90 ids (all, ACTIVE: a 2,000-character filter
    # each), services (2), the group (2)
    assert len(ops) == 1 + 2 + -(-n // 10) + 2 * -(-n // 90) + 4
    assert len(driver.rounds) == 1 + 2 + 1
    lease_round = next(r for r in driver.rounds if any(c.operation == "transact_write_items" for c in r))
    assert lease_round is driver.rounds[1] and "list_container_instances" in {c.operation for c in lease_round}


def test_a_cold_cache_is_written_with_the_delays_and_then_used() -> None:
    fake = Fake(delay=45)
    fake.add("i-0000000000000000a")
    fake.add("i-0000000000000000b")
    written: list[dict[str, Any]] = []
    first = _driver(fake, None, written)
    first.run(drain_instances("demo-api", ["i-0000000000000000a"], deadline=None, wait=False, owner="me"))
    assert "describe_target_group_attributes" in first.operations()
    assert written == [{"service_target_groups": [TG], "deregistration_delays": {TG: 45}}]
    second = _driver(fake, written[0], written)
    second.run(drain_instances("demo-api", ["i-0000000000000000b"], deadline=None, wait=False, owner="me"))
    assert "describe_target_group_attributes" not in second.operations() and len(written) == 1


def test_cached_delays_age_out() -> None:
    cache = store.GroupCache((TG,), {TG: 30}, updated_at=NOW)
    assert cache.delays_at(NOW + store.DELAYS_MAX_AGE) == {TG: 30}
    assert cache.delays_at(NOW + store.DELAYS_MAX_AGE + 1) == {}
    assert not cache.outdated([TG], {TG: 30}, now=NOW + 10)
    assert cache.outdated([TG], {TG: 60}, now=NOW + 10)  # the delay was changed
    assert cache.outdated([TG, TG + "2"], {TG: 30}, now=NOW + 10)  # a service brought a new group
    assert cache.outdated([TG], {TG: 30}, now=NOW + store.DELAYS_MAX_AGE + 1)  # read again: write the new stamp


def test_a_cache_written_before_delays_were_cached_still_reads() -> None:
    """Tables written by an earlier release hold only the groups."""
    answer = {"Item": {"doc": {"S": json.dumps({"service_target_groups": [TG]})}, "updated_at": {"N": "1"}}}
    assert store.group_cache_from(answer) == store.GroupCache((TG,), {}, 1.0)


def test_an_unreadable_cache_is_refused_by_the_drain_and_skipped_by_plan() -> None:
    """The drain writes the cache back, so it must not silently replace a record it cannot read;
    plan's lint only takes a shortcut through it and reads ELB instead."""
    answer = {"Item": {"doc": {"S": "{not json"}, "updated_at": {"N": "1"}}}
    with pytest.raises(ValueError):
        store.group_cache_from(answer)
    assert store.group_cache_from(answer, strict=False) == store.GroupCache()


def test_a_cache_dated_in_the_future_is_not_trusted() -> None:
    cache = store.GroupCache((TG,), {TG: 30}, updated_at=5_000.0)
    assert cache.delays_at(1_000.0) == {} and cache.delays_at(5_100.0) == {TG: 30}


def test_an_instance_whose_lease_another_owner_holds_is_left_alone() -> None:
    """The leases go out beside the first listing; when one is held elsewhere (the transaction
    cancelled, then write by write), that instance is neither set DRAINING nor deregistered, is
    answered ``skipped``, and only the leases taken are given back."""
    fake = Fake()
    ids = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]
    for iid in ids:
        fake.add(iid)
    held = f"lease#drain#{ids[1]}"
    written: list[dict[str, Any]] = []
    scripted = _driver(fake, {"service_target_groups": [TG], "deregistration_delays": {TG: 30}}, written)

    def answer(c: Call) -> Any:
        if c.operation == "transact_write_items" and any(held in json.dumps(i) for i in c.params["TransactItems"]):
            return aws_error(c, "TransactionCanceledException")
        if c.operation == "put_item" and c.params["Item"]["pk"]["S"] == held:
            return aws_error(c, "ConditionalCheckFailedException")
        return scripted.answer(c)

    driver = ScriptedDriver(answer)
    result = driver.run(drain_instances("demo-api", ids, deadline=None, wait=False, owner="me"))
    assert {a.instance_id: a.status for a in result.actions} == {ids[0]: "draining", ids[1]: "skipped", ids[2]: "draining"}
    assert [fake.instances[i]["status"] for i in ids] == ["DRAINING", "ACTIVE", "DRAINING"]
    assert [t["TargetHealth"]["State"] for t in fake.targets] == ["draining", "healthy", "draining"]
    released = [i["Delete"]["Key"]["pk"]["S"] for c in driver.calls if c.operation == "transact_write_items" for i in c.params["TransactItems"] if "Delete" in i]
    assert released == [f"lease#drain#{ids[0]}", f"lease#drain#{ids[2]}"]
