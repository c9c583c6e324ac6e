"""``ecsspot advise -f SPEC``: which zones and types of each spot pool to lean on, drop or add."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot.advise import Advice
    from ecsspot_cli.main import Context


@click.command()
@click.option("-f", "--file", "spec_file", required=True, metavar="SPEC", help="The cluster spec (YAML).")
@click.option("--days", type=click.IntRange(1, 92), default=30, show_default=True, help="Days of recorded interruptions to weigh.")
@click.pass_obj
def advise(obj: Context, spec_file: str, days: int) -> None:
    """Rank each spot pool's Availability Zones by AWS's spot placement score and its types by
    the interruptions ecsspot's handler recorded, and say which types to drop or add.

    Advice only: nothing is changed. Exits 0 whatever it advises.
    """
    from ecsspot.advise import advise as advise_workflow
    from ecsspot_cli.commands import read_spec

    spec = read_spec(spec_file)
    result = obj.manager().run(advise_workflow(spec, days=days))
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(render(result))


def render(advice: Advice) -> str:
    lines = [f"Advice for cluster {advice.cluster} (interruptions of the last {advice.days} days):"]
    if not advice.pools:
        lines.append("  no pool runs spot")
    for pool in advice.pools:
        lines.append(f"  pool {pool.pool}")
        zones = [(z.availability_zone, z.zone_id, "-" if z.score is None else f"{z.score}/10", str(z.interruptions)) for z in pool.zones]
        lines += output.table(("zone", "id", "placement score", "interruptions"), zones, indent="    ")
        types = [(t.instance_type, t.verdict, str(t.interruptions), t.reason) for t in pool.types]
        lines += output.table(("type", "advice", "interruptions", "why"), types, indent="    ", wrap_last=True)
        lines += [f"    note: {n}" for n in pool.notes]
    return "\n".join(lines)


COMMANDS = [advise]
