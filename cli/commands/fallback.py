"""``ecsspot fallback tick``: a spot pool short of capacity launches on demand, and back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import AwsError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.group()
def fallback() -> None:
    """Spot → on-demand fallback of the cluster's spot pools (spec section fallback:)."""


@fallback.command()
@click.argument("cluster")
@click.option("--apply", "apply_", is_flag=True, help="Carry out the decisions (default: only show them).")
@click.pass_obj
def tick(obj: Context, cluster: str, apply_: bool) -> None:
    """One look at CLUSTER's spot pools: a pool InService short of its desired capacity for
    fallback.detect_after while spot launches fail gets its OnDemandBaseCapacity raised (up to
    fallback.max_on_demand); one quiet for fallback.cooldown goes back to the spec's base, and its
    on-demand surplus is drained and replaced on spot, one instance a tick.

    A dry run unless --apply (it still records when each shortage began). Exits 4 when AWS
    refused a change or a surplus instance did not drain, 5 when another run holds the fallback
    lease (--apply), 7 when CLUSTER has no recorded settings.
    """
    from ecsspot.fallback import tick as run_tick

    manager = obj.manager()
    result = manager.run(run_tick(cluster, owner=manager.owner, apply=apply_))
    if obj.json:
        output.emit_document(result)
    else:
        mode = "applied" if apply_ else "dry run: nothing changed (--apply acts)"
        click.echo(f"Fallback of cluster {cluster} ({mode}):")
        rows = ((a.kind, a.pool, a.instance_id or "", a.status, a.reason) for a in result.actions)
        click.echo("\n".join(output.table(("KIND", "POOL", "INSTANCE", "STATUS", "REASON"), rows, wrap_last=True)) if result.actions else "No spot pools.")
    if result.failed:
        reasons = "; ".join(f"{a.pool}: {a.reason}" for a in result.failed)
        raise AwsError("UpdateAutoScalingGroup", "Failed", reasons, service="autoscaling")


COMMANDS = [fallback]
