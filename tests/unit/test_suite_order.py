"""The suite's own scheduling: the long files tests/conftest.py hands out first still exist."""

from __future__ import annotations

from tests.conftest import LONG_FILES, ROOT


def test_every_long_file_named_first_exists() -> None:
    # A renamed file would silently drop back to path order (and start last under -n 2).
    assert [f for f in LONG_FILES if not (ROOT / f).is_file()] == []
    assert len(set(LONG_FILES)) == len(LONG_FILES)


def test_no_two_test_files_share_a_name() -> None:
    # pytest imports test files by basename (tests/ has no __init__.py): two files of one name in
    # different folders make the second an "import file mismatch" error, failing the whole run.
    from collections import Counter

    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert len(names) > 50  # the files were found
    assert [n for n, count in names.items() if count > 1] == []
