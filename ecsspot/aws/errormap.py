"""The one place where botocore's exceptions become ecsspot's (both SDKs raise botocore's)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

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


def map_error(exc: BaseException, service: str, operation: str) -> errors.EcsspotError | None:
    """Translate a botocore exception; None when it is not one of botocore's."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Unknown"))
        message = str(err.get("Message") or "")
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
        return errors.AwsError(operation, type(exc).__name__, str(exc), service=service)
    return None
