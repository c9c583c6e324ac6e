"""The event model composes one ``Envelope`` instead of repeating its five fields per class."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from ecsspot import events
from ecsspot.events import Envelope, Event

ENVELOPE_FIELDS = ("event_id", "time", "source", "region", "account")
EVENT_CLASSES = [
    c for c in vars(events).values() if isinstance(c, type) and issubclass(c, Event) and c is not Event
]


def test_every_event_class_is_exported() -> None:
    # Twelve kinds of event under the one base (the "13 classes" counts Event too), and
    # ecsspot doctor's test event.
    assert len(EVENT_CLASSES) == 13


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_each_event_holds_one_envelope_and_repeats_none_of_its_fields(cls: type[Event]) -> None:
    own = [f.name for f in attrs.fields(cls)]
    assert own.count("envelope") == 1
    assert set(own) & set(ENVELOPE_FIELDS) == set()
    assert [f.name for f in attrs.fields(Envelope)] == list(ENVELOPE_FIELDS)


def test_the_envelope_fields_read_through_and_stay_frozen() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    envelope = Envelope(event_id="e-1", time=when, source="aws.ec2", region="eu-west-1", account="123456789012")
    event = events.RebalanceRecommendation("i-0123456789abcdef0", envelope=envelope)
    assert (event.event_id, event.time, event.source, event.region, event.account) == ("e-1", when, "aws.ec2", "eu-west-1", "123456789012")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.time = None  # type: ignore[misc]
    assert events.RebalanceRecommendation("i-0123456789abcdef0").envelope == Envelope()


def test_an_eventbridge_event_fills_the_envelope_from_its_wrapper() -> None:
    event = events.parse_event(
        {
            "version": "0", "id": "e-2", "detail-type": "EC2 Instance Rebalance Recommendation",
            "source": "aws.ec2", "account": "123456789012", "time": "2026-01-02T00:00:00Z",
            "region": "eu-west-1", "resources": [], "detail": {"instance-id": "i-0123456789abcdef0"},
        }
    )
    assert event.envelope == Envelope("e-2", datetime(2026, 1, 2, tzinfo=UTC), "aws.ec2", "eu-west-1", "123456789012")
