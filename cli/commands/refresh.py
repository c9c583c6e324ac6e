"""``ecsspot refresh CLUSTER``: rolling AMI refresh with progress on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import DeadlineError, InputError
from ecsspot.progress import load
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
    show = _Progress(quiet=quiet, bar=not quiet and sys.stderr.isatty())
    if show.use_bar:
        obj.progress.quiet = True  # the bar is the refresh's live line: one live renderer on a terminal

    manager = obj.manager()
    try:
        result = manager.refresh(
            cluster, ami=ami, batch_size=_batch(batch_size), min_healthy_percent=min_healthy_percent, resume=resume, on_progress=show
        )
    except KeyboardInterrupt:
        show.close()
        # Progress is saved after every step; give the lease back so --resume need not wait for it to expire.
        _release_lease(manager, cluster)
        output.progress(f"refresh interrupted; continue it with `ecsspot refresh {cluster} --resume`", quiet=quiet)
        raise
    finally:
        show.close()
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_refresh(result))
    if result.status == "rolled_back":
        raise DeadlineError(f"refresh rolled back: {result.reason}")


class _Progress:
    """Refresh progress on stderr: a bar on a terminal, else one line per change (logs, CI)."""

    def __init__(self, *, quiet: bool, bar: bool) -> None:
        self.quiet = quiet
        self.use_bar = bar
        self.bar: Any = None
        self.seen: dict[str, str] = {}

    def __call__(self, document: Mapping[str, Any]) -> None:
        if self.quiet:
            return
        progress = load(document)
        pools = progress.pools
        if self.use_bar:
            total = max(sum(len(p.old) for p in pools), 1)
            done = sum(len(p.replaced) for p in pools)
            now = ", ".join(f"{p.pool} {p.batch.step if p.batch else p.state}" for p in pools)
            if self.bar is None:
                self.bar = click.progressbar(
                    length=total, label=f"refresh to {progress.image_id}", file=sys.stderr,
                    show_pos=True, show_eta=False, item_show_func=lambda item: item,
                )
            self.bar.length = total
            self.bar.update(done - self.bar.pos, f"{progress.phase}: {now}")
            return
        for pool in pools:
            line = f"{pool.pool}: {len(pool.replaced)}/{len(pool.old)} replaced, " + (pool.batch.step if pool.batch else pool.state)
            if self.seen.get(pool.pool) != line:
                self.seen[pool.pool] = line
                output.progress(f"refresh {progress.phase}: {line}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None


def _release_lease(manager: Any, cluster: str) -> None:
    from ecsspot import store
    from ecsspot.refresh import LEASE
    from ecsspot.spec import table_name

    try:
        manager.run(store.release_lease(table_name(cluster), LEASE, manager.owner))
    except Exception as exc:  # noqa: BLE001 - best effort on the way out of Ctrl-C: the lease expires by itself anyway
        logging.getLogger("ecsspot.cli").debug("refresh lease of %s not given back (it expires by itself): %s", cluster, exc)


COMMANDS = [refresh]
