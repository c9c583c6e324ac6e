"""``ecsspot.ami``: the one AMI resolution behind plan, the refresh and the Terraform ``ami`` hook."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot import ami, load_spec
from ecsspot.apply import plan_cluster
from ecsspot.aws.calls import Call
from ecsspot.errors import InputError, QueryError
from ecsspot.plan import desired_settings
from ecsspot.refresh import refresh
from ecsspot.testing import ScriptedDriver, aws_error, by_operation
from ecsspot_cli.terraform import run_hook
from tests.conftest import example_spec_dict
from tests.unit.scripted_dynamodb import batch_get

IMAGE = "ami-0123456789abcdef0"
PARAMETER = "/ecsspot/no/such/parameter"


def _parameter(value: str) -> dict[str, Any]:
    return {"Parameter": {"Name": PARAMETER, "Value": value, "Type": "String"}}


def test_a_literal_id_needs_no_call_and_a_parameter_one_read() -> None:
    driver = ScriptedDriver(by_operation({}))
    assert driver.run(ami.resolve(IMAGE)) == IMAGE
    assert driver.operations() == []
    recommended = json.dumps({"image_id": IMAGE, "image_name": "al2023-ami-ecs-hvm"})
    for value in (IMAGE, f" {IMAGE}\n", recommended):
        driver = ScriptedDriver(by_operation({"get_parameter": _parameter(value)}))
        assert driver.run(ami.resolve("ssm:" + PARAMETER)) == IMAGE
        assert [c.params["Name"] for c in driver.calls] == [PARAMETER]


@pytest.mark.parametrize("code", ["ParameterNotFound", "ParameterVersionNotFound"])
def test_a_missing_parameter_is_one_input_error_naming_the_field(code: str) -> None:
    driver = ScriptedDriver(by_operation({"get_parameter": lambda c: aws_error(c, code)}))
    with pytest.raises(InputError, match=f"refresh.ami_parameter: SSM parameter {PARAMETER} not found"):
        driver.run(ami.resolve("ssm:" + PARAMETER, "refresh.ami_parameter"))


@pytest.mark.parametrize(
    "value",
    ["ssm:/aws/service/$(reboot)", "ssm:relative/name", "ami-", "ami-0123;reboot", "image-0123", "ssm:/" + "a" * 1011],
)
def test_a_bad_reference_is_refused_before_any_call(value: str) -> None:
    driver = ScriptedDriver(by_operation({}))
    with pytest.raises(InputError, match="--ami: "):
        driver.run(ami.resolve(value, "--ami"))
    assert driver.operations() == []


def test_a_parameter_holding_something_else_is_refused() -> None:
    driver = ScriptedDriver(by_operation({"get_parameter": _parameter("ami-0123 && reboot")}))
    with pytest.raises(InputError, match="does not hold an AMI id"):
        driver.run(ami.resolve("ssm:" + PARAMETER))


# --- the three users say the same thing -------------------------------------------------------


def _missing(c: Call) -> Any:
    return aws_error(c, "ParameterNotFound")


def test_plan_refresh_and_the_hook_say_the_same_about_a_missing_parameter() -> None:
    """Before ``ecsspot.ami`` the refresh treated ParameterVersionNotFound as an AWS failure and
    accepted any ``ssm:`` text, and the hook had its own copy of the rules and messages."""
    document = example_spec_dict()
    document["instances"]["ami"] = "ssm:" + PARAMETER
    document.setdefault("refresh", {})["ami_parameter"] = PARAMETER
    spec = load_spec(document)
    said = []

    driver = ScriptedDriver(by_operation({"get_parameter": _missing}, default=lambda c: {}))
    with pytest.raises(InputError) as planned:
        driver.run(plan_cluster(spec))
    said.append(str(planned.value))

    def get_item(c: Call) -> Any:
        if c.params["Key"]["sk"]["S"] == "settings":
            return {"Item": {"spec": {"S": desired_settings(spec)}}}
        return {}

    driver = ScriptedDriver(by_operation({"get_item": get_item, "batch_get_item": batch_get(get_item), "get_parameter": _missing}, default=lambda c: {}))
    with pytest.raises(InputError) as refreshed:
        driver.run(refresh(spec.cluster, owner="test"))
    said.append(str(refreshed.value))
    # The refresh gives its lease back when it stops on bad input.
    assert driver.operations()[-1] == "delete_item"

    class Factory:
        def __call__(self, region: str | None) -> ScriptedDriver:
            return ScriptedDriver(by_operation({"get_parameter": _missing}))

    with pytest.raises(QueryError) as hooked:
        run_hook("ami", {"ami": "ssm:" + PARAMETER}, Factory())
    said.append(str(hooked.value))

    assert said == [
        f"instances.ami: SSM parameter {PARAMETER} not found",
        f"refresh.ami_parameter: SSM parameter {PARAMETER} not found",
        f"ami: SSM parameter {PARAMETER} not found",
    ]
