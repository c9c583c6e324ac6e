"""The pure decisions on an event: what it asks for (:func:`decide`), and for how long a drain
may take (:func:`deadline_for`, under the cluster's spec)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import attrs

from ecsspot.events.fields import strings
from ecsspot.events.model import (
    SPOT_ACTIONS,
    ContainerInstanceStateChange,
    DoctorProbe,
    Event,
    HealthScheduledChange,
    InstanceStateChange,
    LifecycleAction,
    LifecycleTestNotification,
    OtherEvent,
    ParameterChange,
    RebalanceRecommendation,
    ServiceAction,
    SpotInterruptionWarning,
    SubscriptionConfirmation,
    TaskStateChange,
)

if TYPE_CHECKING:
    # Only for the annotation: the spec module is not on the Lambda's event-parsing path.
    from ecsspot.spec import ClusterSpec

SPOT_NOTICE_SECONDS = 120.0  # AWS: the warning comes two minutes before the interruption
#: Drain this long before the spot notice runs out, for the drain's own last calls.
SPOT_MARGIN_SECONDS = 10.0


DecisionKind = Literal["drain", "rebalance", "complete_lifecycle_action", "ignore", "refresh"]


@attrs.frozen
class Decision:
    """What to do about one event; I/O code later checks the instances are in a managed cluster."""

    kind: DecisionKind
    instance_ids: tuple[str, ...] = attrs.field(converter=strings)
    reason: str
    deadline: datetime | None = None
    lifecycle: LifecycleAction | None = None
    # Idempotency key: the lifecycle token (shared by every delivery of one hook action, via
    # EventBridge or SNS/SQS) or else the event/message id.
    event_key: str | None = None


def _after(time: datetime | None, seconds: float) -> datetime | None:
    return None if time is None else time + timedelta(seconds=seconds)


def _ignore(event: Event, reason: str, *ids: str) -> Decision:
    return Decision("ignore", ids, reason, event_key=event.event_id)


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
            f"{SPOT_ACTIONS.get(event.action, event.action)} about two minutes after "
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
    if isinstance(event, DoctorProbe):
        return _ignore(event, f"ecsspot doctor test event {event.probe} for cluster {event.cluster}: only recorded as seen")
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
