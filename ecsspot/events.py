"""Every real event payload shape -> frozen, typed events, and the pure decision on each.

No I/O and no boto3 here: the Lambda handler imports this module on every cold start.

Shapes accepted by ``parse_event`` (one message) and ``parse_batch`` (one Lambda invocation):

- EventBridge events (``detail-type``/``detail``), whatever target delivered them;
- direct Auto Scaling lifecycle-hook bodies (flat ``LifecycleTransition``/``EC2InstanceId``/...)
  and ``autoscaling:TEST_NOTIFICATION``;
- SNS envelopes (raw JSON with ``Type``, or Lambda's ``Records[].Sns``), whose ``Message`` is
  JSON again; SNS ``SubscriptionConfirmation``;
- SQS messages: the Lambda ``Records[]`` form (camelCase ``body``/``messageId``) and the SDK
  ReceiveMessage form (PascalCase ``Body``/``MessageId``, or ``{"Messages": [...]}``); the body
  holds any of the above.

Anything malformed raises ``EventError`` naming the field (a dotted path through the decoded
wrappers, e.g. ``Records[2].body.Message.EC2InstanceId``); within a batch the error is kept on
that record so the others still run. SNS signatures are not verified here (that needs I/O).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ecsspot.errors import EventError

if TYPE_CHECKING:
    # Only for the annotation: the spec module is not on the Lambda's event-parsing path.
    from ecsspot.spec import ClusterSpec

__all__ = [
    "ContainerInstanceStateChange",
    "Decision",
    "Event",
    "HealthScheduledChange",
    "ImdsRebalanceNotice",
    "ImdsSpotAction",
    "InstanceStateChange",
    "LifecycleAction",
    "LifecycleTestNotification",
    "OtherEvent",
    "ParameterChange",
    "RebalanceRecommendation",
    "Record",
    "ServiceAction",
    "SpotInterruptionWarning",
    "SubscriptionConfirmation",
    "TaskStateChange",
    "deadline_for",
    "decide",
    "is_instance_id",
    "parse_batch",
    "parse_event",
    "parse_imds_rebalance",
    "parse_imds_spot_action",
    "parse_time",
]

# Real ids are 8 or 17 hex digits, but published AWS/tool samples carry 10- and 12-digit ids
# (Karpenter's i-0123456789, lifecycle-manager's i-123486890234); what matters for safety is
# that an id is one lowercase-hex token, so any length 8..17 is accepted.
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# ECS Anywhere container instances report an SSM managed-instance id instead of an EC2 one.
_ECS_INSTANCE_ID = re.compile(r"m?i-[0-9a-f]{8,17}")

SPOT_NOTICE_SECONDS = 120.0  # AWS: the warning comes two minutes before the interruption
#: Drain this long before the spot notice runs out, for the drain's own last calls.
SPOT_MARGIN_SECONDS = 10.0
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
_TRANSITIONS = {
    "autoscaling:EC2_INSTANCE_TERMINATING": "TERMINATING",
    "autoscaling:EC2_INSTANCE_LAUNCHING": "LAUNCHING",
}
_LIFECYCLE_DETAIL_TYPES = {
    "EC2 Instance-terminate Lifecycle Action": "TERMINATING",
    "EC2 Instance-launch Lifecycle Action": "LAUNCHING",
}
_SPOT_ACTIONS = {"terminate": "terminated", "stop": "stopped", "hibernate": "hibernated"}
# SQS body -> SNS Message -> EventBridge event is three levels; more is not a real payload.
_MAX_DEPTH = 4


@attrs.frozen
class Event:
    """Base of every parsed event (use ``isinstance(x, Event)``)."""


@attrs.frozen
class SpotInterruptionWarning(Event):
    """EC2 will reclaim a spot instance about two minutes after ``time``."""

    instance_id: str
    action: Literal["terminate", "stop", "hibernate"]
    time: datetime | None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class RebalanceRecommendation(Event):
    """A spot instance is at elevated risk of interruption."""

    instance_id: str
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class LifecycleAction(Event):
    """An Auto Scaling lifecycle hook holds an instance until completed (or timed out)."""

    transition: Literal["TERMINATING", "LAUNCHING"]
    instance_id: str
    group_name: str
    hook_name: str
    token: str
    time: datetime | None = None
    metadata: str | None = None
    origin: str | None = None
    destination: str | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class LifecycleTestNotification(Event):
    """``autoscaling:TEST_NOTIFICATION``, sent once when a hook or notification is set up."""

    group_name: str
    group_arn: str | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class InstanceStateChange(Event):
    """EC2 Instance State-change Notification."""

    instance_id: str
    state: str
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class ContainerInstanceStateChange(Event):
    """ECS Container Instance State Change."""

    cluster_arn: str
    container_instance_arn: str
    ec2_instance_id: str | None
    status: str
    agent_connected: bool | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class TaskStateChange(Event):
    """ECS Task State Change."""

    cluster_arn: str
    task_arn: str
    last_status: str | None
    desired_status: str | None
    container_instance_arn: str | None = None
    group: str | None = None
    launch_type: str | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class ServiceAction(Event):
    """ECS Service Action (steady state, placement failures, ...)."""

    cluster_arn: str
    event_type: str
    event_name: str
    reason: str | None = None
    service_arn: str | None = None
    container_instance_arns: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    capacity_provider_arns: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class HealthScheduledChange(Event):
    """AWS Health scheduledChange for EC2 (maintenance, retirement) naming instances."""

    instance_ids: tuple[str, ...] = attrs.field(converter=tuple)
    event_type_code: str
    start_time: datetime | None
    end_time: datetime | None = None
    event_arn: str | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class ParameterChange(Event):
    """SSM Parameter Store Change (e.g. a new ECS-optimized AMI was published)."""

    name: str
    operation: str
    parameter_type: str | None
    data_type: str | None = None
    description: str | None = None
    # Set when Parameter Store rejected the value (aws:ec2:image validation).
    exception: str | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class SubscriptionConfirmation(Event):
    """SNS asks the endpoint to confirm a subscription by visiting ``subscribe_url``."""

    topic_arn: str
    subscribe_url: str
    token: str | None = None
    time: datetime | None = None
    event_id: str | None = None
    source: str | None = "aws.sns"
    region: str | None = None
    account: str | None = None


@attrs.frozen
class OtherEvent(Event):
    """A well-formed event that is not one ecsspot acts on; ``note`` says why when useful."""

    source: str | None
    detail_type: str
    note: str = ""
    time: datetime | None = None
    event_id: str | None = None
    region: str | None = None
    account: str | None = None


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


@attrs.frozen
class ImdsSpotAction:
    """Body of IMDS ``meta-data/spot/instance-action``."""

    action: str
    time: datetime


@attrs.frozen
class ImdsRebalanceNotice:
    """Body of IMDS ``meta-data/events/recommendations/rebalance``."""

    notice_time: datetime


_MISSING: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _show(value: object) -> str:
    """A short, escaped rendering of a scalar for error messages (hostile values stay inert)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return _kind(value)


def _req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise EventError(f"{_join(path, key)}: missing")
    if not isinstance(value, str) or not value:
        raise EventError(f"{_join(path, key)}: expected a non-empty string, got {_show(value)}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{_join(path, key)}: expected a string, got {_show(value)}")
    return value


def _account(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    # Samples carry "<account_number>" and "account id"; some hand-written events a number.
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _opt_str(obj, key, path)


def _obj(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key, _MISSING)
    if not isinstance(value, Mapping):
        raise EventError(f"{_join(path, key)}: expected an object, got {_kind(value)}")
    return value


def _str_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise EventError(f"{_join(path, key)}: expected an array, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise EventError(f"{_join(path, key)}[{i}]: expected a string, got {_show(item)}")
    return tuple(value)


def is_instance_id(value: object) -> bool:
    """True when ``value`` is an EC2 instance id (``i-`` and 8 to 17 lowercase hex digits)."""
    return isinstance(value, str) and _INSTANCE_ID.fullmatch(value) is not None


def _instance_id(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise EventError(f"{_join(path, key)}: missing")
    if not is_instance_id(value):
        raise EventError(f"{_join(path, key)}: not a valid EC2 instance id: {_show(value)}")
    return value


def _loads(text: object, path: str) -> Any:
    if not isinstance(text, str):
        raise EventError(f"{path}: expected a JSON string, got {_show(text)}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise EventError(f"{path}: not JSON: {_show(text)}") from None


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
# AWS Health uses RFC 1123 (sometimes with a 1-digit day); IMDS maintenance drops the weekday.
_RFC1123 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) ("
    + "|".join(_MONTHS)
    + r") ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (?:GMT|UTC|\+0000)"
)


def parse_time(value: object, field: str = "time") -> datetime:
    """Parse an AWS timestamp (RFC 3339 or RFC 1123) into an aware UTC datetime."""
    if not isinstance(value, str):
        raise EventError(f"{field}: expected a timestamp string, got {_show(value)}")
    try:
        if m := _RFC3339.fullmatch(value):
            y, mo, d, h, mi, s, frac, off = m.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            if off in ("Z", "z"):
                tz = timezone.utc
            else:
                delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
                tz = timezone(-delta if off[0] == "-" else delta)
            parsed = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
        elif m := _RFC1123.fullmatch(value):
            d, mon, y, h, mi, s = m.groups()
            parsed = datetime(
                int(y), _MONTHS[mon], int(d), int(h), int(mi), int(s), tzinfo=timezone.utc
            )
        else:
            raise EventError(f"{field}: not an RFC 3339 or RFC 1123 timestamp: {_show(value)}")
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise EventError(f"{field}: not a valid timestamp: {_show(value)}") from None
    # Keeps deadline arithmetic (time + seconds) clear of datetime's year-9999 limit.
    if not 1900 <= parsed.year <= 9000:
        raise EventError(f"{field}: timestamp out of range: {_show(value)}")
    return parsed


def _opt_time(obj: Mapping[str, Any], key: str, path: str) -> datetime | None:
    value = obj.get(key)
    return None if value is None else parse_time(value, _join(path, key))


_Meta = dict[str, Any]
_Obj = Mapping[str, Any]


def _spot(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    action = _req_str(d, "instance-action", path)
    if action not in _SPOT_ACTIONS:
        raise EventError(
            f"{_join(path, 'instance-action')}: expected terminate, stop or hibernate, "
            f"got {_show(action)}"
        )
    return SpotInterruptionWarning(_instance_id(d, "instance-id", path), action, **meta)


def _rebalance(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    return RebalanceRecommendation(_instance_id(d, "instance-id", path), **meta)


def _lifecycle_detail(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    event = _lifecycle(d, path, meta)
    expected = _LIFECYCLE_DETAIL_TYPES[detail_type]
    if isinstance(event, LifecycleAction) and event.transition != expected:
        raise EventError(
            f"{_join(path, 'LifecycleTransition')}: {event.transition} does not match "
            f"detail-type {detail_type!r}"
        )
    return event


def _state_change(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    instance_id = _instance_id(d, "instance-id", path)
    return InstanceStateChange(instance_id, _req_str(d, "state", path), **meta)


def _container_instance(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    ec2_id = _opt_str(d, "ec2InstanceId", path)
    if ec2_id is not None and not _ECS_INSTANCE_ID.fullmatch(ec2_id):
        where = _join(path, "ec2InstanceId")
        raise EventError(f"{where}: not a valid instance id: {_show(ec2_id)}")
    connected = d.get("agentConnected")
    return ContainerInstanceStateChange(
        _req_str(d, "clusterArn", path),
        _req_str(d, "containerInstanceArn", path),
        ec2_id,
        _req_str(d, "status", path),
        agent_connected=connected if isinstance(connected, bool) else None,
        **meta,
    )


def _task(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    return TaskStateChange(
        _req_str(d, "clusterArn", path),
        _req_str(d, "taskArn", path),
        _opt_str(d, "lastStatus", path),
        _opt_str(d, "desiredStatus", path),
        container_instance_arn=_opt_str(d, "containerInstanceArn", path),
        group=_opt_str(d, "group", path),
        launch_type=_opt_str(d, "launchType", path),
        stopped_reason=_opt_str(d, "stoppedReason", path),
        stop_code=_opt_str(d, "stopCode", path),
        **meta,
    )


def _service_action(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    services = [r for r in _str_list(env, "resources", "") if ":service/" in r]
    return ServiceAction(
        _req_str(d, "clusterArn", path),
        _req_str(d, "eventType", path),
        _req_str(d, "eventName", path),
        reason=_opt_str(d, "reason", path),
        service_arn=services[0] if services else None,
        container_instance_arns=_str_list(d, "containerInstanceArns", path),
        capacity_provider_arns=_str_list(d, "capacityProviderArns", path),
        **meta,
    )


def _health(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    service = _opt_str(d, "service", path)
    category = _opt_str(d, "eventTypeCategory", path)
    code = _req_str(d, "eventTypeCode", path)
    if service != "EC2" or category != "scheduledChange":
        note = f"AWS Health {category or 'uncategorised'} event {code} for {service or '?'}"
        return OtherEvent(meta.pop("source"), detail_type, note=note, **meta)
    entities = d.get("affectedEntities")
    candidates: list[tuple[str, object]] = []
    if entities is not None:
        if not isinstance(entities, (list, tuple)):
            where = _join(path, "affectedEntities")
            raise EventError(f"{where}: expected an array, got {_kind(entities)}")
        for i, entity in enumerate(entities):
            where = f"{_join(path, 'affectedEntities')}[{i}]"
            if not isinstance(entity, Mapping):
                raise EventError(f"{where}: expected an object, got {_kind(entity)}")
            candidates.append((f"{where}.entityValue", entity.get("entityValue")))
    else:
        # Health puts bare instance ids (not ARNs) in resources; used only when detail has none.
        candidates = [(f"resources[{i}]", r) for i, r in enumerate(_str_list(env, "resources", ""))]
    ids: list[str] = []
    for where, value in candidates:
        # Health also names hosts, volumes, ...: only instance ids matter for a drain.
        if isinstance(value, str) and value.startswith("i-"):
            if not is_instance_id(value):
                raise EventError(f"{where}: not a valid EC2 instance id: {_show(value)}")
            if value not in ids:
                ids.append(value)
    return HealthScheduledChange(
        tuple(ids),
        code,
        _opt_time(d, "startTime", path),
        end_time=_opt_time(d, "endTime", path),
        event_arn=_opt_str(d, "eventArn", path),
        **meta,
    )


def _parameter(detail_type: str, d: _Obj, path: str, env: _Obj, meta: _Meta) -> Event:
    return ParameterChange(
        _req_str(d, "name", path),
        _req_str(d, "operation", path),
        _opt_str(d, "type", path),
        data_type=_opt_str(d, "dataType", path),
        description=_opt_str(d, "description", path),
        exception=_opt_str(d, "exception", path),
        **meta,
    )


_DetailParser = Callable[[str, _Obj, str, _Obj, _Meta], Event]
# Dispatch is on detail-type alone: events replayed or forwarded under a custom source (which
# PutEvents requires for non-AWS senders) still parse; the EventBridge rule decides who sends.
_DETAIL_PARSERS: dict[str, _DetailParser] = {
    "EC2 Spot Instance Interruption Warning": _spot,
    "EC2 Instance Rebalance Recommendation": _rebalance,
    "EC2 Instance-terminate Lifecycle Action": _lifecycle_detail,
    "EC2 Instance-launch Lifecycle Action": _lifecycle_detail,
    "EC2 Instance State-change Notification": _state_change,
    "ECS Container Instance State Change": _container_instance,
    "ECS Task State Change": _task,
    "ECS Service Action": _service_action,
    "AWS Health Event": _health,
    "Parameter Store Change": _parameter,
}


def _parse_eventbridge(p: Mapping[str, Any], path: str) -> Event:
    detail_type = _req_str(p, "detail-type", path)
    source = _req_str(p, "source", path)
    meta: _Meta = {
        "event_id": _req_str(p, "id", path),
        "time": parse_time(p.get("time", _MISSING), _join(path, "time")),
        "source": source,
        "region": _opt_str(p, "region", path),
        "account": _account(p, "account", path),
    }
    _str_list(p, "resources", path)  # validated even when unused: a wrong shape is not AWS's
    detail = _obj(p, "detail", path)
    parser = _DETAIL_PARSERS.get(detail_type)
    if parser is None:
        return OtherEvent(meta.pop("source"), detail_type, **meta)
    return parser(detail_type, detail, _join(path, "detail"), p, meta)


def _lifecycle(body: Mapping[str, Any], path: str, meta: _Meta) -> Event:
    transition = _req_str(body, "LifecycleTransition", path)
    if transition == TEST_NOTIFICATION:
        return LifecycleTestNotification(
            _req_str(body, "AutoScalingGroupName", path),
            group_arn=_opt_str(body, "AutoScalingGroupARN", path),
            **meta,
        )
    kind = _TRANSITIONS.get(transition)
    if kind is None:
        where = _join(path, "LifecycleTransition")
        raise EventError(f"{where}: unknown transition {_show(transition)}")
    return LifecycleAction(
        kind,
        _instance_id(body, "EC2InstanceId", path),
        _req_str(body, "AutoScalingGroupName", path),
        _req_str(body, "LifecycleHookName", path),
        _req_str(body, "LifecycleActionToken", path),
        metadata=_opt_str(body, "NotificationMetadata", path),
        origin=_opt_str(body, "Origin", path),
        destination=_opt_str(body, "Destination", path),
        **meta,
    )


def _parse_asg_direct(p: Mapping[str, Any], path: str) -> Event:
    meta: _Meta = {
        "event_id": _opt_str(p, "RequestId", path),
        # Time is informational here; a missing one must not stop the drain (deadline then
        # falls to the handler's default).
        "time": _opt_time(p, "Time", path),
        "source": "aws.autoscaling",
        "account": _account(p, "AccountId", path),
    }
    event_name = p.get("Event")
    if event_name is not None and "LifecycleTransition" not in p:
        if not isinstance(event_name, str) or not event_name:
            where = _join(path, "Event")
            raise EventError(f"{where}: expected a non-empty string, got {_show(event_name)}")
        if event_name == TEST_NOTIFICATION:
            return LifecycleTestNotification(
                _req_str(p, "AutoScalingGroupName", path),
                group_arn=_opt_str(p, "AutoScalingGroupARN", path),
                **meta,
            )
        # Plain ASG notifications (autoscaling:EC2_INSTANCE_TERMINATE, ...) are not hooks.
        return OtherEvent(meta.pop("source"), event_name, **meta)
    return _lifecycle(p, path, meta)


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
        where = _join(path, "Message")
        return _parse_message(_loads(p.get("Message"), where), where, depth + 1)
    meta: _Meta = {
        "event_id": _opt_str(p, "MessageId", path),
        "time": _opt_time(p, "Timestamp", path),
    }
    if kind == "SubscriptionConfirmation":
        # Raw SNS JSON spells it ...URL, the Lambda form ...Url.
        lambda_form = "SubscribeUrl" in p and "SubscribeURL" not in p
        url_key = "SubscribeUrl" if lambda_form else "SubscribeURL"
        return SubscriptionConfirmation(
            _req_str(p, "TopicArn", path),
            _req_str(p, url_key, path),
            token=_opt_str(p, "Token", path),
            **meta,
        )
    if kind == "UnsubscribeConfirmation":
        return OtherEvent("aws.sns", kind, note="SNS unsubscribe confirmation", **meta)
    raise EventError(f"{_join(path, 'Type')}: unknown SNS message type {_show(kind)}")


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
    keys = ", ".join(_show(k) for k in list(p)[:8]) or "none"
    return (
        "not an EventBridge event, Auto Scaling notification, SNS or SQS message "
        f"(keys: {keys}{', ...' if len(p) > 8 else ''})"
    )


def _parse_message(p: object, path: str, depth: int) -> Event:
    where = path or "payload"
    if depth > _MAX_DEPTH:
        raise EventError(f"{where}: wrapped more than {_MAX_DEPTH} levels deep")
    if not isinstance(p, Mapping):
        raise EventError(f"{where}: expected a JSON object, got {_kind(p)}")
    if "detail-type" in p or "detail" in p:
        return _parse_eventbridge(p, path)
    if _is_sns(p):
        return _parse_sns(p, path, depth)
    body_key = _sqs_body_key(p)
    if body_key is not None:
        inner = _join(path, body_key)
        return _parse_message(_loads(p[body_key], inner), inner, depth + 1)
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
            raise EventError(f"{path or 'payload'}: expected an object, got {_kind(item)}")
        message_id = _message_id(item)
        src = item.get("eventSource", item.get("EventSource"))
        if "Sns" in item or src == "aws:sns":
            sns = _obj(item, "Sns", path)
            if not _is_sns(sns):
                raise EventError(f"{_join(path, 'Sns')}: not an SNS message (no Type/TopicArn)")
            event = _parse_sns(sns, _join(path, "Sns"), 1)
        elif src is not None and src != "aws:sqs":
            raise EventError(f"{path or 'payload'}: unsupported record source {_show(src)}")
        elif in_batch and message_id is None:
            # SQS hands back (retries) records by messageId; one without it could only be
            # reported by failing the whole batch, so it is an error of its own, never dropped.
            key = "MessageId" if "MessageId" in item or "Body" in item else "messageId"
            value = item.get(key, _MISSING)
            got = "missing" if value is _MISSING or value is None else f"expected a non-empty string, got {_show(value)}"
            raise EventError(f"{_join(path, key)}: {got} (SQS identifies a record by it)")
        elif src == "aws:sqs" and _sqs_body_key(item) is None:
            raise EventError(f"{_join(path, 'body')}: missing")
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
        raise EventError(f"payload: expected a JSON object, got {_kind(payload)}")
    keys = [key for key in ("Records", "Messages") if key in payload]
    if len(keys) > 1:
        raise EventError("payload: has both Records and Messages; a batch is one or the other")
    for key in keys:
        items = payload[key]
        if not isinstance(items, (list, tuple)):
            raise EventError(f"{key}: expected an array, got {_kind(items)}")
        return tuple(_record(item, f"{key}[{i}]", in_batch=True) for i, item in enumerate(items))
    return (_record(payload, ""),)


def parse_imds_spot_action(payload: Mapping[str, Any]) -> ImdsSpotAction:
    """Parse the IMDS ``spot/instance-action`` body (``{"action", "time"}``)."""
    if not isinstance(payload, Mapping):
        raise EventError(f"payload: expected a JSON object, got {_kind(payload)}")
    action = _req_str(payload, "action", "")
    if action not in _SPOT_ACTIONS:
        raise EventError(f"action: expected terminate, stop or hibernate, got {_show(action)}")
    return ImdsSpotAction(action, parse_time(payload.get("time", _MISSING), "time"))


def parse_imds_rebalance(payload: Mapping[str, Any]) -> ImdsRebalanceNotice:
    """Parse the IMDS ``events/recommendations/rebalance`` body (``{"noticeTime"}``)."""
    if not isinstance(payload, Mapping):
        raise EventError(f"payload: expected a JSON object, got {_kind(payload)}")
    return ImdsRebalanceNotice(parse_time(payload.get("noticeTime", _MISSING), "noticeTime"))


DecisionKind = Literal["drain", "rebalance", "complete_lifecycle_action", "ignore", "refresh"]


@attrs.frozen
class Decision:
    """What to do about one event; I/O code later checks the instances are in a managed cluster."""

    kind: DecisionKind
    instance_ids: tuple[str, ...] = attrs.field(converter=tuple)
    reason: str
    deadline: datetime | None = None
    lifecycle: LifecycleAction | None = None
    # Idempotency key: the lifecycle token (shared by every delivery of one hook action, via
    # EventBridge or SNS/SQS) or else the event/message id.
    event_key: str | None = None


def _after(time: datetime | None, seconds: float) -> datetime | None:
    return None if time is None else time + timedelta(seconds=seconds)


def _ignore(event: Event, reason: str, *ids: str) -> Decision:
    return Decision("ignore", ids, reason, event_key=getattr(event, "event_id", None))


def decide(
    event: Event,
    *,
    spot_margin_seconds: float = SPOT_MARGIN_SECONDS,
    now: datetime | None = None,
) -> Decision:
    """Decide, without I/O, what an event asks for: drain, rebalance, refresh or ignore.

    ``Decision.deadline`` is only a time the event itself sets; :func:`deadline_for` turns it
    (or its absence) into the drain's budget under the cluster's spec.
    """
    if isinstance(event, SpotInterruptionWarning):
        return Decision(
            "drain",
            (event.instance_id,),
            f"spot interruption warning: {event.instance_id} will be "
            f"{_SPOT_ACTIONS.get(event.action, event.action)} about two minutes after "
            f"{event.time.isoformat() if event.time else 'the warning'}",
            # Without the event's time, the warning is taken as arriving now.
            deadline=_after(event.time or now, SPOT_NOTICE_SECONDS - spot_margin_seconds),
            event_key=event.event_id,
        )
    if isinstance(event, RebalanceRecommendation):
        return Decision(
            "rebalance",
            (event.instance_id,),
            f"rebalance recommendation: {event.instance_id} is at elevated risk of interruption",
            event_key=event.event_id,
        )
    if isinstance(event, LifecycleAction):
        if event.transition != "TERMINATING":
            return Decision(
                "ignore",
                (event.instance_id,),
                f"launch lifecycle action for {event.instance_id} (hook {event.hook_name}): "
                "ecsspot only handles terminating hooks",
                event_key=event.token,
            )
        return Decision(
            "drain",
            (event.instance_id,),
            f"terminate lifecycle action for {event.instance_id} (group {event.group_name}, "
            f"hook {event.hook_name}): drain, then complete it with CONTINUE",
            lifecycle=event,
            event_key=event.token,
        )
    if isinstance(event, HealthScheduledChange):
        if not event.instance_ids:
            code = event.event_type_code
            return _ignore(event, f"AWS Health scheduled change {code} names no EC2 instance")
        # Drain as soon as the notice arrives; the deadline is the maintenance start while that
        # is still ahead (of `now`, else of the event time); past it, deadline_for decides.
        reference = now or event.time
        ahead = event.start_time is not None and (reference is None or event.start_time > reference)
        deadline = event.start_time if ahead else None
        start = event.start_time.isoformat() if event.start_time else "an unknown time"
        return Decision(
            "drain",
            event.instance_ids,
            f"AWS Health scheduled change {event.event_type_code} starting {start}",
            deadline=deadline,
            event_key=event.event_id,
        )
    if isinstance(event, ParameterChange):
        # Always "refresh": the refresh workflow re-reads the parameter and does nothing when
        # it is not the cluster's AMI parameter, was deleted, or was rejected (``exception``).
        extra = f" (rejected: {event.exception})" if event.exception else ""
        return Decision(
            "refresh",
            (),
            f"SSM parameter {event.name!r}: {event.operation}{extra}",
            event_key=event.event_id,
        )
    if isinstance(event, LifecycleTestNotification):
        return _ignore(event, f"Auto Scaling test notification for group {event.group_name}")
    if isinstance(event, SubscriptionConfirmation):
        return _ignore(
            event,
            f"SNS subscription confirmation for {event.topic_arn}: confirm it with the "
            "subscription's owner; ecsspot does not visit the SubscribeURL",
        )
    if isinstance(event, InstanceStateChange):
        reason = f"EC2 instance {event.instance_id} is {event.state}: informational"
        return _ignore(event, reason, event.instance_id)
    if isinstance(event, ContainerInstanceStateChange):
        ids = (event.ec2_instance_id,) if event.ec2_instance_id else ()
        arn = event.container_instance_arn
        reason = f"container instance {arn} is {event.status}: informational"
        return _ignore(event, reason, *ids)
    if isinstance(event, TaskStateChange):
        return _ignore(event, f"task {event.task_arn} is {event.last_status}: informational")
    if isinstance(event, ServiceAction):
        reason = f"ECS service action {event.event_name} ({event.event_type}): informational"
        return _ignore(event, reason)
    if isinstance(event, OtherEvent):
        what = event.note or f"{event.detail_type!r} from {event.source or 'an unknown source'}"
        return _ignore(event, f"{what}: not an event ecsspot acts on")
    return _ignore(event, f"{type(event).__name__}: not an event ecsspot acts on")


def deadline_for(decision: Decision, spec: ClusterSpec, now: float) -> float:
    """Seconds the drain ``decision`` asks for may take from ``now`` (epoch seconds) under ``spec``."""
    drain = spec.drain
    if decision.lifecycle is not None:
        # The hook holds the instance for its heartbeat timeout; heartbeats extend it (AWS caps
        # the total at 48 h), so the whole timeout is the drain's budget.
        return float(drain.lifecycle_timeout_seconds)
    if decision.deadline is not None:
        # The event says when the instance goes (spot: the notice less the margin; Health: the
        # maintenance start); once that has passed, nothing is left to wait for.
        return max(decision.deadline.timestamp() - now, 0.0)
    if decision.kind == "drain":
        # AWS is taking the instance at a time the event no longer bounds (a Health notice whose
        # start has passed): drain as long as ecsspot's hook would hold an instance.
        return float(drain.lifecycle_timeout_seconds)
    # A rebalance recommendation: nothing is taking the instance yet.
    return float(drain.deadline_seconds)
