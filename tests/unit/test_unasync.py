"""The sync ``Manager`` is generated from ``AsyncManager`` by scripts/unasync.py; drift fails here."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ecsspot
import ecsspot.manager
from ecsspot._async.manager import AsyncManager
from ecsspot._sync.manager import Manager

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "ecsspot/_async/manager.py"
GENERATED = "ecsspot/_sync/manager.py"


def _load_script() -> ModuleType:
    # scripts/ is not a package: load the file itself, as `python scripts/unasync.py` runs it.
    spec = importlib.util.spec_from_file_location("ecsspot_unasync_script", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


unasync = _load_script()


@pytest.fixture(name="tree")
def tree_fixture(tmp_path: Path) -> Path:
    """A copy of the async source and the generated file, laid out as in the repository."""
    for relative in (SOURCE, GENERATED):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, tmp_path / relative)
    return tmp_path


def test_sync_face_is_generated() -> None:
    diff = unasync.drift(ROOT)
    assert diff == "", f"ecsspot/_sync drifted from ecsspot/_async; run python scripts/unasync.py\n{diff}"


def test_check_passes_on_a_current_copy(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert unasync.main(["--check"], root=tree) == 0
    assert capsys.readouterr().out == ""


def test_hand_edit_of_generated_file_is_detected_with_its_diff(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / GENERATED
    text = path.read_text()
    edited = text.replace("return self.driver.run(workflow)", "return self.driver.run(workflow)  # patched by hand")
    assert edited != text
    path.write_text(edited)
    assert unasync.main(["--check"], root=tree) == 1
    out, err = capsys.readouterr()
    assert "-        return self.driver.run(workflow)  # patched by hand\n" in out
    assert "+        return self.driver.run(workflow)\n" in out
    assert "run python scripts/unasync.py" in err
    assert path.read_text() == edited, "--check writes nothing"


def test_an_edit_of_the_async_source_not_regenerated_is_detected(tree: Path) -> None:
    source = tree / SOURCE
    source.write_text(source.read_text().replace('"""Run any ecsspot workflow', '"""Run any one ecsspot workflow'))
    assert "+        \"\"\"Run any one ecsspot workflow" in unasync.drift(tree)


def test_generated_file_cut_short_is_detected(tree: Path) -> None:
    # Comparing line pairs (zip) would see no difference here: the whole file is compared.
    path = tree / GENERATED
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))
    assert unasync.drift(tree) != ""


def test_missing_generated_file_is_detected(tree: Path) -> None:
    (tree / GENERATED).unlink()
    assert unasync.main(["--check"], root=tree) == 1


def test_generating_rewrites_a_drifted_file(tree: Path) -> None:
    path = tree / GENERATED
    path.write_text(path.read_text() + "# stray\n")
    assert unasync.main([], root=tree) == 0
    assert path.read_text() == (ROOT / GENERATED).read_text()
    assert unasync.drift(tree) == ""


def test_a_substitution_that_matches_nothing_fails(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tree / SOURCE
    source.write_text(source.read_text().replace("aclose", "shutdown"))
    with pytest.raises(unasync.UnusedSubstitution, match="aclose"):
        unasync.generate(tree)
    assert unasync.main(["--check"], root=tree) == 1
    assert "aclose" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    async def run(self) -> AsyncManager:\n", "    def run(self) -> Manager:\n"),
        ("        return await self.driver.run(workflow)\n", "        return self.driver.run(workflow)\n"),
        ("        await self.driver.aclose()\n", "        self.driver.close()\n"),
        ("from ecsspot.aws.aio import AsyncDriver\n", "from ecsspot.aws.driver import Driver\n"),
        ('"""Asynchronous ecsspot API (aiobotocore); ``async with``."""\n', '"""Synchronous ecsspot API (boto3); ``with``."""\n'),
        # Word bounds: parts of longer names and words stay as they are.
        ("self._aclose_all(); awaited; MyAsyncManager; ecsspot.aws.aiox\n", "self._aclose_all(); awaited; MyAsyncManager; ecsspot.aws.aiox\n"),
    ],
)
def test_substitutions(line: str, expected: str) -> None:
    assert unasync.unasync_text(line, set()) == expected


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items() if inspect.isfunction(member) and not name.startswith("_")}


def test_both_faces_have_the_same_public_methods_and_signatures() -> None:
    sync, async_ = _public_methods(Manager), _public_methods(AsyncManager)
    assert sorted(sync) == ["apply", "drain", "handle_event", "plan", "refresh", "run", "status", "teardown"]
    assert sync == async_
    assert inspect.signature(Manager.__init__) == inspect.signature(AsyncManager.__init__)
    for name in sync:
        assert not inspect.iscoroutinefunction(getattr(Manager, name)), name
        assert inspect.iscoroutinefunction(getattr(AsyncManager, name)), name


def test_public_import_paths_name_the_generated_class() -> None:
    assert ecsspot.Manager is ecsspot.manager.Manager is Manager
    assert ecsspot.AsyncManager is ecsspot.manager.AsyncManager is AsyncManager


def test_sync_manager_as_context_manager_closes_its_driver() -> None:
    closed: list[bool] = []

    class Driver:
        def close(self) -> Any:
            closed.append(True)

    with Manager(region="us-east-1") as m:
        m.driver = Driver()  # type: ignore[assignment]
        assert closed == []
    assert closed == [True]
