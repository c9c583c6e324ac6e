"""``ecsspot savings CLUSTER``: instance-hours and cost by pool and lifecycle against on-demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot.savings import SavingsReport
    from ecsspot_cli.main import Context

MAX_PRICES_BYTES = 256 * 1024


@click.command()
@click.argument("cluster")
@click.option("--days", type=click.IntRange(1, 31), default=7, show_default=True, help="UTC days to report, today included.")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False), default=None, metavar="FILE", help="YAML/JSON map of instance type to on-demand USD per hour, over the shipped table.")
@click.option("--chart", type=click.Path(dir_okay=False), default=None, metavar="FILE", help="Also draw instance-hours per day by lifecycle as an SVG picture.")
@click.pass_obj
def savings(obj: Context, cluster: str, days: int, prices_file: str | None, chart: str | None) -> None:
    """What CLUSTER's instances cost over the last DAYS days, by pool and lifecycle, against the
    same hours on demand.

    Hours come from the capacity ledger the refresh Lambda's schedule records (plus the running
    instances up to now); spot prices from DescribeSpotPriceHistory; on-demand prices from a
    dated us-east-1 table (ecsspot.prices) unless --prices gives yours. Exits 7 when CLUSTER has
    no recorded settings.
    """
    from ecsspot.prices import prices_from
    from ecsspot.savings import chart_svg, report

    overrides = None
    if prices_file:
        from ecsspot_cli.commands import read_yaml_file

        document = read_yaml_file(prices_file, "--prices", MAX_PRICES_BYTES)
        overrides = prices_from(document, where="--prices")
    result = obj.manager().run(report(cluster, days=days, prices=overrides))
    if chart:
        from ecsspot_cli.commands.demo import write_chart

        write_chart(chart, chart_svg(result), quiet=obj.verbosity < 0)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(render(result))


def render(report: SavingsReport) -> str:
    rows = [
        (line.pool, line.lifecycle, f"{line.instance_hours:.1f}", f"${line.cost:.2f}", f"${line.on_demand_cost:.2f}", f"${line.savings:.2f}", f"{line.savings_percent:.1f} %")
        for line in report.lines
    ]
    rows.append(("total", "", f"{report.instance_hours:.1f}", f"${report.cost:.2f}", f"${report.on_demand_cost:.2f}", f"${report.savings:.2f}", f"{report.savings_percent:.1f} %"))
    lines = [f"Savings of cluster {report.cluster}, {report.since} to {report.until}:"]
    lines += output.table(("pool", "lifecycle", "instance-hours", "cost", "on demand", "saved", "saved %"), rows, indent="  ")
    lines.append(f"  on-demand prices: {report.price_source}; spot prices: DescribeSpotPriceHistory (Linux/UNIX)")
    lines += [f"  not billed, no price known: {u}" for u in report.unpriced]
    return "\n".join(lines)


COMMANDS = [savings]
