"""``ecsspot simulate``: the storm simulator on the user's own spec (see ``ecsspot.sim.simulate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import InputError
from ecsspot_cli import output
from ecsspot_cli.commands import spec_file_option
from ecsspot_cli.commands.demo import write_chart

if TYPE_CHECKING:
    from ecsspot_cli.main import Context

#: A scenario file is a few lines; anything this large is a mistake.
MAX_SCENARIO_BYTES = 256 * 1024


@click.command()
@spec_file_option
@click.option("--scenario", "scenario_file", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE", help="The scenario (YAML); default: one service, a storm and a shortage at 5 min, 20 min in all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: the same seed plays the same story.")
@click.option("--chart", type=click.Path(dir_okay=False), default=None, metavar="FILE", help="Also draw the timeline as an SVG picture.")
@click.pass_obj
def simulate(obj: Context, spec_file: str, scenario_file: str | None, seed: int, chart: str | None) -> None:
    """Play a scenario (traffic, spot interruptions, capacity shortages, an AMI refresh) on the spec, in a simulated account.

    Nothing touches AWS. The report says what users would have seen: failed requests, drain
    times from the warning, instances by lifecycle over time, and cost.
    """
    from ecsspot.spec import dump_spec
    from ecsspot_cli.commands import read_spec, read_yaml_file

    try:
        from ecsspot.sim import simulate as sim
    except ImportError as exc:  # moto is the `sim` extra
        raise InputError(f"ecsspot simulate needs the simulator: pip install 'ecsspot[sim]' ({exc})") from None
    spec = read_spec(spec_file)
    document = None
    if scenario_file:
        document = read_yaml_file(scenario_file, "--scenario", MAX_SCENARIO_BYTES)
        if document is not None and not isinstance(document, dict):
            raise InputError("--scenario: the document must be a mapping (duration, services, interruptions, shortages, refresh_at)")
    plan = sim.load_scenario(document)
    quiet = obj.verbosity < 0
    output.progress(f"simulating {plan.duration / 60:.0f} virtual minutes of cluster {spec.cluster} (seed {seed})…", quiet=quiet)
    report = sim.simulate(dump_spec(spec), plan, seed=seed)
    if chart:
        from ecsspot.sim.chart import chart_svg

        write_chart(chart, chart_svg(report.timeline, f"ecsspot simulate: {spec.cluster}, seed {seed}", report.marks), quiet=quiet)
    if obj.json:
        output.emit_document(report)
    else:
        click.echo(sim.render(report))


COMMANDS = [simulate]
