"""What a workflow may ask of its driver.

Workflows (plan/apply, drain, refresh, event handling) are generators. They yield:

* a :class:`Call` and receive the response dict;
* a tuple of calls (a batch) and receive a tuple of responses;
* :class:`Settle` (a batch) and receive a tuple holding each call's response or its mapped error;
* :class:`Sleep` and receive the time after sleeping; ``NOW`` and receive the current time.

Batch semantics, the same on every driver (:mod:`ecsspot.aws.stepper` is the one loop both use):
the calls of a batch are independent, **every one of them is sent** (concurrently), and each
gets its own outcome. For a plain tuple, when any call failed, the first failure (by position) is
thrown into the generator after all the others have completed; :class:`Settle` hands back every
outcome so the workflow decides call by call (cleanup rounds, per-record handling).

A failed call is thrown into the generator as an :class:`ecsspot.errors.AwsError` (already
mapped: every SDK, HTTP and parser failure is), so a workflow handles AWS errors with ordinary
``try``/``except``. An interruption (Ctrl-C, cancellation) is thrown in as well, and the calls
its ``finally``/``except`` blocks yield are still served before it propagates: cleanup that needs
AWS runs on every exit path.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeGuard, TypeVar

import attrs

if TYPE_CHECKING:
    from ecsspot.clock import Clock
    from ecsspot.errors import EcsspotError


#: The boto3 client names ecsspot talks to (a Literal, so the SDK stubs type each client).
Service = Literal["ecs", "autoscaling", "ec2", "elbv2", "dynamodb", "ssm", "sqs", "events", "lambda"]


@attrs.frozen
class Call:
    """One AWS API call: ``service`` is the boto3 client name, ``operation`` its method name."""

    service: Service
    operation: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    #: Follow botocore's paginator and merge the pages (``build_full_result``).
    paginate: bool = False
    #: Error codes that mean "not there": the driver answers None instead of raising.
    absent: tuple[str, ...] = ()

    def is_absent(self, error: BaseException) -> bool:
        """Whether ``error`` (already mapped) is one of :attr:`absent`: answered None."""
        return bool(self.absent) and getattr(error, "code", None) in self.absent


@attrs.frozen
class Settle:
    """A batch answered call by call: each response, or the mapped error in its place."""

    calls: tuple[Call, ...]


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Report:
    """Progress for whoever watches (the CLI renders it on stderr): costs no call, answered None.

    The library never prints; a workflow yields a ``Report`` where a person would want to know
    what it is waiting for, and the driver hands it to its ``on_report`` callback, if any.
    """

    #: What is going on, in one word: ``plan``, ``apply``, ``drain``, ``refresh``, ``teardown``…
    phase: str
    #: One line: "3/5 instances drained; waiting for 2 tasks on i-0ab…".
    message: str
    done: int | None = None
    total: int | None = None


@attrs.frozen
class _Now:
    pass


NOW = _Now()

Request = Call | tuple[Call, ...] | Settle | Sleep | _Now | Report
T = TypeVar("T")
Workflow = Generator[Request, Any, T]


class Runner(Protocol):
    """What runs a workflow to its end and returns its value: the boto3 Driver, a ScriptedDriver."""

    @property
    def clock(self) -> Clock: ...

    def run(self, workflow: Workflow[T]) -> T: ...


def call(service: Service, operation: str, /, **params: Any) -> Call:
    """Shorthand: ``call("ecs", "describe_clusters", clusters=[name])``."""
    return Call(service, operation, params)


def lookup(service: Service, operation: str, /, absent: tuple[str, ...], **params: Any) -> Call:
    """A call answered with None when AWS says one of the ``absent`` error codes."""
    return Call(service, operation, params, absent=absent)


def paginate(service: Service, operation: str, /, absent: tuple[str, ...] = (), **params: Any) -> Call:
    """A call whose pages the driver merges into one response (None for an ``absent`` code)."""
    return Call(service, operation, params, paginate=True, absent=absent)


def settle(calls: Sequence[Call]) -> Settle:
    """A batch whose failures come back in place of answers (see :class:`Settle`)."""
    return Settle(tuple(calls))


def failed(outcome: object) -> TypeGuard[EcsspotError]:
    """Whether one outcome of a :class:`Settle` batch is an error."""
    from ecsspot.errors import EcsspotError

    return isinstance(outcome, EcsspotError)


def chunks(items: list[T] | tuple[T, ...], size: int) -> list[list[T]]:
    """Split ``items`` into lists of at most ``size`` (AWS batch limits)."""
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
