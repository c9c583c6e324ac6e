"""Rendering results: JSON (``attrs.asdict`` made JSON-safe) and plain text tables.

Results go to stdout; everything else (progress, prompts, warnings about the run) to stderr,
so ``--output json`` leaves exactly one JSON document on stdout.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import click

if TYPE_CHECKING:
    from ecsspot.apply import ApplyResult
    from ecsspot.lint import LintWarning
    from ecsspot.plan import Change, Plan
    from ecsspot.status import Status
    from ecsspot.teardown import TeardownResult

SYMBOLS = {"create": "+", "update": "~", "replace": "±", "delete": "-"}
ARROW = "→"
NONE = "(none)"


# --- JSON ------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Plain JSON data from results: attrs classes, mappings, tuples, sets; anything else as text."""
    if attrs.has(type(value)):
        return jsonable(attrs.asdict(value, recurse=True))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def dumps(document: Any) -> str:
    return json.dumps(jsonable(document), indent=2)


def emit_document(document: Any) -> None:
    """Write the one document of this run to stdout: JSON, or YAML with ``--output yaml``, of
    what ``--query`` (JMESPath, as awscli's) selects when given."""
    ctx = click.get_current_context(silent=True)
    obj = getattr(ctx, "obj", None)
    doc = jsonable(document)
    query = getattr(obj, "query", None)
    if query:
        import jmespath  # botocore's own dependency

        doc = jmespath.search(query, doc)
    if getattr(obj, "output", "json") == "yaml":
        import yaml

        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(json.dumps(doc, indent=2))


# --- text building blocks --------------------------------------------------------------------


def _width() -> int:
    # Pipes and CI have no terminal: wrap at a width that reads well in logs.
    return max(60, shutil.get_terminal_size((100, 24)).columns)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, indent: str = "", wrap_last: bool = False) -> list[str]:
    """Aligned columns; ``wrap_last`` folds a long last column under itself."""
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lead = len(indent) + sum(w + 2 for w in widths[:-1])

    def line(row: Sequence[str]) -> list[str]:
        head = indent + "".join(c.ljust(w + 2) for c, w in zip(row[:-1], widths[:-1], strict=True))
        last = row[-1]
        room = _width() - lead
        if wrap_last and len(last) > room and room >= 20:
            # Between words only: an ARN, an id or a hyphenated name too long for the room stays
            # whole (the terminal folds it; copying it still gives the ARN).
            parts = textwrap.wrap(last, room, break_long_words=False, break_on_hyphens=False) or [""]
            return [head + parts[0]] + [" " * lead + p for p in parts[1:]]
        return [(head + last).rstrip()]

    out = line(list(headers))
    for row in cells:
        out += line(row)
    return out


#: Control characters (a terminal obeys ESC sequences) and lone surrogates (which stdout cannot
#: encode): event payloads are anyone's text, so they are shown escaped.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def inert(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes (``\\x1b``)."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return inert(str(value))


def value_text(value: Any) -> str:
    """A diff value on one line: strings bare, None as (none), the rest as compact JSON."""
    if value is None:
        return NONE
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(jsonable(value), separators=(", ", ": "))


# --- results ---------------------------------------------------------------------------------


def change_lines(change: Change, resource_width: int = 0) -> list[str]:
    lines = [f"  {SYMBOLS.get(change.action, '?')} {change.resource.ljust(resource_width)}  {change.name}"]
    if change.reason:
        lines.append(f"      # {change.reason}")
    for field, pair in change.diff.items():
        before, after = [*pair, None, None][:2] if isinstance(pair, list | tuple) else (None, pair)
        if change.action == "create" and before is None:
            lines.append(f"      {field}: {value_text(after)}")
        else:
            lines.append(f"      {field}: {value_text(before)} {ARROW} {value_text(after)}")
    return lines


def summary_line(summary: Mapping[str, int], verb: str = "Plan") -> str:
    return (
        f"{verb}: {summary.get('create', 0)} to create, {summary.get('update', 0)} to update, "
        f"{summary.get('replace', 0)} to replace, {summary.get('delete', 0)} to delete."
    )


def warning_lines(warnings: Sequence[LintWarning]) -> list[str]:
    if not warnings:
        return []
    n = len(warnings)
    return [
        f"{n} warning{'s' if n != 1 else ''}:",
        *table(("CODE", "PATH", "MESSAGE"), ((w.code, w.path, w.message) for w in warnings), indent="  ", wrap_last=True),
    ]


def render_plan(plan: Plan) -> str:
    lines: list[str] = []
    if plan.changes:
        legend = "  ".join(f"{s} {a}" for a, s in SYMBOLS.items())
        lines += [f"Plan for cluster {plan.cluster} ({legend}):", ""]
        width = max(len(c.resource) for c in plan.changes)
        for change in plan.changes:
            lines += change_lines(change, width)
        lines += ["", summary_line(plan.summary)]
    else:
        lines.append(f"No changes: cluster {plan.cluster} matches the spec.")
    for pool, types in plan.resolved_instance_types.items():
        listed = ", ".join(types) if types else "none"
        lines += ["", f"Pool {pool}: instance_requirements resolve to {len(types)} instance {'type' if len(types) == 1 else 'types'}: {listed}"]
    if plan.warnings:
        lines += ["", *warning_lines(plan.warnings)]
    if plan.advice:
        lines += ["", "Advice (information, not a change):", *(f"  {a}" for a in plan.advice)]
    return "\n".join(lines)


def render_apply(result: ApplyResult) -> str:
    """After apply (the plan was shown before): what was done, in one or two lines."""
    if not result.changes:
        return f"No changes: cluster {result.cluster} matches the spec."
    s = result.summary
    lines = [
        f"Apply complete for cluster {result.cluster}: {s.get('create', 0)} created, {s.get('update', 0)} updated, "
        f"{s.get('replace', 0)} replaced, {s.get('delete', 0)} deleted."
    ]
    if result.launch_template_version is not None:
        lines.append(f"Launch template version in use: {result.launch_template_version}.")
    return "\n".join(lines)


def render_status(status: Status) -> str:
    lines = [f"Cluster {status.cluster}"]
    if status.pools:
        lines += [
            "",
            *table(
                ("POOL", "AUTO SCALING GROUP", "DESIRED", "SPOT", "ON-DEMAND", "DRAINING"),
                ((p.pool, p.auto_scaling_group, p.desired_capacity, p.spot, p.on_demand, p.draining) for p in status.pools),
            ),
        ]
    if status.instances:
        lines += [
            "",
            *table(
                ("INSTANCE", "POOL", "LIFECYCLE", "TYPE", "AZ", "IMAGE", "ECS", "TASKS", "PROTECTED", "STATE"),
                (
                    (
                        i.instance_id,
                        i.pool,
                        i.lifecycle,
                        i.instance_type or None,
                        i.availability_zone,
                        i.image_id,
                        i.container_instance_status,
                        i.running_tasks,
                        i.protected_from_scale_in,
                        i.lifecycle_state or None,
                    )
                    for i in status.instances
                ),
            ),
        ]
    else:
        lines += ["", "No instances."]
    if status.refresh:
        r = status.refresh
        pools = "; ".join(f"{p['pool']} {p['replaced']}/{p['old']} {p['step'] or p['state']}" for p in r.get("pools", ()))
        lines += ["", f"Refresh {r.get('phase')} to {r.get('image_id')}" + (f": {pools}" if pools else "")]
    return "\n".join(lines)


def render_teardown(result: TeardownResult) -> str:
    if not result.deleted:
        return f"Nothing to tear down for cluster {result.cluster}: no cluster and no ecsspot resources tagged for it."
    return "\n".join([f"Deleted from cluster {result.cluster}:"] + [f"  - {item}" for item in result.deleted])


def progress(message: str, *, quiet: bool = False) -> None:
    """A progress note on stderr (never stdout, so JSON stays clean); silenced by ``-q``."""
    if not quiet:
        click.echo(message, err=True)


def show(text: str, *, to_stderr: bool = False) -> None:
    """Print human-readable text; with ``--output json`` it goes to stderr instead of stdout."""
    click.echo(text, err=to_stderr)


def render_actions(actions: Sequence[Any], failures: Sequence[str] = ()) -> str:
    """Drain / handle-event actions as a table (reasons wrap in the last column)."""
    if not actions:
        return "No actions."
    lines = table(
        ("KIND", "INSTANCE", "STATUS", "REASON"),
        ((a.kind, a.instance_id, a.status, a.reason) for a in actions),
        wrap_last=True,
    )
    if failures:
        lines += ["", "Batch item failures (returned to the queue): " + ", ".join(inert(f) for f in failures)]
    return "\n".join(lines)


def render_refresh(result: Any) -> str:
    lines = [f"Refresh of cluster {result.cluster}: {result.status}"]
    if result.image_id:
        lines.append(f"Image: {result.image_id}")
    if result.new_version is not None:
        lines.append(f"Launch template version: {result.previous_version} → {result.new_version}")
    if result.replaced:
        lines.append(f"Replaced {len(result.replaced)} instance(s): " + ", ".join(result.replaced))
    if result.reason:
        lines.append(f"Reason: {result.reason}")
    return "\n".join(lines)
