"""The one place where SDK, HTTP and parser failures become ecsspot's errors.

Both SDKs raise botocore's exceptions, but not only those: botocore's ``ResponseParserError``
(an HTML error page where XML or JSON was due) is a plain ``Exception``, urllib3 and aiohttp
raise their own, and a driver must never let any of them escape a workflow unmapped (an SQS
batch would fail whole and its claims stay held). So every exception raised while making a call
maps to an :class:`~ecsspot.errors.AwsError` here, with a short one-line message.
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from ecsspot import errors

_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
#: Longest message kept from a foreign exception (an HTML error page can be megabytes).
_MESSAGE_CHARS = 300
_TAGS = re.compile(r"<[^>]*>")


def map_error(exc: BaseException, service: str, operation: str) -> errors.EcsspotError:
    """Translate any exception raised while calling ``service:operation``."""
    if isinstance(exc, errors.EcsspotError):
        return exc
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Unknown"))
        message = _short(str(err.get("Message") or ""))
        if code in _THROTTLED:
            cls: type[errors.AwsError] = errors.ThrottledError
        elif code in _DENIED:
            cls = errors.AccessDeniedError
        elif code == "ConditionalCheckFailedException":
            cls = errors.ConditionFailedError
        else:
            cls = errors.AwsError
        return cls(operation, code, message, service=service)
    if isinstance(exc, NoRegionError):
        return errors.InputError("no AWS region: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or set region: in the spec")
    if isinstance(exc, ProfileNotFound):
        return errors.InputError(f"AWS profile not found: {exc.kwargs.get('profile', '?')}")
    if isinstance(exc, NoCredentialsError):
        return errors.AwsError(operation, "NoCredentials", "no AWS credentials found in the usual chain", service=service)
    if isinstance(exc, BotoCoreError):
        return errors.AwsError(operation, type(exc).__name__, _short(str(exc)), service=service)
    # ResponseParserError, urllib3/aiohttp errors, OSError, and whatever nobody mapped yet.
    return errors.AwsError(operation, type(exc).__name__, _short(str(exc)) or "no message", service=service)


def _short(text: str) -> str:
    """One line, tags stripped, bounded: an HTML 500 page must not flood a terminal or a log."""
    flat = " ".join(_TAGS.sub(" ", text).split())
    return flat if len(flat) <= _MESSAGE_CHARS else flat[: _MESSAGE_CHARS - 1] + "…"
