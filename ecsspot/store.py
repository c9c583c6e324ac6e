"""Records in the cluster's DynamoDB table: leases, event idempotency, refresh progress, settings.

Persistence only; the decisions about what a record means live with their workflows. Every
write that could race is a conditional write; losing the race surfaces as a domain answer
(``False`` or :class:`~ecsspot.errors.ConflictError`), never as a raw DynamoDB error.

Items are keyed ``pk`` (what) / ``sk`` (kind); ``expires_at`` (epoch seconds) is the table's
TTL attribute, so stale leases and idempotency keys disappear on their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs

from ecsspot.aws.calls import Call, Sleep, Workflow, call, chunks, failed, lookup, settle
from ecsspot.errors import AwsError, ConflictError, EcsspotError, NotFoundError, ThrottledError
from ecsspot.spec import ClusterSpec, load_spec, table_name

_NOT_FOUND = ("ResourceNotFoundException",)
#: The table's TTL attribute (epoch seconds): stale leases and idempotency keys disappear on their own.
TTL_ATTRIBUTE = "expires_at"


@attrs.frozen
class Lease:
    name: str
    owner: str
    expires_at: float


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


SETTINGS_KEY = _key("cluster", "settings")
#: The same, as (pk, sk).
SETTINGS_AT = ("cluster", "settings")
#: The fallback controller's memory of its pools (``ecsspot.fallback``; plan reads it too).
FALLBACK_AT = ("fallback", "pools")


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


#: "TransactWriteItems is a synchronous write operation that groups up to 100 action requests"
#: (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
TRANSACTION_ITEMS = 100
_TRANSACTABLE = {"put_item": "Put", "delete_item": "Delete"}


def transact_call(writes: Sequence[Call]) -> Call:
    """One TransactWriteItems of conditional PutItem/DeleteItem calls (distinct items, ≤ 100).

    Its IAM permissions are those of the PutItem and DeleteItem inside it (DynamoDB's "Using IAM
    with transactions"), so the Lambdas' policies need nothing new.
    """
    items = []
    for w in writes:
        params = dict(w.params)
        items.append({_TRANSACTABLE[w.operation]: params})
    return call("dynamodb", "transact_write_items", TransactItems=items)


def conditional_writes(writes: Sequence[Call]) -> Workflow[list[Any]]:
    """Each conditional write's outcome (as a :class:`~ecsspot.aws.calls.Settle` gives it: the
    answer, None for a lost condition, or the error), in a constant number of round trips.

    Writes go out as TransactWriteItems of up to 100: when nobody contends, N writes cost
    ceil(N/100) calls instead of N. A transaction is all or nothing, so one lost condition
    cancels it (TransactionCanceledException) and that chunk is sent again write by write, which
    says which ones lost; any other failure of a transaction is the outcome of each of its writes.
    A single write is sent as it is.
    """
    writes = list(writes)
    if not writes:
        return []
    return (yield from written(writes, (yield settle(write_calls(writes)))))


def write_calls(writes: Sequence[Call]) -> tuple[Call, ...]:
    """The first round of :func:`conditional_writes`, to send (settled) beside other calls; its
    outcomes go to :func:`written`."""
    writes = list(writes)
    return tuple(writes) if len(writes) <= 1 else tuple(transact_call(g) for g in chunks(writes, TRANSACTION_ITEMS))


def written(writes: Sequence[Call], answers: Sequence[Any]) -> Workflow[list[Any]]:
    """Each write's outcome from the settled answers to :func:`write_calls` (a round more, write
    by write, for a transaction a lost condition cancelled)."""
    writes = list(writes)
    if len(writes) <= 1:
        return list(answers)
    outcomes: list[Any] = []
    retry: list[int] = []
    for g, answer in zip(chunks(writes, TRANSACTION_ITEMS), answers, strict=True):
        if isinstance(answer, AwsError) and answer.code == "TransactionCanceledException":
            retry += range(len(outcomes), len(outcomes) + len(g))
            outcomes += [None] * len(g)
        else:
            outcomes += [answer if failed(answer) else {} for _ in g]
    if retry:
        again = yield settle([writes[i] for i in retry])
        for i, answer in zip(retry, again, strict=True):
            outcomes[i] = answer
    return outcomes


def lease_writes(table: str, names: Sequence[str], owner: str, *, now: float, ttl: float) -> list[Call]:
    """The conditional puts that take (or renew) the leases ``names`` (see :func:`acquire_leases`)."""
    return [_lease_put(table, n, owner, now, ttl) for n in dict.fromkeys(names)]


def leases_from(writes: Sequence[Call], outcomes: Sequence[Any], *, now: float, ttl: float) -> dict[str, Lease | None]:
    """The leases :func:`lease_writes` took, from their outcomes (:func:`written`): None for each
    one another live owner holds; an error other than a lost condition is raised."""
    error = next((a for a in outcomes if failed(a)), None)
    if error is not None:
        raise error
    out: dict[str, Lease | None] = {}
    for w, a in zip(writes, outcomes, strict=True):
        name = str(w.params["Item"]["pk"]["S"]).removeprefix("lease#")
        out[name] = Lease(name, str(w.params["Item"]["owner"]["S"]), now + ttl) if a is not None else None
    return out


def acquire_leases(table: str, names: Sequence[str], owner: str, *, now: float, ttl: float) -> Workflow[dict[str, Lease | None]]:
    """Take (or renew) several leases at once; None for each one another live owner holds.

    In one transaction per 100 leases when none is contended (see :func:`conditional_writes`);
    an error other than a lost condition is raised, as from a batch.
    """
    writes = lease_writes(table, names, owner, now=now, ttl=ttl)
    return leases_from(writes, (yield from conditional_writes(writes)), now=now, ttl=ttl)


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


def claim_event_call(table: str, key: str, owner: str, *, now: float, ttl: float, message_id: str = "", receive_count: int = 0) -> Call:
    """The conditional put that claims one event (see :func:`claim_events`)."""
    return Call(
        "dynamodb",
        "put_item",
        {
            "TableName": table,
            "Item": {
                **_key(f"event#{key}", "event"),
                "owner": {"S": owner},
                "state": {"S": "claimed"},
                "message_id": {"S": message_id or "-"},
                "receive_count": {"N": str(receive_count)},
                "expires_at": {"N": f"{now + ttl:.3f}"},
            },
            # Ours again when: nobody has it; it was claimed but the claim expired; we claimed it
            # already (botocore retrying a put whose answer was lost must not lose to itself); or
            # it was claimed at an earlier SQS receive of the same message: the queue redelivers
            # a message only once the previous receive's visibility timeout (longer than the
            # function's) has passed or its handler handed it back, so that handler is gone or
            # has let go.
            "ConditionExpression": (
                "attribute_not_exists(pk) OR (#s = :claimed AND "
                "(expires_at < :now OR #o = :me OR (:rc > :zero AND message_id = :msg AND receive_count < :rc)))"
            ),
            "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
            "ExpressionAttributeValues": {
                ":claimed": {"S": "claimed"},
                ":now": {"N": f"{now:.3f}"},
                ":me": {"S": owner},
                ":rc": {"N": str(receive_count)},
                ":zero": {"N": "0"},
                ":msg": {"S": message_id or "-"},
            },
        },
        absent=_LOST,
    )


#: What claiming an event found (see :func:`claim_events`).
ClaimState = Literal["claimed", "done", "busy"]


def claim_events(
    table: str,
    keys: Sequence[str],
    owner: str,
    *,
    now: float,
    ttl: float,
    deliveries: Mapping[str, tuple[str, int]] | None = None,
    along: Sequence[Call] = (),
) -> Workflow[dict[str, ClaimState | EcsspotError]]:
    """Claim events for handling, all in one round. Each key maps to "claimed", "done" (a
    duplicate), "busy" (in hand elsewhere) or the :class:`~ecsspot.errors.EcsspotError` its claim
    failed with (the caller reports that record for a retry). A claim expires after ``ttl``;
    ``deliveries`` (key → SQS message id and ApproximateReceiveCount) lets a redelivery of the
    same message take over a claim made at an earlier receive. ``along``: independent writes to
    send in the same round (their answers are not looked at).
    """
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    how = deliveries or {}
    answers = yield settle(
        [claim_event_call(table, k, owner, now=now, ttl=ttl, message_id=how.get(k, ("", 0))[0], receive_count=how.get(k, ("", 0))[1]) for k in keys]
        + list(along)
    )
    states: dict[str, ClaimState | EcsspotError] = {}
    lost = []
    # The answers of ``along`` come after the claims' and are not looked at.
    for k, a in zip(keys, answers[: len(keys)], strict=True):
        if failed(a):
            states[k] = a
        elif a is None:
            lost.append(k)
        else:
            states[k] = "claimed"
    if lost:
        found = yield settle([call("dynamodb", "get_item", TableName=table, Key=_key(f"event#{k}", "event"), ConsistentRead=True) for k in lost])
        for k, answer in zip(lost, found, strict=True):
            if failed(answer):
                states[k] = answer
            else:
                states[k] = "done" if answer.get("Item", {}).get("state", {}).get("S") == "done" else "busy"
    return states


def claim_event(table: str, key: str, owner: str, *, now: float, ttl: float) -> Workflow[ClaimState | EcsspotError]:
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


#: Months of interruption history kept (each month one item; DynamoDB's TTL removes older ones).
HISTORY_MONTHS = 3


def history_key(month: str) -> ItemKey:
    """The item counting one month's (``YYYY-MM``) spot interruptions by day, type and zone."""
    return ("history", f"interruptions#{month}")


def count_interruption_call(table: str, instance_type: str, availability_zone: str, *, now: float) -> Call:
    """Counting one spot interruption of ``instance_type`` in ``availability_zone`` (the advice's
    history), as a call to batch: one atomic ADD on the month's item, the day in the counter's name."""
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    pk, sk = history_key(stamp.strftime("%Y-%m"))
    return call(
        "dynamodb",
        "update_item",
        TableName=table,
        Key=_key(pk, sk),
        UpdateExpression="ADD #c :one SET expires_at = if_not_exists(expires_at, :exp)",
        ExpressionAttributeNames={"#c": f"{stamp:%Y-%m-%d}|{instance_type}|{availability_zone}"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": f"{now + (HISTORY_MONTHS * 31 + 1) * 86400:.0f}"}},
    )


def interruptions_from(item: Mapping[str, Any] | None) -> dict[tuple[str, str, str], int]:
    """(day, instance type, zone) → interruptions, from a :func:`history_key` item."""
    out: dict[tuple[str, str, str], int] = {}
    for name, value in (item or {}).items():
        parts = name.split("|")
        if len(parts) == 3 and isinstance(value, Mapping) and "N" in value:
            out[(parts[0], parts[1], parts[2])] = int(float(value["N"]))
    return out


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


def let_go(table: str, event_keys: Sequence[str], lease_names: Sequence[str], owner: str) -> Workflow[list[str]]:
    """Drop our unfinished claims and our leases, each only if still ours, all in one round.

    Every release is sent whatever the others answer; returns what could not be released (those
    expire on their own, and a redelivery takes a claim over at once: see :func:`claim_event_call`).
    """
    calls = [release_event_call(table, k, owner) for k in dict.fromkeys(event_keys)]
    calls += [release_lease_call(table, n, owner) for n in dict.fromkeys(lease_names)]
    if not calls:
        return []
    answers = yield from conditional_writes(calls)
    return [str(c.params["Key"]["pk"]["S"]) for c, a in zip(calls, answers, strict=True) if failed(a)]


#: How long an instance stays marked as going away (longer than any drain or refresh step).
DOOMED_SECONDS = 6 * 3600.0


def mark_doomed_call(table: str, instance_id: str, reason: str, *, now: float) -> Call:
    """Remember that ``instance_id`` is going away (spot warning, terminate hook), as a call to
    batch: a refresh rolling back must not set such an instance ACTIVE again."""
    return call(
        "dynamodb",
        "put_item",
        TableName=table,
        Item={**_key(f"doomed#{instance_id}", "doomed"), "reason": {"S": reason[:500]}, "expires_at": {"N": f"{now + DOOMED_SECONDS:.3f}"}},
    )


def doomed(table: str, instance_ids: Sequence[str], *, now: float) -> Workflow[set[str]]:
    """Which of ``instance_ids`` are marked as going away (see :func:`mark_doomed_call`), in one round."""
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return set()
    answers = yield tuple(
        lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(f"doomed#{i}", "doomed"), ConsistentRead=True) for i in ids
    )
    return {
        i
        for i, a in zip(ids, answers, strict=True)
        # TTL deletion lags by up to days: an expired item counts as gone.
        if (a or {}).get("Item") and float(a["Item"].get("expires_at", {}).get("N", "0")) > now
    }


def put_document_call(table: str, pk: str, sk: str, document: Mapping[str, Any], *, now: float) -> Call:
    """Storing a JSON document, as a call to batch."""
    return call(
        "dynamodb",
        "put_item",
        TableName=table,
        Item={**_key(pk, sk), "doc": {"S": json.dumps(document, sort_keys=True)}, "updated_at": {"N": f"{now:.3f}"}},
    )


def put_document(table: str, pk: str, sk: str, document: Mapping[str, Any], *, now: float) -> Workflow[None]:
    """Store a JSON document (refresh progress and the like)."""
    yield put_document_call(table, pk, sk, document, now=now)


def get_document_call(table: str, pk: str, sk: str) -> Call:
    """The read of a JSON document, to send in a batch with other calls (see :func:`document_of`)."""
    return lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk), ConsistentRead=True)


def document_of(answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The document in a :func:`get_document_call` answer, or None."""
    item = (answer or {}).get("Item")
    return json.loads(item["doc"]["S"]) if item and "doc" in item else None


#: "A single operation can retrieve up to 16 MB of data, which can contain as many as 100 items"
#: (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
BATCH_GET_ITEMS = 100
#: Rounds spent asking again for UnprocessedKeys before giving up (with backoff between them).
_BATCH_GET_ATTEMPTS = 5

ItemKey = tuple[str, str]


def get_items_call(table: str, keys: Sequence[ItemKey]) -> Call:
    """One strongly consistent BatchGetItem of up to 100 items by (pk, sk), to send in a batch
    with other calls; answered None when the table does not exist (see :func:`items_of`)."""
    if not 0 < len(keys) <= BATCH_GET_ITEMS or len(set(keys)) != len(keys):
        raise ValueError(f"BatchGetItem takes 1 to {BATCH_GET_ITEMS} distinct keys, not {len(keys)}")
    return lookup("dynamodb", "batch_get_item", _NOT_FOUND, RequestItems={table: {"Keys": [_key(*k) for k in keys], "ConsistentRead": True}})


def items_of(table: str, keys: Sequence[ItemKey], answer: Mapping[str, Any] | None) -> Workflow[dict[ItemKey, dict[str, Any] | None]]:
    """Each key's item from a :func:`get_items_call` answer, as GetItem answers it (``{"Item":
    ...}`` or ``{}``); every one None when the table does not exist.

    DynamoDB may leave part of a batch in UnprocessedKeys (throttling, size); those are asked
    again with exponential backoff, as its documentation advises, and ThrottledError is raised
    if they never come.
    """
    if answer is None:
        return {k: None for k in keys}
    found: dict[ItemKey, dict[str, Any] | None] = {k: {} for k in keys}
    for attempt in range(1, _BATCH_GET_ATTEMPTS + 1):
        for item in answer.get("Responses", {}).get(table, ()):
            found[(item["pk"]["S"], item["sk"]["S"])] = {"Item": item}
        pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if not pending:
            return found
        if attempt == _BATCH_GET_ATTEMPTS:
            break
        yield Sleep(0.05 * 2**attempt)
        answer = yield call("dynamodb", "batch_get_item", RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
    raise ThrottledError("BatchGetItem", "UnprocessedKeys", f"{len(pending)} item(s) still unprocessed", service="dynamodb")


def get_items(table: str, keys: Sequence[ItemKey]) -> Workflow[dict[ItemKey, dict[str, Any] | None]]:
    """Up to 100 items in one BatchGetItem (see :func:`get_items_call` and :func:`items_of`)."""
    return (yield from items_of(table, keys, (yield get_items_call(table, keys))))


def get_document(table: str, pk: str, sk: str) -> Workflow[dict[str, Any] | None]:
    return document_of((yield get_document_call(table, pk, sk)))


def delete_document(table: str, pk: str, sk: str) -> Workflow[None]:
    yield lookup("dynamodb", "delete_item", _NOT_FOUND, TableName=table, Key=_key(pk, sk))


def settings_lookup(table: str) -> Call:
    """The read of the spec JSON apply recorded in the state table (see :func:`settings_from`)."""
    return lookup("dynamodb", "get_item", _NOT_FOUND, TableName=table, Key=SETTINGS_KEY, ConsistentRead=True)


def settings_from(answer: Mapping[str, Any] | None) -> str | None:
    """The recorded spec JSON in the answer to :func:`settings_lookup` (None: none recorded)."""
    item = (answer or {}).get("Item")
    if not item:
        return None
    text = item.get("spec", {}).get("S")
    return None if text is None else str(text)


def settings_item(text: str, *, now: float) -> dict[str, Any]:
    """The item apply writes: the spec JSON it converged to."""
    return {**SETTINGS_KEY, "spec": {"S": text}, "updated_at": {"N": str(int(now))}}


#: Cached deregistration delays older than this are read again: a group's delay can be changed
#: at any time. The drain uses them to say when a delay cannot fit the deadline and to space its
#: looks while a deregistered target must still show draining (at most ``drain.LONGEST_SKIP``
#: apart, so a delay lowered since costs that much at worst).
DELAYS_MAX_AGE = 3600.0


@attrs.frozen
class GroupCache:
    """What drains remember of the cluster's target groups, so the next one skips the lookups:
    the services' groups (deregistered in the first rounds) and the groups' deregistration delays."""

    groups: tuple[str, ...] = ()
    delays: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    #: When it was written (epoch seconds).
    updated_at: float = 0.0

    def delays_at(self, now: float) -> dict[str, int]:
        """The delays still fresh at ``now`` (none when older than :data:`DELAYS_MAX_AGE`)."""
        return dict(self.delays) if 0 <= now - self.updated_at <= DELAYS_MAX_AGE else {}

    def outdated(self, groups: Sequence[str], delays: Mapping[str, int], *, now: float) -> bool:
        """Whether a drain that found ``groups`` and ``delays`` has something new to write."""
        fresh = self.delays_at(now)
        return bool(set(groups) - set(self.groups)) or any(fresh.get(g) != d for g, d in delays.items())

    def merged(self, groups: Sequence[str], delays: Mapping[str, int], *, now: float) -> dict[str, Any]:
        """The document to write: the groups found, with the fresh delays known and those read."""
        return {"service_target_groups": sorted(groups), "deregistration_delays": dict(sorted({**self.delays_at(now), **delays}.items()))}


#: Where drains keep the :class:`GroupCache`, as (pk, sk).
GROUP_CACHE_AT: ItemKey = ("cluster", "target_groups")


def group_cache_from(answer: Mapping[str, Any] | None, *, strict: bool = True) -> GroupCache:
    """The :class:`GroupCache` in a GetItem-shaped answer; an unreadable record raises when
    ``strict`` (the drain, which writes it back) and is an empty cache otherwise (plan's lint,
    for which it is only a shortcut: it then reads the groups from ELB)."""
    item = (answer or {}).get("Item")
    if not item or "doc" not in item:
        return GroupCache()
    try:
        doc = json.loads(item["doc"]["S"])
        delays = {str(k): int(v) for k, v in doc.get("deregistration_delays", {}).items()}
        return GroupCache(tuple(doc.get("service_target_groups", [])), delays, float(item.get("updated_at", {}).get("N", "0")))
    except (ValueError, TypeError, AttributeError, KeyError):
        if strict:
            raise
        return GroupCache()


def remember_cache_call(table: str, document: Mapping[str, Any], *, now: float) -> Call:
    """Writing the :class:`GroupCache` document (see :meth:`GroupCache.merged`), as a call to batch."""
    return put_document_call(table, *GROUP_CACHE_AT, document, now=now)


def cluster_read_calls(table: str) -> tuple[Call, ...]:
    """The read of the recorded spec and the :class:`GroupCache` (one BatchGetItem, strongly
    consistent), to send in a batch with other calls (see :func:`cluster_from`)."""
    return (get_items_call(table, [SETTINGS_AT, GROUP_CACHE_AT]),)


def cluster_from(table: str, answers: Sequence[Any]) -> Workflow[tuple[ClusterSpec | None, GroupCache]]:
    """The spec (None: none recorded) and the :class:`GroupCache` in the answers to
    :func:`cluster_read_calls` (a round more only when DynamoDB left a key unprocessed)."""
    (answer,) = answers
    items = yield from items_of(table, [SETTINGS_AT, GROUP_CACHE_AT], answer)
    text = settings_from(items[SETTINGS_AT])
    if text is None:
        return None, GroupCache()
    return load_spec(json.loads(text)), group_cache_from(items[GROUP_CACHE_AT])


def read_cluster_cache(table: str) -> Workflow[tuple[str | None, GroupCache]]:
    """The recorded spec (JSON text) and the :class:`GroupCache`, in one round."""
    items = yield from get_items(table, [SETTINGS_AT, GROUP_CACHE_AT])
    return settings_from(items[SETTINGS_AT]), group_cache_from(items[GROUP_CACHE_AT])


def read_cluster(table: str) -> Workflow[tuple[str | None, list[str]]]:
    """The recorded spec (JSON text) and the cached service target groups, in one round."""
    text, cache = yield from read_cluster_cache(table)
    return text, list(cache.groups)


def load_cluster_cache(cluster: str) -> Workflow[tuple[ClusterSpec | None, GroupCache]]:
    """The spec ``apply`` recorded (None when the cluster has no ecsspot table) and the :class:`GroupCache`."""
    table = table_name(cluster)
    return (yield from cluster_from(table, (yield cluster_read_calls(table))))


def load_cluster(cluster: str) -> Workflow[tuple[ClusterSpec | None, list[str]]]:
    """The spec ``apply`` recorded (None when the cluster has no ecsspot table) and cached target groups."""
    spec, cache = yield from load_cluster_cache(cluster)
    return spec, list(cache.groups)


def load_cluster_spec(cluster: str) -> Workflow[ClusterSpec | None]:
    """The spec ``apply`` recorded for the cluster, or None."""
    return (yield from load_cluster(cluster))[0]


def probe_key(probe: str) -> tuple[str, str]:
    """Where the interruption handler records that it saw ``ecsspot doctor``'s test event."""
    return ("doctor", f"probe#{probe}")


def recorded_spec(cluster: str, spec: ClusterSpec | None = None) -> Workflow[ClusterSpec]:
    """``spec`` when given, else the settings ``apply`` recorded: :class:`NotFoundError` when none."""
    if spec is None:
        spec = yield from load_cluster_spec(cluster)
        if spec is None:
            raise NotFoundError(f"cluster {cluster}: no ecsspot settings recorded (no table {table_name(cluster)}, or never applied)")
    return spec


_T = TypeVar("_T")


def under_lease(
    cluster: str, table: str, lease: str, owner: str, *, now: float, ttl: float, needed: bool, body: Callable[[bool], Workflow[_T]]
) -> Workflow[_T]:
    """Run ``body(held)``, holding the cluster's ``lease`` when no other live owner has it.

    A run that must act (``needed``) and finds the lease held by another is a
    :class:`ConflictError` before ``body`` starts; one that only looks runs without it (``held``
    False: it must then write nothing). The lease is given back on every way out, except when the
    workflow is closed without being driven on (the process is going away): then it expires.
    """
    leases = yield from acquire_leases(table, [lease], owner, now=now, ttl=ttl)
    held = leases[lease] is not None
    if needed and not held:
        holder = yield from read_lease(table, lease)
        raise ConflictError(f"another {lease} run holds {cluster}'s {lease} lease ({holder.owner if holder else 'unknown owner'})")
    names = [lease] if held else []
    try:
        result = yield from body(held)
    except GeneratorExit:
        raise
    except BaseException:
        yield from let_go(table, (), names, owner)
        raise
    yield from let_go(table, (), names, owner)
    return result


def remember_target_groups(table: str, groups: Sequence[str], *, now: float) -> Workflow[None]:
    """Cache the services' target groups so the next drain deregisters in its first rounds."""
    yield from put_document(table, "cluster", "target_groups", {"service_target_groups": sorted(groups)}, now=now)


def owner_id() -> str:
    """Who holds a lease: host, process and a random suffix (unique per Manager)."""
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
