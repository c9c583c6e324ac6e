"""``ecsspot status CLUSTER``: the cluster's instances by pool and lifecycle, with ECS's view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.command()
@click.argument("cluster")
@click.pass_obj
def status(obj: Context, cluster: str) -> None:
    """Show CLUSTER's pools and instances (exit 7 when there is no such cluster)."""
    result = obj.manager().status(cluster)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_status(result))


COMMANDS = [status]
