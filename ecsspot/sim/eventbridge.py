"""EventBridge: the events the simulated services emit, delivered to rules' targets.

moto's rules deliver ``put_events`` to SQS (and a few other targets) but crash on a Lambda
target and never see events AWS services emit. Here every event the world emits goes through
the default bus's rules (moto's pattern matching); SQS targets get it through moto, Lambda
targets through handlers registered with :meth:`EventBus.register_lambda`, called in-process
between ticks, as EventBridge invokes a function asynchronously
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html). A failing handler is
retried twice, one and then two minutes later
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).

SQS targets get the event :attr:`~ecsspot.sim.world.Timings.event_delivery` later (EventBridge
delivers in well under a second, not instantly). :meth:`EventBus.create_event_source_mapping`
is Lambda's SQS event source mapping, the deployed path (EventBridge → SQS → Lambda): see
:class:`EventSourceMapping`.
"""

from __future__ import annotations

import contextlib
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


@attrs.frozen
class EventSourceMapping:
    """Lambda's event source mapping for a standard SQS queue, polled on the virtual clock.

    As https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html and
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html describe it:

    - the poller receives up to ``batch_size`` messages (at most 10 without a batching window,
      which the Terraform module sets to 0) with the queue's visibility timeout, and invokes the
      function synchronously with ``{"Records": [...]}`` in the SQS event shape;
    - a successful invocation deletes the batch; with ``ReportBatchItemFailures``, only the
      messages not listed in ``batchItemFailures`` (an empty or null list, or an empty or null
      response, is complete success; an item without a valid ``itemIdentifier`` of the batch
      fails the whole batch);
    - a function error (it raised, or ran past its timeout) fails the whole batch;
    - what is not deleted stays in the queue and reappears when its visibility timeout ends
      (the queue's, or what the function set with ChangeMessageVisibility); SQS itself moves a
      message to the dead-letter queue once its receive count exceeds the redrive policy's
      ``maxReceiveCount`` (moto does that at the next receive; its clock is the simulator's,
      see ``ecsspot.sim.seam``).

    One batch is in flight per mapping at a time (AWS runs several pollers; one is the
    stricter case for latency).
    """

    uuid: str
    queue_arn: str
    function: str
    batch_size: int = 10
    report_batch_item_failures: bool = True

    @property
    def queue_name(self) -> str:
        return self.queue_arn.split(":")[5]


@attrs.frozen
class Batch:
    """One invocation through an event source mapping (also in the history as ``lambda.batch``)."""

    #: When the function returned (``started``: when it was invoked).
    time: float
    function: str
    message_ids: tuple[str, ...]
    #: Messages left in the queue (reported in ``batchItemFailures``, or all on an error).
    failed: tuple[str, ...]
    error: str | None = None
    started: float = 0.0


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
        self.mappings: dict[str, EventSourceMapping] = {}
        self.batches: list[Batch] = []

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
        except Exception:  # noqa: BLE001 - no events backend state yet: nobody listens
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
            # EventBridge delivers in well under a second, not in the same instant.
            self.world.at(self.world.timings.event_delivery, lambda: send_to_others(others))

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
            from moto.events.utils import EventTemplateParser

            transformer = target["InputTransformer"]
            # moto types the event as its EventMessageType TypedDict: the same JSON object, as a dict.
            message: Any = event
            return EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=message,
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
        except Exception as exc:  # noqa: BLE001 - an async invocation's error goes to the retry policy
            error = f"{type(exc).__name__}: {exc}"
        with world.lock:
            self.invocations.append(Invocation(world.now(), name, event_id, attempt, error))
            world.record("lambda.invoked", name, event_id=event_id, attempt=attempt, error=error)
            if error is not None and attempt < len(RETRY_DELAYS):
                world.at(
                    RETRY_DELAYS[attempt],
                    lambda: world.outside_lock(lambda: self._invoke(name, arn, payload, event_id, attempt + 1)),
                )

    # Lambda's SQS event source mapping
    def create_event_source_mapping(
        self,
        queue_arn: str,
        function_name_or_arn: str,
        *,
        batch_size: int = 10,
        function_response_types: tuple[str, ...] = ("ReportBatchItemFailures",),
    ) -> EventSourceMapping:
        """Start polling ``queue_arn`` for the registered function (see :class:`EventSourceMapping`)."""
        # https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html: for a
        # standard queue the batch size goes above 10 only with a batching window, which the
        # mapping here does not have.
        if not 1 <= batch_size <= 10:
            raise ValueError(f"BatchSize {batch_size}: 1 to 10 without a batching window")
        unknown = set(function_response_types) - {"ReportBatchItemFailures"}
        if unknown:
            raise ValueError(f"FunctionResponseTypes: unknown {sorted(unknown)}")
        mapping = EventSourceMapping(
            uuid=self.world.uuid(),
            queue_arn=queue_arn,
            function=function_name(function_name_or_arn),
            batch_size=batch_size,
            report_batch_item_failures="ReportBatchItemFailures" in function_response_types,
        )
        self._sqs_queue(mapping)  # the queue must exist, as for CreateEventSourceMapping
        self.mappings[mapping.uuid] = mapping
        self.world.record("lambda.event_source_mapping", mapping.function, queue=queue_arn, batch_size=batch_size)
        self.world.at(self.world.timings.sqs_poll, lambda: self._poll(mapping))
        return mapping

    def _sqs_backend(self, mapping: EventSourceMapping) -> Any:
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, _ = mapping.queue_arn.split(":")
        return sqs_backends[account][region]

    def _sqs_queue(self, mapping: EventSourceMapping) -> Any:
        return self._sqs_backend(mapping).get_queue(mapping.queue_name)

    def _poll(self, mapping: EventSourceMapping) -> None:
        """One receive (under the lock); the invocation runs outside it, then the next poll."""
        world = self.world
        if mapping.uuid not in self.mappings:
            return
        backend = self._sqs_backend(mapping)
        try:
            queue = backend.get_queue(mapping.queue_name)
        except Exception:  # noqa: BLE001 - the queue was deleted: nothing left to poll
            del self.mappings[mapping.uuid]
            world.record("lambda.event_source_mapping_disabled", mapping.function, queue=mapping.queue_arn)
            return
        messages = backend.receive_message(
            mapping.queue_name, mapping.batch_size, 0, int(queue.visibility_timeout), ["All"]
        )
        if not messages:
            world.at(world.timings.sqs_poll, lambda: self._poll(mapping))
            return
        records = [self._record(mapping, m) for m in messages]
        world.record("sqs.received", mapping.queue_name, message_ids=[r["messageId"] for r in records])
        world.outside_lock(lambda: self._invoke_batch(mapping, records))

    def _record(self, mapping: EventSourceMapping, message: Any) -> dict[str, Any]:
        """One message in the SQS event shape Lambda passes
        (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Example standard queue
        message event")."""
        attributes = {
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "SentTimestamp": str(int(message.sent_timestamp)),
            "SenderId": str(message.sender_id),
            "ApproximateFirstReceiveTimestamp": str(int(message.approximate_first_receive_timestamp)),
        }
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in (message.message_attributes or {}).items()
        }
        return {
            "messageId": message.id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.body_md5,
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.queue_arn,
            "awsRegion": mapping.queue_arn.split(":")[3],
        }

    def _invoke_batch(self, mapping: EventSourceMapping, records: list[dict[str, Any]]) -> None:
        world = self.world
        ids = tuple(r["messageId"] for r in records)
        started = world.now()
        error: str | None = None
        response: Any = None
        if mapping.function not in self.handlers:
            error = "ResourceNotFoundException: function not registered"
        else:
            handler, timeout = self.handlers[mapping.function]
            arn = f"arn:aws:lambda:{world.region}:{world.account_id}:function:{mapping.function}"
            context = LambdaContext(mapping.function, arn, world.uuid(), world.now() + timeout, world.clock)
            try:
                response = handler({"Records": copy.deepcopy(records)}, context)
            except Exception as exc:  # noqa: BLE001 - a function error: the whole batch goes back
                error = f"{type(exc).__name__}: {exc}"
            if error is None and world.now() > context.deadline:
                error = f"Task timed out after {timeout:.2f} seconds"
        failed = ids if error is not None else self._failed(mapping, ids, response)
        with world.lock:
            backend = self._sqs_backend(mapping)
            for record in records:
                if record["messageId"] not in failed:
                    # Already deleted (by the function) or the queue is gone: nothing left to delete.
                    with contextlib.suppress(Exception):
                        backend.delete_message(mapping.queue_name, record["receiptHandle"])
            self.batches.append(Batch(world.now(), mapping.function, ids, failed, error, started))
            self.invocations.append(Invocation(world.now(), mapping.function, ",".join(ids), 0, error))
            world.record("lambda.batch", mapping.function, message_ids=list(ids), failed=list(failed), error=error, started=started)
            world.at(world.timings.sqs_poll, lambda: self._poll(mapping))

    @staticmethod
    def _failed(mapping: EventSourceMapping, ids: tuple[str, ...], response: Any) -> tuple[str, ...]:
        """The messages a successful invocation leaves in the queue (the partial batch response).

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html ("Success
        and failure conditions"): complete success for a null or empty response or list;
        complete failure for an invalid response, or an ``itemIdentifier`` that is empty, null,
        missing or not a message of the batch.
        """
        if not mapping.report_batch_item_failures or response is None or response == {}:
            return ()
        if not isinstance(response, Mapping):
            return ids
        items = response.get("batchItemFailures")
        if not items:
            return ()
        if not isinstance(items, list):
            return ids
        failed = []
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
            if not isinstance(identifier, str) or identifier not in ids:
                return ids
            failed.append(identifier)
        return tuple(i for i in ids if i in failed)
