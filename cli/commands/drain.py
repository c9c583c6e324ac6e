"""``ecsspot drain`` and ``ecsspot handle-event``: verified drains, by hand or from an event."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import (
    ConflictError,
    DeadlineError,
    EventError,
    InputError,
    NotFoundError,
)
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot.interruption import HandleResult
    from ecsspot_cli.main import Context

#: The largest payload Lambda passes to a function (a synchronous invocation, which is how the SQS
#: event source mapping invokes it): 6 MB, i.e. 6,291,456 bytes
#: (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html). An SQS message is at most
#: 1 MiB (256 KiB until 2025), so one event or a whole batch always fits.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


@click.command()
@click.argument("cluster")
@click.argument("instance_ids", nargs=-1, required=True, metavar="INSTANCE_ID...")
@click.option("--deadline", type=click.FloatRange(min=0), default=None, metavar="S", help="Seconds to wait (default: the spec's drain.deadline_seconds, else 110).")
@click.option("--no-wait", is_flag=True, help="Set DRAINING and deregister targets, then return without verifying.")
@click.pass_obj
def drain(obj: Context, cluster: str, instance_ids: tuple[str, ...], deadline: float | None, no_wait: bool) -> None:
    """Drain EC2 instances of CLUSTER: DRAINING and ALB targets deregistered first, then verified.

    Exits 6 when any instance still had tasks or targets at the deadline, 7 when an instance is
    neither a container instance of CLUSTER nor holds a target, 5 when another owner holds an
    instance's drain lease (nothing was done to it).
    """
    from ecsspot.events import is_instance_id

    bad = [i for i in instance_ids if not is_instance_id(i)]
    if bad:
        raise InputError(f"not EC2 instance ids: {', '.join(bad)}")
    output.progress(f"draining {len(instance_ids)} instance(s) of {cluster}…", quiet=obj.verbosity < 0)
    result = obj.manager().drain(cluster, list(instance_ids), deadline=deadline, wait=not no_wait)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_actions(result.actions))
    if result.timed_out:
        raise DeadlineError(f"drain timed out with work left on {', '.join(result.timed_out)}")
    if result.not_found:
        raise NotFoundError(f"not found in cluster {cluster}: {', '.join(result.not_found)}")
    held = [a.instance_id or "" for a in result.actions if a.status == "skipped"]
    if held:
        raise ConflictError(f"another owner holds the drain lease of {', '.join(held)}; nothing was done to them")


@click.command("handle-event")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--dry-run", is_flag=True, help="Decide from the payload alone; make no AWS call.")
@click.option("--cluster", "default_cluster", default=None, envvar="ECSSPOT_CLUSTER", help="Cluster for instances without an ecsspot:cluster tag.")
@click.pass_obj
def handle_event(obj: Context, source: str, dry_run: bool, default_cluster: str | None) -> None:
    """Handle an event payload as the interruption Lambda would (EventBridge event, SQS or SNS batch).

    Succeeds once the event is handled, even when a drain ran out of deadline (its action says
    timed_out). A payload that is not an event at all (not UTF-8 JSON, nested too deeply, over
    6 MB, Lambda's payload limit) exits 3; an event whose handling failed (AWS refused a call)
    exits 4. A batch (SQS/SNS records) exits 0 when any record was handled, as the Lambda
    reports the others in batchItemFailures; when every record failed it exits 3 if all were
    malformed, else 4.
    """
    payload = _read_payload(source)
    if dry_run:
        from ecsspot.interruption import dry_run as decide_only

        result = decide_only(payload)
    else:
        result = obj.manager().handle_event(payload, default_cluster=default_cluster)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_actions(result.actions, result.batch_item_failures))
    errors = [a.reason for a in result.actions if a.kind == "error"]
    if errors and not result.batch:
        raise EventError(errors[0])
    if result.batch:
        _check_batch(payload, result)
        return
    from ecsspot.handlers import failed_actions, handling_failed

    # Handled means handled: an event whose handling failed (AWS refused) exits 4, like the
    # Lambda, which fails so that it is retried.
    failed = failed_actions(result)
    if failed:
        raise handling_failed(failed)


def _check_batch(payload: Any, result: HandleResult) -> None:
    """A batch none of whose records got through is a failure: 3 if all were malformed, else 4."""
    from ecsspot.errors import HandlingFailed
    from ecsspot.events import parse_batch

    # Parsing again (pure, cheap) is how the records map to their ids and parse errors.
    records = parse_batch(payload)
    failed_ids = set(result.batch_item_failures)
    malformed = [r for r in records if not r.ok]
    failed = [r for r in records if r.ok and r.message_id is not None and r.message_id in failed_ids]
    if not records or len(malformed) + len(failed) < len(records):
        return
    n = len(records)
    if not failed:
        raise EventError(f"all {n} record{'s' if n != 1 else ''} of the batch are malformed; the first: {malformed[0].error}")
    first = next((a for a in result.actions if a.status == "failed" and a.kind != "error"), None)
    why = f"; the first: {first.kind} {first.instance_id}: {first.reason}" if first else ""
    raise HandlingFailed(f"all {n} record{'s' if n != 1 else ''} of the batch failed ({len(failed)} while handling, {len(malformed)} malformed){why}")


def _read_payload(source: str) -> Any:
    where = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
        else:
            with open(source, "rb") as fh:
                data = fh.read(MAX_PAYLOAD_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{source}: {exc.strerror}") from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise EventError(f"{where}: larger than {MAX_PAYLOAD_BYTES} bytes (Lambda's payload limit): not an event")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"{where}: not UTF-8 text (byte {exc.start}): not an event") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise EventError(f"{where}: not JSON: {exc}") from None
    except RecursionError:
        raise EventError(f"{where}: not JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise EventError(f"{where}: an event is a JSON object, got {type(payload).__name__}")
    return payload


COMMANDS = [drain, handle_event]
