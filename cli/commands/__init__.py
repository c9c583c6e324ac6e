"""Command modules; each exposes ``COMMANDS`` (a list of click commands) that ``main`` registers.

Helpers shared by several commands live here: reading a spec file or another YAML document, and
asking for confirmation.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import InputError

if TYPE_CHECKING:
    from ecsspot.spec import ClusterSpec

def read_yaml_file(path: str, option: str, max_bytes: int) -> Any:
    """The YAML (or JSON) document in ``path``, given with ``option``; any problem, from a missing
    file to a bad byte, is one InputError line naming the option and the file."""
    import yaml

    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise InputError(f"{option}: {path} is larger than {max_bytes} bytes")
    try:
        return yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{option}: {path} is not YAML: {' '.join(str(exc).split())[:200]}") from None


spec_file_option = click.option(
    "-f",
    "--file",
    "spec_file",
    required=True,
    metavar="SPEC",
    help="The cluster spec (YAML); - reads it from stdin.",
)


def read_spec(path: str) -> ClusterSpec:
    """Load and validate a spec file (``-`` is stdin); SpecError lists every problem."""
    from ecsspot.spec import MAX_SPEC_BYTES, load_spec, loads_spec

    if path == "-":
        # Bytes, and no more than the limit allows: binary or endless input is a SpecError too.
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read(MAX_SPEC_BYTES + 1) if stdin is not None else sys.stdin.read(MAX_SPEC_BYTES + 1)
        return loads_spec(data, source="<stdin>")
    return load_spec(path)


class ConfirmationError(InputError):
    """A change needs a yes and none came (no terminal, stdin closed, or the answer was no)."""


def confirm(question: str, *, what: str) -> None:
    """Ask on stderr; raise ConfirmationError unless the answer is yes.

    An answer piped on stdin counts (``yes | ecsspot apply``); an empty or closed stdin, as in
    CI, never does: that needs ``--yes``.
    """
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.Abort:
        # click.confirm raises Abort on EOF (nothing to read) and on Ctrl-C.
        click.echo("", err=True)
        if sys.stdin is not None and sys.stdin.isatty():
            raise ConfirmationError(f"{what} cancelled: nothing was changed") from None
        raise ConfirmationError(
            f"refusing to {what} without confirmation: stdin is not a terminal and gave no answer; pass --yes"
        ) from None
    if not answer:
        raise ConfirmationError(f"{what} cancelled: nothing was changed")
