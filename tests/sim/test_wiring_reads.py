"""What ``ecsspot doctor`` reads, answered as AWS documents it: TestEventPattern with the pattern
matching the simulated bus delivers by, and ListEventSourceMappings from the simulator's pollers."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from ecsspot.sim import Simulator

EVENT = {
    "id": "1",
    "account": "123456789012",
    "source": "aws.ec2",
    "time": "2026-12-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail-type": "EC2 Spot Instance Interruption Warning",
    "detail": {"instance-id": "i-1"},
}


def test_test_event_pattern_answers_whether_the_pattern_matches(sim: Simulator) -> None:
    events = sim.client("events")
    spot = json.dumps({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]})
    assert events.test_event_pattern(EventPattern=spot, Event=json.dumps(EVENT))["Result"] is True
    other = json.dumps({"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]})
    assert events.test_event_pattern(EventPattern=other, Event=json.dumps(EVENT))["Result"] is False
    by_detail = json.dumps({"source": ["aws.ec2"], "detail": {"instance-id": ["i-2"]}})
    assert events.test_event_pattern(EventPattern=by_detail, Event=json.dumps(EVENT))["Result"] is False


def test_test_event_pattern_refuses_an_event_without_its_mandatory_fields(sim: Simulator) -> None:
    incomplete = {k: v for k, v in EVENT.items() if k != "account"}
    with pytest.raises(ClientError) as caught:
        sim.client("events").test_event_pattern(EventPattern=json.dumps({"source": ["aws.ec2"]}), Event=json.dumps(incomplete))
    assert caught.value.response["Error"]["Code"] == "InvalidEventPatternException" and "account" in caught.value.response["Error"]["Message"]


def test_list_event_source_mappings_shows_the_simulators_pollers(sim: Simulator) -> None:
    sqs = sim.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with sim.world.lock:
        sim.world.events.create_event_source_mapping(arn, "handler", batch_size=7)
        sim.world.events.create_event_source_mapping(arn, "plain", function_response_types=())
    listed = sim.client("lambda").list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
    by_function = {m["FunctionArn"].rsplit(":", 1)[-1]: m for m in listed}
    assert set(by_function) == {"handler", "plain"}
    assert by_function["handler"]["BatchSize"] == 7 and by_function["handler"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert by_function["plain"]["FunctionResponseTypes"] == [] and by_function["plain"]["State"] == "Enabled"
    only = sim.client("lambda").list_event_source_mappings(FunctionName="plain")["EventSourceMappings"]
    assert [m["FunctionArn"].rsplit(":", 1)[-1] for m in only] == ["plain"]
    assert sim.client("lambda").list_event_source_mappings(EventSourceArn=arn + "-other")["EventSourceMappings"] == []
