"""``ecsspot.testing.ScriptedDriver``: the drivers' batch semantics without AWS, moto or boto3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ecsspot import load_spec
from ecsspot.aws.calls import NOW, Call, Settle, Sleep, Workflow, call, lookup
from ecsspot.drain import drain_instances
from ecsspot.errors import AwsError, ThrottledError
from ecsspot.plan import desired_settings
from ecsspot.testing import ScriptedDriver, aws_error, by_operation
from tests.conftest import example_spec_dict
from tests.unit.scripted_dynamodb import batch_get


def _three_calls() -> Workflow[Any]:
    try:
        yield (call("ecs", "a_op"), call("ecs", "b_op"), call("ecs", "c_op"))
    except AwsError as exc:
        return f"thrown {exc.code}"
    return "no error"


def test_every_call_of_a_batch_is_answered_and_the_first_error_thrown() -> None:
    driver = ScriptedDriver(by_operation({"a_op": {}, "b_op": lambda c: aws_error(c, "AccessDeniedException"), "c_op": {}}))
    assert driver.run(_three_calls()) == "thrown AccessDeniedException"
    assert driver.operations() == ["a_op", "b_op", "c_op"]
    assert len(driver.rounds) == 1


def test_a_lookup_answers_none_for_its_absent_codes_and_settle_keeps_outcomes_in_place() -> None:
    def workflow() -> Workflow[Any]:
        found = yield lookup("dynamodb", "get_item", ("ResourceNotFoundException",), TableName="t")
        outcomes = yield Settle((call("ecs", "ok_op"), call("ecs", "bad_op")))
        return found, outcomes

    def bad(c: Call) -> AwsError:
        raise aws_error(c, "ThrottlingException")

    driver = ScriptedDriver(by_operation({"get_item": lambda c: aws_error(c, "ResourceNotFoundException"), "ok_op": {"x": 1}, "bad_op": bad}))
    found, (ok, failed) = driver.run(workflow())
    assert found is None and ok == {"x": 1}
    assert isinstance(failed, ThrottledError) and failed.code == "ThrottlingException" and failed.operation == "bad_op"


def test_sleep_moves_the_fake_clock_only() -> None:
    def workflow() -> Workflow[float]:
        start = yield NOW
        yield Sleep(120)
        return (yield NOW) - start

    seen: list[float] = []
    driver = ScriptedDriver(by_operation({}), on_sleep=lambda clock: seen.append(clock.now()))
    assert driver.run(workflow()) == 120
    assert len(seen) == 1


def test_an_interruption_runs_the_cleanup_then_propagates() -> None:
    def workflow() -> Workflow[None]:
        yield call("dynamodb", "put_item", TableName="t")
        try:
            yield call("ecs", "work_op")
        except BaseException:
            yield call("dynamodb", "delete_item", TableName="t")
            raise

    driver = ScriptedDriver(by_operation({}, default=lambda c: {}), interrupt={2: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        driver.run(workflow())
    assert driver.operations() == ["put_item", "work_op", "delete_item"]


def test_an_unscripted_call_fails_the_test_loudly() -> None:
    with pytest.raises(AssertionError, match="unscripted call ecs.work_op"):
        ScriptedDriver(by_operation({})).run(iter_one(call("ecs", "work_op")))


def iter_one(c: Call) -> Workflow[Any]:
    return (yield c)


def _cluster_answers() -> dict[str, Any]:
    """A cluster whose recorded spec is the example's, with one ACTIVE container instance."""
    spec = load_spec(example_spec_dict())

    def get_item(c: Call) -> Any:
        if c.params["Key"]["sk"]["S"] == "settings":
            return {"Item": {"spec": {"S": desired_settings(spec)}}}
        return {}

    return {
        "get_item": get_item,
        "batch_get_item": batch_get(get_item),
        "put_item": {},
        "delete_item": {},
        "list_container_instances": {"containerInstanceArns": ["arn:ci/1"]},
        "describe_container_instances": {
            "containerInstances": [{"ec2InstanceId": "i-0abc", "containerInstanceArn": "arn:ci/1", "status": "ACTIVE"}]
        },
        "list_services": {"serviceArns": []},
        "list_tasks": {"taskArns": []},
        "describe_target_health": {"TargetHealthDescriptions": []},
        "update_container_instances_state": {"failures": []},
    }


@pytest.mark.parametrize("round_", [2, 3, 4])
def test_a_drain_interrupted_by_ctrl_c_gives_its_lease_back(round_: int) -> None:
    """The CLI's drain takes a lease per instance; Ctrl-C while it works must not leave it held
    (a later drain would be refused for the lease's TTL). Interrupted in each of its rounds."""
    spec = load_spec(example_spec_dict())
    driver = ScriptedDriver(by_operation(_cluster_answers()), interrupt={round_: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        driver.run(drain_instances(spec.cluster, ["i-0abc"], deadline=60, wait=False, owner="me"))
    leases = [c for c in driver.calls if c.operation == "put_item" and "drain#i-0abc" in str(c.params)]
    released = [c for c in driver.calls if c.operation == "delete_item" and "drain#i-0abc" in str(c.params)]
    assert len(leases) == 1 and len(released) == 1
    assert driver.calls.index(released[0]) > driver.calls.index(leases[0])


def test_the_scripted_driver_needs_no_moto_or_boto3() -> None:
    code = (
        "import sys\n"
        "for m in ('moto', 'boto3', 'aiobotocore'): sys.modules[m] = None\n"
        "from ecsspot.testing import ScriptedDriver, by_operation\n"
        "from ecsspot.aws.calls import call\n"
        "from ecsspot.drain import Look, what_is_left\n"
        "assert what_is_left(Look((), {}, (), {}), ['i-1']).left == {}\n"
        "def w():\n"
        "    return (yield call('ecs', 'describe_clusters', clusters=['c']))\n"
        "assert ScriptedDriver(by_operation({'describe_clusters': {'clusters': []}})).run(w()) == {'clusters': []}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(Path(__file__).parents[2]))
    assert result.returncode == 0, result.stderr



def test_reports_reach_the_watcher_and_never_the_driver_and_a_failing_watcher_loses_only_the_report() -> None:
    from ecsspot.aws.calls import Report
    from ecsspot.aws.stepper import drive

    def workflow() -> Workflow[Any]:
        yield Report("drain", "one")
        answer = yield call("ecs", "a_op")
        yield Report("drain", "two", 1, 2)
        return answer

    driver = ScriptedDriver(by_operation({"a_op": {"ok": True}}))
    assert driver.run(workflow()) == {"ok": True}
    assert [r.message for r in driver.reports] == ["one", "two"]
    assert driver.operations() == ["a_op"]

    handled: list[Any] = []

    def handle(request: Any) -> Any:
        handled.append(request)
        return {"ok": True}

    def broken(report: Report) -> None:
        raise BrokenPipeError("stderr is gone")

    assert drive(workflow(), handle, broken) == {"ok": True}
    assert handled == [call("ecs", "a_op")]


def test_ctrl_c_while_the_progress_line_is_drawn_still_runs_the_cleanup() -> None:
    """The watcher is called from the stepper, between two requests: an interruption there is
    thrown into the workflow like one raised while the driver waits on AWS (leases let go)."""
    from ecsspot.aws.calls import Report
    from ecsspot.aws.stepper import drive

    cleaned: list[Any] = []

    def workflow() -> Workflow[Any]:
        try:
            yield call("ecs", "a_op")
            yield Report("drain", "waiting")
            yield call("ecs", "b_op")
        finally:
            cleaned.append((yield call("dynamodb", "delete_item")))

    handled: list[str] = []

    def handle(request: Any) -> Any:
        handled.append(request.operation)
        return {"ok": request.operation}

    def pressed(report: Report) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        drive(workflow(), handle, pressed)
    assert handled == ["a_op", "delete_item"]  # b_op never sent; the cleanup's call was
    assert cleaned == [{"ok": "delete_item"}]
