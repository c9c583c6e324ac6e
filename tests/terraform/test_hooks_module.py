"""The Terraform module calls only hooks and handlers that exist, with keys they accept.

Read from the ``.tf`` files themselves (python-hcl2), checked against ``ecsspot_cli.terraform.HOOKS``
and ``ecsspot.handlers``: a renamed hook, query key, output key or handler fails here, not at a
user's ``terraform plan``.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecsspot.errors import QueryError
from ecsspot_cli.terraform import HOOKS

hcl2 = pytest.importorskip("hcl2")

MODULE = Path(__file__).resolve().parents[2] / "terraform"
TF_FILES = sorted(MODULE.rglob("*.tf"))
_RESULT_REF = re.compile(r"data\.external\.([A-Za-z0-9_-]+)\.result(?:\.([A-Za-z0-9_-]+)|\[\"([^\"]+)\"\])")


def _text(value: Any) -> str:
    """A literal string as python-hcl2 gives it (newer versions keep the quotes)."""
    value = str(value)
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


@functools.cache
def _parsed(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return hcl2.load(fh)


def _blocks(kind: str, type_: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(file, name, body) of every ``kind "type_" "name" {…}`` block in the module."""
    for path in TF_FILES:
        for entry in _parsed(path).get(kind, ()):
            for t, named in entry.items():
                if _text(t) != type_:
                    continue
                for name, body in named.items():
                    yield path, _text(name), body


def external_data_sources() -> dict[str, tuple[str, set[str]]]:
    """Each ``data "external"`` block's name → (hook it runs, its query keys)."""
    found = {}
    for path, name, body in _blocks("data", "external"):
        program = [_text(p) for p in body["program"]]
        assert len(program) == 3 and program[1] == "tf", f"{path.name}: data.external.{name} runs {program}, not [ecsspot, tf, HOOK]"
        found[name] = (program[2], set(body.get("query", {})))
    return found


def test_the_module_has_external_data_sources() -> None:
    assert TF_FILES, f"no .tf files under {MODULE}"
    assert {hook for hook, _ in external_data_sources().values()} >= {"ami", "user-data"}


@pytest.mark.parametrize("name", sorted(external_data_sources()) or ["(none)"])
def test_external_data_source_calls_an_existing_hook_with_accepted_keys(name: str) -> None:
    hook_name, keys = external_data_sources()[name]
    assert hook_name in HOOKS, f"data.external.{name} runs `ecsspot tf {hook_name}`; hooks are {sorted(HOOKS)}"
    hook = HOOKS[hook_name]
    try:
        hook.form_of(keys)
    except QueryError as exc:
        pytest.fail(f"data.external.{name} sends {sorted(keys)} to `tf {hook_name}`: {exc}")


def test_external_results_read_only_keys_the_hooks_write() -> None:
    sources = external_data_sources()
    wrong = []
    for path in TF_FILES:
        for match in _RESULT_REF.finditer(path.read_text()):
            name, key = match.group(1), match.group(2) or match.group(3)
            if name not in sources:
                wrong.append(f"{path.name}: data.external.{name} is not declared")
                continue
            hook = HOOKS.get(sources[name][0])
            # status adds pool_<pool>_… keys per pool of the cluster
            if hook is not None and key not in hook.outputs and not (hook.name == "status" and key.startswith("pool_")):
                wrong.append(f"{path.name}: data.external.{name}.result.{key}: `tf {hook.name}` writes {list(hook.outputs)}")
    assert not wrong, "\n".join(wrong)


def test_lambda_handlers_name_functions_of_ecsspot_handlers() -> None:
    handlers = [(path, name, _text(body.get("handler", ""))) for path, name, body in _blocks("resource", "aws_lambda_function")]
    assert handlers, "the module declares no aws_lambda_function"
    module = importlib.import_module("ecsspot.handlers")
    for path, name, handler in handlers:
        where = f"{path.name}: aws_lambda_function.{name}"
        prefix, _, function = handler.rpartition(".")
        assert prefix == "ecsspot.handlers", f"{where}: handler {handler!r} is not in ecsspot.handlers"
        assert callable(getattr(module, function, None)), f"{where}: ecsspot.handlers has no function {function!r}"


def test_the_module_tests_table_matches_the_hooks() -> None:
    """tests/terraform/test_terraform_module.py keeps its own copy of the hook table; it must agree."""
    table = pytest.importorskip("tests.terraform.test_terraform_module")
    assert {name: tuple((f.required, f.optional) for f in hook.forms) for name, hook in HOOKS.items()} == table.HOOK_QUERY_FORMS
    for name, promised in table.HOOK_RESULT_KEYS.items():
        assert promised is None or promised <= set(HOOKS[name].outputs), f"tf {name} does not write {sorted(promised - set(HOOKS[name].outputs))}"
    module = importlib.import_module("ecsspot.handlers")
    for handler in table.LAMBDA_HANDLERS:
        assert callable(getattr(module, handler.rpartition(".")[2], None)), handler
