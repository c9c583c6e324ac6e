"""Reading JSON fields of untrusted payloads: every error names the field by its dotted path.

Shared by the envelope readers and the event models; hostile values are shown escaped and cut short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ecsspot.errors import EventError

# Real ids are 8 or 17 hex digits, but published AWS/tool samples carry 10- and 12-digit ids
# (Karpenter's i-0123456789, lifecycle-manager's i-123486890234); what matters for safety is
# that an id is one lowercase-hex token, so any length 8..17 is accepted.
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")

MISSING: Any = object()


def join_path(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the top."""
    return f"{path}.{key}" if path else key


def kind_of(value: object) -> str:
    """What JSON kind ``value`` is, in words for an error message."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def show(value: object) -> str:
    """A short, escaped rendering of a scalar for error messages (hostile values stay inert)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return kind_of(value)


def req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    """The non-empty string at ``key``."""
    value = obj.get(key, MISSING)
    if value is MISSING or value is None:
        raise EventError(f"{join_path(path, key)}: missing")
    if not isinstance(value, str) or not value:
        raise EventError(f"{join_path(path, key)}: expected a non-empty string, got {show(value)}")
    return value


def opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """The string at ``key``, or None when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{join_path(path, key)}: expected a string, got {show(value)}")
    return value


def opt_account(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An account id as a string (published samples even carry placeholders like "account id")."""
    # Samples carry "<account_number>" and "account id"; some hand-written events a number.
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return opt_str(obj, key, path)


def req_obj(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """The JSON object at ``key``."""
    value = obj.get(key, MISSING)
    if not isinstance(value, Mapping):
        raise EventError(f"{join_path(path, key)}: expected an object, got {kind_of(value)}")
    return value


def str_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    """The array of strings at ``key`` (empty when absent)."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise EventError(f"{join_path(path, key)}: expected an array, got {kind_of(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise EventError(f"{join_path(path, key)}[{i}]: expected a string, got {show(item)}")
    return tuple(value)


def is_instance_id(value: object) -> bool:
    """True when ``value`` is an EC2 instance id (``i-`` and 8 to 17 lowercase hex digits)."""
    return isinstance(value, str) and _INSTANCE_ID.fullmatch(value) is not None


def req_instance_id(obj: Mapping[str, Any], key: str, path: str) -> str:
    """The EC2 instance id at ``key``."""
    value = obj.get(key, MISSING)
    if value is MISSING or value is None:
        raise EventError(f"{join_path(path, key)}: missing")
    if not is_instance_id(value):
        raise EventError(f"{join_path(path, key)}: not a valid EC2 instance id: {show(value)}")
    return str(value)


def strings(values: Iterable[str]) -> tuple[str, ...]:
    """An attrs converter: any iterable of strings, stored as a tuple (a typed ``tuple``)."""
    return tuple(values)


def loads_json(text: object, path: str) -> Any:
    """The JSON document a wrapper carries as a string (an SQS body, an SNS message)."""
    if not isinstance(text, str):
        raise EventError(f"{path}: expected a JSON string, got {show(text)}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise EventError(f"{path}: not JSON: {show(text)}") from None


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_MONTHS = {m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
# AWS Health uses RFC 1123 (sometimes with a 1-digit day); IMDS maintenance drops the weekday.
_RFC1123 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) ("
    + "|".join(_MONTHS)
    + r") ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (?:GMT|UTC|\+0000)"
)


def parse_time(value: object, field: str = "time") -> datetime:
    """Parse an AWS timestamp (RFC 3339 or RFC 1123) into an aware UTC datetime."""
    if not isinstance(value, str):
        raise EventError(f"{field}: expected a timestamp string, got {show(value)}")
    try:
        if m := _RFC3339.fullmatch(value):
            y, mo, d, h, mi, s, frac, off = m.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            if off in ("Z", "z"):
                tz = UTC
            else:
                delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
                tz = timezone(-delta if off[0] == "-" else delta)
            parsed = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
        elif m := _RFC1123.fullmatch(value):
            d, mon, y, h, mi, s = m.groups()
            parsed = datetime(
                int(y), _MONTHS[mon], int(d), int(h), int(mi), int(s), tzinfo=UTC
            )
        else:
            raise EventError(f"{field}: not an RFC 3339 or RFC 1123 timestamp: {show(value)}")
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise EventError(f"{field}: not a valid timestamp: {show(value)}") from None
    # Keeps deadline arithmetic (time + seconds) clear of datetime's year-9999 limit.
    if not 1900 <= parsed.year <= 9000:
        raise EventError(f"{field}: timestamp out of range: {show(value)}")
    return parsed


def opt_time(obj: Mapping[str, Any], key: str, path: str) -> datetime | None:
    """The timestamp at ``key``, or None when absent or null."""
    value = obj.get(key)
    return None if value is None else parse_time(value, join_path(path, key))
