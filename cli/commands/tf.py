"""``ecsspot tf HOOK``: a Terraform external data source program (see ``ecsspot_cli.terraform``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ecsspot.errors import EcsspotError
from ecsspot_cli.terraform import (
    HOOKS,
    MAX_QUERY_BYTES,
    dumps_result,
    parse_query,
    run_hook,
)

if TYPE_CHECKING:
    from ecsspot_cli.main import Context

_HOOK_LINES = "\n".join(
    f"  {h.name:<10} {' | '.join('{' + f.describe() + '}' for f in h.forms)}\n  {'':<10} {h.summary}" for h in HOOKS.values()
)


@click.command(
    "tf",
    help=f"""Run a Terraform external data source hook.

Reads one JSON object of strings (the data source's query) on stdin and writes one JSON object
of strings on stdout. On error: one line on stderr, a non-zero exit, nothing on stdout.
Booleans are "true"/"false", lists comma-separated, numbers decimal strings.

\b
Hooks and their query keys (? optional, | alternatives):
{_HOOK_LINES}
""",
)
@click.argument("hook", metavar="HOOK")
@click.pass_obj
def tf(obj: Context, hook: str) -> None:
    # Errors are reported here rather than by the group's boundary: the protocol wants exactly
    # one line on stderr, a SpecError's problems included, and the hook named.
    try:
        # One byte more than the limit is enough to know it is too much; the rest is never read.
        query = parse_query(sys.stdin.buffer.read(MAX_QUERY_BYTES + 1))
        # Terraform wants stderr empty on success and one line on error: retries go unsaid.
        document = dumps_result(run_hook(hook, query, lambda region: obj.manager(region, say_retries=False)))
    except EcsspotError as err:
        click.echo(f"ecsspot: error: tf {hook}: {' '.join(str(err).split()) or type(err).__name__}", err=True)
        click.get_current_context().exit(err.exit_code)
    click.echo(document)


COMMANDS = [tf]
