"""Every recorded payload in tests/events/ through the handling path, not only the parser:
``Manager.handle_event`` and ``ecsspot handle-event`` (with and without ``--dry-run``) against
the demo cluster on the simulator. No crash; the action kinds the payload asks for; events that
are not ours give one ``ignore`` action with a reason and exit 0; a payload that is not an event
exits 3; a batch reports its bad records as batch item failures and exits 0.

What each file parses to is said once, in tests/unit/test_events.py's ``EXPECT`` table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from ecsspot import Manager
from ecsspot.events import LifecycleAction, decide, parse_event
from ecsspot.interruption import HandleResult
from ecsspot.sim import Simulator, scenario
from ecsspot.spec import LIFECYCLE_HOOK_NAME
from ecsspot_cli.main import cli
from tests.drain.conftest import EVENTS, REGION, SEED, build, container_instances, spot_instances_with_tasks, targets
from tests.unit.test_events import EXPECT, SAMPLES, Batch, Parsed, Rejected

#: The decisions that act on an instance (the rest are ignored by the interruption handler).
ACTING = ("drain", "rebalance")


@attrs.frozen
class Demo:
    sim: Simulator
    stack: scenario.Stack
    #: One Manager for the module: its clients (and botocore's loaded service models) are reused.
    manager: Manager


@pytest.fixture(scope="module", name="demo")
def demo_fixture() -> Iterator[Demo]:
    """One demo cluster for the module: the payloads name instances that are not in it, or (the
    variants below) one of its spot instances, which stays drained afterwards."""
    with Simulator(region=REGION, seed=SEED) as sim:
        yield Demo(sim, build(sim), Manager(region=REGION, clock=sim.clock))


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--output", "json", *args], catch_exceptions=False)


def expected_dry_run(name: str) -> tuple[list[str], int]:
    """(action kinds, exit code) of ``handle-event --dry-run`` on the recorded file."""
    expected = EXPECT[name]
    if isinstance(expected, Rejected):
        return ["error"], 3
    if isinstance(expected, Batch):  # every recorded batch's records are malformed: exit 3
        return ["error"] * len(expected.records), 3
    # The interruption handler leaves parameter changes to the refresh handler, dry run or not.
    kinds = ["ignore" if expected.decision == "refresh" else expected.decision]
    event = parse_event(json.loads((EVENTS / name).read_text()))
    if isinstance(event, LifecycleAction) and event.hook_name != LIFECYCLE_HOOK_NAME:
        # Recorded from other tools' hooks: theirs to complete, never ecsspot's (issue 9 item 10).
        return ["ignore"], 0
    if isinstance(event, LifecycleAction) and event.transition == "TERMINATING":
        kinds.append("complete_lifecycle_action")
    return kinds, 0


def expected_handled(name: str) -> list[str]:
    """Action kinds when handled for real: the payloads' instances are not in any ecsspot cluster
    (so even drains are ignored, with the reason), parameter changes belong to the refresh
    handler, and bad records are errors."""
    expected = EXPECT[name]
    if isinstance(expected, Rejected):
        return ["error"]
    if isinstance(expected, Batch):
        return ["error"] * len(expected.records)
    return ["ignore"]


def check_actions(actions: list[dict[str, Any]]) -> None:
    for a in actions:
        assert {"kind", "instance_id", "status", "reason"} <= set(a), a
        assert a["reason"], a
        if a["kind"] == "ignore":
            assert a["status"] == "ignored"


@pytest.mark.parametrize("name", SAMPLES)
def test_dry_run_of_every_recorded_payload(name: str) -> None:
    kinds, code = expected_dry_run(name)
    result = invoke("handle-event", "--dry-run", str(EVENTS / name))
    assert result.exit_code == code, result.stderr
    if name.startswith("imds-events-maintenance"):  # a JSON list: refused before any decision
        assert "an event is a JSON object" in result.stderr and result.stdout == ""
        return
    document = json.loads(result.stdout)
    assert [a["kind"] for a in document["actions"]] == kinds
    check_actions(document["actions"])
    if code:
        assert result.stderr.startswith("ecsspot: error: ") and result.stderr.count("\n") == 1
    expected = EXPECT[name]
    if isinstance(expected, Batch):
        assert document["batch_item_failures"] == [m for m, _ in expected.records]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_recorded_payload_handled(name: str, demo: Demo) -> None:
    """Manager.handle_event and the CLI without --dry-run: decide, look the instance up, ignore
    it with the reason (it is in no ecsspot cluster), and never crash."""
    stack = demo.stack
    payload = json.loads((EVENTS / name).read_text())
    kinds = expected_handled(name)
    if isinstance(payload, dict):
        result: HandleResult = demo.manager.handle_event(payload, default_cluster=stack.cluster)
        assert [a.kind for a in result.actions] == kinds
        check_actions([{"kind": a.kind, "instance_id": a.instance_id, "status": a.status, "reason": a.reason} for a in result.actions])
        if kinds == ["ignore"] and isinstance(EXPECT[name], Parsed) and EXPECT[name].decision in ACTING:
            # Not in the cluster's own groups (the default cluster does not make it ours), or
            # another tool's lifecycle hook.
            assert any(
                why in result.actions[0].reason for why in (f"not in one of cluster {stack.cluster}'s Auto Scaling groups", "is not ecsspot's")
            ), result.actions[0].reason
        if isinstance(EXPECT[name], Batch):
            assert list(result.batch_item_failures) == [m for m, _ in EXPECT[name].records]
            assert result.lambda_response() == {"batchItemFailures": [{"itemIdentifier": m} for m, _ in EXPECT[name].records]}

    cli_result = invoke("handle-event", "--cluster", stack.cluster, str(EVENTS / name))
    assert cli_result.exit_code == (3 if isinstance(EXPECT[name], Rejected | Batch) else 0), cli_result.stderr
    if isinstance(payload, dict):
        assert [a["kind"] for a in json.loads(cli_result.stdout)["actions"]] == kinds


#: Recorded with a fake token shorter than AWS's 36 characters (keikoproj/lifecycle-manager).
SHORT_TOKENS = {"asg-lifecycle-terminate-sqs-message-sdk-shape.json"}
#: The payloads that ask for a drain (or a rebalance), each shape once.
ACTING_SAMPLES = [n for n in SAMPLES if isinstance(EXPECT[n], Parsed) and EXPECT[n].decision in ACTING]


def _key(name: str) -> str | None:
    return decide(parse_event(json.loads((EVENTS / name).read_text()))).event_key


#: Acting samples whose idempotency key an earlier sample already has (same event id).
REPEATS = {n for i, n in enumerate(ACTING_SAMPLES) if _key(n) in {_key(m) for m in ACTING_SAMPLES[:i]}}


def about(name: str, instance_id: str, group: str) -> dict[str, Any]:
    """The recorded payload, about ``instance_id`` instead of its own instance (every spelling:
    EventBridge detail, direct hook body, inside an SNS Message string); a lifecycle action is
    also moved to the instance's group and to ecsspot's own hook."""
    text = (EVENTS / name).read_text()
    event = parse_event(json.loads(text))
    original = getattr(event, "instance_id", None) or event.instance_ids[0]
    text = text.replace(original, instance_id)
    if isinstance(event, LifecycleAction):
        text = text.replace(event.group_name, group).replace(event.hook_name, LIFECYCLE_HOOK_NAME)
    return json.loads(text)


@pytest.mark.parametrize("name", ACTING_SAMPLES)
def test_recorded_shape_about_a_cluster_instance_drains_it(name: str, demo: Demo) -> None:
    """The same shapes naming a spot instance of the demo cluster (and, for lifecycle actions, its
    group and ecsspot's hook) go all the way: cluster from the instance's ecsspot:cluster tag,
    claim, drain, and (terminate hooks) the lifecycle
    completion, which Auto Scaling refuses here (no such hook is waiting) and which ecsspot then
    reports as already ended instead of failing the event."""
    sim, stack = demo.sim, demo.stack
    victim = spot_instances_with_tasks(sim, stack)[0] if spot_instances_with_tasks(sim, stack) else sorted(sim.spot_instances())[0]
    group = sim.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[victim])["AutoScalingInstances"][0]["AutoScalingGroupName"]
    payload = about(name, victim, group)
    result = demo.manager.handle_event(payload)
    kinds, _ = expected_dry_run(name)
    if isinstance(parse_event(payload), LifecycleAction):
        kinds = ["drain", "complete_lifecycle_action"]
    if kinds[0] == "rebalance":
        kinds = ["rebalance", "drain"]
    assert [a.kind for a in result.actions] == kinds, result.actions
    assert all(a.instance_id == victim for a in result.actions)
    drain = next(a for a in result.actions if a.kind == "drain")
    if name in REPEATS:
        # Two recorded files carry the same event id: the second is a duplicate delivery.
        assert [a.status for a in result.actions] == ["duplicate"]
        return
    # Old recorded times put spot deadlines in the past: DRAINING and deregistration happen
    # anyway, and the result says honestly whether everything was gone in time.
    assert drain.status in ("drained", "timed_out"), drain
    if "complete_lifecycle_action" in kinds:
        complete = result.actions[-1]
        if name in SHORT_TOKENS:
            # botocore refuses the token before sending: that record alone goes back to the queue.
            assert complete.status == "failed" and "LifecycleActionToken" in complete.reason
            assert result.batch_item_failures == (payload["MessageId"],)
            return
        assert complete.status == "done" and "already ended" in complete.reason
    assert result.batch_item_failures == ()
    assert container_instances(sim, stack.cluster)[victim]["status"] == "DRAINING"
    assert all(state in ("draining", "unused") for (iid, _), state in targets(sim, stack.target_group_arn).items() if iid == victim)


def test_every_shape_is_covered() -> None:
    assert len(SAMPLES) >= 53
    kinds = {EXPECT[n].decision for n in ACTING_SAMPLES}
    assert kinds == {"drain", "rebalance"}
    assert len(ACTING_SAMPLES) >= 10
    # Three spot warning samples (from three projects) share one event id.
    assert REPEATS and all(n.startswith("spot-interruption-warning") for n in REPEATS)
