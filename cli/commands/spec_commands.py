"""Commands that take a spec file: ``validate`` (offline), ``plan`` and ``apply``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ecsspot.errors import SpecError
from ecsspot_cli import output
from ecsspot_cli.commands import confirm, read_spec, spec_file_option

if TYPE_CHECKING:
    from ecsspot_cli.main import Context

#: ``plan --detailed-exitcode`` when the plan has changes (as terraform does).
EXIT_CHANGES = 2


@click.command()
@spec_file_option
@click.pass_obj
def validate(obj: Context, spec_file: str) -> None:
    """Check a spec file and lint it, offline (no AWS calls).

    Exit 0 when the spec is valid (warnings included), 3 when it is not: every problem is listed
    on stderr, one per line. With --output json an invalid spec also prints
    {"valid": false, "problems": [...]} on stdout.
    """
    from ecsspot.lint import lint

    try:
        spec = read_spec(spec_file)
    except SpecError as err:
        if obj.json:
            output.emit_document({"valid": False, "cluster": None, "problems": err.problems, "warnings": []})
        raise
    warnings = lint(spec)
    if obj.json:
        output.emit_document({"valid": True, "cluster": spec.cluster, "warnings": warnings})
        return
    pools = len(spec.pools)
    where = "<stdin>" if spec_file == "-" else spec_file
    lines = [f"spec OK: {where} (cluster {spec.cluster}, {pools} pool{'s' if pools != 1 else ''})"]
    if warnings:
        lines += ["", *output.warning_lines(warnings)]
    click.echo("\n".join(lines))


@click.command()
@spec_file_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to change, 2 when there are changes (errors keep their own codes).",
)
@click.pass_obj
def plan(obj: Context, spec_file: str, detailed_exitcode: bool) -> None:
    """Show what apply would change (makes no change)."""
    spec = read_spec(spec_file)
    the_plan = obj.manager(spec.region).plan(spec)
    if obj.json:
        # has_changes: what a script asks first, without counting the summary itself.
        output.emit_document({**output.jsonable(the_plan), "has_changes": the_plan.has_changes})
    else:
        click.echo(output.render_plan(the_plan))
    if detailed_exitcode and the_plan.has_changes:
        click.get_current_context().exit(EXIT_CHANGES)


@click.command()
@spec_file_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.pass_obj
def apply(obj: Context, spec_file: str, yes: bool) -> None:
    """Converge AWS to the spec, after showing the plan and asking.

    Without --yes the plan is shown and confirmed; when stdin gives no answer (CI, /dev/null)
    nothing is applied and the exit code is 3. If the cluster changed between the plan shown and
    the apply, the apply is refused (exit 5) and nothing is changed.
    """
    from ecsspot.apply import ApplyResult

    spec = read_spec(spec_file)
    manager = obj.manager(spec.region)
    shown = manager.plan(spec)
    obj.progress.close()  # the plan and the question, not a live line, are what the user reads now
    # With --output json the plan is for the human at the prompt: stderr keeps stdout one document.
    output.show(output.render_plan(shown), to_stderr=obj.json)
    if not shown.has_changes:
        if obj.json:
            output.emit_document(ApplyResult(cluster=shown.cluster, changes=(), summary=dict(shown.summary)))
        return
    if not yes:
        n = len(shown.changes)
        confirm(f"Apply {n} change{'s' if n != 1 else ''} to cluster {spec.cluster}?", what="apply")
    output.progress(f"applying to cluster {spec.cluster}…", quiet=obj.verbosity < 0)
    result = manager.apply(spec, shown)
    if obj.json:
        output.emit_document(result)
    else:
        click.echo(output.render_apply(result))


COMMANDS = [validate, plan, apply]
