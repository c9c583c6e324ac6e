"""Records in the cluster's DynamoDB table: leases, event idempotency, refresh progress, settings.

Persistence only; the decisions about what a record means live with their workflows. Every
write that could race is a conditional write; losing the race surfaces as a domain answer
(``False`` or :class:`~ecsspot.errors.ConflictError`), never as a raw DynamoDB error.

Items are keyed ``pk`` (what) / ``sk`` (kind); ``expires_at`` (epoch seconds) is the table's
TTL attribute, so stale leases and idempotency keys disappear on their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ecsspot.aws.calls import Call, Workflow, call, lookup
from ecsspot.errors import ConflictError

_NOT_FOUND = ("ResourceNotFoundException",)


@attrs.frozen
class Lease:
    name: str
    owner: str
    expires_at: float


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


_LOST = ("ConditionalCheckFailedException",)


def _lease_put(table: str, name: str, owner: str, now: float, ttl: float) -> Call:
    return Call(
        "dynamodb",
        "put_item",
        {
            "TableName": table,
            "Item": {**_key(f"lease#{name}", "lease"), "owner": {"S": owner}, "expires_at": {"N": f"{now + ttl:.3f}"}},
            "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":now": {"N": f"{now:.3f}"}, ":me": {"S": owner}},
        },
        absent=_LOST,
    )


def acquire_leases(table: str, names: Sequence[str], owner: str, *, now: float, ttl: float) -> Workflow[dict[str, Lease | None]]:
    """Take (or renew) several leases at once; None for each one another live owner holds."""
    if not names:
        return {}
    answers = yield tuple(_lease_put(table, n, owner, now, ttl) for n in names)
    return {n: (Lease(n, owner, now + ttl) if a is not None else None) for n, a in zip(names, answers)}


def acquire_lease(table: str, name: str, owner: str, *, now: float, ttl: float) -> Workflow[Lease]:
    """Take (or renew) the lease ``name``; ConflictError when another live owner holds it."""
    got = (yield from acquire_leases(table, [name], owner, now=now, ttl=ttl))[name]
    if got is None:
        holder = yield from read_lease(table, name)
        who = f"{holder.owner} until {holder.expires_at:.0f}" if holder else "someone"
        raise ConflictError(f"{name} is held by {who}")
    return got


def read_lease(table: str, name: str) -> Workflow[Lease | None]:
    answer = yield lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(f"lease#{name}", "lease"), ConsistentRead=True)
    item = (answer or {}).get("Item")
    if not item:
        return None
    return Lease(name, item["owner"]["S"], float(item["expires_at"]["N"]))


def release_lease_call(table: str, name: str, owner: str) -> Call:
    """Giving a lease back, as a call to batch; answered None when it had passed to someone else."""
    return Call(
        "dynamodb",
        "delete_item",
        {
            "TableName": table,
            "Key": _key(f"lease#{name}", "lease"),
            "ConditionExpression": "attribute_not_exists(pk) OR #o = :me",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":me": {"S": owner}},
        },
        absent=_LOST,
    )


def release_lease(table: str, name: str, owner: str) -> Workflow[bool]:
    """Give the lease back if we still hold it; False when it had passed to someone else."""
    return (yield release_lease_call(table, name, owner)) is not None


def claim_events(table: str, keys: Sequence[str], owner: str, *, now: float, ttl: float) -> Workflow[dict[str, str]]:
    """Claim events for handling, all at once. Each key maps to "claimed", "done" (a duplicate) or
    "busy" (in hand elsewhere). A claim expires after ``ttl`` so an event whose handler died is
    taken over by the retry.
    """
    if not keys:
        return {}
    answers = yield tuple(
        Call(
            "dynamodb",
            "put_item",
            {
                "TableName": table,
                "Item": {**_key(f"event#{k}", "event"), "owner": {"S": owner}, "state": {"S": "claimed"}, "expires_at": {"N": f"{now + ttl:.3f}"}},
                "ConditionExpression": "attribute_not_exists(pk) OR (#s = :claimed AND expires_at < :now)",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":claimed": {"S": "claimed"}, ":now": {"N": f"{now:.3f}"}},
            },
            absent=_LOST,
        )
        for k in keys
    )
    states = {k: "claimed" for k, a in zip(keys, answers) if a is not None}
    lost = [k for k, a in zip(keys, answers) if a is None]
    if lost:
        found = yield tuple(call("dynamodb", "get_item", TableName=table, Key=_key(f"event#{k}", "event"), ConsistentRead=True) for k in lost)
        for k, answer in zip(lost, found):
            states[k] = "done" if answer.get("Item", {}).get("state", {}).get("S") == "done" else "busy"
    return states


def claim_event(table: str, key: str, owner: str, *, now: float, ttl: float) -> Workflow[str]:
    """One event's claim (see :func:`claim_events`)."""
    return (yield from claim_events(table, [key], owner, now=now, ttl=ttl))[key]


def finish_event_call(table: str, key: str, *, now: float, keep: float = 7 * 86400) -> Call:
    """Marking an event handled, as a call to batch; duplicates within ``keep`` seconds are then ignored."""
    return call(
        "dynamodb",
        "update_item",
        TableName=table,
        Key=_key(f"event#{key}", "event"),
        UpdateExpression="SET #s = :done, expires_at = :exp",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":done": {"S": "done"}, ":exp": {"N": f"{now + keep:.3f}"}},
    )


def finish_event(table: str, key: str, *, now: float, keep: float = 7 * 86400) -> Workflow[None]:
    """Mark an event handled (see :func:`finish_event_call`)."""
    yield finish_event_call(table, key, now=now, keep=keep)


def release_event_call(table: str, key: str, owner: str) -> Call:
    """Dropping our claim so a retry can handle the event, as a call to batch (None: not ours any more)."""
    return Call(
        "dynamodb",
        "delete_item",
        {
            "TableName": table,
            "Key": _key(f"event#{key}", "event"),
            "ConditionExpression": "#o = :me AND #s = :claimed",
            "ExpressionAttributeNames": {"#o": "owner", "#s": "state"},
            "ExpressionAttributeValues": {":me": {"S": owner}, ":claimed": {"S": "claimed"}},
        },
        absent=_LOST,
    )


def release_event(table: str, key: str, owner: str) -> Workflow[None]:
    """Drop our claim so a retry can handle the event (after a failure)."""
    yield release_event_call(table, key, owner)


def put_document(table: str, pk: str, sk: str, document: Mapping[str, Any], *, now: float) -> Workflow[None]:
    """Store a JSON document (refresh progress and the like)."""
    yield call(
        "dynamodb",
        "put_item",
        TableName=table,
        Item={**_key(pk, sk), "doc": {"S": json.dumps(document, sort_keys=True)}, "updated_at": {"N": f"{now:.3f}"}},
    )


def get_document_call(table: str, pk: str, sk: str) -> Call:
    """The read of a JSON document, to send in a batch with other calls (see :func:`document_of`)."""
    return lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk), ConsistentRead=True)


def document_of(answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The document in a :func:`get_document_call` answer, or None."""
    item = (answer or {}).get("Item")
    return json.loads(item["doc"]["S"]) if item and "doc" in item else None


def get_document(table: str, pk: str, sk: str) -> Workflow[dict[str, Any] | None]:
    return document_of((yield get_document_call(table, pk, sk)))


def delete_document(table: str, pk: str, sk: str) -> Workflow[None]:
    yield lookup("dynamodb", "delete_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk))


def read_cluster(table: str) -> Workflow[tuple[str | None, list[str]]]:
    """The recorded spec (JSON text) and the cached service target groups, in one round."""
    settings, cached = yield (
        lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key("cluster", "settings"), ConsistentRead=True),
        lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key("cluster", "target_groups")),
    )
    spec = ((settings or {}).get("Item") or {}).get("spec", {}).get("S")
    item = (cached or {}).get("Item")
    groups = json.loads(item["doc"]["S"]).get("service_target_groups", []) if item and "doc" in item else []
    return spec, groups


def remember_target_groups(table: str, groups: Sequence[str], *, now: float) -> Workflow[None]:
    """Cache the services' target groups so the next drain deregisters in its first rounds."""
    yield from put_document(table, "cluster", "target_groups", {"service_target_groups": sorted(groups)}, now=now)
