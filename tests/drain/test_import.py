"""The Lambda path stays light: in a fresh interpreter, ``import ecsspot.handlers`` and a first
invocation load no click, PyYAML, moto or aiobotocore (DESIGN.md: Lambda), and the import alone
loads nothing but the module (what an event needs comes with the event). The import time
itself is measured by ``python -m benchmarks.handler_import``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"click", "yaml", "moto", "aiobotocore"}

_CHILD = """
import json, sys
import ecsspot.handlers
after_import = sorted(sys.modules)
event = json.loads(sys.argv[1])
response = ecsspot.handlers.interruption(event, None)
import ecsspot.interruption, ecsspot.drain, ecsspot.refresh, ecsspot.store, ecsspot.aws.driver
print(json.dumps({"after_import": after_import, "after_call": sorted(sys.modules), "response": response}))
"""

#: An event that is not ours: handled without any AWS call.
EVENT = json.loads((ROOT / "tests" / "events" / "ecs-service-action-info.json").read_text())


def test_handler_module_loads_no_cli_yaml_moto_or_aiobotocore() -> None:
    env = {**os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(EVENT)], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [a["kind"] for a in report["response"]["actions"]] == ["ignore"]
    for when in ("after_import", "after_call"):
        loaded = {name.split(".")[0] for name in report[when]}
        assert not loaded & HEAVY, f"{when}: {sorted(loaded & HEAVY)}"
    # boto3 comes with the first invocation (the driver), not with the import.
    assert "boto3" not in report["after_import"] and "boto3" in report["after_call"]
    # So do the event parser, the drain and the spec reader: the import is this module alone.
    assert {name for name in report["after_import"] if name.startswith("ecsspot")} == {"ecsspot", "ecsspot.handlers"}
    assert not {name.split(".")[0] for name in report["after_import"]} & {"attr", "attrs", "cattrs", "botocore"}
    assert {"ecsspot.interruption", "ecsspot.events"} <= set(report["after_call"])


def test_the_package_names_load_on_first_use() -> None:
    """``import ecsspot`` loads no spec reader and no boto3; its public names still work."""
    child = "import sys, ecsspot; before = set(sys.modules); ecsspot.load_spec; ecsspot.SpecError; print(sorted(before))"
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    before = set(json.loads(done.stdout.replace("'", '"')))
    assert not {"ecsspot.spec", "ecsspot.errors", "cattrs", "boto3"} & before
