"""Issue 12 goal 1: the interruption handler's requests in a row to DRAINING, counted on the
rounds it yields (no AWS, no timing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ecsspot import load_spec
from ecsspot.aws.calls import Call
from ecsspot.interruption import handle_event
from ecsspot.plan import desired_settings
from ecsspot.state import CLUSTER_TAG
from ecsspot.testing import ScriptedDriver
from tests.conftest import example_spec_dict
from tests.drain.conftest import load, sqs_batch
from tests.unit.scripted_dynamodb import batch_get
from tests.unit.test_drain import TG, Fake


def _setup(n: int) -> tuple[ScriptedDriver, list[str], str]:
    spec = load_spec(example_spec_dict())
    fake = Fake()
    ids = [f"i-{k:017x}" for k in range(n)]
    for iid in ids:
        fake.add(iid)
    tags = [{"Key": CLUSTER_TAG, "Value": spec.cluster}, {"Key": "aws:autoscaling:groupName", "Value": spec.asg_name(spec.pools[0])}]

    def answer(c: Call) -> Any:
        if c.operation == "describe_instances":
            wanted = c.params["Filters"][0]["Values"]
            return {"Reservations": [{"Instances": [{"InstanceId": i, "Tags": tags} for i in wanted]}]}
        if c.service != "dynamodb":
            return fake.answer(c)
        if c.operation == "batch_get_item":
            return batch_get(answer)(c)
        if c.operation == "get_item" and c.params["Key"]["sk"]["S"] == "settings":
            return {"Item": {"spec": {"S": desired_settings(spec)}}}
        if c.operation == "get_item" and c.params["Key"]["sk"]["S"] == "target_groups":
            doc = {"service_target_groups": [TG], "deregistration_delays": {TG: 30}}
            return {"Item": {"doc": {"S": json.dumps(doc)}, "updated_at": {"N": "1700000000"}}}
        return {}

    return ScriptedDriver(answer), ids, spec.cluster


def _payload(ids: list[str]) -> dict[str, Any]:
    bodies = []
    for n, iid in enumerate(ids):
        event = load("spot-interruption-warning.json")
        event.update(id=f"e-{n}", time=datetime.fromtimestamp(1_700_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        event["detail"]["instance-id"] = iid
        bodies.append((f"m-{n}", event))
    return sqs_batch(bodies)


@pytest.mark.parametrize("n", [1, 20, 100])
def test_the_default_clusters_settings_are_read_beside_the_instances(n: int) -> None:
    """With ECSSPOT_CLUSTER (the Terraform module always sets it) the cluster's settings and
    group cache are read in the round that reads the instances' tags: DRAINING and the
    deregistration go out in the 4th round whatever N (instances and settings, claims and marks,
    the drain's 2 rounds: issue 12 goal 1, at most 4 requests in a row)."""
    driver, ids, cluster = _setup(n)
    result = driver.run(handle_event(_payload(ids), owner="me", default_cluster=cluster, remaining_seconds=15.001))
    assert not result.batch_item_failures
    first = {op: i for i, r in reversed(list(enumerate(driver.rounds, 1))) for op in (c.operation for c in r)}
    assert first["describe_instances"] == first["batch_get_item"] == 1
    assert first["update_container_instances_state"] == first["deregister_targets"] == 4
    assert "describe_target_group_attributes" not in driver.operations()
    assert not [c for c in driver.calls[: sum(len(r) for r in driver.rounds[:4])] if c.operation == "list_tasks"]


def test_without_a_default_cluster_the_settings_follow_the_tags() -> None:
    driver, ids, _ = _setup(1)
    driver.run(handle_event(_payload(ids), owner="me", remaining_seconds=15.001))
    first = {op: i for i, r in reversed(list(enumerate(driver.rounds, 1))) for op in (c.operation for c in r)}
    assert (first["describe_instances"], first["batch_get_item"], first["update_container_instances_state"]) == (1, 2, 5)
