"""Write the README's exit-code table from ``ecsspot.errors.EXIT_CODES`` (the one table).

Run ``python scripts/readme_exit_codes.py`` after changing the table; tests/unit/test_errors.py
fails while the README differs from it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ecsspot.errors import exit_codes_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
#: The table: its header line and every row after it, up to the first line that is not a row.
TABLE = re.compile(r"^\| exit \| meaning \|\n(?:\|.*\|\n)*", re.MULTILINE)


def main() -> None:
    text = README.read_text()
    new, found = TABLE.subn(exit_codes_markdown() + "\n", text, count=1)
    if not found:
        raise SystemExit(f"{README}: no '| exit | meaning |' table to replace")
    README.write_text(new)


if __name__ == "__main__":
    main()
