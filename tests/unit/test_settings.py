"""The environment, read once at the edge (``ecsspot.settings``), and the core that never reads it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ecsspot import load_spec
from ecsspot.errors import EcsspotError, InputError
from ecsspot.handlers import Handlers
from ecsspot.plan import desired_settings
from ecsspot.settings import VARIABLES, Settings
from ecsspot.testing import Call, ScriptedDriver, by_operation
from tests.conftest import example_spec_dict
from tests.unit.scripted_dynamodb import batch_get

ROOT = Path(__file__).parents[2]


def test_defaults_and_empty_values_count_as_unset() -> None:
    assert Settings.from_environ({}) == Settings()
    assert Settings.from_environ({"ECSSPOT_CLUSTER": " ", "AWS_REGION": "", "ECSSPOT_REFRESH_ON_SCHEDULE": ""}) == Settings()
    read = Settings.from_environ({"ECSSPOT_CLUSTER": "demo-api", "ECSSPOT_REFRESH_ON_SCHEDULE": "FALSE", "AWS_REGION": "eu-west-1"})
    assert (read.cluster, read.refresh_on_schedule, read.region) == ("demo-api", False, "eu-west-1")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ECSSPOT_REFRESH_ON_SCHEDULE": "no"}, "ECSSPOT_REFRESH_ON_SCHEDULE='no': expected true or false"),
        ({"ECSSPOT_CLUSTER": "demo-api", "ECSSPOT_TABLE": "other"}, "ECSSPOT_TABLE=other but cluster demo-api's state table is ecsspot-demo-api"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        Settings.from_environ(environ)


def test_every_variable_the_package_names_is_documented() -> None:
    # userdata.py's ECSSPOT_* are shell variables of the rendered script, not ecsspot's settings.
    sources = [p for p in (ROOT / "ecsspot").rglob("*.py") if p.name != "userdata.py"]
    named = {m for path in sources for m in re.findall(r"\bECSSPOT_[A-Z_]+\b", path.read_text())}
    assert named <= set(VARIABLES), named - set(VARIABLES)
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for name in VARIABLES)


def test_the_core_never_reads_the_environment() -> None:
    """Only the edges do: settings.py itself, the Lambda handlers, the public API's region."""
    edges = {"settings.py", "handlers.py", "_async/manager.py", "_sync/manager.py"}
    readers = sorted(
        str(path.relative_to(ROOT / "ecsspot"))
        for path in (ROOT / "ecsspot").rglob("*.py")
        if "sim" not in path.parts and re.search(r"os\.environ|getenv\(", path.read_text())
    )
    assert set(readers) <= edges, readers


def _refresh_lambda(refresh_on_schedule: bool) -> ScriptedDriver:
    spec = load_spec(example_spec_dict())

    def get_item(c: Call) -> Any:
        return {"Item": {"spec": {"S": desired_settings(spec)}}} if c.params["Key"]["sk"]["S"] == "settings" else {}

    driver = ScriptedDriver(by_operation({"get_item": get_item, "batch_get_item": batch_get(get_item), "get_parameter": {"Parameter": {"Value": "ami-0123456789abcdef0"}}}, default=lambda c: {}))
    handlers = Handlers(driver, default_cluster=spec.cluster, refresh_on_schedule=refresh_on_schedule)
    try:
        handlers.refresh({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    except (EcsspotError, KeyError):
        pass  # the scripted AWS answers nothing useful past the AMI lookup
    return driver


def test_a_scheduled_tick_starts_a_refresh_only_when_allowed() -> None:
    """ECSSPOT_REFRESH_ON_SCHEDULE=false: a tick continues a refresh in progress but never looks
    for a new AMI to start one."""
    assert "get_parameter" not in _refresh_lambda(False).operations()
    assert "get_parameter" in _refresh_lambda(True).operations()
