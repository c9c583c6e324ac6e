"""One error hierarchy for the library; each class carries the CLI exit code it maps to.

Exit codes (documented in the README):

    0  success
    1  unexpected failure (EcsspotError not covered below)
    2  ``plan --detailed-exitcode``: the plan has changes (click also uses 2 for usage errors)
    3  invalid input: spec, event payload, Terraform query          (InputError and subclasses)
    4  AWS refused a call                                           (AwsError and subclasses)
    5  another operation holds the cluster's lease                  (ConflictError)
    6  a deadline passed with work left (drain, teardown, refresh)  (DeadlineError)
    7  the cluster or resource is not there / not managed            (NotFoundError)
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


class EcsspotError(Exception):
    """Base of every error ecsspot raises on purpose."""

    exit_code = 1


class InputError(EcsspotError):
    """Input from the user or an event source is not acceptable."""

    exit_code = 3


@attrs.frozen
class Problem:
    """One validation finding: where (a dotted/indexed path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(InputError):
    """A spec has one or more problems; ``problems`` lists every one with its path."""

    def __init__(self, problems: Iterable[Problem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        n = len(self.problems)
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid spec{where} ({n} problem{'s' if n != 1 else ''}): {lines}")


class EventError(InputError):
    """An event payload (or one record of a batch) cannot be understood."""


class QueryError(InputError):
    """A Terraform external data source query is malformed."""


class AwsError(EcsspotError):
    """An AWS API call failed; ``operation`` and ``code`` name it."""

    exit_code = 4

    def __init__(self, operation: str, code: str, message: str, *, service: str = "") -> None:
        self.service = service
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"{service + ':' if service else ''}{operation} failed: {code}: {message}")


class ThrottledError(AwsError):
    """AWS kept throttling after botocore's own retries."""


class AccessDeniedError(AwsError):
    """The credentials in use may not make this call."""


class ConditionFailedError(AwsError):
    """A DynamoDB conditional write lost (someone else wrote first)."""


class ConflictError(EcsspotError):
    """Another owner holds the lease for this cluster operation."""

    exit_code = 5


class DeadlineError(EcsspotError):
    """A deadline passed while work was left; the message names what is left."""

    exit_code = 6


class NotFoundError(EcsspotError):
    """A cluster or resource ecsspot was asked about does not exist or is not managed by it."""

    exit_code = 7
