"""Every real event payload shape -> frozen, typed events, and the pure decision on each.

No I/O and no boto3 here: the Lambda handler imports this package on every cold start.

- :mod:`~ecsspot.events.envelope` unwraps what Lambda or a queue hands over (EventBridge, SQS,
  SNS, direct Auto Scaling bodies, batches): ``parse_event``, ``parse_batch``, ``Record``;
- :mod:`~ecsspot.events.model` holds the events, each with one ``Envelope`` (id, time, source,
  region, account), and reads their bodies;
- :mod:`~ecsspot.events.decide` decides what an event asks for (``decide``) and how long its
  drain may take (``deadline_for``);
- :mod:`~ecsspot.events.fields` reads JSON fields, each error naming the field's path.
"""

from __future__ import annotations

from ecsspot.events.decide import (
    SPOT_MARGIN_SECONDS,
    SPOT_NOTICE_SECONDS,
    Decision,
    DecisionKind,
    deadline_for,
    decide,
)
from ecsspot.events.envelope import Record, parse_batch, parse_event
from ecsspot.events.fields import is_instance_id, parse_time
from ecsspot.events.model import (
    DOCTOR_PROBE,
    TEST_NOTIFICATION,
    ContainerInstanceStateChange,
    DoctorProbe,
    Envelope,
    Event,
    HealthScheduledChange,
    ImdsRebalanceNotice,
    ImdsSpotAction,
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
    parse_imds_rebalance,
    parse_imds_spot_action,
)

__all__ = [
    "DOCTOR_PROBE",
    "SPOT_MARGIN_SECONDS",
    "SPOT_NOTICE_SECONDS",
    "TEST_NOTIFICATION",
    "ContainerInstanceStateChange",
    "Decision",
    "DecisionKind",
    "DoctorProbe",
    "Envelope",
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
