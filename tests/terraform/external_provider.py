"""A stand-in for ``hashicorp/external``'s ``external`` data source, for tests without a registry.

Built on PyPI ``tf`` (a Terraform provider framework in Python) and run by Terraform as
``terraform-provider-external_vX.Y.Z`` (a launcher exec'ing this file). It does what the real
provider's ``Read`` does (hashicorp/terraform-provider-external internal/provider/data_source.go):

- ``program`` (list of strings, at least one): run directly, never through a shell; null and
  empty elements are dropped first, and nothing left is an error.
- ``query`` (map of strings, optional): null values dropped, the rest sent on stdin as one JSON
  object (Go's ``json.Marshal`` of a map: sorted keys, no spaces, ``<>&`` escaped).
- ``working_dir`` (optional): the program's working directory, else Terraform's.
- ``result``: stdout parsed into a map of strings; a non-zero exit is an error showing the
  program's stderr; output that is not a JSON object of strings is an error.
- ``id`` is always ``"-"``.

Left out on purpose: the real provider's fallback of running a program it cannot find through
``$SHELL -i -c`` (kept there for pre-Go-1.19 compatibility), since a module must not depend on it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from typing import Any

from tf import runner
from tf.iface import Config, DataSource, ReadDataContext, State
from tf.schema import Attribute, Schema
from tf.types import List, Map, String, Unknown
from tf.utils import Diagnostics

VERSION = "2.3.5"
NAME = "registry.terraform.io/hashicorp/external"


def go_json(query: dict[str, str]) -> bytes:
    """``json.Marshal(map[string]string)``: sorted keys, compact, HTML characters escaped."""
    text = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


def parse_result(stdout: bytes) -> dict[str, str]:
    """``json.Unmarshal`` into ``map[string]string``: an object of strings (JSON null reads as "")."""
    value = json.loads(stdout)
    if value is None:  # Go leaves the map empty
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"cannot unmarshal {type(value).__name__} into a map of strings")
    bad = sorted(k for k, v in value.items() if v is not None and not isinstance(v, str))
    if bad:
        raise ValueError(f"cannot unmarshal non-string values into a map of strings: {', '.join(bad)}")
    return {k: "" if v is None else v for k, v in value.items()}


class External(DataSource):
    def __init__(self, provider: Any) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return ""  # the data source is named after the provider: "external"

    @classmethod
    def get_schema(cls) -> Schema:
        return Schema(
            attributes=[
                Attribute("program", List(String()), required=True),
                Attribute("working_dir", String(), optional=True),
                Attribute("query", Map(String()), optional=True),
                Attribute("result", Map(String()), computed=True),
                Attribute("id", String(), computed=True),
            ]
        )

    def validate(self, diags: Diagnostics, type_name: str, config: Config) -> None:
        super().validate(diags, type_name, config)
        program = config.get("program")
        if program is not None and program is not Unknown and len(program) < 1:
            diags.add_error("Invalid Attribute Value", "Attribute program list must contain at least 1 elements, got: 0", path=["program"])

    def read(self, ctx: ReadDataContext, config: Config) -> State | None:
        diags = ctx.diagnostics
        program = [arg for arg in config.get("program") or () if arg]
        if not program:
            diags.add_error("External Program Missing", "The data source was configured without a program to execute.", path=["program"])
            return None
        query = {k: v for k, v in (config.get("query") or {}).items() if v is not None}
        if shutil.which(program[0]) is None:
            diags.add_error("External Program Lookup Failed", f"Program: {program[0]}: executable file not found", path=["program"])
            return None
        try:
            done = subprocess.run(program, input=go_json(query), capture_output=True, cwd=config.get("working_dir") or None, check=False)
        except OSError as exc:
            diags.add_error("External Program Execution Failed", f"Program: {program[0]}\nError: {exc}", path=["program"])
            return None
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            message = f"\nError Message: {stderr}" if stderr else "\nThe program was executed, however it returned no additional error messaging."
            diags.add_error("External Program Execution Failed", f"Program: {program[0]}{message}\nState: exit status {done.returncode}", path=["program"])
            return None
        try:
            result = parse_result(done.stdout)
        except ValueError as exc:
            diags.add_error(
                "Unexpected External Program Results",
                f"Program output must be a JSON encoded map of string keys and string values.\nProgram: {program[0]}\nResult Error: {exc}",
                path=["program"],
            )
            return None
        return {**config, "result": result, "id": "-"}


class ExternalProvider:
    def get_model_prefix(self) -> str:
        return "external"

    def full_name(self) -> str:
        return NAME

    def get_provider_schema(self, diags: Diagnostics) -> Schema:
        return Schema()

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        pass

    def get_data_sources(self) -> list[type[DataSource]]:
        return [External]

    def get_resources(self) -> list[Any]:
        return []

    def get_functions(self) -> list[Any]:
        return []

    def new_data_source(self, klass: type[DataSource]) -> DataSource:
        return klass(self)  # type: ignore[call-arg]

    def new_resource(self, klass: Any) -> Any:
        return klass(self)

    def new_function(self, klass: Any) -> Any:
        return klass(self)


def launcher(python: str = sys.executable) -> str:
    """The ``terraform-provider-external_v…`` script: this file run by ``python`` (the test venv)."""
    return f'#!/bin/sh\nexec {shlex.quote(python)} {shlex.quote(os.path.abspath(__file__))} "$@"\n'


if __name__ == "__main__":
    runner.run_provider(ExternalProvider())  # type: ignore[arg-type]
