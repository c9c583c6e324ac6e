"""How the CLI's AWS calls retry and time out, and how it says so.

``--max-attempts`` and ``--timeout`` (or botocore's own AWS_MAX_ATTEMPTS / AWS_RETRY_MODE) are
merged over the library's :func:`ecsspot.aws.clients.default_config`; every retry botocore makes
is one warning line on stderr (hidden by ``-q``), from two botocore event handlers registered on
every client through ``Manager(event_handlers=...)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ecsspot.errors import InputError

if TYPE_CHECKING:
    from botocore.config import Config

log = logging.getLogger("ecsspot.cli")

#: botocore's retry modes (AWS_RETRY_MODE); https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
RETRY_MODES = ("legacy", "standard", "adaptive")
_REASON = "ecsspot_retry_reason"
_CALL = "ecsspot_retry_call"


def client_config(max_attempts: int | None, timeout: float | None) -> Config:
    """The library's botocore Config with ``max_attempts``/``timeout`` (or botocore's env) over it.

    The library's Config names its retries explicitly, and an explicit value is all botocore
    reads; so AWS_MAX_ATTEMPTS and AWS_RETRY_MODE, which botocore would read only without one,
    are applied here, checked, with the options winning.
    """
    from botocore.config import Config

    from ecsspot.aws.clients import config_option, default_config

    base = default_config()
    retries = dict(config_option(base, "retries") or {})
    mode = os.environ.get("AWS_RETRY_MODE", "").strip()
    if mode:
        if mode not in RETRY_MODES:
            raise InputError(f"AWS_RETRY_MODE={mode!r}: expected one of {', '.join(RETRY_MODES)}")
        retries["mode"] = mode
    attempts = max_attempts if max_attempts is not None else _env_attempts()
    if attempts is not None:
        # Config's "max_attempts" counts retries; "total_max_attempts" counts every attempt, as
        # AWS_MAX_ATTEMPTS and --max-attempts do.
        retries.pop("max_attempts", None)
        retries["total_max_attempts"] = attempts
    overrides: dict[str, Any] = {"retries": retries}
    if timeout is not None:
        overrides.update(connect_timeout=timeout, read_timeout=timeout)
    return base.merge(Config(**overrides))


def _env_attempts() -> int | None:
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"AWS_MAX_ATTEMPTS={raw!r}: expected a whole number of attempts, 1 or more")
    return value


def _note_reason(request_dict: Any, operation: Any, response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
    """After each attempt, what went wrong (kept in the request's context for the retry line).

    Runs after botocore's own ``needs-retry`` handler and returns None, so it never changes
    botocore's decision.
    """
    if caught_exception is not None:
        reason = f"{type(caught_exception).__name__}: {caught_exception}"
    elif response is not None:
        http, parsed = response
        error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
        status = str(getattr(http, "status_code", "?"))
        code = str(error.get("Code") or "")
        reason = f"HTTP {status}{' ' + code if code and code != status else ''}: {error.get('Message') or 'no message'}"
    else:
        return
    context = request_dict.get("context", {})
    context[_REASON] = " ".join(reason.split())[:300]
    # Named as the error lines name calls (autoscaling, not botocore's event name auto-scaling).
    context[_CALL] = f"{operation.service_model.service_name}:{operation.name}"


def _say_retrying(request: Any, event_name: str, **_: Any) -> None:
    """One warning line when botocore sends a call again (attempt 2 and later)."""
    retries = request.context.get("retries") or {}
    attempt = retries.get("attempt") or 1
    if attempt < 2:
        return
    call = request.context.get(_CALL) or ":".join(event_name.split(".")[1:3])
    of = f"/{retries['max']}" if retries.get("max") else ""
    log.warning("retrying %s (attempt %d%s): %s", call, attempt, of, request.context.get(_REASON) or "no answer")


#: The botocore event handlers that report retries.
EVENT_HANDLERS: tuple[tuple[str, Callable[..., Any]], ...] = (("needs-retry", _note_reason), ("request-created", _say_retrying))
