"""The event model: one frozen class per event ecsspot reads, and how each is read from its body.

An event's own fields come from its body (an EventBridge ``detail``, an Auto Scaling hook body,
an SNS control message); what its wrapper says about it (id, time, source, region, account) is
one :class:`Envelope`, read by :mod:`ecsspot.events.envelope`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, cast

import attrs

from ecsspot.errors import EventError
from ecsspot.events.fields import (
    MISSING,
    is_instance_id,
    join_path,
    kind_of,
    opt_str,
    opt_time,
    parse_time,
    req_instance_id,
    req_str,
    show,
    str_list,
    strings,
)

# ECS Anywhere container instances report an SSM managed-instance id instead of an EC2 one.
_ECS_INSTANCE_ID = re.compile(r"m?i-[0-9a-f]{8,17}")

TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
_TRANSITIONS: dict[str, Literal["TERMINATING", "LAUNCHING"]] = {
    "autoscaling:EC2_INSTANCE_TERMINATING": "TERMINATING",
    "autoscaling:EC2_INSTANCE_LAUNCHING": "LAUNCHING",
}
_LIFECYCLE_DETAIL_TYPES = {
    "EC2 Instance-terminate Lifecycle Action": "TERMINATING",
    "EC2 Instance-launch Lifecycle Action": "LAUNCHING",
}
#: A spot interruption's action, and what it does to the instance.
SpotAction = Literal["terminate", "stop", "hibernate"]
SPOT_ACTIONS = {"terminate": "terminated", "stop": "stopped", "hibernate": "hibernated"}


@attrs.frozen
class Envelope:
    """What an event's wrapper says about it, the same five fields for every event.

    EventBridge gives ``id``/``time``/``source``/``region``/``account``; an Auto Scaling hook body
    ``RequestId``/``Time``/``AccountId``; an SNS control message ``MessageId``/``Timestamp``.
    """

    event_id: str | None = None
    time: datetime | None = None
    source: str | None = None
    region: str | None = None
    account: str | None = None


@attrs.frozen
class Event:
    """Base of every parsed event (use ``isinstance(x, Event)``); its envelope's fields read through."""

    envelope: Envelope = attrs.field(factory=Envelope, kw_only=True)

    @property
    def event_id(self) -> str | None:
        return self.envelope.event_id

    @property
    def time(self) -> datetime | None:
        return self.envelope.time

    @property
    def source(self) -> str | None:
        return self.envelope.source

    @property
    def region(self) -> str | None:
        return self.envelope.region

    @property
    def account(self) -> str | None:
        return self.envelope.account


@attrs.frozen
class SpotInterruptionWarning(Event):
    """EC2 will reclaim a spot instance about two minutes after ``time``."""

    instance_id: str
    action: SpotAction


@attrs.frozen
class RebalanceRecommendation(Event):
    """A spot instance is at elevated risk of interruption."""

    instance_id: str


@attrs.frozen
class LifecycleAction(Event):
    """An Auto Scaling lifecycle hook holds an instance until completed (or timed out)."""

    transition: Literal["TERMINATING", "LAUNCHING"]
    instance_id: str
    group_name: str
    hook_name: str
    token: str
    metadata: str | None = None
    origin: str | None = None
    destination: str | None = None


@attrs.frozen
class LifecycleTestNotification(Event):
    """``autoscaling:TEST_NOTIFICATION``, sent once when a hook or notification is set up."""

    group_name: str
    group_arn: str | None = None


@attrs.frozen
class InstanceStateChange(Event):
    """EC2 Instance State-change Notification."""

    instance_id: str
    state: str


@attrs.frozen
class ContainerInstanceStateChange(Event):
    """ECS Container Instance State Change."""

    cluster_arn: str
    container_instance_arn: str
    ec2_instance_id: str | None
    status: str
    agent_connected: bool | None = None


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


@attrs.frozen
class ServiceAction(Event):
    """ECS Service Action (steady state, placement failures, ...)."""

    cluster_arn: str
    event_type: str
    event_name: str
    reason: str | None = None
    service_arn: str | None = None
    container_instance_arns: tuple[str, ...] = attrs.field(default=(), converter=strings)
    capacity_provider_arns: tuple[str, ...] = attrs.field(default=(), converter=strings)


@attrs.frozen
class HealthScheduledChange(Event):
    """AWS Health scheduledChange for EC2 (maintenance, retirement) naming instances."""

    instance_ids: tuple[str, ...] = attrs.field(converter=strings)
    event_type_code: str
    start_time: datetime | None
    end_time: datetime | None = None
    event_arn: str | None = None


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


@attrs.frozen
class SubscriptionConfirmation(Event):
    """SNS asks the endpoint to confirm a subscription by visiting ``subscribe_url``."""

    topic_arn: str
    subscribe_url: str
    token: str | None = None


#: The detail-type of ``ecsspot doctor --send-test-event``'s message (source ``ecsspot.doctor``).
DOCTOR_PROBE = "ecsspot doctor test event"
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PROBE_ID = re.compile(r"[0-9a-f]{32}")


@attrs.frozen
class DoctorProbe(Event):
    """A clearly marked test message ``ecsspot doctor`` sends through the events queue: the
    handler records that it saw it in the cluster's state table, and does nothing else."""

    cluster: str
    probe: str


@attrs.frozen
class OtherEvent(Event):
    """A well-formed event that is not one ecsspot acts on; ``note`` says why when useful."""

    detail_type: str
    note: str = ""


@attrs.frozen
class ImdsSpotAction:
    """Body of IMDS ``meta-data/spot/instance-action``."""

    action: str
    time: datetime


@attrs.frozen
class ImdsRebalanceNotice:
    """Body of IMDS ``meta-data/events/recommendations/rebalance``."""

    notice_time: datetime


_Obj = Mapping[str, Any]


def _spot(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    action = req_str(d, "instance-action", path)
    if action not in SPOT_ACTIONS:
        raise EventError(
            f"{join_path(path, 'instance-action')}: expected terminate, stop or hibernate, "
            f"got {show(action)}"
        )
    # Checked against SPOT_ACTIONS just above: one of the Literal's values.
    return SpotInterruptionWarning(req_instance_id(d, "instance-id", path), cast(SpotAction, action), envelope=envelope)


def _rebalance(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    return RebalanceRecommendation(req_instance_id(d, "instance-id", path), envelope=envelope)


def _lifecycle_detail(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    event = from_lifecycle_body(d, path, envelope)
    expected = _LIFECYCLE_DETAIL_TYPES[detail_type]
    if isinstance(event, LifecycleAction) and event.transition != expected:
        raise EventError(
            f"{join_path(path, 'LifecycleTransition')}: {event.transition} does not match "
            f"detail-type {detail_type!r}"
        )
    return event


def _state_change(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    instance_id = req_instance_id(d, "instance-id", path)
    return InstanceStateChange(instance_id, req_str(d, "state", path), envelope=envelope)


def _container_instance(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    ec2_id = opt_str(d, "ec2InstanceId", path)
    if ec2_id is not None and not _ECS_INSTANCE_ID.fullmatch(ec2_id):
        where = join_path(path, "ec2InstanceId")
        raise EventError(f"{where}: not a valid instance id: {show(ec2_id)}")
    connected = d.get("agentConnected")
    return ContainerInstanceStateChange(
        req_str(d, "clusterArn", path),
        req_str(d, "containerInstanceArn", path),
        ec2_id,
        req_str(d, "status", path),
        agent_connected=connected if isinstance(connected, bool) else None,
        envelope=envelope,
    )


def _task(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    return TaskStateChange(
        req_str(d, "clusterArn", path),
        req_str(d, "taskArn", path),
        opt_str(d, "lastStatus", path),
        opt_str(d, "desiredStatus", path),
        container_instance_arn=opt_str(d, "containerInstanceArn", path),
        group=opt_str(d, "group", path),
        launch_type=opt_str(d, "launchType", path),
        stopped_reason=opt_str(d, "stoppedReason", path),
        stop_code=opt_str(d, "stopCode", path),
        envelope=envelope,
    )


def _doctor_probe(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    if envelope.source != "ecsspot.doctor":
        return OtherEvent(detail_type, note=f"{detail_type!r} from {envelope.source or 'an unknown source'}, not ecsspot.doctor", envelope=envelope)
    cluster, probe = req_str(d, "cluster", path), req_str(d, "probe", path)
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise EventError(f"{path}.cluster: not a cluster name: {cluster[:80]!r}")
    if not _PROBE_ID.fullmatch(probe):
        raise EventError(f"{path}.probe: not a doctor probe id (32 hex digits): {probe[:80]!r}")
    return DoctorProbe(cluster, probe, envelope=envelope)


def _service_action(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    services = [r for r in resources if ":service/" in r]
    return ServiceAction(
        req_str(d, "clusterArn", path),
        req_str(d, "eventType", path),
        req_str(d, "eventName", path),
        reason=opt_str(d, "reason", path),
        service_arn=services[0] if services else None,
        container_instance_arns=str_list(d, "containerInstanceArns", path),
        capacity_provider_arns=str_list(d, "capacityProviderArns", path),
        envelope=envelope,
    )


def _health(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    service = opt_str(d, "service", path)
    category = opt_str(d, "eventTypeCategory", path)
    code = req_str(d, "eventTypeCode", path)
    if service != "EC2" or category != "scheduledChange":
        note = f"AWS Health {category or 'uncategorised'} event {code} for {service or '?'}"
        return OtherEvent(detail_type, note=note, envelope=envelope)
    entities = d.get("affectedEntities")
    candidates: list[tuple[str, object]] = []
    if entities is not None:
        if not isinstance(entities, (list, tuple)):
            where = join_path(path, "affectedEntities")
            raise EventError(f"{where}: expected an array, got {kind_of(entities)}")
        for i, entity in enumerate(entities):
            where = f"{join_path(path, 'affectedEntities')}[{i}]"
            if not isinstance(entity, Mapping):
                raise EventError(f"{where}: expected an object, got {kind_of(entity)}")
            candidates.append((f"{where}.entityValue", entity.get("entityValue")))
    else:
        # Health puts bare instance ids (not ARNs) in resources; used only when detail has none.
        candidates = [(f"resources[{i}]", r) for i, r in enumerate(resources)]
    ids: list[str] = []
    for where, value in candidates:
        # Health also names hosts, volumes, ...: only instance ids matter for a drain.
        if isinstance(value, str) and value.startswith("i-"):
            if not is_instance_id(value):
                raise EventError(f"{where}: not a valid EC2 instance id: {show(value)}")
            if value not in ids:
                ids.append(value)
    return HealthScheduledChange(
        tuple(ids),
        code,
        opt_time(d, "startTime", path),
        end_time=opt_time(d, "endTime", path),
        event_arn=opt_str(d, "eventArn", path),
        envelope=envelope,
    )


def _parameter(detail_type: str, d: _Obj, path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    return ParameterChange(
        req_str(d, "name", path),
        req_str(d, "operation", path),
        opt_str(d, "type", path),
        data_type=opt_str(d, "dataType", path),
        description=opt_str(d, "description", path),
        exception=opt_str(d, "exception", path),
        envelope=envelope,
    )


_DetailParser = Callable[[str, _Obj, str, tuple[str, ...], Envelope], Event]
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
    DOCTOR_PROBE: _doctor_probe,
}



def from_detail(detail_type: str, detail: Mapping[str, Any], path: str, resources: tuple[str, ...], envelope: Envelope) -> Event:
    """The event an EventBridge ``detail`` of ``detail_type`` holds (:class:`OtherEvent` when ecsspot reads no such type)."""
    parser = _DETAIL_PARSERS.get(detail_type)
    if parser is None:
        return OtherEvent(detail_type, envelope=envelope)
    return parser(detail_type, detail, path, resources, envelope)


def from_lifecycle_body(body: Mapping[str, Any], path: str, envelope: Envelope) -> Event:
    """The event of an Auto Scaling lifecycle-hook body (in an EventBridge detail, or sent directly)."""
    transition = req_str(body, "LifecycleTransition", path)
    if transition == TEST_NOTIFICATION:
        return LifecycleTestNotification(
            req_str(body, "AutoScalingGroupName", path),
            group_arn=opt_str(body, "AutoScalingGroupARN", path),
            envelope=envelope,
        )
    kind = _TRANSITIONS.get(transition)
    if kind is None:
        where = join_path(path, "LifecycleTransition")
        raise EventError(f"{where}: unknown transition {show(transition)}")
    return LifecycleAction(
        kind,
        req_instance_id(body, "EC2InstanceId", path),
        req_str(body, "AutoScalingGroupName", path),
        req_str(body, "LifecycleHookName", path),
        req_str(body, "LifecycleActionToken", path),
        metadata=opt_str(body, "NotificationMetadata", path),
        origin=opt_str(body, "Origin", path),
        destination=opt_str(body, "Destination", path),
        envelope=envelope,
    )


def parse_imds_spot_action(payload: Mapping[str, Any]) -> ImdsSpotAction:
    """Parse the IMDS ``spot/instance-action`` body (``{"action", "time"}``)."""
    if not isinstance(payload, Mapping):
        raise EventError(f"payload: expected a JSON object, got {kind_of(payload)}")
    action = req_str(payload, "action", "")
    if action not in SPOT_ACTIONS:
        raise EventError(f"action: expected terminate, stop or hibernate, got {show(action)}")
    return ImdsSpotAction(action, parse_time(payload.get("time", MISSING), "time"))


def parse_imds_rebalance(payload: Mapping[str, Any]) -> ImdsRebalanceNotice:
    """Parse the IMDS ``events/recommendations/rebalance`` body (``{"noticeTime"}``)."""
    if not isinstance(payload, Mapping):
        raise EventError(f"payload: expected a JSON object, got {kind_of(payload)}")
    return ImdsRebalanceNotice(parse_time(payload.get("noticeTime", MISSING), "noticeTime"))
