"""``ecsspot refresh CLUSTER``: rolling AMI refresh with progress on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import DeadlineError, InputError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


def _batch(value: str | None) -> int | str | None:
    if value is None:
        return None
    text = value.strip()
    if text.endswith("%") and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 100:
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise InputError(f'--batch-size: {value!r} is not a count ≥ 1 or a percentage like "25%"')


@click.command()
@click.argument("cluster")
@click.option("--ami", default=None, metavar="ID", help="The image: ami-… or ssm:/parameter.")
@click.option("--latest", is_flag=True, help="The image in the spec's refresh.ami_parameter (the default).")
@click.option("--batch-size", default=None, metavar="N|P%", help="Instances per batch (default: the spec's refresh.batch_size).")
@click.option("--min-healthy-percent", type=click.IntRange(0, 100), default=None, help="Default: the spec's refresh.min_healthy_percent.")
@click.option("--resume", is_flag=True, help="Continue a refresh that stopped (crash, Ctrl-C, Lambda time limit).")
@click.pass_obj
def refresh(obj: Context, cluster: str, ami: str | None, latest: bool, batch_size: str | None, min_healthy_percent: int | None, resume: bool) -> None:
    """Replace CLUSTER's instances with a new AMI: new capacity first, verified drains in batches.

    Exits 6 when the new instances failed and the refresh rolled back (the JSON says why).
    """
    if ami and latest:
        raise InputError("--ami and --latest exclude each other")
    quiet = obj.verbosity < 0
    seen: dict[str, Any] = {}

    def on_progress(progress: Any) -> None:
        for pool in progress.get("pools", ()):
            batch = pool.get("batch") or {}
            line = f"{pool['pool']}: {len(pool['replaced'])}/{len(pool['old'])} replaced" + (f", {batch['step']}" if batch else f", {pool['state']}")
            if seen.get(pool["pool"]) != line:
                seen[pool["pool"]] = line
                output.progress(f"refresh {progress['phase']}: {line}", quiet=quiet)

    result = obj.manager().refresh(
        cluster, ami=ami, batch_size=_batch(batch_size), min_healthy_percent=min_healthy_percent, resume=resume, on_progress=on_progress
    )
    if obj.json:
        output.emit_json(result)
    else:
        click.echo(output.render_refresh(result))
    if result.status == "rolled_back":
        raise DeadlineError(f"refresh rolled back: {result.reason}")


COMMANDS = [refresh]
