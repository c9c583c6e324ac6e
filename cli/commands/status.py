"""``ecsspot status CLUSTER``: the cluster's instances by pool and lifecycle, with ECS's view,
and what its capacity saved over the last week."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import EcsspotError, NotFoundError
from ecsspot_cli import output

if TYPE_CHECKING:
    from ecsspot.savings import SavingsReport
    from ecsspot_cli.main import Context

log = logging.getLogger("ecsspot.cli")
SAVINGS_DAYS = 7


@click.command()
@click.argument("cluster")
@click.pass_obj
def status(obj: Context, cluster: str) -> None:
    """Show CLUSTER's pools and instances, and the last 7 days' savings when ecsspot manages it
    (exit 7 when there is no such cluster)."""
    manager = obj.manager()
    result = manager.status(cluster)
    saved, why = _savings(manager, cluster)
    if obj.json:
        doc: dict[str, Any] = output.jsonable(result)
        doc["savings"] = output.jsonable(saved)
        output.emit_document(doc)
        return
    click.echo(output.render_status(result))
    if saved is not None:
        click.echo(
            f"Savings, last {SAVINGS_DAYS} days: ${saved.cost:.2f} paid for {saved.instance_hours:.1f} instance-hours, "
            f"${saved.on_demand_cost:.2f} on demand ({saved.savings_percent:.1f} % saved; `ecsspot savings {cluster}` for the detail)"
        )
    elif why:
        click.echo(f"Savings: not available: {why}")


def _savings(manager: Any, cluster: str) -> tuple[SavingsReport | None, str]:
    """The week's report, or why there is none: a cluster ecsspot never applied has no ledger
    (nothing to say), and a failed read never fails ``status`` (the instances are its job)."""
    from ecsspot.savings import report

    try:
        return manager.run(report(cluster, days=SAVINGS_DAYS)), ""
    except NotFoundError:
        return None, ""
    except EcsspotError as exc:
        log.debug("savings for status failed", exc_info=True)
        return None, str(exc)


COMMANDS = [status]
