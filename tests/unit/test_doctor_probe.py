"""ecsspot doctor's test event on the handler's side: read strictly, recorded in the cluster's
table and nothing else, a failed record retried, a cluster without a table left alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot import events
from ecsspot.errors import EventError
from ecsspot.interruption import handle_event
from ecsspot.testing import ScriptedDriver, aws_error, by_operation

PROBE = "0123456789abcdef0123456789abcdef"


def probe_event(source: str = "ecsspot.doctor", **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "1",
        "detail-type": events.DOCTOR_PROBE,
        "source": source,
        "account": "123456789012",
        "time": "2026-12-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"cluster": "demo-api", "probe": PROBE, **detail},
    }


def sqs_batch(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecsspot-demo-api-events",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_the_probe_is_read_only_from_ecsspot_doctor_and_strictly() -> None:
    event = events.parse_event(probe_event())
    assert isinstance(event, events.DoctorProbe) and (event.cluster, event.probe) == ("demo-api", PROBE)
    assert events.decide(event).kind == "ignore"
    assert isinstance(events.parse_event(probe_event(source="someone.else")), events.OtherEvent)
    with pytest.raises(EventError, match="not a doctor probe id"):
        events.parse_event(probe_event(probe="x; rm -rf /"))
    with pytest.raises(EventError, match="not a cluster name"):
        events.parse_event(probe_event(cluster="a/b"))


def test_the_handler_records_the_probe_in_the_clusters_table_and_does_nothing_else() -> None:
    driver = ScriptedDriver(by_operation({"put_item": {}}))
    result = driver.run(handle_event(sqs_batch(probe_event()), owner="me"))
    (put,) = driver.calls
    assert (put.operation, put.params["TableName"], put.params["Item"]["sk"]["S"]) == ("put_item", "ecsspot-demo-api", f"probe#{PROBE}")
    assert result.batch_item_failures == () and [a.status for a in result.actions] == ["ignored"]


def test_a_failed_record_is_retried_and_a_cluster_without_a_table_is_not() -> None:
    throttled = ScriptedDriver(by_operation({"put_item": lambda call: aws_error(call, "ProvisionedThroughputExceededException")}))
    assert throttled.run(handle_event(sqs_batch(probe_event()), owner="me")).batch_item_failures == ("m0",)
    missing = ScriptedDriver(by_operation({"put_item": lambda call: aws_error(call, "ResourceNotFoundException")}))
    assert missing.run(handle_event(sqs_batch(probe_event()), owner="me")).batch_item_failures == ()
