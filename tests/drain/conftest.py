"""Fixtures for the drain and event-handling tests: the demo architecture on the simulator
(``ecsspot.sim.scenario``: an applied ecsspot cluster, ALB → target group → service), events
built from the recorded payloads in ``tests/events/``, and what happened, read back from the
simulator's history and from the calls ecsspot made.
"""

from __future__ import annotations

import copy
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from ecsspot.sim import Simulator, scenario

EVENTS = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
SEED = 11

#: A small cluster with room to spare: 2 on-demand + 4 spot m5.large (4 tasks of 512 CPU units
#: fit each), 6 web tasks behind the ALB, a 10 s deregistration delay, nothing wired to events.
SMALL = scenario.DemoConfig(
    spot_instances=4,
    on_demand_instances=2,
    tasks=6,
    task_cpu=512,
    rps=20,
    deregistration_delay=10,
    handle_events=False,
)


def load(name: str) -> Any:
    """A recorded payload from tests/events/ (a fresh copy)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(name="sim")
def sim_fixture() -> Iterator[Simulator]:
    with Simulator(region=REGION, seed=SEED) as sim:
        yield sim


@pytest.fixture(name="server_sim")
def server_sim_fixture() -> Iterator[Simulator]:
    with Simulator(region=REGION, seed=SEED, server=True) as sim:
        yield sim


def build(sim: Simulator, **changes: Any) -> scenario.Stack:
    """The demo architecture, small (:data:`SMALL` with ``changes``), serving traffic."""
    return scenario.build(sim, attrs.evolve(SMALL, **changes))


# --- what runs where ---------------------------------------------------------------------------


def container_instances(sim: Simulator, cluster: str) -> dict[str, dict[str, Any]]:
    """EC2 instance id → its container instance (every status, INACTIVE ones too)."""
    ecs = sim.client("ecs")
    arns: list[str] = []
    for status in ("ACTIVE", "DRAINING"):
        arns += ecs.list_container_instances(cluster=cluster, status=status)["containerInstanceArns"]
    if not arns:
        return {}
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    return {ci["ec2InstanceId"]: ci for ci in described}


def tasks_by_instance(sim: Simulator, cluster: str) -> Counter[str]:
    """Running (not stopped) service tasks per EC2 instance id."""
    ecs = sim.client("ecs")
    arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return Counter()
    by_arn = {ci["containerInstanceArn"]: iid for iid, ci in container_instances(sim, cluster).items()}
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return Counter(by_arn.get(t.get("containerInstanceArn", ""), "?") for t in tasks)


def spot_instances_with_tasks(sim: Simulator, stack: scenario.Stack) -> list[str]:
    """Running spot instances of the demo cluster that run web tasks, sorted."""
    busy = tasks_by_instance(sim, stack.cluster)
    return sorted(i for i in sim.spot_instances() if busy[i])


def targets(sim: Simulator, target_group_arn: str) -> dict[tuple[str, int], str]:
    """(instance id, port) → target state, as DescribeTargetHealth reports it."""
    described = sim.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in described}


def service(sim: Simulator, stack: scenario.Stack) -> dict[str, Any]:
    return sim.client("ecs").describe_services(cluster=stack.cluster, services=[stack.service])["services"][0]


# --- the history -------------------------------------------------------------------------------


def draining_transitions(sim: Simulator) -> Counter[str]:
    """How many times each container instance went ACTIVE → DRAINING (the simulator's history)."""
    return Counter(r.subject for r in sim.records("ecs.status") if r.detail.get("status") == "DRAINING")


def target_deregistrations(sim: Simulator) -> Counter[str]:
    """How many times each ``id:port`` target started draining."""
    return Counter(r.subject for r in sim.records("target.state") if r.detail.get("state") == "draining")


def first(sim: Simulator, kind: str, subject: str, **detail: Any) -> float | None:
    """Virtual time of the first ``kind`` record about ``subject`` with ``detail``, or None."""
    for r in sim.records(kind, subject):
        if all(r.detail.get(k) == v for k, v in detail.items()):
            return r.time
    return None


# --- calls ecsspot makes -----------------------------------------------------------------------


@attrs.define(eq=False)  # a botocore handler must be hashable
class CallLog:
    """A botocore ``before-parameter-build`` handler: each API call ecsspot makes, with its
    parameters as the workflow passed them (once per call, whatever the retries)."""

    calls: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)

    def __call__(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(dict(params))))

    def handler(self) -> tuple[str, Callable[..., Any]]:
        return ("before-parameter-build", self)

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [p for op, p in self.calls if op == operation]

    def set_draining(self) -> Counter[str]:
        """Container instance ARN → how many UpdateContainerInstancesState(DRAINING) named it."""
        return Counter(arn for p in self.of("UpdateContainerInstancesState") if p["status"] == "DRAINING" for arn in p["containerInstances"])

    def deregistered(self) -> Counter[tuple[str, int | None]]:
        """(id, port) → how many DeregisterTargets named it."""
        return Counter((t["Id"], t.get("Port")) for p in self.of("DeregisterTargets") for t in p["Targets"])


class RawBody(io.BytesIO):
    """The raw stream of a ``botocore.awsrequest.AWSResponse`` a ``before-send`` hook returns."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def handlers(sim: Simulator, *, event_handlers: Sequence[tuple[str, Callable[..., Any]]] = (), default_cluster: str | None = None, owner: str | None = None) -> Any:
    """ecsspot's Lambda functions on a boto3 driver pointed at the simulator, on its clock."""
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers

    options = ClientOptions(region=sim.region, endpoint_url=sim.endpoint_url, event_handlers=tuple(event_handlers))
    return Handlers(Driver(options, clock=sim.clock), default_cluster=default_cluster, owner=owner)


def recording_interruption(sim: Simulator) -> list[tuple[str, dict[str, Any]]]:
    """Put ecsspot's interruption function behind the scenario's EventBridge rules, keeping
    (detail-type, response) of every invocation in the returned list."""
    h = handlers(sim)
    responses: list[tuple[str, dict[str, Any]]] = []

    def interruption(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = h.interruption(event, context)
        responses.append((event["detail-type"], response))
        return response

    sim.register_lambda(scenario.INTERRUPTION_FUNCTION, interruption)
    return responses


# --- events, as AWS delivers them --------------------------------------------------------------


def _instance_arn(sim: Simulator, instance_id: str) -> str:
    # The real warnings put the Availability Zone where the region goes and no account.
    machine = sim.world.machine(instance_id)
    zone = machine.availability_zone if machine else f"{sim.region}a"
    return f"arn:aws:ec2:{zone}:instance/{instance_id}"


def spot_warning(sim: Simulator, instance_id: str, event_id: str) -> dict[str, Any]:
    """An "EC2 Spot Instance Interruption Warning" for ``instance_id``, sent now (the recorded
    payload with its instance, id and time replaced)."""
    event = load("spot-interruption-warning.json")
    event.update(id=event_id, time=sim.world.iso(), region=sim.region, account=sim.world.account_id, resources=[_instance_arn(sim, instance_id)])
    event["detail"]["instance-id"] = instance_id
    return event


def rebalance_recommendation(sim: Simulator, instance_id: str, event_id: str) -> dict[str, Any]:
    event = load("rebalance-recommendation.json")
    event.update(id=event_id, time=sim.world.iso(), region=sim.region, account=sim.world.account_id, resources=[_instance_arn(sim, instance_id)])
    event["detail"]["instance-id"] = instance_id
    return event


def sqs_batch(bodies: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A Lambda SQS event (the recorded powertools envelope's record shape) of ``(message id,
    body)``; a body that is not a string is sent as its JSON."""
    template = load("wrapper-lambda-sqs-event-powertools.json")["Records"][0]
    records = []
    for message_id, body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = message_id
        record["receiptHandle"] = f"handle-{message_id}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(record)
    return {"Records": records}
