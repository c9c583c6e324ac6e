"""validate, plan and apply through the CLI, in-process against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
import yaml

REGION = "us-east-1"
CONTRACT_PLAN_KEYS = {"cluster", "changes", "summary", "warnings"}
CONTRACT_CHANGE_KEYS = {"action", "resource", "name", "diff"}
SUMMARY_KEYS = {"create", "update", "replace", "delete"}
WARNING_KEYS = {"code", "path", "message"}

BAD_SPEC = """\
cluster: demo-api
network: {subnets: [subnet-aaa, not-a-subnet]}
instances: {ami: ami-123, colour: blue}
pools:
  - {name: spot, max_size: -1, instance_types: [m5.large], on_demand_percentage_above_base: 150}
"""
BAD_PROBLEMS = (
    "network.subnets[1]",
    "instances.colour: unknown key",
    "pools[0].max_size",
    "pools[0].on_demand_percentage_above_base",
)


# --- validate ---------------------------------------------------------------------------------


def test_validate_ok_text(invoke: Any, aws_calls: list[Any]) -> None:
    result = invoke("validate", "-f", _demo())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("spec OK: ")
    assert "cluster demo-api, 2 pools" in result.stdout
    assert result.stderr == ""
    assert aws_calls == []


def test_validate_json_lists_warnings(invoke: Any, aws_calls: list[Any], tmp_path: Path) -> None:
    raw = yaml.safe_load(_demo().read_text())
    raw["network"]["subnets"] = raw["network"]["subnets"][:2]  # ES102
    raw["pools"][0]["capacity_rebalance"] = False  # ES104
    spec = tmp_path / "warn.yaml"
    spec.write_text(yaml.safe_dump(raw))

    result = invoke("--output", "json", "validate", "-f", spec)

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["valid"] is True and doc["cluster"] == "demo-api"
    assert [w["code"] for w in doc["warnings"]] == ["ES102", "ES104"]
    assert all(set(w) == WARNING_KEYS for w in doc["warnings"])
    assert aws_calls == []

    text = invoke("validate", "-f", spec)
    assert text.exit_code == 0
    assert "2 warnings:" in text.stdout and "ES102" in text.stdout and "pools[0].capacity_rebalance" in text.stdout


def test_validate_invalid_lists_every_problem_without_aws(invoke: Any, aws_calls: list[Any], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPEC)

    result = invoke("validate", "-f", spec)

    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"ecsspot: error: invalid spec in {spec} (")
    assert lines[0].endswith("problems):")
    for expected in BAD_PROBLEMS:
        assert sum(line.startswith("  ") and expected in line for line in lines[1:]) == 1, (expected, lines)
    assert all(line.startswith("  ") for line in lines[1:])
    assert "Traceback" not in result.stderr
    assert aws_calls == []


def test_validate_invalid_json_document(invoke: Any, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPEC)

    result = invoke("-o", "json", "validate", "-f", spec)

    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert all(set(p) == {"path", "message"} for p in doc["problems"])
    assert {p["path"] for p in doc["problems"]} >= {"network.subnets[1]", "pools[0].max_size"}
    assert result.stderr.startswith("ecsspot: error: invalid spec")


def test_validate_missing_file_and_stdin(invoke: Any, tmp_path: Path) -> None:
    missing = invoke("validate", "-f", tmp_path / "nope.yaml")
    assert missing.exit_code == 3
    assert missing.stderr.splitlines() == [f"ecsspot: error: invalid spec in {tmp_path / 'nope.yaml'}: file not found"]

    piped = invoke("validate", "-f", "-", input=_demo().read_text())
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout.startswith("spec OK: <stdin> (cluster demo-api")


# --- plan -------------------------------------------------------------------------------------


def test_plan_json_shape(invoke: Any, spec_file: Path, inventory: Any) -> None:
    result = invoke("--output", "json", "plan", "-f", spec_file)

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # the whole of stdout is one document
    assert set(doc) >= CONTRACT_PLAN_KEYS
    assert doc["cluster"] == "demo-api"
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert doc["summary"]["create"] == sum(c["action"] == "create" for c in doc["changes"]) > 0
    assert doc["has_changes"] is True  # issue 13 item 6: what a script asks first
    strategy = next(c for c in doc["changes"] if c["resource"] == "cluster_capacity_providers")["diff"]["default_strategy"][1]
    assert strategy and all(set(entry) == {"capacity_provider", "weight", "base"} for entry in strategy)  # labelled, not [name, 3, 0]
    types = next(c for c in doc["changes"] if c["name"] == "demo-api-spot" and c["resource"] == "autoscaling_group")["diff"]["instance_types"][1]
    assert types[0] == {"type": "m5.large", "weight": 1}  # labelled as in the spec, not ["m5.large", 1]
    for change in doc["changes"]:
        assert set(change) >= CONTRACT_CHANGE_KEYS
        assert change["action"] in SUMMARY_KEYS
        assert all(isinstance(pair, list) and len(pair) == 2 for pair in change["diff"].values())
    assert ("autoscaling_group", "demo-api-spot") in {(c["resource"], c["name"]) for c in doc["changes"]}
    assert doc["warnings"] == []
    assert inventory.clusters() == [] and inventory.groups() == []  # plan changes nothing


def test_plan_text(invoke: Any, spec_file: Path) -> None:
    result = invoke("plan", "-f", spec_file)

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Plan for cluster demo-api" in out
    assert "  + autoscaling_group" in out and "demo-api-spot" in out
    assert "      max_size: 20\n" in out  # create: the value alone
    assert "  ~ cluster_capacity_providers" in out
    assert "      capacity_providers: [] → [" in out  # update: before → after
    assert out.rstrip().endswith("Plan: 10 to create, 1 to update, 0 to replace, 0 to delete.")


def test_plan_text_shows_replace_reason(invoke: Any, applied: Path, make_spec: Any) -> None:
    raw = yaml.safe_load(applied.read_text())
    raw["pools"][0]["asg_name"] = "demo-api-spot-v2"  # a provider's group link is immutable
    moved = make_spec("moved.yaml", pools=raw["pools"])

    result = invoke("plan", "-f", moved)

    assert result.exit_code == 0, result.stderr
    assert "  ± capacity_provider" in result.stdout
    assert "      # a capacity provider's Auto Scaling group cannot be changed" in result.stdout
    assert "      asg_arn: arn:aws:autoscaling:" in result.stdout and "→ (new group)" in result.stdout
    assert "1 to replace" in result.stdout


def test_detailed_exitcode_before_and_after_apply(invoke: Any, spec_file: Path) -> None:
    before = invoke("plan", "-f", spec_file, "--detailed-exitcode")
    assert before.exit_code == 2, before.stderr

    applied = invoke("apply", "-f", spec_file, "--yes")
    assert applied.exit_code == 0, applied.stderr

    after = invoke("plan", "-f", spec_file, "--detailed-exitcode")
    assert after.exit_code == 0, after.stderr
    assert "No changes: cluster demo-api matches the spec." in after.stdout
    # Without the flag, changes are not an error.
    assert invoke("plan", "-f", spec_file).exit_code == 0


def test_spec_region_used_unless_region_given(invoke: Any, aws_calls: Any, make_spec: Any) -> None:
    spec = make_spec(region="eu-west-1")

    # The subnets are us-east-1's, so planning elsewhere stops at the network check: what matters
    # here is where the calls went.
    assert invoke("plan", "-f", spec).exit_code == 3
    assert aws_calls and all(".eu-west-1." in host for host in aws_calls.hosts())

    aws_calls.clear()
    assert invoke("--region", "us-west-2", "plan", "-f", spec).exit_code == 3
    assert aws_calls and all(".us-west-2." in host for host in aws_calls.hosts())

    aws_calls.clear()
    assert invoke("--region", "us-east-1", "plan", "-f", spec).exit_code == 0


# --- apply ------------------------------------------------------------------------------------


def test_apply_without_yes_and_no_stdin_refuses(invoke: Any, spec_file: Path, inventory: Any, aws_calls: Any) -> None:
    result = invoke("apply", "-f", spec_file)  # CliRunner's stdin is empty: EOF at the prompt

    assert result.exit_code == 3
    assert "Plan: 10 to create" in result.stdout  # the plan was shown
    assert result.stderr.splitlines()[-1] == (
        "ecsspot: error: refusing to apply without confirmation: stdin is not a terminal and gave no answer; pass --yes"
    )
    assert aws_calls.mutating() == []
    assert inventory.everything() == {"clusters": [], "groups": [], "tables": [], "templates": []}


def test_apply_answer_no_changes_nothing(invoke: Any, spec_file: Path, inventory: Any) -> None:
    result = invoke("apply", "-f", spec_file, input="n\n")

    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == "ecsspot: error: apply cancelled: nothing was changed"
    assert inventory.clusters() == [] and inventory.groups() == []


def test_apply_with_yes_answer(invoke: Any, spec_file: Path, inventory: Any) -> None:
    result = invoke("apply", "-f", spec_file, input="y\n")

    assert result.exit_code == 0, result.stderr
    assert "Apply 11 changes to cluster demo-api? [y/N]" in result.stderr
    assert "Apply complete for cluster demo-api: 10 created, 1 updated, 0 replaced, 0 deleted." in result.stdout
    assert inventory.clusters() == ["demo-api"]
    assert inventory.groups() == ["demo-api-on-demand", "demo-api-spot"]


def test_apply_json_is_one_document(invoke: Any, spec_file: Path) -> None:
    result = invoke("-o", "json", "apply", "-f", spec_file, input="y\n")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["cluster"] == "demo-api"
    assert doc["summary"] == {"create": 10, "update": 1, "replace": 0, "delete": 0}
    assert doc["launch_template_version"] == 1
    assert len(doc["changes"]) == 11
    assert "Plan: 10 to create" in result.stderr  # the plan shown for the prompt went to stderr

    again = invoke("-o", "json", "apply", "-f", spec_file)  # nothing to do: no prompt, exit 0
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["changes"] == []
    assert "No changes" in again.stderr


def test_apply_refused_when_cluster_changed_after_plan(
    invoke: Any, spec_file: Path, inventory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def someone_else_creates_the_cluster(*args: Any, **kwargs: Any) -> bool:
        boto3.client("ecs", region_name=REGION).create_cluster(clusterName="demo-api")
        return True

    monkeypatch.setattr(click, "confirm", someone_else_creates_the_cluster)

    result = invoke("apply", "-f", spec_file)

    assert result.exit_code == 5
    assert result.stderr.splitlines()[-1].startswith("ecsspot: error: the cluster changed since the plan was shown")
    assert inventory.groups() == [] and inventory.tables() == []


def _demo() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "demo-api.yaml"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes(range(256)), "not UTF-8 text"),
        (b"cluster: " + b"[" * 5000 + b"]" * 5000, "nested more than 32 levels"),
        (b"# pad\n" * (1024 * 1024 // 6 + 1), "larger than 1024 KiB"),
        (b"cluster: demo\npools: [{name: a, max_size: " + b"7" * 5000 + b"}]\n", "a number is too long"),
    ],
)
def test_validate_hostile_input_is_one_line_exit_3(invoke: Any, tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    for result in (invoke("validate", "-f", path), invoke("validate", "-f", "-", input=content)):
        assert result.exit_code == 3, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("ecsspot: error: invalid spec in ") and fragment in line, line
