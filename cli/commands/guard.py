"""``ecsspot protection`` and ``ecsspot watchdog``: scale-in protection off idle instances, and
instances stuck DRAINING reported (or set ACTIVE again)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import AwsError, DeadlineError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.command()
@click.argument("cluster")
@click.option("--apply", "apply_", is_flag=True, help="Change protection as decided (default: only show the decisions).")
@click.pass_obj
def protection(obj: Context, cluster: str, apply_: bool) -> None:
    """Take scale-in protection off CLUSTER's instances that ran only daemon tasks (or none) for
    longer than the spec's protection.idle_after, and put it back on unprotected ones with tasks.

    A dry run unless --apply; either way it records in the state table when it first saw each
    instance idle (the threshold counts from there). Exits 4 when AWS refused a change, 5 when
    another run holds the protection lease (--apply), 7 when CLUSTER has no recorded settings.
    """
    from ecsspot.protection import reconcile

    manager = obj.manager()
    result = manager.run(reconcile(cluster, owner=manager.owner, apply=apply_))
    if obj.json:
        output.emit_document(result)
    else:
        mode = "applied" if apply_ else "dry run: nothing changed (--apply acts)"
        click.echo(f"Protection of cluster {cluster} ({mode}):")
        click.echo(output.render_actions(result.actions))
    if result.failed:
        reasons = "; ".join(f"{a.instance_id}: {a.reason}" for a in result.failed)
        raise AwsError("SetInstanceProtection", "Failed", reasons, service="autoscaling")


@click.command()
@click.argument("cluster")
@click.option("--reactivate", is_flag=True, help="Set instances stuck DRAINING back to ACTIVE (default: the spec's watchdog.reactivate).")
@click.pass_obj
def watchdog(obj: Context, cluster: str, reactivate: bool) -> None:
    """Report CLUSTER's container instances DRAINING for longer than the spec's
    watchdog.drain_timeout whose tasks cannot be placed elsewhere: which tasks, which services.

    With --reactivate they are set ACTIVE again (never one ecsspot is draining now, one going
    away, or one its group is taking out) and the reason is recorded in the state table. Exits 6
    when a stuck instance is left DRAINING, 5 when another run holds the watchdog lease
    (--reactivate), 7 when CLUSTER has no recorded settings.
    """
    from ecsspot.watchdog import watch

    manager = obj.manager()
    result = manager.run(watch(cluster, owner=manager.owner, reactivate=True if reactivate else None))
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(f"Drain watchdog of cluster {cluster}:")
        click.echo(output.render_actions(result.actions))
    left = [a.instance_id for a in result.stuck if a.status != "reactivated"]
    if left:
        raise DeadlineError(f"stuck DRAINING past the drain_timeout: {', '.join(left)}")


COMMANDS = [protection, watchdog]
