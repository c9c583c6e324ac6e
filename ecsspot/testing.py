"""Run ecsspot workflows against scripted answers: no AWS, no moto, no boto3.

Every operation ecsspot performs is a workflow generator yielding
:class:`~ecsspot.aws.calls.Call` requests (see ``ecsspot.aws.calls``). :class:`ScriptedDriver`
runs one with the same :class:`~ecsspot.aws.stepper.Stepper` the boto3 and aiobotocore drivers
use, so a decision behaves here exactly as in production: a batch's calls are all answered, the
first error of a tuple batch is thrown into the workflow, ``lookup`` calls answer None for their
"absent" codes, ``Settle`` gets every outcome in place, and an interruption (Ctrl-C) raised while
answering is thrown in so the workflow's cleanup runs. Time is a :class:`~ecsspot.clock.FakeClock`:
a ``Sleep`` moves it, so a two-minute spot window takes no time.

A responder answers each call: return the response, or return or raise an
:class:`~ecsspot.errors.EcsspotError` (:func:`aws_error` builds one as the drivers map AWS's)::

    def answer(call):
        if call.operation == "update_container_instances_state":
            return aws_error(call, "AccessDeniedException")
        return {"containerInstanceArns": []}

    driver = ScriptedDriver(answer)
    result = driver.run(drain("web", ["i-0abc"], deadline=60))
    assert driver.operations().count("update_container_instances_state") == 1

:func:`by_operation` builds a responder from a table, and :attr:`ScriptedDriver.interrupt`
raises an exception at a chosen round (to test cleanup on Ctrl-C or a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from ecsspot.aws.calls import NOW, Call, Report, Settle, Sleep, Workflow
from ecsspot.aws.stepper import batch_calls, drive
from ecsspot.clock import FakeClock
from ecsspot.errors import AwsError, EcsspotError

T = TypeVar("T")

Responder = Callable[[Call], Any]


def aws_error(call: Call, code: str, message: str = "scripted failure") -> AwsError:
    """The error a driver raises for ``call`` when AWS answers ``code``: botocore's ClientError
    through the drivers' own :func:`~ecsspot.aws.errormap.map_error` (so ThrottlingException is a
    ThrottledError, and so on)."""
    from botocore.exceptions import ClientError

    from ecsspot.aws.errormap import map_error

    mapped = map_error(ClientError({"Error": {"Code": code, "Message": message}}, call.operation), call.service, call.operation)
    if not isinstance(mapped, AwsError):  # map_error maps every ClientError to an AwsError
        raise TypeError(f"map_error gave {type(mapped).__name__} for a ClientError")
    return mapped


def by_operation(table: Mapping[str, Any], *, default: Responder | None = None) -> Responder:
    """A responder from ``operation → answer``: an answer is a response, an error, or a function
    of the call. Several answers in a list are used in turn (the last one repeats). An operation
    not in the table goes to ``default``, or fails the test."""
    used: dict[str, int] = {}

    def answer(call: Call) -> Any:
        if call.operation not in table:
            if default is None:
                raise AssertionError(f"unscripted call {call.service}.{call.operation}({call.params})")
            return default(call)
        entry = table[call.operation]
        if isinstance(entry, list):
            n = used.get(call.operation, 0)
            used[call.operation] = n + 1
            entry = entry[min(n, len(entry) - 1)]
        return entry(call) if callable(entry) else entry

    return answer


@attrs.define
class ScriptedDriver:
    """Drives workflows with ``answer`` standing in for AWS, and records what they asked."""

    answer: Responder
    clock: FakeClock = attrs.Factory(lambda: FakeClock(1_700_000_000.0))
    #: Called with the clock after each ``Sleep`` (the world moving while the workflow waits).
    on_sleep: Callable[[FakeClock], None] | None = None
    #: Round number (1-based) → exception raised while answering that round, as Ctrl-C or a
    #: crashing driver would; the stepper throws it into the workflow for its cleanup.
    interrupt: dict[int, BaseException] = attrs.Factory(dict)
    #: Every round of calls, in order (a single call is a round of one).
    rounds: list[tuple[Call, ...]] = attrs.Factory(list)
    #: Every :class:`~ecsspot.aws.calls.Report` the workflow yielded, in order.
    reports: list[Report] = attrs.Factory(list)

    @property
    def calls(self) -> list[Call]:
        return [c for r in self.rounds for c in r]

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    def run(self, workflow: Workflow[T]) -> T:
        """Drive ``workflow`` to its end and return its value (or raise what it raised)."""
        return drive(workflow, self._handle, self.reports.append)

    def _handle(self, request: Any) -> Any:
        if isinstance(request, Call):
            self._round((request,))
            return self._outcome(request)
        if isinstance(request, tuple | Settle):
            calls = batch_calls(request)
            self._round(calls)
            return tuple(self._outcome(c) for c in calls)
        if isinstance(request, Sleep):
            self.clock.advance(request.seconds)
            if self.on_sleep is not None:
                self.on_sleep(self.clock)
            return self.clock.now()
        if request is NOW:
            return self.clock.now()
        raise TypeError(f"workflow yielded {request!r}")

    def _round(self, calls: tuple[Call, ...]) -> None:
        self.rounds.append(calls)
        failure = self.interrupt.pop(len(self.rounds), None)
        if failure is not None:
            raise failure

    def _outcome(self, call: Call) -> Any:
        try:
            answer = self.answer(call)
        except EcsspotError as exc:
            answer = exc
        if isinstance(answer, EcsspotError):
            # As the drivers do: a lookup's "absent" codes answer None.
            return None if call.is_absent(answer) else answer
        return answer

