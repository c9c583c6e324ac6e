"""AWS Lambda entry points: parse → library call → JSON-able result.

Kept light for cold starts: no click, PyYAML, moto or aiobotocore on this import path (a test
checks). Configuration comes from the environment, read once per container through
:class:`ecsspot.settings.Settings` (``ecsspot.settings.VARIABLES`` lists every variable):
ECSSPOT_CLUSTER, ECSSPOT_TABLE, ECSSPOT_REFRESH_ON_SCHEDULE, ECSSPOT_ENDPOINT_URL and AWS_REGION.

Tests and the simulator build a :class:`Handlers` with their own driver (clock, endpoint) instead
of patching this module.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecsspot.aws.calls import Runner, Workflow
    from ecsspot.drain import Action
    from ecsspot.errors import HandlingFailed
    from ecsspot.interruption import HandleResult, Retry

# Every ecsspot import below is made where it is first needed: a cold start pays for this module
# alone, and the first event for what handling it takes (boto3 and the driver, the event
# parser, the drain, the spec reader when a spec is read).

log = logging.getLogger("ecsspot.handlers")

#: Names this module offered at the top before its imports became lazy, and where they live.
_MOVED = {"HandlingFailed": "errors", "Action": "drain", "HandleResult": "interruption", "Retry": "interruption", "handle_event": "interruption"}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"ecsspot.{_MOVED[name]}"), name)


def failed_actions(result: HandleResult) -> list[Action]:
    """Actions of a single (non-batch) event that failed and may succeed when tried again."""
    if result.batch:
        return []
    # A malformed event ("error") would fail the same way again.
    return [a for a in result.actions if a.status == "failed" and a.kind != "error"]


def handling_failed(failed: list[Action]) -> HandlingFailed:
    from ecsspot.errors import HandlingFailed

    return HandlingFailed("; ".join(f"{a.kind} {a.instance_id}: {a.reason}" for a in failed))


class Handlers:
    """The Lambda functions bound to one driver (a boto3 Driver from ecsspot.aws.driver)."""

    def __init__(self, driver: Runner, *, default_cluster: str | None = None, owner: str | None = None, refresh_on_schedule: bool = True) -> None:
        from ecsspot.store import owner_id

        self.driver = driver
        self.default_cluster = default_cluster
        self.owner = owner or owner_id()
        #: Whether a scheduled tick may start a refresh when the AMI parameter moved.
        self.refresh_on_schedule = refresh_on_schedule

    def interruption(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Spot warnings, rebalance recommendations and terminate lifecycle actions (EventBridge, SQS, SNS)."""
        from ecsspot.errors import HandlingFailed
        from ecsspot.interruption import handle_event

        try:
            result = self.driver.run(
                handle_event(event, owner=self.owner, default_cluster=self.default_cluster, remaining_seconds=_remaining(context))
            )
        except Exception as exc:
            result = every_record_failed(event, exc)
            log.exception("handling failed as a whole; every record goes back: %s", exc)
        for action in result.actions:
            log.info(json.dumps({"kind": action.kind, "instance_id": action.instance_id, "status": action.status, "reason": action.reason}))
        if result.retries:
            try:
                self.driver.run(hand_back(result.retries))
            except Exception:
                log.exception("could not hand %d failed record(s) back early", len(result.retries))
        # SNS ignores batchItemFailures and retries an asynchronous invocation only when it
        # fails; a direct EventBridge invocation likewise. So both fail for Lambda to retry them.
        failed = failed_actions(result)
        if failed:
            raise handling_failed(failed)
        if result.via == "sns" and result.batch_item_failures:
            raise HandlingFailed(f"{len(result.batch_item_failures)} SNS record(s) failed; failing the invocation so that Lambda retries it")
        return result.lambda_response()

    def refresh(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """A refresh tick (schedule) or an SSM "Parameter Store Change": continue a refresh in
        progress, or start one when the AMI parameter changed (a scheduled tick starts one only
        with ``refresh_on_schedule``; a parameter change always may)."""
        from ecsspot import events as ev
        from ecsspot.errors import ConflictError, EventError
        from ecsspot.refresh import STOP_MARGIN_SECONDS, refresh

        cluster = self.default_cluster
        if not cluster:
            return {"status": "ignored", "reason": "no cluster configured (ECSSPOT_CLUSTER is not set)"}
        start_new = self.refresh_on_schedule
        try:
            parsed = ev.parse_event(event)
        except EventError:  # a schedule event or anything else: a tick
            parsed = None
        if isinstance(parsed, ev.ParameterChange):
            start_new = parsed.operation != "Delete"
        remaining = _remaining(context)
        now = self.driver.clock.now()
        stop_at = None if remaining is None else now + remaining - STOP_MARGIN_SECONDS
        try:
            result = self.driver.run(refresh(cluster, owner=self.owner, resume=True, start_new=start_new, stop_at=stop_at))
        except ConflictError as exc:
            return {"status": "busy", "reason": str(exc), **self.guard(cluster, stop_at)}
        return {"status": result.status, "image_id": result.image_id, "reason": result.reason, "replaced": list(result.replaced), **self.guard(cluster, stop_at)}

    def guard(self, cluster: str, stop_at: float | None = None) -> dict[str, Any]:
        """The scheduled tick's other duties: the drain watchdog (reactivating only when the spec's
        ``watchdog.reactivate`` says so), the capacity ledger the savings report bills and, with
        ``protection.on_schedule``, the protection reconciler and, with ``fallback.enabled``, the
        spot → on-demand fallback. Each one's actions, or its failure: none may fail the refresh
        tick. Skipped when the refresh used the invocation's time (past ``stop_at``): the next tick
        runs them."""
        from ecsspot import fallback, ledger, protection, store, watchdog
        from ecsspot.errors import EcsspotError

        if stop_at is not None and self.driver.clock.now() >= stop_at:
            return {"guard": {"status": "skipped", "reason": "the refresh used this invocation's time; the next tick runs the watchdog"}}
        try:
            spec = self.driver.run(store.load_cluster_spec(cluster))
        except EcsspotError as exc:
            return {"guard": {"status": "failed", "reason": str(exc)}}
        if spec is None:
            return {}
        out: dict[str, Any] = {}
        runs: list[tuple[str, Workflow[Any]]] = [
            ("watchdog", watchdog.watch(cluster, owner=self.owner, spec=spec)),
            ("ledger", ledger.record(cluster, owner=self.owner, spec=spec)),
        ]
        if spec.protection.on_schedule:
            runs.append(("protection", protection.reconcile(cluster, owner=self.owner, apply=True, spec=spec)))
        if spec.fallback.enabled:
            runs.append(("fallback", fallback.tick(cluster, owner=self.owner, apply=True, spec=spec, stop_at=stop_at)))
        for name, workflow in runs:
            try:
                actions = self.driver.run(workflow).actions
            except EcsspotError as exc:
                log.warning("%s failed: %s", name, exc)
                out[name] = {"status": "failed", "reason": str(exc)}
                continue
            except Exception as exc:  # unmapped: still never the refresh tick's failure, but said loudly
                log.exception("%s failed unexpectedly", name)
                out[name] = {"status": "failed", "reason": f"unexpected {type(exc).__name__}: {exc}"}
                continue
            rows = [
                {"kind": a.kind, "instance_id": a.instance_id, "status": a.status, "reason": a.reason}
                | ({"pool": a.pool} if isinstance(a, fallback.FallbackAction) else {})
                for a in actions
            ]
            for row in rows:
                log.info(json.dumps({"duty": name, **row}))
            out[name] = {"status": "done", "actions": rows}
        return out


def every_record_failed(payload: Mapping[str, Any], exc: BaseException) -> HandleResult:
    """The result when handling failed as a whole: every record reported for a retry."""
    from ecsspot.drain import Action
    from ecsspot.errors import EventError
    from ecsspot.events import parse_batch
    from ecsspot.interruption import HandleResult, Retry, is_batch, retry_delay

    try:
        records = parse_batch(payload)
    except EventError:
        records = ()
    batch = is_batch(payload)
    why = f"handling failed: {exc}"
    return HandleResult(
        (Action("handle_event", None, "failed", why),),
        tuple(dict.fromkeys(r.message_id or "" for r in records)) if batch else (),
        batch,
        next((r.via for r in records if r.via), None),
        tuple(Retry(r.receipt_handle, r.queue_arn, retry_delay(r.receive_count)) for r in records if r.receipt_handle and r.queue_arn),
    )


def hand_back(retries: Sequence[Retry]) -> Workflow[None]:
    """Bring failed SQS records back within seconds rather than after the queue's visibility
    timeout (930 s in the module, far past a spot warning's 120 s). Best effort: if this fails,
    the records still come back, later."""
    from ecsspot.aws.calls import call, chunks, settle

    by_queue: dict[str, list[Retry]] = {}
    for r in retries:
        by_queue.setdefault(r.queue_arn, []).append(r)
    queues = sorted(by_queue)
    # arn:aws:sqs:REGION:ACCOUNT:NAME; GetQueueUrl finds it whatever the endpoint (moto, VPC endpoint).
    urls = yield settle([call("sqs", "get_queue_url", QueueName=q.split(":")[-1], QueueOwnerAWSAccountId=q.split(":")[4]) for q in queues])
    changes = [
        call(
            "sqs",
            "change_message_visibility_batch",
            QueueUrl=url["QueueUrl"],
            Entries=[{"Id": str(i), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": int(r.after)} for i, r in enumerate(batch)],
        )
        for q, url in zip(queues, urls, strict=True)
        if isinstance(url, Mapping) and "QueueUrl" in url
        for batch in chunks(by_queue[q], 10)  # the API's limit per call
    ]
    if changes:
        yield settle(changes)


def _remaining(context: Any) -> float | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000.0 if callable(getter) else None


_default: Handlers | None = None


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a configuration that cannot work, before handling anything."""
    from ecsspot.settings import Settings

    Settings.from_environ(environ)


def _handlers() -> Handlers:
    global _default
    if _default is None:
        from ecsspot.aws.clients import ClientOptions, lambda_config
        from ecsspot.aws.driver import Driver
        from ecsspot.settings import Settings

        settings = Settings.from_environ(os.environ)
        options = ClientOptions(region=settings.region, endpoint_url=settings.endpoint_url, config=lambda_config())
        # Reused across warm invocations: clients (and their connection pools) survive.
        _default = Handlers(Driver(options), default_cluster=settings.cluster, refresh_on_schedule=settings.refresh_on_schedule)
    return _default


def interruption(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda handler ``ecsspot.handlers.interruption``."""
    return _handlers().interruption(event, context)


def refresh(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda handler ``ecsspot.handlers.refresh``."""
    return _handlers().refresh(event, context)
