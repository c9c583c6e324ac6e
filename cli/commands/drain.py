"""``ecsspot drain`` and ``ecsspot handle-event``: verified drains, by hand or from an event."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import ConflictError, DeadlineError, EventError, InputError, NotFoundError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


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
        output.emit_json(result)
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
    timed_out). A payload that is not an event at all exits 3; an event whose handling failed
    (AWS refused a call) exits 4.
    """
    payload = _read_payload(source)
    if dry_run:
        from ecsspot.interruption import dry_run as decide_only

        result = decide_only(payload)
    else:
        result = obj.manager().handle_event(payload, default_cluster=default_cluster)
    if obj.json:
        output.emit_json(result)
    else:
        click.echo(output.render_actions(result.actions, result.batch_item_failures))
    errors = [a.reason for a in result.actions if a.kind == "error"]
    if errors and not result.batch:
        raise EventError(errors[0])
    from ecsspot.handlers import failed_actions, handling_failed

    # Handled means handled: an event whose handling failed (AWS refused) exits 4, like the
    # Lambda, which fails so that it is retried.
    failed = failed_actions(result)
    if failed:
        raise handling_failed(failed)


def _read_payload(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
    except OSError as exc:
        raise InputError(f"{source}: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise EventError(f"{'stdin' if source == '-' else source}: not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EventError(f"{'stdin' if source == '-' else source}: an event is a JSON object, got {type(payload).__name__}")
    return payload


COMMANDS = [drain, handle_event]
