"""EventBridge: the events the simulated services emit, delivered to rules' targets.

moto's rules deliver ``put_events`` to SQS (and a few other targets) but crash on a Lambda
target and never see events AWS services emit. Here every event the world emits goes through
the default bus's rules (moto's pattern matching); SQS targets get it through moto, Lambda
targets through handlers registered with :meth:`EventBus.register_lambda`, called in-process
between ticks, as EventBridge invokes a function asynchronously
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html). A failing handler is
retried twice, one and then two minutes later
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ecsspot.sim.world import World

Handler = Callable[[dict[str, Any], Any], Any]
RETRY_DELAYS = (60.0, 120.0)


@attrs.frozen
class LambdaContext:
    """The parts of the Lambda context object handlers use; time runs on the simulator's clock."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    clock: Any = attrs.field(repr=False, eq=False)
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now()) * 1000))


@attrs.frozen
class Invocation:
    """One call of a registered handler (also kept in the history as ``lambda.invoked``)."""

    time: float
    function: str
    event_id: str
    attempt: int
    error: str | None = None


def function_name(name_or_arn: str) -> str:
    """``arn:aws:lambda:region:account:function:NAME[:qualifier]`` or ``NAME`` -> ``NAME``."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn


class EventBus:
    def __init__(self, world: World) -> None:
        self.world = world
        self.handlers: dict[str, tuple[Handler, float]] = {}
        self.invocations: list[Invocation] = []
        self.emitted: list[dict[str, Any]] = []

    def register_lambda(self, name_or_arn: str, handler: Handler, *, timeout: float = 900.0) -> None:
        self.handlers[function_name(name_or_arn)] = (handler, timeout)

    # emitting
    def emit(self, source: str, detail_type: str, detail: Mapping[str, Any], *, resources: list[str] | None = None) -> dict[str, Any]:
        """Publish an AWS service event on the default bus, in the real event envelope."""
        world = self.world
        event = {
            "version": "0",
            "id": world.uuid(),
            "detail-type": detail_type,
            "source": source,
            "account": world.account_id,
            "time": world.iso(),
            "region": world.region,
            "resources": list(resources or []),
            "detail": json.loads(json.dumps(detail)),
        }
        self.emitted.append(event)
        world.record("event", detail_type, id=event["id"], source=source)
        try:
            bus = world.eventbridge.describe_event_bus("default")
        except Exception:  # no events backend state yet: nobody listens
            return event
        # As moto's put_events builds it: ``time`` in epoch seconds (its SQS delivery converts
        # it) and an ``ingestion-time`` its input transformer reads.
        delivered = dict(event, time=world.now(), **{"ingestion-time": world.now()})
        for rule in list(bus.rules.values()):
            rule.send_to_targets(copy.deepcopy(delivered))
        return event

    def ec2_state_change(self, instance_id: str, state: str) -> None:
        """"EC2 Instance State-change Notification"
        (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html)."""
        world = self.world
        self.emit(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            {"instance-id": instance_id, "state": state},
            resources=[f"arn:aws:ec2:{world.region}:{world.account_id}:instance/{instance_id}"],
        )

    def task_state_change(self, task: Any, run: Any) -> None:
        """"ECS Task State Change" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html)."""
        world = self.world
        detail: dict[str, Any] = {
            "clusterArn": task.cluster_arn,
            "containerInstanceArn": task.container_instance_arn,
            "taskArn": task.task_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "group": task.group,
            "startedBy": task.started_by,
            "launchType": task.launch_type or "EC2",
            "availabilityZone": getattr(task, "availability_zone", None),
            "cpu": task.cpu,
            "memory": task.memory,
            "lastStatus": run.status,
            "desiredStatus": run.desired,
            "version": task.version,
            "createdAt": world.iso(run.created_at, millis=True),
            "updatedAt": world.iso(millis=True),
            "containers": [
                {
                    "containerArn": c.container_arn,
                    "name": c.name,
                    "image": c.image,
                    "lastStatus": c.last_status,
                    "taskArn": task.task_arn,
                    "networkBindings": list(getattr(c, "network_bindings", [])),
                }
                for c in task.containers
            ],
        }
        if task.capacity_provider_name:
            detail["capacityProviderName"] = task.capacity_provider_name
        for field, attribute in (("stopCode", "stop_code"), ("stoppedReason", "stopped_reason")):
            value = getattr(task, attribute, None)
            if value:
                detail[field] = value
        self.emit("aws.ecs", "ECS Task State Change", detail, resources=[task.task_arn])

    # delivering (the seam's Rule.send_to_targets)
    def route(self, rule: Any, event: dict[str, Any], send_to_others: Callable[[list[dict[str, Any]]], None]) -> None:
        """Deliver ``event`` to ``rule``'s targets: Lambda here, the rest through moto."""
        # Disabled rules deliver nothing (moto ignores the state).
        if getattr(rule, "state", "ENABLED") != "ENABLED" or not rule.event_pattern.matches_event(event):
            return
        others = []
        for target in rule.targets:
            if ":lambda:" in target["Arn"]:
                self._queue(target, event)
            else:
                others.append(target)
        if others:
            send_to_others(others)

    def _queue(self, target: Mapping[str, Any], event: dict[str, Any]) -> None:
        world = self.world
        name = function_name(target["Arn"])
        payload = self._input(target, self._public(event))
        if name not in self.handlers:
            world.record("lambda.unregistered", name, event_id=event.get("id"))
            return
        world.outside_lock(lambda: self._invoke(name, target["Arn"], payload, str(event.get("id")), 0))

    def _public(self, event: dict[str, Any]) -> dict[str, Any]:
        public = copy.deepcopy(event)
        if isinstance(public.get("time"), (int, float)):
            public["time"] = self.world.iso(float(public["time"]))
        public.pop("ingestion-time", None)
        return public

    def _input(self, target: Mapping[str, Any], event: dict[str, Any]) -> Any:
        """The target's Input / InputPath / InputTransformer, as EventBridge applies them."""
        if "Input" in target:
            return json.loads(target["Input"])
        if "InputPath" in target:
            value: Any = event
            for part in target["InputPath"].lstrip("$").strip(".").split("."):
                if part:
                    value = value.get(part) if isinstance(value, dict) else None
            return value
        if "InputTransformer" in target:
            from moto.events.models import EventTemplateParser

            transformer = target["InputTransformer"]
            return EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=event,
            )
        return event

    def _invoke(self, name: str, arn: str, payload: Any, event_id: str, attempt: int) -> None:
        world = self.world
        handler, timeout = self.handlers[name]
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=arn,
            aws_request_id=world.uuid(),
            deadline=world.now() + timeout,
            clock=world.clock,
        )
        error = None
        try:
            handler(copy.deepcopy(payload), context)
        except Exception as exc:  # an async invocation's error goes to the retry policy
            error = f"{type(exc).__name__}: {exc}"
        with world.lock:
            self.invocations.append(Invocation(world.now(), name, event_id, attempt, error))
            world.record("lambda.invoked", name, event_id=event_id, attempt=attempt, error=error)
            if error is not None and attempt < len(RETRY_DELAYS):
                world.at(
                    RETRY_DELAYS[attempt],
                    lambda: world.outside_lock(lambda: self._invoke(name, arn, payload, event_id, attempt + 1)),
                )
