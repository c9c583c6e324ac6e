"""The interruption Lambda (``ecsspot.handlers``) on the simulator: two functions racing for one
instance, an SQS batch with a malformed record, and what the function returns for an SQS batch
and for a direct EventBridge event.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from ecsspot.sim import Simulator
from tests.drain.conftest import (
    CallLog,
    RawBody,
    build,
    container_instances,
    draining_transitions,
    handlers,
    rebalance_recommendation,
    spot_instances_with_tasks,
    spot_warning,
    sqs_batch,
    target_deregistrations,
    targets,
)

ACCOUNT = "123456789012"


def lambda_arn(sim: Simulator, name: str) -> str:
    return f"arn:aws:lambda:{sim.region}:{ACCOUNT}:function:{name}"


def put_entry(sim: Simulator, event: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry carrying ``event`` (EventBridge gives it a new id)."""
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
        "Time": sim.world.datetime(),
    }


def test_two_functions_at_once_drain_the_instance_once(sim: Simulator) -> None:
    """A spot warning and a rebalance recommendation for one instance reach two function
    instances at the same moment (the second starts while the first is mid-drain): the drain
    lease lets one drain it; the other steps aside."""
    stack = build(sim)
    victim = spot_instances_with_tasks(sim, stack)[0]
    events = sim.client("events")
    logs = {"spot": CallLog(), "rebalance": CallLog()}
    responses: dict[str, list[dict[str, Any]]] = {"spot": [], "rebalance": []}
    for name, detail_type in (("spot", "EC2 Spot Instance Interruption Warning"), ("rebalance", "EC2 Instance Rebalance Recommendation")):
        events.put_rule(Name=f"ecsspot-{name}", EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": [detail_type]}))
        events.put_targets(Rule=f"ecsspot-{name}", Targets=[{"Id": "fn", "Arn": lambda_arn(sim, f"interruption-{name}")}])
        h = handlers(sim, event_handlers=[logs[name].handler()], owner=f"lambda-{name}")

        def function(event: dict[str, Any], context: Any, h: Any = h, name: str = name) -> dict[str, Any]:
            response = h.interruption(event, context)
            responses[name].append(response)
            return response

        sim.register_lambda(f"interruption-{name}", function)

    answer = events.put_events(
        Entries=[put_entry(sim, spot_warning(sim, victim, "x")), put_entry(sim, rebalance_recommendation(sim, victim, "y"))]
    )
    assert answer["FailedEntryCount"] == 0
    sim.advance(0)  # EventBridge invokes both functions

    assert sorted(i.function for i in sim.invocations) == ["interruption-rebalance", "interruption-spot"]
    assert all(i.error is None for i in sim.invocations)
    actions = [a for name in responses for r in responses[name] for a in r["actions"]]
    drains = Counter(a["status"] for a in actions if a["kind"] in ("drain", "rebalance") and a["status"] != "done")
    # Each handler reports only what it verified: both see the instance drained (a second
    # DRAINING would be harmless, so neither waits on the other's lease), and it is drained once.
    assert drains == Counter({"drained": 2}), actions

    arn = container_instances(sim, stack.cluster)[victim]["containerInstanceArn"]
    assert sum(log.set_draining()[arn] for log in logs.values()) == 1
    deregistered = logs["spot"].deregistered() + logs["rebalance"].deregistered()
    assert deregistered and set(deregistered.values()) == {1}
    assert draining_transitions(sim) == Counter({victim: 1})
    assert set(target_deregistrations(sim).values()) == {1}
    assert not [k for k in targets(sim, stack.target_group_arn) if k[0] == victim]


def test_sqs_batch_with_a_malformed_record_returns_exactly_that_record(sim: Simulator) -> None:
    stack = build(sim)
    good = spot_instances_with_tasks(sim, stack)[:2]
    warnings = [spot_warning(sim, iid, f"5f0c6a1e-0000-4000-8000-0000000000b{n}") for n, iid in enumerate(good)]
    h = handlers(sim)
    batch = sqs_batch([("good-1", warnings[0]), ("bad-json", '{"version": "0", "detail-type": "EC2 Spot Instance Interr'), ("good-2", warnings[1])])
    assert h.interruption(batch) == {"batchItemFailures": [{"itemIdentifier": "bad-json"}]}
    statuses = {iid: ci["status"] for iid, ci in container_instances(sim, stack.cluster).items()}
    assert [statuses[i] for i in good] == ["DRAINING", "DRAINING"]
    assert draining_transitions(sim) == Counter({i: 1 for i in good})

    # A hostile value is malformed too: only that record goes back (the other is a duplicate).
    hostile = spot_warning(sim, good[0], "5f0c6a1e-0000-4000-8000-0000000000bb")
    hostile["detail"]["instance-id"] = "i-../../../etc/passwd"
    assert h.interruption(sqs_batch([("again", warnings[0]), ("bad-id", hostile)])) == {"batchItemFailures": [{"itemIdentifier": "bad-id"}]}
    assert draining_transitions(sim) == Counter({i: 1 for i in good})


def test_return_shapes_for_an_sqs_batch_and_a_direct_eventbridge_event(sim: Simulator) -> None:
    stack = build(sim)
    first, second = spot_instances_with_tasks(sim, stack)[:2]
    h = handlers(sim)

    # SQS (event source mapping with ReportBatchItemFailures): only the partial batch response.
    response = h.interruption(sqs_batch([("m1", spot_warning(sim, first, "5f0c6a1e-0000-4000-8000-0000000000d1"))]))
    assert response == {"batchItemFailures": []}

    # EventBridge invokes the function directly: the actions, as JSON.
    response = h.interruption(spot_warning(sim, second, "5f0c6a1e-0000-4000-8000-0000000000d2"))
    assert json.loads(json.dumps(response)) == response
    assert list(response) == ["actions"]
    (action,) = response["actions"]
    assert {"kind", "instance_id", "status", "reason"} <= set(action)
    assert (action["kind"], action["instance_id"], action["status"]) == ("drain", second, "drained")
    assert action["reason"].startswith("drained in ")

    # Not ours: one ignore action with the reason.
    task_change = json.loads(json.dumps(sim.events("ECS Task State Change")[0]))
    response = h.interruption(task_change)
    assert [(a["kind"], a["status"]) for a in response["actions"]] == [("ignore", "ignored")]
    assert "informational" in response["actions"][0]["reason"]

    # A direct event that is malformed: an error action (EventBridge would not retry it).
    broken = spot_warning(sim, second, "5f0c6a1e-0000-4000-8000-0000000000d3")
    del broken["detail"]["instance-id"]
    response = h.interruption(broken)
    assert [(a["kind"], a["status"]) for a in response["actions"]] == [("error", "failed")]
    assert "instance-id" in response["actions"][0]["reason"]


def test_a_failed_direct_invocation_is_retried_by_lambda_and_then_drains(server_sim: Simulator) -> None:
    """AWS refuses a call once (a before-send hook, over HTTP so moto's own stub does not answer
    first). The direct invocation fails, which is what makes Lambda retry an asynchronous
    invocation, and lets go of its claim and lease; the retry a minute later drains the instance."""
    from botocore.awsrequest import AWSResponse

    sim = server_sim
    stack = build(sim)
    victim = spot_instances_with_tasks(sim, stack)[0]
    refusals = []

    def refuse_once(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if event_name.endswith(".DeregisterTargets") and not refusals:
            refusals.append(event_name)
            body = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not now</Message></Error><RequestId>x</RequestId></ErrorResponse>"
            return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, RawBody(body))
        return None

    events = sim.client("events")
    events.put_rule(Name="ecsspot-spot", EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}))
    events.put_targets(Rule="ecsspot-spot", Targets=[{"Id": "fn", "Arn": lambda_arn(sim, "interruption")}])
    sim.register_lambda("interruption", handlers(sim, event_handlers=[("before-send", refuse_once)]).interruption)
    events.put_events(Entries=[put_entry(sim, spot_warning(sim, victim, "x"))])
    sim.advance(0)

    (failed,) = sim.invocations
    assert failed.error is not None and failed.error.startswith("HandlingFailed: drain ") and "AccessDenied" in failed.error
    # DRAINING went out before the refused deregistration (same round); the targets did not.
    assert container_instances(sim, stack.cluster)[victim]["status"] == "DRAINING"
    sim.advance(60)  # Lambda's first retry of an asynchronous invocation
    assert [(i.attempt, i.error) for i in sim.invocations] == [(0, failed.error), (1, None)]
    assert not [k for k in targets(sim, stack.target_group_arn) if k[0] == victim]
    assert draining_transitions(sim) == Counter({victim: 1})
    assert set(target_deregistrations(sim).values()) == {1}


def test_a_table_that_does_not_match_the_cluster_is_refused() -> None:
    from ecsspot.errors import InputError
    from ecsspot.handlers import check_environment

    check_environment({"ECSSPOT_CLUSTER": "demo-api", "ECSSPOT_TABLE": "ecsspot-demo-api"})
    check_environment({"ECSSPOT_CLUSTER": "demo-api"})
    with pytest.raises(InputError, match="state table is ecsspot-demo-api"):
        check_environment({"ECSSPOT_CLUSTER": "demo-api", "ECSSPOT_TABLE": "other"})
