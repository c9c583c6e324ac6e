"""Lambda's SQS event source mapping on the virtual clock, and EventBridge → SQS delivery.

AWS: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html and
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecsspot.sim import Simulator
from ecsspot.sim.eventbridge import EventSourceMapping

EVENTS = Path(__file__).resolve().parent.parent / "events"
FUNCTION = "consumer"


def queue(sim: Simulator, name: str, *, visibility: int = 30, max_receive_count: int | None = None) -> tuple[str, str]:
    """(url, arn) of a new queue, with a dead-letter queue ``NAME-dlq`` when ``max_receive_count``."""
    sqs = sim.client("sqs")
    attributes = {"VisibilityTimeout": str(visibility)}
    if max_receive_count is not None:
        _, dlq_arn = queue(sim, f"{name}-dlq")
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def mapping(sim: Simulator, queue_arn: str, handler: Any, **kwargs: Any) -> EventSourceMapping:
    sim.register_lambda(FUNCTION, handler)
    with sim.world.lock:
        return sim.world.events.create_event_source_mapping(queue_arn, FUNCTION, **kwargs)


def send(sim: Simulator, url: str, *bodies: str) -> list[str]:
    return [sim.client("sqs").send_message(QueueUrl=url, MessageBody=b)["MessageId"] for b in bodies]


class Recorder:
    """A handler keeping (virtual time, records) of each batch; ``respond`` decides the answer."""

    def __init__(self, sim: Simulator, respond: Any = None) -> None:
        self.sim = sim
        self.respond = respond
        self.batches: list[tuple[float, list[dict[str, Any]]]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.batches.append((self.sim.now(), event["Records"]))
        return self.respond(event["Records"], len(self.batches)) if self.respond else None

    def deliveries(self, body: str) -> list[tuple[float, str]]:
        """(time, ApproximateReceiveCount) of each delivery of ``body``."""
        return [(t, r["attributes"]["ApproximateReceiveCount"]) for t, rs in self.batches for r in rs if r["body"] == body]


def test_batches_hold_at_most_ten_messages(sim: Simulator) -> None:
    url, arn = queue(sim, "work")
    send(sim, url, *(f"m{n}" for n in range(25)))
    seen = Recorder(sim)
    mapping(sim, arn, seen)
    sim.advance(10)
    assert sorted(len(rs) for _, rs in seen.batches) == [5, 10, 10]
    assert sorted(r["body"] for _, rs in seen.batches for r in rs) == sorted(f"m{n}" for n in range(25))
    assert sim.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"] == "0"
    with sim.world.lock, pytest.raises(ValueError, match="BatchSize 11"):
        sim.world.events.create_event_source_mapping(arn, FUNCTION, batch_size=11)


def test_records_have_the_sqs_event_shape(sim: Simulator) -> None:
    url, arn = queue(sim, "work")
    [message_id] = send(sim, url, "hello")
    sent_at = sim.now()
    seen = Recorder(sim)
    mapping(sim, arn, seen)
    sim.advance(2)
    [(_, [record])] = seen.batches
    recorded = json.loads((EVENTS / "wrapper-lambda-sqs-event-powertools.json").read_text())["Records"][0]
    assert sorted(record) == sorted(recorded)
    assert sorted(record["attributes"]) == sorted(recorded["attributes"])
    assert record["messageId"] == message_id and record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == sim.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # Timestamps on the simulator's clock (epoch milliseconds), not the wall clock.
    assert int(record["attributes"]["SentTimestamp"]) == int(sent_at * 1000)


def test_partial_batch_failure_brings_back_only_the_failed_message(sim: Simulator) -> None:
    url, arn = queue(sim, "work", visibility=30)
    ids = send(sim, url, "a", "b", "c")
    seen = Recorder(sim, lambda records, n: {"batchItemFailures": [{"itemIdentifier": ids[1]}]} if n == 1 else {"batchItemFailures": []})
    mapping(sim, arn, seen)
    sim.advance(2)
    [(first, _)] = seen.batches
    sim.advance(first + 29 - sim.now())
    assert len(seen.batches) == 1  # b is hidden for the queue's visibility timeout ...
    sim.advance(3)
    assert [(r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in seen.batches[1][1]] == [("b", "2")]  # ... then comes back alone
    assert 30 <= seen.batches[1][0] - first <= 31
    sim.advance(60)
    assert len(seen.batches) == 2 and seen.deliveries("a") == [(first, "1")] and seen.deliveries("c") == [(first, "1")]


def test_visibility_change_by_the_handler_follows_the_virtual_clock(sim: Simulator) -> None:
    url, arn = queue(sim, "work", visibility=930)
    [message_id] = send(sim, url, "x")
    sqs = sim.client("sqs")

    def respond(records: list[dict[str, Any]], n: int) -> Any:
        if n > 1:
            return None
        # What ecsspot's interruption handler does for a first failure: back in 5 s, not 930.
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=records[0]["receiptHandle"], VisibilityTimeout=5)
        return {"batchItemFailures": [{"itemIdentifier": message_id}]}

    seen = Recorder(sim, respond)
    mapping(sim, arn, seen)
    sim.advance(2)
    [(first, _)] = seen.batches
    sim.advance(10)
    [(_, one), (again, two)] = seen.deliveries("x")
    assert (one, two) == ("1", "2")
    assert 5 <= again - first <= 6  # on the simulator's clock: no wall-clock time has to pass


def test_a_raising_handler_fails_the_whole_batch(sim: Simulator) -> None:
    url, arn = queue(sim, "work", visibility=20)
    send(sim, url, "a", "b")

    def respond(records: list[dict[str, Any]], n: int) -> Any:
        if n == 1:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    seen = Recorder(sim, respond)
    mapping(sim, arn, seen)
    sim.advance(2)
    [(first, batch)] = seen.batches
    assert len(batch) == 2
    sim.advance(25)
    assert sorted((r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in seen.batches[1][1]) == [("a", "2"), ("b", "2")]
    assert seen.batches[1][0] - first >= 20
    assert [b.error for b in sim.world.events.batches] == ["RuntimeError: boom", None]


@pytest.mark.parametrize(
    "response",
    [{"batchItemFailures": [{"itemIdentifier": ""}]}, {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, {"batchItemFailures": [{"id": "x"}]}, "nonsense"],
    ids=["empty-id", "unknown-id", "bad-key", "invalid"],
)
def test_an_invalid_partial_response_fails_the_whole_batch(sim: Simulator, response: Any) -> None:
    url, arn = queue(sim, "work", visibility=20)
    send(sim, url, "a", "b")
    seen = Recorder(sim, lambda records, n: response if n == 1 else None)
    mapping(sim, arn, seen)
    sim.advance(25)
    assert sorted(r["body"] for r in seen.batches[1][1]) == ["a", "b"]


def test_dead_letter_queue_after_max_receive_count(sim: Simulator) -> None:
    url, arn = queue(sim, "work", visibility=10, max_receive_count=2)
    send(sim, url, "poison")

    def fail(records: list[dict[str, Any]], n: int) -> Any:
        raise RuntimeError("cannot handle it")

    seen = Recorder(sim, fail)
    mapping(sim, arn, seen)
    sim.advance(60)
    assert [count for _, count in seen.deliveries("poison")] == ["1", "2"]  # received maxReceiveCount times, then moved
    sqs = sim.client("sqs")
    dlq = sqs.get_queue_url(QueueName="work-dlq")["QueueUrl"]
    [moved] = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert moved["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_eventbridge_to_sqs_to_lambda_takes_time(sim: Simulator) -> None:
    _, arn = queue(sim, "events")
    events = sim.client("events")
    events.put_rule(Name="mine", EventPattern=json.dumps({"source": ["my.app"]}), State="ENABLED")
    events.put_targets(Rule="mine", Targets=[{"Id": "q", "Arn": arn}])
    seen = Recorder(sim)
    mapping(sim, arn, seen)
    sim.advance(3)
    put_at = sim.now()
    events.put_events(Entries=[{"Source": "my.app", "DetailType": "thing", "Detail": json.dumps({"n": 1})}])
    sim.advance(0)
    assert seen.batches == []  # nothing is instant
    sim.advance(3)
    [(delivered, [record])] = seen.batches
    assert 0 < delivered - put_at <= 2  # EventBridge → SQS under a second, then the next poll
    assert json.loads(record["body"])["detail"] == {"n": 1}


def test_a_deleted_queue_stops_its_mapping_without_stopping_the_world(sim: Simulator) -> None:
    url, arn = queue(sim, "work")
    mapping(sim, arn, Recorder(sim))
    sim.client("sqs").delete_queue(QueueUrl=url)
    sim.advance(5)
    assert [r.detail["queue"] for r in sim.records("lambda.event_source_mapping_disabled")] == [arn]
    assert sim.world.events.mappings == {}
