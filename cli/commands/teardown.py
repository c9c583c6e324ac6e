"""``ecsspot teardown CLUSTER``: delete everything ecsspot created for a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot_cli import output
from ecsspot_cli.commands import confirm

if TYPE_CHECKING:
    from ecsspot_cli.main import Context

DEFAULT_DEADLINE = 900


@click.command()
@click.argument("cluster")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@click.option(
    "--deadline",
    type=click.FloatRange(min=0),
    default=DEFAULT_DEADLINE,
    show_default=True,
    metavar="S",
    help="Seconds to wait for the instances to go; past it, stop and exit 6 naming what is left.",
)
@click.pass_obj
def teardown(obj: Context, cluster: str, yes: bool, deadline: float) -> None:
    """Delete CLUSTER and every ecsspot resource tagged for it.

    Instances are drained and unprotected first, so protected instances never hang the delete.
    Refused (exit 3, nothing changed) while the cluster has active services.
    """
    if not yes:
        confirm(
            f"Delete cluster {cluster} with its Auto Scaling groups (and their instances), capacity providers, "
            "launch template and state table?",
            what="tear down",
        )
    output.progress(f"tearing down cluster {cluster}…", quiet=obj.verbosity < 0)
    result = obj.manager().teardown(cluster, deadline=deadline)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_teardown(result))


COMMANDS = [teardown]
