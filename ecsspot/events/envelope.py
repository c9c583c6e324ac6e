"""Envelope unwrapping: from what a Lambda or a queue hands over to the event inside.

Shapes accepted by :func:`parse_event` (one message) and :func:`parse_batch` (one Lambda invocation):

- EventBridge events (``detail-type``/``detail``), whatever target delivered them;
- direct Auto Scaling lifecycle-hook bodies (flat ``LifecycleTransition``/``EC2InstanceId``/...)
  and ``autoscaling:TEST_NOTIFICATION``;
- SNS envelopes (raw JSON with ``Type``, or Lambda's ``Records[].Sns``), whose ``Message`` is
  JSON again; SNS ``SubscriptionConfirmation``;
- SQS messages: the Lambda ``Records[]`` form (camelCase ``body``/``messageId``) and the SDK
  ReceiveMessage form (PascalCase ``Body``/``MessageId``, or ``{"Messages": [...]}``); the body
  holds any of the above.

Each wrapper's own fields about the event become its :class:`~ecsspot.events.model.Envelope`;
the body inside is read by :mod:`ecsspot.events.model`. Anything malformed raises ``EventError``
naming the field (a dotted path through the decoded wrappers, e.g.
``Records[2].body.Message.EC2InstanceId``); within a batch the error is kept on that record so
the others still run. SNS signatures are not verified here (that needs I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ecsspot.errors import EventError
from ecsspot.events.fields import (
    MISSING,
    join_path,
    kind_of,
    loads_json,
    opt_account,
    opt_str,
    opt_time,
    parse_time,
    req_obj,
    req_str,
    show,
    str_list,
)
from ecsspot.events.model import (
    TEST_NOTIFICATION,
    Envelope,
    Event,
    LifecycleTestNotification,
    OtherEvent,
    SubscriptionConfirmation,
    from_detail,
    from_lifecycle_body,
)

# SQS body -> SNS Message -> EventBridge event is three levels; more is not a real payload.
_MAX_DEPTH = 4


@attrs.frozen
class Record:
    """One message of a batch: exactly one of ``event`` / ``error`` is set."""

    message_id: str | None
    event: Event | None
    error: EventError | None = None
    #: How the record came: by SQS ("sqs"), by SNS ("sns"), or None (a direct EventBridge invocation).
    via: str | None = None
    #: SQS only: what a handler needs to hand a failed record back early (ChangeMessageVisibility).
    receipt_handle: str | None = None
    queue_arn: str | None = None
    receive_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None



def _parse_eventbridge(p: Mapping[str, Any], path: str) -> Event:
    detail_type = req_str(p, "detail-type", path)
    source = req_str(p, "source", path)
    envelope = Envelope(
        event_id=req_str(p, "id", path),
        time=parse_time(p.get("time", MISSING), join_path(path, "time")),
        source=source,
        region=opt_str(p, "region", path),
        account=opt_account(p, "account", path),
    )
    resources = str_list(p, "resources", path)  # validated even when unused: a wrong shape is not AWS's
    detail = req_obj(p, "detail", path)
    return from_detail(detail_type, detail, join_path(path, "detail"), resources, envelope)


def _parse_asg_direct(p: Mapping[str, Any], path: str) -> Event:
    envelope = Envelope(
        event_id=opt_str(p, "RequestId", path),
        # Time is informational here; a missing one must not stop the drain (the hook's
        # timeout bounds it: see deadline_for).
        time=opt_time(p, "Time", path),
        source="aws.autoscaling",
        account=opt_account(p, "AccountId", path),
    )
    event_name = p.get("Event")
    if event_name is not None and "LifecycleTransition" not in p:
        if not isinstance(event_name, str) or not event_name:
            where = join_path(path, "Event")
            raise EventError(f"{where}: expected a non-empty string, got {show(event_name)}")
        if event_name == TEST_NOTIFICATION:
            return LifecycleTestNotification(
                req_str(p, "AutoScalingGroupName", path),
                group_arn=opt_str(p, "AutoScalingGroupARN", path),
                envelope=envelope,
            )
        # Plain ASG notifications (autoscaling:EC2_INSTANCE_TERMINATE, ...) are not hooks.
        return OtherEvent(event_name, envelope=envelope)
    return from_lifecycle_body(p, path, envelope)


def _is_sns(p: Mapping[str, Any]) -> bool:
    return isinstance(p.get("Type"), str) and "TopicArn" in p


def _sqs_body_key(p: Mapping[str, Any]) -> str | None:
    if "Body" in p and ("MessageId" in p or "ReceiptHandle" in p):
        return "Body"
    if "body" in p and ("messageId" in p or p.get("eventSource") == "aws:sqs"):
        return "body"
    return None


def _parse_sns(p: Mapping[str, Any], path: str, depth: int) -> Event:
    kind = p["Type"]
    if kind == "Notification":
        where = join_path(path, "Message")
        return _parse_message(loads_json(p.get("Message"), where), where, depth + 1)
    envelope = Envelope(
        event_id=opt_str(p, "MessageId", path),
        time=opt_time(p, "Timestamp", path),
        source="aws.sns",
    )
    if kind == "SubscriptionConfirmation":
        # Raw SNS JSON spells it ...URL, the Lambda form ...Url.
        lambda_form = "SubscribeUrl" in p and "SubscribeURL" not in p
        url_key = "SubscribeUrl" if lambda_form else "SubscribeURL"
        return SubscriptionConfirmation(
            req_str(p, "TopicArn", path),
            req_str(p, url_key, path),
            token=opt_str(p, "Token", path),
            envelope=envelope,
        )
    if kind == "UnsubscribeConfirmation":
        return OtherEvent(kind, note="SNS unsubscribe confirmation", envelope=envelope)
    raise EventError(f"{join_path(path, 'Type')}: unknown SNS message type {show(kind)}")


def _hint(p: Mapping[str, Any]) -> str:
    if "Records" in p or "Messages" in p:
        return "a batch of records; use parse_batch"
    if "Parameters" in p and "InvalidParameters" in p:
        return "an SSM GetParameters response, not an event"
    if "image_id" in p and "schema_version" in p:
        return "an ECS-optimized AMI parameter value, not an event"
    if "action" in p and "time" in p and len(p) == 2:
        return "an IMDS spot/instance-action body, not an event (see parse_imds_spot_action)"
    if "noticeTime" in p:
        return "an IMDS rebalance recommendation body, not an event (see parse_imds_rebalance)"
    keys = ", ".join(show(k) for k in list(p)[:8]) or "none"
    return (
        "not an EventBridge event, Auto Scaling notification, SNS or SQS message "
        f"(keys: {keys}{', ...' if len(p) > 8 else ''})"
    )


def _parse_message(p: object, path: str, depth: int) -> Event:
    where = path or "payload"
    if depth > _MAX_DEPTH:
        raise EventError(f"{where}: wrapped more than {_MAX_DEPTH} levels deep")
    if not isinstance(p, Mapping):
        raise EventError(f"{where}: expected a JSON object, got {kind_of(p)}")
    if "detail-type" in p or "detail" in p:
        return _parse_eventbridge(p, path)
    if _is_sns(p):
        return _parse_sns(p, path, depth)
    body_key = _sqs_body_key(p)
    if body_key is not None:
        inner = join_path(path, body_key)
        return _parse_message(loads_json(p[body_key], inner), inner, depth + 1)
    if "Event" in p or "LifecycleTransition" in p or "LifecycleActionToken" in p:
        return _parse_asg_direct(p, path)
    raise EventError(f"{where}: {_hint(p)}")


def parse_event(payload: Mapping[str, Any]) -> Event:
    """Parse one message (EventBridge event, ASG hook body, SNS envelope, SQS message)."""
    return _parse_message(payload, "", 0)


def _message_id(item: Mapping[str, Any]) -> str | None:
    sns = item.get("Sns")
    for value in (
        item.get("messageId"),
        item.get("MessageId"),
        sns.get("MessageId") if isinstance(sns, Mapping) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _delivery(item: Mapping[str, Any]) -> dict[str, Any]:
    """Where a batch record came from and how to hand it back (never raises)."""
    src = item.get("eventSource", item.get("EventSource"))
    if "Sns" in item or src == "aws:sns":
        return {"via": "sns"}
    if src != "aws:sqs" and "receiptHandle" not in item and "ReceiptHandle" not in item:
        return {}
    attributes = item.get("attributes", item.get("Attributes"))
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    handle = item.get("receiptHandle", item.get("ReceiptHandle"))
    arn = item.get("eventSourceARN")
    return {
        "via": "sqs",
        "receipt_handle": handle if isinstance(handle, str) and handle else None,
        "queue_arn": arn if isinstance(arn, str) and arn.startswith("arn:") else None,
        "receive_count": int(count) if isinstance(count, str) and count.isdigit() and len(count) < 10 else 0,
    }


def _record(item: object, path: str, *, in_batch: bool = False) -> Record:
    delivery = _delivery(item) if isinstance(item, Mapping) else {}
    return attrs.evolve(_parse_record(item, path, in_batch=in_batch), **delivery)


def _parse_record(item: object, path: str, *, in_batch: bool = False) -> Record:
    message_id = None
    try:
        if not isinstance(item, Mapping):
            raise EventError(f"{path or 'payload'}: expected an object, got {kind_of(item)}")
        message_id = _message_id(item)
        src = item.get("eventSource", item.get("EventSource"))
        if "Sns" in item or src == "aws:sns":
            sns = req_obj(item, "Sns", path)
            if not _is_sns(sns):
                raise EventError(f"{join_path(path, 'Sns')}: not an SNS message (no Type/TopicArn)")
            event = _parse_sns(sns, join_path(path, "Sns"), 1)
        elif src is not None and src != "aws:sqs":
            raise EventError(f"{path or 'payload'}: unsupported record source {show(src)}")
        elif in_batch and message_id is None:
            # SQS hands back (retries) records by messageId; one without it could only be
            # reported by failing the whole batch, so it is an error of its own, never dropped.
            key = "MessageId" if "MessageId" in item or "Body" in item else "messageId"
            value = item.get(key, MISSING)
            got = "missing" if value is MISSING or value is None else f"expected a non-empty string, got {show(value)}"
            raise EventError(f"{join_path(path, key)}: {got} (SQS identifies a record by it)")
        elif src == "aws:sqs" and _sqs_body_key(item) is None:
            raise EventError(f"{join_path(path, 'body')}: missing")
        else:
            event = _parse_message(item, path, 0)
        return Record(message_id, event, None)
    except EventError as exc:
        return Record(message_id, None, exc)
    except Exception as exc:  # noqa: BLE001 - one bad record must never block the others
        err = EventError(f"{path or 'payload'}: could not be parsed ({type(exc).__name__})")
        err.__cause__ = exc
        return Record(message_id, None, err)


def parse_batch(payload: Mapping[str, Any]) -> tuple[Record, ...]:
    """Parse a Lambda invocation (SQS/SNS ``Records``, SDK ``Messages`` or one message).

    A batch gives exactly one Record per entry, in order: an entry that cannot be parsed (or an
    SQS message without its ``messageId``) is a Record with ``error`` set, never left out.
    """
    if not isinstance(payload, Mapping):
        raise EventError(f"payload: expected a JSON object, got {kind_of(payload)}")
    keys = [key for key in ("Records", "Messages") if key in payload]
    if len(keys) > 1:
        raise EventError("payload: has both Records and Messages; a batch is one or the other")
    for key in keys:
        items = payload[key]
        if not isinstance(items, (list, tuple)):
            raise EventError(f"{key}: expected an array, got {kind_of(items)}")
        return tuple(_record(item, f"{key}[{i}]", in_batch=True) for i, item in enumerate(items))
    return (_record(payload, ""),)
