"""The one exit-code table (``ecsspot.errors.EXIT_CODES``) and the CLI help made from it."""

from __future__ import annotations

import ecsspot.errors as errors


def test_every_error_maps_to_a_code_of_the_one_exit_code_table() -> None:
    codes = {code for code, _ in errors.EXIT_CODES}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.EcsspotError)]
    assert {c.__name__ for c in classes} >= {"InputError", "AwsError", "ConflictError", "DeadlineError", "NotFoundError", "HandlingFailed"}
    assert {c.exit_code for c in classes} <= codes


def test_the_cli_help_prints_the_table() -> None:
    from click.testing import CliRunner

    from ecsspot_cli.main import cli

    out = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    for code, meaning in errors.EXIT_CODES:
        assert f" {code} {meaning} " in out + " "  # every word of it, however wrapped


def test_the_readme_table_is_the_one_table() -> None:
    """Issue 13 item 6: the README's table is generated from errors.EXIT_CODES, not a copy."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = re.search(r"^\| exit \| meaning \|\n(?:\|.*\|\n)*", readme, flags=re.MULTILINE)
    assert table is not None
    assert table[0].rstrip("\n") == errors.exit_codes_markdown(), "run: python scripts/readme_exit_codes.py"
