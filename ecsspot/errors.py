"""One error hierarchy for the library; each class carries the CLI exit code it maps to.

:data:`EXIT_CODES` is the one table of exit codes: the CLI's help and the README repeat it, and a
test checks that every error class maps to a code in it.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

#: Every exit code of the CLI and what it means: ``ecsspot --help`` prints this table, and the
#: README's is :func:`exit_codes_markdown` (``python scripts/readme_exit_codes.py`` writes it there).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success (plan --detailed-exitcode: no changes)"),
    (1, "unexpected failure (a bug: run with -v for the traceback)"),
    (2, "plan --detailed-exitcode: there are changes; also a command-line usage error"),
    (
        3,
        "invalid input: spec, event payload, Terraform query, confirmation not given, no region, bad "
        "AWS_MAX_ATTEMPTS/AWS_RETRY_MODE; handle-event: every record of a batch malformed",
    ),
    (
        4,
        "AWS refused a call (access denied, throttled, unreachable endpoint after the retries); "
        "handle-event: handling failed, or every record of a batch failed (some while handling)",
    ),
    (
        5,
        "conflict: another operation holds the cluster's lease (for drain, an instance's drain lease: "
        "nothing was done to it), or the cluster changed since the plan was shown",
    ),
    (6, "a deadline passed with work left (drain timed out, teardown), or a refresh rolled back"),
    (
        7,
        "not found: the cluster or resource is not there, or not managed by ecsspot (drain of an "
        "instance that is neither a container instance of the cluster nor holds a target)",
    ),
    (8, "doctor: a check of the cluster's wiring failed (each finding names what to fix)"),
    (130, "interrupted (Ctrl-C); the command's cleanup runs first (a refresh or a drain gives its leases back; refresh --resume continues)"),
)


def exit_codes_markdown() -> str:
    """:data:`EXIT_CODES` as the README's Markdown table."""
    return "\n".join(["| exit | meaning |", "|---|---|", *(f"| {code} | {meaning} |" for code, meaning in EXIT_CODES)])


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


class WiringError(EcsspotError):
    """``doctor`` found a link of the event wiring missing or wrong; the message names each."""

    exit_code = 8


class HandlingFailed(EcsspotError):
    """An event (or a whole batch) could not be handled; raised so that Lambda retries it."""

    #: What failed is an AWS call (the action's reason names it), as for AwsError.
    exit_code = 4
