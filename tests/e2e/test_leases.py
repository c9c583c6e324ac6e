"""Leases and releases in constant calls (TransactWriteItems), exact under contention.

On the simulator, which serialises requests as AWS's own consistency does: moto's in-process
TransactWriteItems is not thread-safe (two at once fail with "dictionary changed size during
iteration"), and a batch of 150 leases sends two at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecsspot.apply import create_table
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.driver import Driver
from ecsspot.sim import Simulator
from ecsspot.store import acquire_leases, let_go, read_lease
from tests.conftest import REGION, CallCounter

TABLE = "ecsspot-demo-api"


@pytest.fixture(name="driver")
def driver_fixture() -> Iterator[tuple[Driver, CallCounter]]:
    with Simulator(region=REGION, seed=1) as sim:
        counter = CallCounter()
        driver = Driver(ClientOptions(region=REGION, event_handlers=(counter.handler(),)), clock=sim.clock)
        driver.run(create_table(TABLE, "demo-api"))
        counter.calls.clear()
        yield driver, counter
        driver.close()


def test_many_leases_cost_one_call_each_way(driver: tuple[Driver, CallCounter]) -> None:
    d, counter = driver
    names = [f"drain#i-{n:017x}" for n in range(150)]
    got = d.run(acquire_leases(TABLE, names, "me", now=1000.0, ttl=60))
    assert all(got[n] is not None for n in names)
    assert counter.calls == ["TransactWriteItems", "TransactWriteItems"]  # 100 + 50
    counter.calls.clear()
    assert d.run(let_go(TABLE, (), names, "me")) == []
    assert counter.calls == ["TransactWriteItems", "TransactWriteItems"]
    assert d.run(read_lease(TABLE, names[0])) is None


def test_a_contended_lease_is_told_apart_and_the_others_are_taken(driver: tuple[Driver, CallCounter]) -> None:
    """One lease held by someone else cancels the transaction; written one by one, exactly that
    one is refused and the others are taken. Releasing then leaves the other owner's alone."""
    d, counter = driver
    names = [f"drain#i-{n:017x}" for n in range(5)]
    d.run(acquire_leases(TABLE, [names[2]], "other", now=1000.0, ttl=600))
    counter.calls.clear()
    got = d.run(acquire_leases(TABLE, names, "me", now=1000.0, ttl=60))
    assert [n for n in names if got[n] is None] == [names[2]]
    assert counter.calls == ["TransactWriteItems"] + ["PutItem"] * 5
    assert d.run(let_go(TABLE, (), names, "me")) == []
    holder = d.run(read_lease(TABLE, names[2]))
    assert holder is not None and holder.owner == "other"
    assert all(d.run(read_lease(TABLE, n)) is None for n in names if n != names[2])


def test_an_expired_lease_is_taken_in_the_transaction(driver: tuple[Driver, CallCounter]) -> None:
    d, counter = driver
    names = ["drain#i-1", "drain#i-2"]
    d.run(acquire_leases(TABLE, names, "other", now=1000.0, ttl=10))
    counter.calls.clear()
    got = d.run(acquire_leases(TABLE, names, "me", now=2000.0, ttl=60))
    assert all(got[n] is not None for n in names)
    assert counter.calls == ["TransactWriteItems"]


@pytest.mark.parametrize("count", [1, 6])
def test_a_drain_writes_its_state_in_the_same_calls_whatever_the_count(count: int) -> None:
    """Issue 12 goal 2: starting the drain of N instances through the public API reads the
    cluster's settings, takes N leases and gives them back in a constant number of DynamoDB calls
    (it was one PutItem and one DeleteItem per instance)."""
    from ecsspot import Manager
    from tests.drain.conftest import build

    with Simulator(region=REGION, seed=3) as sim:
        stack = build(sim)
        asg = sim.client("autoscaling")
        groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        ids = sorted(i["InstanceId"] for g in groups for i in g["Instances"])[:count]
        assert len(ids) == count
        counter = CallCounter()
        manager = Manager(region=REGION, clock=sim.clock, event_handlers=[counter.handler()])
        result = manager.drain(stack.spec.cluster, ids, wait=False)
        assert {a.status for a in result.actions} == {"draining"}
        dynamodb = [c for c in counter.calls if c in ("BatchGetItem", "GetItem", "PutItem", "DeleteItem", "TransactWriteItems", "UpdateItem")]
        take, give_back = ("TransactWriteItems", "TransactWriteItems") if count > 1 else ("PutItem", "DeleteItem")
        # The settings and the cached target groups (one BatchGetItem), the leases, the target
        # groups cached (this cluster's first drain found them through its services), the leases back.
        assert dynamodb == ["BatchGetItem", take, "PutItem", give_back]
