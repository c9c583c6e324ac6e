"""``ecsspot status CLUSTER``: the cluster's instances by pool and lifecycle, with ECS's view."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context

log = logging.getLogger("ecsspot.cli")


@click.command()
@click.argument("cluster")
@click.pass_obj
def status(obj: Context, cluster: str) -> None:
    """Show CLUSTER's pools and instances.

    A cluster with no ecsspot pools (a wrong name or region included) shows no instances and
    exits 0, with a warning on stderr: the library reports what it finds tagged for the name.
    """
    result = obj.manager().status(cluster)
    if not result.pools:
        log.warning("no ecsspot Auto Scaling groups are tagged for cluster %r (wrong name or region?)", cluster)
    if obj.json:
        output.emit_json(result)
    else:
        click.echo(output.render_status(result))


COMMANDS = [status]
