"""Records in the cluster's DynamoDB table: leases, event idempotency, refresh progress, settings.

Persistence only; the decisions about what a record means live with their workflows. Every
write that could race is a conditional write; losing the race surfaces as a domain answer
(``False`` or :class:`~ecsspot.errors.ConflictError`), never as a raw DynamoDB error.

Items are keyed ``pk`` (what) / ``sk`` (kind); ``expires_at`` (epoch seconds) is the table's
TTL attribute, so stale leases and idempotency keys disappear on their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ecsspot.aws.calls import Workflow, call, lookup
from ecsspot.errors import ConditionFailedError, ConflictError

_NOT_FOUND = ("ResourceNotFoundException",)


@attrs.frozen
class Lease:
    name: str
    owner: str
    expires_at: float


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def acquire_lease(table: str, name: str, owner: str, *, now: float, ttl: float) -> Workflow[Lease]:
    """Take (or renew) the lease ``name``; ConflictError when another live owner holds it."""
    try:
        yield call(
            "dynamodb",
            "put_item",
            TableName=table,
            Item={**_key(f"lease#{name}", "lease"), "owner": {"S": owner}, "expires_at": {"N": f"{now + ttl:.3f}"}},
            ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":me": {"S": owner}},
        )
    except ConditionFailedError:
        holder = yield from read_lease(table, name)
        who = f"{holder.owner} until {holder.expires_at:.0f}" if holder else "someone"
        raise ConflictError(f"{name} is held by {who}") from None
    return Lease(name, owner, now + ttl)


def read_lease(table: str, name: str) -> Workflow[Lease | None]:
    answer = yield lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(f"lease#{name}", "lease"), ConsistentRead=True)
    item = (answer or {}).get("Item")
    if not item:
        return None
    return Lease(name, item["owner"]["S"], float(item["expires_at"]["N"]))


def release_lease(table: str, name: str, owner: str) -> Workflow[bool]:
    """Give the lease back if we still hold it; False when it had passed to someone else."""
    try:
        yield call(
            "dynamodb",
            "delete_item",
            TableName=table,
            Key=_key(f"lease#{name}", "lease"),
            ConditionExpression="attribute_not_exists(pk) OR #o = :me",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":me": {"S": owner}},
        )
    except ConditionFailedError:
        return False
    return True


def claim_event(table: str, key: str, owner: str, *, now: float, ttl: float) -> Workflow[str]:
    """Claim an event for handling. Returns "claimed", "done" (a duplicate) or "busy" (in hand elsewhere).

    A claim expires after ``ttl`` so an event whose handler died is taken over by the retry.
    """
    try:
        yield call(
            "dynamodb",
            "put_item",
            TableName=table,
            Item={**_key(f"event#{key}", "event"), "owner": {"S": owner}, "state": {"S": "claimed"}, "expires_at": {"N": f"{now + ttl:.3f}"}},
            ConditionExpression="attribute_not_exists(pk) OR (#s = :claimed AND expires_at < :now)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":now": {"N": f"{now:.3f}"}},
        )
    except ConditionFailedError:
        answer = yield call("dynamodb", "get_item", TableName=table, Key=_key(f"event#{key}", "event"), ConsistentRead=True)
        state = answer.get("Item", {}).get("state", {}).get("S")
        return "done" if state == "done" else "busy"
    return "claimed"


def finish_event(table: str, key: str, *, now: float, keep: float = 7 * 86400) -> Workflow[None]:
    """Mark an event handled; duplicates within ``keep`` seconds are then ignored."""
    yield call(
        "dynamodb",
        "update_item",
        TableName=table,
        Key=_key(f"event#{key}", "event"),
        UpdateExpression="SET #s = :done, expires_at = :exp",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":done": {"S": "done"}, ":exp": {"N": f"{now + keep:.3f}"}},
    )


def release_event(table: str, key: str, owner: str) -> Workflow[None]:
    """Drop our claim so a retry can handle the event (after a failure)."""
    try:
        yield call(
            "dynamodb",
            "delete_item",
            TableName=table,
            Key=_key(f"event#{key}", "event"),
            ConditionExpression="#o = :me AND #s = :claimed",
            ExpressionAttributeNames={"#o": "owner", "#s": "state"},
            ExpressionAttributeValues={":me": {"S": owner}, ":claimed": {"S": "claimed"}},
        )
    except ConditionFailedError:
        pass


def put_document(table: str, pk: str, sk: str, document: Mapping[str, Any], *, now: float) -> Workflow[None]:
    """Store a JSON document (refresh progress and the like)."""
    yield call(
        "dynamodb",
        "put_item",
        TableName=table,
        Item={**_key(pk, sk), "doc": {"S": json.dumps(document, sort_keys=True)}, "updated_at": {"N": f"{now:.3f}"}},
    )


def get_document(table: str, pk: str, sk: str) -> Workflow[dict[str, Any] | None]:
    answer = yield lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk), ConsistentRead=True)
    item = (answer or {}).get("Item")
    return json.loads(item["doc"]["S"]) if item and "doc" in item else None


def delete_document(table: str, pk: str, sk: str) -> Workflow[None]:
    yield lookup("dynamodb", "delete_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk))
