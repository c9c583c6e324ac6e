"""One batch rule on both drivers, every error mapped, cleanup on Ctrl-C (issue 9, items 3, 5, 6, 15)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from ecsspot.aws.aio import AsyncDriver
from ecsspot.aws.calls import Sleep, Workflow, call, failed, settle
from ecsspot.aws.clients import lambda_config, worst_case_seconds
from ecsspot.aws.driver import Driver
from ecsspot.aws.errormap import map_error
from ecsspot.clock import FakeClock
from ecsspot.errors import AccessDeniedError, AwsError, EcsspotError


def _denied(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, operation)


class Scripted(Driver):
    """Answers every call with its name; ``fail`` names calls that fail; records what was sent."""

    def __init__(self, fail: dict[str, BaseException] | None = None, clock: Any = None) -> None:
        super().__init__(clock=clock or FakeClock())
        self.fail = fail or {}
        self.sent: list[str] = []

    def execute(self, c: Any) -> Any:
        self.sent.append(c.operation)
        if c.operation in self.fail:
            raise map_error(self.fail[c.operation], c.service, c.operation)
        return {"op": c.operation}


class AsyncScripted(AsyncDriver):
    def __init__(self, fail: dict[str, BaseException] | None = None, clock: Any = None) -> None:
        super().__init__(clock=clock or FakeClock())
        self.fail = fail or {}
        self.sent: list[str] = []

    async def execute(self, c: Any) -> Any:
        self.sent.append(c.operation)
        await asyncio.sleep(0)
        if c.operation in self.fail:
            raise map_error(self.fail[c.operation], c.service, c.operation)
        return {"op": c.operation}


def _run(driver: Any, workflow: Workflow[Any]) -> Any:
    if isinstance(driver, AsyncDriver):
        return asyncio.run(driver.run(workflow))
    return driver.run(workflow)


@pytest.fixture(params=["sync", "async"], name="make")
def make_fixture(request: pytest.FixtureRequest) -> Any:
    return Scripted if request.param == "sync" else AsyncScripted


def _three() -> Workflow[Any]:
    try:
        yield (call("s", "one"), call("s", "two"), call("s", "three"))
    except AwsError as exc:
        return f"caught {exc.operation}"
    return "no error"


def test_every_call_of_a_failing_batch_is_sent(make: Any) -> None:
    driver = make(fail={"two": _denied("Two")})
    assert _run(driver, _three()) == "caught two"
    assert sorted(driver.sent) == ["one", "three", "two"]


def test_settle_answers_each_call(make: Any) -> None:
    def workflow() -> Workflow[Any]:
        answers = yield settle([call("s", "one"), call("s", "two"), call("s", "three")])
        return [("error", a.code) if failed(a) else a["op"] for a in answers]

    driver = make(fail={"two": ResponseParserError("<html>500</html>")})
    assert _run(driver, workflow()) == ["one", ("error", "ResponseParserError"), "three"]


def test_ctrl_c_runs_the_cleanup_then_propagates(make: Any) -> None:
    class Interrupting(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

        async def asleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    def workflow() -> Workflow[Any]:
        yield call("s", "take_lease")
        try:
            yield Sleep(5)
        finally:
            yield settle([call("s", "release_lease")])

    driver = make(clock=Interrupting())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "generator ignored GeneratorExit" must not happen
        with pytest.raises(KeyboardInterrupt):
            _run(driver, workflow())
    assert driver.sent == ["take_lease", "release_lease"]


@pytest.mark.parametrize(
    "exc",
    [
        ResponseParserError("Unable to parse response (syntax error), invalid XML received:\n<!doctype html>\n<html>" + "x" * 5000),
        ConnectionResetError("reset by peer"),
        ValueError("something nobody mapped"),
    ],
)
def test_every_failure_maps_to_one_short_line(exc: BaseException) -> None:
    mapped = map_error(exc, "autoscaling", "complete_lifecycle_action")
    assert isinstance(mapped, AwsError) and mapped.exit_code == 4
    assert "\n" not in str(mapped) and len(str(mapped)) < 400 and "<html" not in str(mapped)


def test_client_errors_keep_their_class() -> None:
    assert isinstance(map_error(_denied("X"), "ec2", "x"), AccessDeniedError)
    assert isinstance(map_error(AwsError("x", "y", "z"), "ec2", "x"), EcsspotError)


def test_the_lambda_gives_up_on_a_call_well_inside_the_spot_window() -> None:
    # Two full tries of a call that never answers, plus the redelivery delay, fit in 120 s.
    assert 2 * worst_case_seconds(lambda_config()) + 5 < 120
    assert lambda_config().retries["max_attempts"] <= 3
