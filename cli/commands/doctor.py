"""``ecsspot doctor CLUSTER``: the cluster's event wiring checked end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import WiringError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.command()
@click.argument("cluster")
@click.option("--prefix", default=None, metavar="PREFIX", help="Name prefix of the rules and queue (default: the Terraform module's, ecsspot-CLUSTER).")
@click.option("--send-test-event", is_flag=True, help="Also send a marked test event through the events queue and wait for the handler to record it.")
@click.option("--wait", "wait_seconds", type=click.IntRange(1, 900), default=60, show_default=True, metavar="SECONDS", help="How long to wait for the test event.")
@click.pass_obj
def doctor(obj: Context, cluster: str, prefix: str | None, send_test_event: bool, wait_seconds: int) -> None:
    """Check that spot warnings, rebalance recommendations and ecsspot's lifecycle actions reach
    the interruption function, that the refresh ticks, and that every pool has the drain hook and
    spot draining in its user data. Each finding has a code, a status and how to fix it.

    Reads only, unless --send-test-event: a message marked "ecsspot doctor test event" goes
    through the events queue and the interruption function must record it in the state table
    (it does nothing else with it). Exits 8 when a check fails, 7 when CLUSTER has no recorded
    settings.
    """
    from ecsspot.doctor import examine

    manager = obj.manager()
    report = manager.run(examine(cluster, prefix=prefix, send_test_event=send_test_event, wait_seconds=wait_seconds))
    if obj.json:
        output.emit_document(report)
    else:
        click.echo(f"Doctor of cluster {cluster} (names {report.prefix}-*):")
        rows = [(f.code, f.status, f.subject, f.detail + (f"; fix: {f.fix}" if f.fix else "")) for f in report.findings]
        click.echo("\n".join(output.table(("code", "status", "what", "finding"), rows, indent="  ", wrap_last=True)))
    if report.failed:
        raise WiringError("; ".join(f"{f.code} {f.subject}: {f.detail}" for f in report.failed))


COMMANDS = [doctor]
