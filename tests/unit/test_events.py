"""ecsspot.events against every recorded payload in tests/events/ plus variants built from the
documented formats (tests/events/SOURCES.md). Pure: no moto, no AWS."""

from __future__ import annotations

import ast
import copy
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsspot import events as ev
from ecsspot.errors import EventError, InputError
from ecsspot.events import (
    ContainerInstanceStateChange,
    Decision,
    HealthScheduledChange,
    InstanceStateChange,
    LifecycleAction,
    LifecycleTestNotification,
    OtherEvent,
    ParameterChange,
    RebalanceRecommendation,
    Record,
    ServiceAction,
    SpotInterruptionWarning,
    SubscriptionConfirmation,
    TaskStateChange,
    decide,
    parse_batch,
    parse_event,
    parse_time,
)

EVENTS = Path(__file__).parents[1] / "events"
SAMPLES = sorted(p.relative_to(EVENTS).as_posix() for p in EVENTS.rglob("*.json"))
UTC = UTC


def load(name: str) -> Any:
    """A recorded payload from tests/events/ (fresh copy each time, so tests may mutate it)."""
    return json.loads((EVENTS / name).read_text())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spec_with(**drain: int) -> Any:
    """The example spec with these ``drain`` settings (the rest at their defaults)."""
    from ecsspot.spec import Drain, load_spec
    from tests.conftest import example_spec_dict

    return attrs.evolve(load_spec(example_spec_dict()), drain=Drain(**drain))


# One row per file, so a new sample fails until someone says what it should parse to.


@attrs.frozen
class Parsed:
    """parse_event gives ``cls`` with these field values, and decide() gives ``decision``."""

    cls: type
    decision: str
    fields: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Rejected:
    """Not an event: parse_event raises EventError matching ``match``; ``helper`` may read it."""

    match: str
    helper: Callable[[Any], Any] | None = None


@attrs.frozen
class Batch:
    """A Lambda batch: parse_batch gives one record per entry, (message_id, cls or error regex)."""

    records: tuple[tuple[str | None, type | str], ...]


SPOT_ID = "i-0b662ef9931388ba0"
EXPECT: dict[str, Parsed | Rejected | Batch] = {
    "asg-instance-terminate-successful-eventbridge-lambda-go.json": Parsed(
        OtherEvent, "ignore",
        {"detail_type": "EC2 Instance Terminate Successful", "source": "aws.autoscaling"},
    ),
    "asg-lifecycle-launch-eventbridge-lambda-go.json": Parsed(
        LifecycleAction, "ignore",
        {"transition": "LAUNCHING", "instance_id": "i-1234567890abcdef0", "group_name": "my-asg",
         "hook_name": "my-lifecycle-hook", "metadata": "additional-info", "origin": None},
    ),
    "asg-lifecycle-launch-eventbridge-origin-destination.json": Parsed(
        LifecycleAction, "ignore",
        {"transition": "LAUNCHING", "origin": "EC2", "destination": "AutoScalingGroup",
         "time": utc(2021, 2, 1, 17, 18, 6, 82000)},
    ),
    "asg-lifecycle-launch-eventbridge-warmpool-ec2-to-warmpool.json": Parsed(
        LifecycleAction, "ignore", {"transition": "LAUNCHING", "destination": "WarmPool"}
    ),
    "asg-lifecycle-launch-eventbridge-warmpool-to-asg.json": Parsed(
        LifecycleAction, "ignore", {"transition": "LAUNCHING", "origin": "WarmPool"}
    ),
    "asg-lifecycle-terminate-eventbridge-ecs-drain-lambda.json": Parsed(
        LifecycleAction, "drain",
        {"transition": "TERMINATING", "instance_id": "i-12345678", "group_name": "sampleASG",
         "hook_name": "SampleLifecycleHook-6789",
         "token": "630aa23f-48eb-45e7-aba6-799ea6093a0f", "metadata": None},
    ),
    "asg-lifecycle-terminate-eventbridge-lambda-go.json": Parsed(
        LifecycleAction, "drain", {"transition": "TERMINATING", "time": utc(1970, 1, 1)}
    ),
    "asg-lifecycle-terminate-eventbridge-origin-destination.json": Parsed(
        LifecycleAction, "drain",
        {"transition": "TERMINATING", "origin": "AutoScalingGroup", "destination": "WarmPool",
         "metadata": "additional-info", "time": utc(2022, 3, 28, 0, 12, 37, 214000)},
    ),
    "asg-lifecycle-terminate-eventbridge.json": Parsed(
        LifecycleAction, "drain",
        {"instance_id": "i-0633ac2b0d9769723", "event_id": "782d5b4c-0f6f-1fd6-9d62-ecf6aed0a470",
         "source": "aws.autoscaling", "region": "us-east-1", "account": "123456789012"},
    ),
    "asg-lifecycle-terminate-sns-notification.json": Parsed(
        LifecycleAction, "drain",
        {"instance_id": "i-4c87e963", "group_name": "org-staging-docker-asg-$INSTANCE_ID",
         "token": "2f346e45-4866-4bf1-a752-f6eea23011c7", "account": "341288657826",
         "time": utc(2014, 12, 23, 19, 17, 3, 843000),
         "event_id": "8fb86310-cc3f-45b6-9577-7997b4bfad0d"},
    ),
    "asg-lifecycle-terminate-sqs-body-empty-instance-id.json": Rejected(
        r"^EC2InstanceId: not a valid EC2 instance id: ''$"
    ),
    "asg-lifecycle-terminate-sqs-message-sdk-shape.json": Parsed(
        LifecycleAction, "drain",
        {"instance_id": "i-0000000000", "group_name": "some-asg", "hook_name": "test",
         "token": "c7b2144c", "account": "0000000"},
    ),
    "asg-lifecycle-terminate-sqs-or-sns.json": Parsed(
        LifecycleAction, "drain",
        {"instance_id": "i-123486890234", "group_name": "my-asg", "hook_name": "my-hook",
         "time": utc(2019, 9, 27, 2, 39, 14, 183000), "account": "12345689012"},
    ),
    "asg-test-notification-sns-notification.json": Parsed(
        LifecycleTestNotification, "ignore",
        {"group_name": "org-staging-docker-asg-$INSTANCE_ID"},
    ),
    "asg-test-notification.json": Parsed(
        LifecycleTestNotification, "ignore",
        {"group_name": "ecs-default-cluster-Sandbox-EcsClusterAutoScaleGroupSandbox-CLJKMQ0V93DL",
         "event_id": "4781ed87-354a-11e9-9f76-cb62a7958e88"},
    ),
    "aws-health-account-notification-odcr.json": Parsed(
        OtherEvent, "ignore", {"detail_type": "AWS Health Event", "source": "aws.health"}
    ),
    "aws-health-scheduled-change.json": Parsed(
        HealthScheduledChange, "drain",
        {"instance_ids": ("i-12345678",),
         "event_type_code": "AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED",
         "start_time": utc(2016, 6, 5, 15, 10, 9), "end_time": None, "account": "account id"},
    ),
    "ec2-instance-state-change-notification-aws-docs.json": Parsed(
        InstanceStateChange, "ignore", {"instance_id": "i-abcd1111", "state": "pending"}
    ),
    "ec2-instance-state-change-notification.json": Parsed(
        InstanceStateChange, "ignore", {"instance_id": "i-abcd1111", "state": "pending"}
    ),
    "ecs-container-instance-state-change-lambda-go.json": Parsed(
        ContainerInstanceStateChange, "ignore",
        {"ec2_instance_id": "i-f3a8506b", "status": "ACTIVE", "agent_connected": True},
    ),
    "ecs-container-instance-state-change.json": Parsed(
        ContainerInstanceStateChange, "ignore",
        {"cluster_arn": "arn:aws:ecs:us-east-1:111122223333:cluster/default",
         "container_instance_arn": "arn:aws:ecs:us-east-1:111122223333:container-instance/"
                                   "b54a2a04-046f-4331-9d74-3f6d7f6ca315",
         "ec2_instance_id": "i-f3a8506b", "status": "ACTIVE"},
    ),
    "ecs-optimized-ami-get-parameters-response-2018-epoch.json": Rejected("SSM GetParameters"),
    "ecs-optimized-ami-get-parameters-response-2022-format.json": Rejected("SSM GetParameters"),
    "ecs-optimized-ami-get-parameters-response-windows.json": Rejected("SSM GetParameters"),
    "ecs-optimized-ami-get-parameters-response.json": Rejected("SSM GetParameters"),
    "ecs-optimized-ami-parameter-2022-format.json": Rejected("AMI parameter value"),
    "ecs-optimized-ami-parameter.json": Rejected("AMI parameter value"),
    "ecs-service-action-info.json": Parsed(
        ServiceAction, "ignore",
        {"event_type": "INFO", "event_name": "SERVICE_STEADY_STATE",
         "service_arn": "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"},
    ),
    "ecs-service-action-placement-failure-cpu.json": Parsed(
        ServiceAction, "ignore",
        {"event_name": "SERVICE_TASK_PLACEMENT_FAILURE", "reason": "RESOURCE:CPU",
         "container_instance_arns": ("arn:aws:ecs:us-west-2:111122223333:container-instance/"
                                     "default/2dd1b186f39845a584488d2ef155c131",)},
    ),
    "ecs-service-action-placement-failure-fargate-spot.json": Parsed(
        ServiceAction, "ignore",
        {"reason": "RESOURCE:FARGATE",
         "capacity_provider_arns": ("arn:aws:ecs:us-west-2:111122223333:capacity-provider/"
                                    "FARGATE_SPOT",)},
    ),
    "ecs-task-state-change.json": Parsed(
        TaskStateChange, "ignore",
        {"last_status": "RUNNING", "desired_status": "RUNNING", "launch_type": "FARGATE",
         "container_instance_arn": None},
    ),
    # IMDS bodies and SSM values are read by the instance / refresh code, never delivered as
    # events: rejected with a message saying what they are.
    "imds-events-maintenance-history.json": Rejected("^payload: expected a JSON object"),
    "imds-events-maintenance-scheduled.json": Rejected("^payload: expected a JSON object"),
    "imds-events-recommendations-rebalance.json": Rejected(
        "IMDS rebalance", helper=ev.parse_imds_rebalance
    ),
    "imds-spot-instance-action-stop.json": Rejected(
        "IMDS spot/instance-action", helper=ev.parse_imds_spot_action
    ),
    "imds-spot-instance-action-terminate.json": Rejected(
        "IMDS spot/instance-action", helper=ev.parse_imds_spot_action
    ),
    "rebalance-recommendation.json": Parsed(
        RebalanceRecommendation, "rebalance", {"instance_id": SPOT_ID}
    ),
    "sns-subscription-confirmation.json": Parsed(
        SubscriptionConfirmation, "ignore",
        {"topic_arn": "arn:aws:sns:us-east-1:341288657826:pudding-test-topic",
         "event_id": "98a3094e-c7e8-4d38-a730-939f361c6065", "source": "aws.sns"},
    ),
    "spot-interruption-warning-karpenter.json": Parsed(
        SpotInterruptionWarning, "drain",
        {"instance_id": "i-0123456789", "action": "terminate", "region": "us-east-2"},
    ),
    "spot-interruption-warning-nth-comment.json": Parsed(
        SpotInterruptionWarning, "drain",
        {"instance_id": SPOT_ID, "account": "<account_number>", "time": utc(1970, 1, 1)},
    ),
    "spot-interruption-warning.json": Parsed(
        SpotInterruptionWarning, "drain",
        {"instance_id": SPOT_ID, "action": "terminate",
         "event_id": "1e5527d7-bb36-4607-3370-4164db56a40e", "source": "aws.ec2"},
    ),
    "ssm-parameter-change-create-aws-ec2-image-datatype.json": Parsed(
        ParameterChange, "refresh",
        {"name": "golden-ami", "operation": "Create", "data_type": "aws:ec2:image",
         "exception": "Unable to Describe Resource", "description": None},
    ),
    "ssm-parameter-change-create.json": Parsed(
        ParameterChange, "refresh",
        {"name": "MyExampleParameter", "operation": "Create", "parameter_type": "String",
         "description": "Sample Parameter"},
    ),
    "ssm-parameter-change-delete.json": Parsed(ParameterChange, "refresh", {"operation": "Delete"}),
    "ssm-parameter-change-update.json": Parsed(ParameterChange, "refresh", {"operation": "Update"}),
    # Generic Lambda envelopes around toy messages: each record is an error, naming it.
    "wrapper-lambda-sns-event-lambda-go.json": Batch(
        (("95df01b4-ee98-5cb9-9903-4c221d41eb5e", r"^Records\[0\]\.Sns\.Message: not JSON"),)
    ),
    "wrapper-lambda-sns-event-powertools.json": Batch(
        (("95df01b4-ee98-5cb9-9903-4c221d41eb5e", r"^Records\[0\]\.Sns\.Message: not JSON"),)
    ),
    "wrapper-lambda-sqs-event-lambda-go.json": Batch(
        (("MessageID_1", r"^Records\[0\]\.body: not JSON: 'Message Body'"),)
    ),
    "wrapper-lambda-sqs-event-powertools.json": Batch(
        (
            ("059f36b4-87a3-44ab-83d2-661975830a7d", r"^Records\[0\]\.body: not JSON"),
            ("2e1424d4-f796-459a-8184-9c92662be6da", r"^Records\[1\]\.body: not an EventBridge"),
        )
    ),
    "wrapper-lambda-sqs-with-sns-body-powertools.json": Batch(
        (("79406a00-bf15-46ca-978c-22c3613fcb30", r"^Records\[0\]\.body\.Message: not an Event"),)
    ),
    # Published text that is not a well-formed AWS payload: rejected, naming the field.
    "nonstandard/ec2-instance-state-change-notification-powertools.json": Rejected(
        r"^detail\.instance-id: missing$"
    ),
    "nonstandard/rebalance-recommendation-aws-docs-placeholder.json": Rejected(
        r"^time: not an RFC 3339 or RFC 1123 timestamp: 'yyyy-mm-ddThh:mm:ssZ'$"
    ),
    "nonstandard/spot-interruption-warning-aws-docs-placeholder.json": Rejected(
        r"^time: not an RFC 3339 or RFC 1123 timestamp: 'yyyy-mm-ddThh:mm:ssZ'$"
    ),
}


def test_every_sample_file_has_an_expectation() -> None:
    assert len(SAMPLES) >= 53
    assert sorted(EXPECT) == SAMPLES, "add a row to EXPECT for each new tests/events file"


@pytest.mark.parametrize("name", SAMPLES)
def test_sample(name: str) -> None:
    payload = load(name)
    expected = EXPECT.get(name)
    if expected is None:
        pytest.fail(f"{name}: no row in EXPECT; say what this payload should parse to")
    if isinstance(expected, Parsed):
        event = parse_event(payload)
        assert type(event) is expected.cls
        for field, value in expected.fields.items():
            assert getattr(event, field) == value, field
        assert event.time is None or event.time.tzinfo is UTC
        decision = decide(event)
        assert decision.kind == expected.decision
        assert decision.reason
        (record,) = parse_batch(payload)
        assert record.ok and record.event == event
    elif isinstance(expected, Rejected):
        with pytest.raises(EventError, match=expected.match):
            parse_event(payload)
        if isinstance(payload, dict):
            (record,) = parse_batch(payload)
            assert record.event is None and re.search(expected.match, str(record.error))
        else:
            with pytest.raises(EventError):
                parse_batch(payload)
        if expected.helper is not None:
            expected.helper(payload)
    else:
        with pytest.raises(EventError, match="use parse_batch"):
            parse_event(payload)
        records = parse_batch(payload)
        assert len(records) == len(expected.records)
        for record, (message_id, what) in zip(records, expected.records):
            assert record.message_id == message_id
            if isinstance(what, str):
                assert record.event is None and re.search(what, str(record.error))
            else:
                assert type(record.event) is what


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_gives_typed_result_or_event_error(name: str) -> None:
    payload = load(name)
    try:
        event = parse_event(payload)
    except EventError as exc:
        assert isinstance(exc, InputError) and exc.exit_code == 3
        assert "KeyError" not in str(exc) and "Traceback" not in str(exc)
    else:
        hash(event)  # frozen and hashable: usable as a dedup key
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.time = None  # type: ignore[misc]
        assert isinstance(decide(event), Decision)


def test_spot_warning_drains_before_the_two_minutes_are_up() -> None:
    event = parse_event(load("spot-interruption-warning.json"))
    d = decide(event)
    assert d == Decision(
        "drain", (SPOT_ID,), d.reason,
        deadline=utc(1970, 1, 1, 0, 1, 50), event_key="1e5527d7-bb36-4607-3370-4164db56a40e",
    )
    assert "terminated" in d.reason
    assert decide(event, spot_margin_seconds=30).deadline == utc(1970, 1, 1, 0, 1, 30)


@pytest.mark.parametrize("action", ["stop", "hibernate"])
def test_spot_stop_and_hibernate_also_drain(action: str) -> None:
    payload = load("spot-interruption-warning-karpenter.json")
    payload["detail"]["instance-action"] = action
    event = parse_event(payload)
    assert event.action == action
    d = decide(event)
    assert d.kind == "drain" and d.deadline == utc(2022, 8, 11, 14, 1, 50)


def test_spot_unknown_action_is_rejected() -> None:
    payload = load("spot-interruption-warning.json")
    payload["detail"]["instance-action"] = "reboot"
    with pytest.raises(EventError, match=r"^detail\.instance-action: expected terminate"):
        parse_event(payload)


def test_terminate_lifecycle_action_drains_and_carries_the_hook() -> None:
    event = parse_event(load("asg-lifecycle-terminate-eventbridge.json"))
    d = decide(event)
    assert d.kind == "drain"
    assert d.lifecycle is event and d.instance_ids == ("i-0633ac2b0d9769723",)
    # The hook's timeout, not the event, bounds the drain: 300 s of a spec with that timeout.
    assert d.deadline is None
    assert ev.deadline_for(d, spec_with(lifecycle_timeout_seconds=300), event.time.timestamp()) == 300
    assert d.event_key == "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6"  # the token, not the event id


def test_same_hook_action_via_eventbridge_and_sqs_has_one_idempotency_key() -> None:
    direct = load("asg-lifecycle-terminate-sqs-or-sns.json")
    bridged = {
        "version": "0", "id": "5f2c1a33-0000-4000-8000-000000000001",
        "detail-type": "EC2 Instance-terminate Lifecycle Action", "source": "aws.autoscaling",
        "account": "12345689012", "time": "2019-09-27T02:39:14Z", "region": "us-east-1",
        "resources": ["auto-scaling-group-arn"],
        "detail": {k: direct[k] for k in (
            "LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName",
            "EC2InstanceId", "LifecycleTransition")},
    }
    a, b = decide(parse_event(direct)), decide(parse_event(bridged))
    assert a.event_key == b.event_key == direct["LifecycleActionToken"]
    assert a.instance_ids == b.instance_ids


def test_direct_lifecycle_body_without_time_still_drains() -> None:
    payload = load("asg-lifecycle-terminate-sqs-or-sns.json")
    del payload["Time"]
    d = decide(parse_event(payload))
    assert d.kind == "drain" and d.deadline is None and d.lifecycle is not None


def test_launch_lifecycle_action_is_ignored_with_reason() -> None:
    d = decide(parse_event(load("asg-lifecycle-launch-eventbridge-lambda-go.json")))
    assert d.kind == "ignore" and "terminating hooks" in d.reason and d.lifecycle is None


def test_lifecycle_detail_type_must_match_transition() -> None:
    payload = load("asg-lifecycle-terminate-eventbridge.json")
    payload["detail"]["LifecycleTransition"] = "autoscaling:EC2_INSTANCE_LAUNCHING"
    with pytest.raises(EventError, match=r"^detail\.LifecycleTransition: LAUNCHING does not"):
        parse_event(payload)


def test_unknown_lifecycle_transition_is_rejected() -> None:
    payload = load("asg-lifecycle-terminate-sqs-or-sns.json")
    payload["LifecycleTransition"] = "autoscaling:EC2_INSTANCE_REBOOTING"
    with pytest.raises(EventError, match="^LifecycleTransition: unknown transition"):
        parse_event(payload)


@pytest.mark.parametrize(
    "field", ["LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName", "EC2InstanceId"]
)
def test_direct_lifecycle_body_missing_field_names_it(field: str) -> None:
    payload = load("asg-lifecycle-terminate-sqs-or-sns.json")
    del payload[field]
    with pytest.raises(EventError, match=f"^{field}: missing$"):
        parse_event(payload)


def test_test_notification_inside_eventbridge_detail() -> None:
    # NTH's Go test builds this form; there is no instance, token or hook name.
    payload = load("asg-lifecycle-terminate-eventbridge.json")
    payload["detail"] = {
        "AutoScalingGroupName": "my-asg",
        "LifecycleTransition": "autoscaling:TEST_NOTIFICATION",
    }
    event = parse_event(payload)
    assert event == LifecycleTestNotification(
        "my-asg", envelope=ev.Envelope(time=utc(2020, 7, 1, 22, 19, 58), event_id=payload["id"],
        source="aws.autoscaling", region="us-east-1", account="123456789012"),
    )
    assert decide(event).kind == "ignore"


def test_plain_asg_notification_is_other_event() -> None:
    payload = load("asg-test-notification.json")
    payload["Event"] = "autoscaling:EC2_INSTANCE_TERMINATE"
    event = parse_event(payload)
    assert isinstance(event, OtherEvent)
    assert event.detail_type == "autoscaling:EC2_INSTANCE_TERMINATE"
    assert decide(event).kind == "ignore"


def test_rebalance_recommendation() -> None:
    d = decide(parse_event(load("rebalance-recommendation.json")))
    assert (d.kind, d.instance_ids, d.deadline) == ("rebalance", (SPOT_ID,), None)
    assert d.event_key == "5d5555d5-dd55-5555-5555-5555dd55d55d"


def test_health_scheduled_change_deadline_is_the_maintenance_start_when_ahead() -> None:
    event = parse_event(load("aws-health-scheduled-change.json"))
    d = decide(event)
    assert d.kind == "drain" and d.instance_ids == ("i-12345678",)
    assert d.deadline == utc(2016, 6, 5, 15, 10, 9)
    # Once the start has passed, fall back to the lifecycle default from "now".
    late = utc(2016, 6, 5, 16, 0, 0)
    past = decide(event, now=late)
    assert past.deadline is None
    assert ev.deadline_for(past, spec_with(lifecycle_timeout_seconds=60), late.timestamp()) == 60


def test_health_start_already_past_uses_event_time_plus_default() -> None:
    payload = load("aws-health-scheduled-change.json")
    payload["detail"]["startTime"] = "Sat, 4 Jun 2016 15:10:09 GMT"  # 1-digit day
    event = parse_event(payload)
    assert event.start_time == utc(2016, 6, 4, 15, 10, 9)
    # The default is the spec's lifecycle timeout (600 s unless set), from the event time.
    d = decide(event)
    assert d.deadline is None
    assert ev.deadline_for(d, spec_with(), event.time.timestamp()) == 600


def test_health_ids_come_from_affected_entities_not_just_resources() -> None:
    payload = load("aws-health-scheduled-change.json")
    payload["resources"] = ["i-ffffffff"]
    payload["detail"]["affectedEntities"] = [
        {"entityValue": "i-0aaaaaaaaaaaaaaaa"},
        {"entityValue": "h-0123456789abcdef0"},  # a dedicated host: not ours to drain
        {"entityValue": "i-0aaaaaaaaaaaaaaaa"},
        {"entityValue": "i-0bbbbbbbbbbbbbbbb"},
    ]
    assert parse_event(payload).instance_ids == ("i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb")
    del payload["detail"]["affectedEntities"]
    assert parse_event(payload).instance_ids == ("i-ffffffff",)


def test_health_hostile_entity_is_rejected() -> None:
    payload = load("aws-health-scheduled-change.json")
    payload["detail"]["affectedEntities"][0]["entityValue"] = "i-12345678; reboot"
    with pytest.raises(EventError, match=r"^detail\.affectedEntities\[0\]\.entityValue: not"):
        parse_event(payload)


def test_health_without_instances_is_ignored() -> None:
    payload = load("aws-health-scheduled-change.json")
    payload["detail"]["affectedEntities"] = [{"entityValue": "vol-0123456789abcdef0"}]
    d = decide(parse_event(payload))
    assert d.kind == "ignore" and "names no EC2 instance" in d.reason


def test_health_account_notification_is_ignored_with_reason() -> None:
    d = decide(parse_event(load("aws-health-account-notification-odcr.json")))
    assert d.kind == "ignore" and d.instance_ids == ()
    assert "accountNotification" in d.reason


def test_parameter_change_asks_for_refresh() -> None:
    d = decide(parse_event(load("ssm-parameter-change-update.json")))
    assert d == Decision(
        "refresh", (), d.reason, event_key="9547ef2d-3b7e-4057-b6cb-5fdf09ee7c8f"
    )
    assert "MyExampleParameter" in d.reason


def test_ignore_decisions_say_why() -> None:
    d = decide(parse_event(load("sns-subscription-confirmation.json")))
    assert d.kind == "ignore" and "subscription confirmation" in d.reason
    d = decide(parse_event(load("asg-instance-terminate-successful-eventbridge-lambda-go.json")))
    assert "EC2 Instance Terminate Successful" in d.reason


def sqs_record(body: Any, message_id: str = "m-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "AQEB...",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecsspot",
        "awsRegion": "us-east-1",
    }


def sns_envelope(message: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "9c1c8d2e-0000-4000-8000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ecsspot",
        "Message": json.dumps(message),
        "Timestamp": "2020-07-01T22:19:58.123Z",
        "SignatureVersion": "1",
        "Signature": "x",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def test_eventbridge_event_inside_lambda_sqs_batch() -> None:
    spot = load("spot-interruption-warning.json")
    (record,) = parse_batch({"Records": [sqs_record(spot, "abc")]})
    assert (record.message_id, record.event, record.error) == ("abc", parse_event(spot), None)
    assert record.via == "sqs"


def test_eventbridge_event_inside_sdk_receive_message() -> None:
    spot = load("spot-interruption-warning.json")
    message = {"MessageId": "m-9", "ReceiptHandle": "r", "MD5OfBody": "x", "Body": json.dumps(spot)}
    (record,) = parse_batch({"Messages": [message]})
    assert record.message_id == "m-9" and record.event == parse_event(spot)
    assert parse_event(message) == parse_event(spot)
    (single,) = parse_batch(message)
    assert single.message_id == "m-9" and single.ok


def test_sns_inside_sqs_without_raw_delivery() -> None:
    body = (EVENTS / "asg-lifecycle-terminate-sns-notification.json").read_text()
    (record,) = parse_batch({"Records": [sqs_record(body)]})
    assert isinstance(record.event, LifecycleAction)
    assert record.event.instance_id == "i-4c87e963"


def test_eventbridge_inside_sns_inside_sqs() -> None:
    spot = load("spot-interruption-warning.json")
    (record,) = parse_batch({"Records": [sqs_record(sns_envelope(spot))]})
    assert record.event == parse_event(spot)


def test_lambda_sns_record_with_lifecycle_message() -> None:
    payload = load("wrapper-lambda-sns-event-powertools.json")
    body = load("asg-lifecycle-terminate-sqs-or-sns.json")
    payload["Records"][0]["Sns"]["Message"] = json.dumps(body)
    (record,) = parse_batch(payload)
    assert record.message_id == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert isinstance(record.event, LifecycleAction)


def test_subscription_confirmation_in_sqs_and_lambda_spelling() -> None:
    confirmation = load("sns-subscription-confirmation.json")
    (record,) = parse_batch({"Records": [sqs_record(confirmation)]})
    assert isinstance(record.event, SubscriptionConfirmation)
    lambda_form = dict(confirmation)
    lambda_form["SubscribeUrl"] = lambda_form.pop("SubscribeURL")
    assert parse_event(lambda_form).subscribe_url == confirmation["SubscribeURL"]


def test_mixed_batch_keeps_good_records_and_names_the_bad_one() -> None:
    spot = load("spot-interruption-warning.json")
    bad = load("asg-lifecycle-terminate-sqs-body-empty-instance-id.json")
    records = parse_batch({"Records": [
        sqs_record(spot, "m-1"),
        sqs_record(bad, "m-2"),
        sqs_record(load("asg-lifecycle-terminate-sqs-or-sns.json"), "m-3"),
    ]})
    assert [r.message_id for r in records] == ["m-1", "m-2", "m-3"]
    assert [r.ok for r in records] == [True, False, True]
    assert str(records[1].error) == "Records[1].body.EC2InstanceId: not a valid EC2 instance id: ''"


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({k: v for k, v in sqs_record({}).items() if k != "messageId"}, r"^Records\[1\]\.messageId: missing \(SQS identifies"),
        ({**sqs_record({}), "messageId": ""}, r"^Records\[1\]\.messageId: expected a non-empty string, got ''"),
        ({**sqs_record({}), "messageId": 5}, r"^Records\[1\]\.messageId: expected a non-empty string, got 5"),
        ({"body": "{}", "receiptHandle": "r"}, r"^Records\[1\]\.messageId: missing"),
        ({"Body": "{}", "ReceiptHandle": "r"}, r"^Records\[1\]\.MessageId: missing"),
        (load("spot-interruption-warning.json"), r"^Records\[1\]\.messageId: missing"),
    ],
)
def test_batch_record_without_message_id_is_an_error_not_dropped(entry: dict[str, Any], match: str) -> None:
    """SQS retries records by id: one without an id is reported (the handler fails the batch)."""
    spot = load("spot-interruption-warning.json")
    entry = {**entry, "body": json.dumps(spot)} if "body" in entry else {**entry, "Body": json.dumps(spot)} if "Body" in entry else entry
    first, second, third = parse_batch({"Records": [sqs_record(spot, "m-1"), entry, sqs_record(spot, "m-3")]})
    assert (first.message_id, first.ok, third.message_id, third.ok) == ("m-1", True, "m-3", True)
    assert second.message_id is None and second.event is None
    assert re.match(match, str(second.error)), second.error


def test_sdk_messages_without_message_id_are_errors() -> None:
    spot = json.dumps(load("spot-interruption-warning.json"))
    (record,) = parse_batch({"Messages": [{"ReceiptHandle": "r", "Body": spot}]})
    assert str(record.error).startswith("Messages[0].MessageId: missing")


def test_records_and_messages_together_are_refused() -> None:
    spot = load("spot-interruption-warning.json")
    with pytest.raises(EventError, match="both Records and Messages"):
        parse_batch({"Records": [sqs_record(spot, "m-1")], "Messages": [{"MessageId": "m-2", "Body": json.dumps(spot)}]})


def test_deeply_nested_sqs_body_is_that_records_error() -> None:
    spot = load("spot-interruption-warning.json")
    deep = sqs_record("[" * 100_000 + "]" * 100_000, "m-deep")
    ok, bad = parse_batch({"Records": [sqs_record(spot, "m-1"), deep]})
    assert ok.ok and bad.message_id == "m-deep"
    assert str(bad.error).startswith("Records[1].body: not JSON")


def test_duplicates_parse_to_equal_events_with_one_key() -> None:
    spot = load("spot-interruption-warning.json")
    a, b = parse_batch({"Records": [sqs_record(spot, "m-1"), sqs_record(spot, "m-2")]})
    assert a.event == b.event and hash(a.event) == hash(b.event)
    assert decide(a.event).event_key == decide(b.event).event_key
    assert len({a.event, b.event}) == 1


def spot_with(**detail: Any) -> dict[str, Any]:
    payload = load("spot-interruption-warning.json")
    payload["detail"].update(detail)
    return payload


@pytest.mark.parametrize(
    "instance_id",
    [
        "i-; rm -rf /",
        "",
        "i-0B662EF9931388BA0",  # AWS ids are lowercase
        "i-0b662ef9931388ba0\n",
        "i-1234567",
        "i-0b662ef9931388ba01",
        "arn:aws:ec2:us-east-1b:instance/i-0b662ef9931388ba0",
        "i-٠١٢٣٤٥٦٧",  # non-ASCII digits
        12345678,
        None,
        ["i-0b662ef9931388ba0"],
    ],
)
def test_hostile_instance_id_is_rejected(instance_id: Any) -> None:
    payload = spot_with(**{"instance-id": instance_id})
    with pytest.raises(EventError, match=r"^detail\.instance-id: (missing|not a valid EC2)"):
        parse_event(payload)
    (record,) = parse_batch({"Records": [sqs_record(payload, "m-7")]})
    assert record.message_id == "m-7" and record.event is None
    assert str(record.error).startswith("Records[0].body.detail.instance-id:")


@pytest.mark.parametrize(
    "instance_id", ["i-12345678", "i-0123456789", "i-123486890234", "i-0b662ef9931388ba0"]
)
def test_instance_id_forms_seen_in_real_samples_are_accepted(instance_id: str) -> None:
    assert ev.is_instance_id(instance_id)
    assert parse_event(spot_with(**{"instance-id": instance_id})).instance_id == instance_id


def test_long_hostile_values_are_truncated_in_messages() -> None:
    with pytest.raises(EventError) as info:
        parse_event(spot_with(**{"instance-id": "i-" + "x" * 10_000}))
    assert len(str(info.value)) < 120


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p.update(detail="{}"), r"^detail: expected an object, got a string$"),
        (lambda p: p.update(detail=[]), r"^detail: expected an object, got an array$"),
        (lambda p: p.pop("detail"), r"^detail: expected an object, got nothing$"),
        (lambda p: p.pop("detail-type"), r"^detail-type: missing$"),
        (lambda p: p.update({"detail-type": 7}), r"^detail-type: expected a non-empty string"),
        (lambda p: p.pop("source"), r"^source: missing$"),
        (lambda p: p.pop("id"), r"^id: missing$"),
        (lambda p: p.pop("time"), r"^time: expected a timestamp string, got nothing$"),
        (lambda p: p.update(time=0), r"^time: expected a timestamp string, got 0$"),
        (lambda p: p.update(resources="arn"), r"^resources: expected an array"),
        (lambda p: p.update(region=["us-east-1"]), r"^region: expected a string"),
    ],
)
def test_malformed_envelope_names_the_field(mutate: Callable[[dict], Any], match: str) -> None:
    payload = load("spot-interruption-warning.json")
    mutate(payload)
    with pytest.raises(EventError, match=match):
        parse_event(payload)


def test_missing_version_and_odd_account_are_fine() -> None:
    payload = load("spot-interruption-warning.json")
    del payload["version"]
    payload["account"] = 123456789012
    assert parse_event(payload).account == "123456789012"


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (sqs_record("not json"), r"^Records\[0\]\.body: not JSON: 'not json'$"),
        (sqs_record("[1, 2]"), r"^Records\[0\]\.body: expected a JSON object, got an array$"),
        (sqs_record('"x"'), r"^Records\[0\]\.body: expected a JSON object, got a string$"),
        ({**sqs_record("{}"), "body": {"detail": {}}}, r"^Records\[0\]\.body: expected a JSON st"),
        ({"messageId": "m", "eventSource": "aws:sqs"}, r"^Records\[0\]\.body: missing$"),
        ({"eventSource": "aws:s3", "s3": {}}, r"^Records\[0\]: unsupported record source 'aws:s3'"),
        ({"EventSource": "aws:sns", "Sns": "x"}, r"^Records\[0\]\.Sns: expected an object"),
        ({"EventSource": "aws:sns", "Sns": {"Message": "{}"}}, r"^Records\[0\]\.Sns: not an SNS"),
        ("just a string", r"^Records\[0\]: expected an object, got a string$"),
        (None, r"^Records\[0\]: expected an object, got null$"),
        (sqs_record(json.dumps("x" * 50_000)), r"^Records\[0\]\.body: expected a JSON object"),
        (sqs_record("[" * 100_000 + "]" * 100_000), r"^Records\[0\]\.body: not JSON"),
    ],
)
def test_bad_record_becomes_an_error_record(record: Any, match: str) -> None:
    (result,) = parse_batch({"Records": [record]})
    assert result.event is None and isinstance(result.error, EventError)
    assert re.search(match, str(result.error)), str(result.error)


def test_sns_message_types() -> None:
    payload = sns_envelope({})
    payload["Type"] = "UnsubscribeConfirmation"
    assert decide(parse_event(payload)).kind == "ignore"
    payload["Type"] = "Surprise"
    with pytest.raises(EventError, match="^Type: unknown SNS message type 'Surprise'$"):
        parse_event(payload)
    payload = sns_envelope({})
    payload["Message"] = 5
    with pytest.raises(EventError, match="^Message: expected a JSON string, got 5$"):
        parse_event(payload)


def test_wrapping_depth_is_bounded() -> None:
    message: Any = load("spot-interruption-warning.json")
    for _ in range(6):
        message = sns_envelope(message)
    with pytest.raises(EventError, match="levels deep"):
        parse_event(message)


@pytest.mark.parametrize(
    "payload", [[], "x", 3, None, {"Records": "x"}, {"Records": {"a": 1}}, {"Messages": 1}]
)
def test_unusable_batch_shape_raises_event_error(payload: Any) -> None:
    with pytest.raises(EventError):
        parse_batch(payload)


def test_unrecognised_object_lists_its_keys() -> None:
    with pytest.raises(EventError, match=r"^payload: not an EventBridge event.*keys: 'a', 'b'\)$"):
        parse_event({"a": 1, "b": 2})
    with pytest.raises(EventError, match=r"^payload: expected a JSON object, got a string$"):
        parse_event("{}")  # type: ignore[arg-type]


def test_ecs_anywhere_container_instance_id_is_accepted() -> None:
    payload = load("ecs-container-instance-state-change.json")
    payload["detail"]["ec2InstanceId"] = "mi-0123456789abcdef0"
    assert parse_event(payload).ec2_instance_id == "mi-0123456789abcdef0"
    payload["detail"]["ec2InstanceId"] = "i-$(reboot)"
    with pytest.raises(EventError, match=r"^detail\.ec2InstanceId: not a valid instance id"):
        parse_event(payload)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-07-01T22:19:58Z", utc(2020, 7, 1, 22, 19, 58)),
        ("2022-03-28T00:12:37.214Z", utc(2022, 3, 28, 0, 12, 37, 214000)),
        ("2021-10-06T16:35:10.004000-07:00", utc(2021, 10, 6, 23, 35, 10, 4000)),
        ("2022-03-07T12:52:55.037000-06:00", utc(2022, 3, 7, 18, 52, 55, 37000)),
        ("2020-01-01T00:30:00+01:00", utc(2019, 12, 31, 23, 30)),
        ("2020-01-01T00:00:00.123456789Z", utc(2020, 1, 1, 0, 0, 0, 123456)),
        ("Sat, 05 Jun 2016 15:10:09 GMT", utc(2016, 6, 5, 15, 10, 9)),
        ("Fri, 10 Mar 2023 12:03:38 GMT", utc(2023, 3, 10, 12, 3, 38)),
        ("Tue, 7 Mar 2023 10:00:00 GMT", utc(2023, 3, 7, 10, 0, 0)),
        ("21 Jan 2019 09:00:43 GMT", utc(2019, 1, 21, 9, 0, 43)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "yyyy-mm-ddThh:mm:ssZ",
        "",
        "2020-07-01T22:19:58",  # no offset: ambiguous
        "2020-13-01T00:00:00Z",
        "2020-02-30T00:00:00Z",
        "2020-07-01T24:00:00Z",
        "2020-07-01T22:19:58+25:00",
        "Sat, 32 Jun 2016 15:10:09 GMT",
        "Sat, 05 Juin 2016 15:10:09 GMT",
        "٢٠٢٠-07-01T22:19:58Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00",
        1539908415.817,
        None,
    ],
)
def test_bad_timestamps_name_the_field(text: Any) -> None:
    with pytest.raises(EventError, match=r"^detail\.startTime: "):
        parse_time(text, "detail.startTime")


def test_rfc1123_one_digit_day_in_health_event() -> None:
    payload = load("aws-health-scheduled-change.json")
    payload["detail"]["startTime"] = "Tue, 7 Mar 2023 10:00:00 GMT"
    payload["detail"]["endTime"] = "Tue, 7 Mar 2023 11:00:00 GMT"
    event = parse_event(payload)
    assert (event.start_time, event.end_time) == (utc(2023, 3, 7, 10), utc(2023, 3, 7, 11))
    payload["detail"]["startTime"] = "soon"
    with pytest.raises(EventError, match=r"^detail\.startTime: not an RFC 3339"):
        parse_event(payload)


def test_imds_helpers() -> None:
    assert ev.parse_imds_spot_action(load("imds-spot-instance-action-stop.json")) == (
        ev.ImdsSpotAction("stop", utc(2017, 9, 18, 8, 22))
    )
    assert ev.parse_imds_rebalance(load("imds-events-recommendations-rebalance.json")) == (
        ev.ImdsRebalanceNotice(utc(2020, 10, 27, 8, 22))
    )
    with pytest.raises(EventError, match="^action: expected terminate"):
        ev.parse_imds_spot_action({"action": "action", "time": "2017-09-18T08:22:00Z"})


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never imported)."""
    skip = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    return [node for node in ast.walk(tree) if id(node) not in skip]


def test_events_module_imports_only_stdlib_and_attrs() -> None:
    imported = set()
    for path in Path(ev.__file__).parent.glob("*.py"):
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
    allowed = {"__future__", "json", "re", "collections.abc", "datetime", "typing", "attrs",
               "ecsspot.errors"}
    own = {m for m in imported if m.startswith("ecsspot.events.")}
    assert own, "the package's modules are read"
    assert imported - own <= allowed, imported - own - allowed


# Property tests: any JSON-ish input gives records or EventError, never another exception.
KEYS = [
    "Records", "Messages", "Sns", "body", "Body", "messageId", "MessageId", "ReceiptHandle",
    "eventSource", "EventSource", "Type", "TopicArn", "Message", "SubscribeURL", "Timestamp",
    "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail",
    "instance-id", "instance-action", "state", "LifecycleTransition", "EC2InstanceId",
    "LifecycleActionToken", "AutoScalingGroupName", "LifecycleHookName", "NotificationMetadata",
    "Origin", "Destination", "Event", "Time", "RequestId", "AccountId", "affectedEntities",
    "entityValue", "service", "eventTypeCategory", "eventTypeCode", "startTime", "endTime",
    "clusterArn", "containerInstanceArn", "ec2InstanceId", "status", "taskArn", "eventType",
    "eventName", "containerInstanceArns", "name", "operation", "type", "action", "noticeTime",
]
DETAIL_TYPES = [
    "EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
    "EC2 Instance-terminate Lifecycle Action", "EC2 Instance-launch Lifecycle Action",
    "EC2 Instance State-change Notification", "ECS Container Instance State Change",
    "ECS Task State Change", "ECS Service Action", "AWS Health Event", "Parameter Store Change",
    "EC2 Instance Terminate Successful",
]
VALUES = DETAIL_TYPES + [
    "aws:sqs", "aws:sns", "Notification", "SubscriptionConfirmation", "terminate", "stop",
    "i-0123456789abcdef0", "i-12345678", "i-; rm -rf /", "2020-07-01T22:19:58Z",
    "Sat, 05 Jun 2016 15:10:09 GMT", "autoscaling:EC2_INSTANCE_TERMINATING",
    "autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:TEST_NOTIFICATION", "scheduledChange",
    "EC2", "ACTIVE", "Update", "arn:aws:ecs:us-east-1:1:cluster/x",
]
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(VALUES)
)
json_ish = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=6)
        | kids.map(json.dumps)
    ),
    max_leaves=40,
)
eventbridge_ish = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "detail-type": st.sampled_from(DETAIL_TYPES),
        "source": st.sampled_from(["aws.ec2", "aws.autoscaling", "aws.health", "custom"]),
        "time": st.sampled_from(["2020-07-01T22:19:58Z", "Sat, 05 Jun 2016 15:10:09 GMT"]),
        "detail": st.dictionaries(st.sampled_from(KEYS), json_ish, max_size=8),
    }
)
wrapped = st.one_of(
    json_ish,
    eventbridge_ish,
    eventbridge_ish.map(lambda e: {"Records": [sqs_record(e)]}),
    eventbridge_ish.map(lambda e: {"Records": [sqs_record(sns_envelope(e))]}),
    st.lists(json_ish, max_size=3).map(lambda items: {"Records": items}),
)


def check_batch(payload: Any) -> None:
    try:
        records = parse_batch(payload)
    except EventError:
        return
    assert isinstance(records, tuple)
    items = next((payload[k] for k in ("Records", "Messages") if k in payload), None)
    # Never a record dropped: one Record per entry of a batch, one for a single message.
    assert len(records) == (len(items) if items is not None else 1)
    for item, record in zip(items if items is not None else [payload], records):
        sns = isinstance(item, dict) and ("Sns" in item or item.get("eventSource", item.get("EventSource")) == "aws:sns")
        if items is not None and record.ok and not sns:
            # An SQS record parsed fine can always be handed back to SQS by its id.
            assert record.message_id, record
        assert isinstance(record, Record)
        assert (record.event is None) != (record.error is None)
        if record.error is not None:
            assert isinstance(record.error, EventError)
            assert "could not be parsed" not in str(record.error), record.error.__cause__
        else:
            assert isinstance(decide(record.event), Decision)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wrapped)
def test_parse_batch_only_ever_returns_records_or_raises_event_error(payload: Any) -> None:
    check_batch(payload)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_ish | eventbridge_ish)
def test_parse_event_only_ever_raises_event_error(payload: Any) -> None:
    try:
        event = parse_event(payload)
    except EventError:
        return
    assert isinstance(decide(event), Decision)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


PARSEABLE = [n for n in SAMPLES if isinstance(EXPECT.get(n), Parsed)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PARSEABLE), st.data())
def test_mutated_real_samples_give_records_or_event_error(name: str, data: st.DataObject) -> None:
    payload = load(name)
    path = data.draw(st.sampled_from(_paths(payload)))
    target = payload
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(json_ish)
    check_batch(payload)
    check_batch({"Records": [sqs_record(copy.deepcopy(payload))]})


def test_nan_and_infinity_do_not_escape() -> None:
    payload = spot_with(**{"instance-id": math.nan})
    with pytest.raises(EventError, match=r"instance id: nan$"):
        parse_event(payload)
