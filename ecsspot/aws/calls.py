"""What a workflow may ask of its driver.

Workflows (plan/apply, drain, refresh, event handling) are generators. They yield:

* a :class:`Call` and receive the response dict;
* a tuple of calls and receive a tuple of responses: the calls are independent and the async
  driver runs them concurrently;
* :class:`Sleep` and receive the time after sleeping; ``NOW`` and receive the current time.

A failed call is thrown into the generator as an :class:`ecsspot.errors.AwsError` (already
mapped), so a workflow handles AWS errors with ordinary ``try``/``except``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, TypeVar

import attrs


@attrs.frozen
class Call:
    """One AWS API call: ``service`` is the boto3 client name, ``operation`` its method name."""

    service: str
    operation: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    #: Follow botocore's paginator and merge the pages (``build_full_result``).
    paginate: bool = False
    #: Error codes that mean "not there": the driver answers None instead of raising.
    absent: tuple[str, ...] = ()


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class _Now:
    pass


NOW = _Now()

Request = Call | tuple[Call, ...] | Sleep | _Now
T = TypeVar("T")
Workflow = Generator[Request, Any, T]


def call(service: str, operation: str, /, **params: Any) -> Call:
    """Shorthand: ``call("ecs", "describe_clusters", clusters=[name])``."""
    return Call(service, operation, params)


def lookup(service: str, operation: str, /, absent: tuple[str, ...], **params: Any) -> Call:
    """A call answered with None when AWS says one of the ``absent`` error codes."""
    return Call(service, operation, params, absent=absent)


def paginate(service: str, operation: str, /, **params: Any) -> Call:
    """A call whose pages the driver merges into one response."""
    return Call(service, operation, params, paginate=True)


def chunks(items: list[T] | tuple[T, ...], size: int) -> list[list[T]]:
    """Split ``items`` into lists of at most ``size`` (AWS batch limits)."""
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
