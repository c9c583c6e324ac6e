"""``ecsspot demo``: the seed architecture on the embedded simulator (no AWS account needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import EcsspotError, InputError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed plays the same story.")
@click.option("--chart", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE", help="Also draw the timeline as an SVG picture.")
@click.pass_obj
def demo(obj: Context, seed: int, chart: str | None) -> None:
    """Play a spot storm and an AMI refresh on an embedded AWS simulator (moto + ecsspot.sim).

    The timeline goes to stdout (stderr with --output json, whose summary is the only stdout).
    """
    quiet = obj.verbosity < 0
    # Importing moto and starting its server takes seconds: say so before, not after.
    output.progress("starting the embedded AWS simulator (moto + ecsspot.sim)…", quiet=quiet)
    try:
        from ecsspot.sim import demo as play
    except ImportError as exc:  # moto is the `sim` extra
        raise InputError(f"ecsspot demo needs the simulator: pip install 'ecsspot[sim]' ({exc})") from None
    # The timeline is the result in text mode (stdout) and progress beside the JSON (stderr),
    # which -q silences.
    line = None if quiet and obj.json else (lambda text: click.echo(text, err=obj.json))
    rows: list[Any] = []
    summary = play.run(seed, line=line, on_snapshot=rows.append)
    if chart:
        from ecsspot.sim.chart import chart_svg

        write_chart(chart, chart_svg(rows, f"ecsspot demo, seed {seed}: spot storm then AMI refresh"), quiet=quiet)
    if obj.json:
        output.emit_document(summary)
    if summary.storm.failed_requests or summary.refresh_status != "done":
        raise DemoFailed(f"the demo did not go as it should: {summary.storm.failed_requests} failed requests in the storm, refresh {summary.refresh_status}")


def write_chart(path: str, svg: str, *, quiet: bool) -> None:
    """Write the picture; a path that cannot be written is an input error naming it."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
    except OSError as exc:
        raise InputError(f"--chart: cannot write {path}: {exc.strerror or exc}") from None
    output.progress(f"chart written to {path}", quiet=quiet)


class DemoFailed(EcsspotError):
    """ecsspot let requests fail in its own demo: a bug worth reporting."""


COMMANDS = [demo]
