"""``ecsspot demo``: the seed architecture on the embedded simulator (no AWS account needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import EcsspotError, InputError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed plays the same story.")
@click.pass_obj
def demo(obj: Context, seed: int) -> None:
    """Play a spot storm and an AMI refresh on an embedded AWS simulator (moto + ecsspot.sim).

    The timeline goes to stdout (stderr with --output json, whose summary is the only stdout).
    """
    try:
        from ecsspot.sim import demo as play
    except ImportError as exc:  # moto is the `sim` extra
        raise InputError(f"ecsspot demo needs the simulator: pip install 'ecsspot[sim]' ({exc})") from None
    quiet = obj.verbosity < 0
    # The timeline is the result in text mode (stdout) and progress beside the JSON (stderr),
    # which -q silences.
    line = None if quiet and obj.json else (lambda text: click.echo(text, err=obj.json))
    summary = play.run(seed, line=line)
    if obj.json:
        output.emit_document(summary)
    if summary.storm.failed_requests or summary.refresh_status != "done":
        raise DemoFailed(f"the demo did not go as it should: {summary.storm.failed_requests} failed requests in the storm, refresh {summary.refresh_status}")


class DemoFailed(EcsspotError):
    """ecsspot let requests fail in its own demo: a bug worth reporting."""


COMMANDS = [demo]
