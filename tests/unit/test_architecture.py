"""The README's module map stays complete, and the layering it states stays true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _architecture_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Architecture: where a change goes")
    return readme[start : readme.index("\n## ", start)]


def test_every_module_is_in_the_readme_map() -> None:
    section = _architecture_section()
    named = set(re.findall(r"`([\w/.]+)`", section))
    sim_row = next(line for line in section.splitlines() if line.startswith("| `ecsspot/sim/`"))
    missing = []
    for path in sorted((ROOT / "ecsspot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py":
            continue
        if rel.startswith("ecsspot/sim/"):
            if f"`{path.name}`" not in sim_row:
                missing.append(rel)
        elif rel.startswith("ecsspot/_async/") or rel.startswith("ecsspot/_sync/"):
            if rel.split("ecsspot/", 1)[1] not in section:
                missing.append(rel)
        elif rel not in named:
            missing.append(rel)
    for path in sorted((ROOT / "cli").glob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name not in ("__init__.py", "__main__.py") and rel not in named:
            missing.append(rel)
    assert "cli/commands/" in named
    assert missing == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_never_imports_the_simulator_the_cli_or_moto() -> None:
    """Lazy imports inside functions count too: the handler's import path must stay light, and
    production code must never need the `sim` extra (nor rich, the CLI's progress renderer)."""
    banned = ("ecsspot.sim", "ecsspot_cli", "click", "moto", "rich")
    offenders = {}
    for path in sorted((ROOT / "ecsspot").rglob("*.py")):
        if "sim" in path.relative_to(ROOT / "ecsspot").parts:
            continue
        bad = sorted(m for m in _imports(path) if m.split(".")[0] in ("click", "moto", "rich") or m.startswith(banned[:2]))
        if bad:
            offenders[path.relative_to(ROOT).as_posix()] = bad
    assert offenders == {}


def test_every_package_is_installed() -> None:
    """setup.cfg lists packages by name: one left out is missing from a wheel (and the Lambda's
    zip) while an editable install, and so every other test, still finds it."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "ecsspot").rglob("__init__.py")}
    assert found - listed == set()


def test_unit_tests_run_without_moto_or_the_simulator() -> None:
    """tests/unit holds the pure decisions (issue 11 item 9): no moto, no simulated account.
    tests/sim holds the simulator's rules, tests/e2e the public API and CLI on moto + sim,
    tests/drain the Lambda's handling, tests/refresh the rolling refresh, tests/terraform the module."""
    offenders = {}
    for path in sorted((ROOT / "tests" / "unit").glob("*.py")):
        tree = ast.parse(path.read_text())
        bad = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names if a.name.split(".")[0] == "moto"}
        bad |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "moto"}
        bad |= {f"{n.module}.Simulator" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and any(a.name == "Simulator" for a in n.names)}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_no_doc_says_to_install_from_pypi() -> None:
    """Issue 13 item 10: ``pip install ecsspot`` finds nothing (the package is not on PyPI)."""
    docs = [p for p in ROOT.rglob("*.md") if ".venv" not in p.parts and "node_modules" not in p.parts]
    said = [f"{p.relative_to(ROOT)}: {m[0]}" for p in docs for m in re.finditer(r"pip install (?:-U |--upgrade )?['\"]?ecsspot\b[^`\n]*", p.read_text(encoding="utf-8"))]
    assert said == []
