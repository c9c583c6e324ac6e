"""The suite's own scheduling: the long files tests/conftest.py hands out first still exist."""

from __future__ import annotations

from tests.conftest import LONG_FILES, ROOT


def test_every_long_file_named_first_exists() -> None:
    # A renamed file would silently drop back to path order (and start last under -n 2).
    assert [f for f in LONG_FILES if not (ROOT / f).is_file()] == []
    assert len(set(LONG_FILES)) == len(LONG_FILES)
