"""status and teardown through the CLI, and the error boundary's formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.awsrequest
import botocore.handlers
import pytest

import ecsspot.manager
from ecsspot.errors import DeadlineError

STATUS_INSTANCE_KEYS = {
    "instance_id",
    "pool",
    "lifecycle",
    "instance_type",
    "availability_zone",
    "image_id",
    "container_instance_status",
    "running_tasks",
    "protected_from_scale_in",
}


# --- status -----------------------------------------------------------------------------------


def test_status_json_shape(invoke: Any, applied: Path) -> None:
    result = invoke("-o", "json", "status", "demo-api")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"cluster", "instances"} <= set(doc)
    assert doc["cluster"] == "demo-api"
    assert len(doc["instances"]) == 1  # the on-demand pool's min_size
    instance = doc["instances"][0]
    assert set(instance) >= STATUS_INSTANCE_KEYS
    assert instance["instance_id"].startswith("i-")
    assert instance["pool"] == "on-demand"
    assert instance["lifecycle"] in ("spot", "on-demand")
    assert instance["protected_from_scale_in"] is True
    assert isinstance(instance["running_tasks"], int)
    assert {p["pool"] for p in doc["pools"]} == {"spot", "on-demand"}


def test_status_text(invoke: Any, applied: Path) -> None:
    result = invoke("status", "demo-api")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Cluster demo-api"
    assert any(line.split()[:2] == ["POOL", "AUTO"] for line in lines)
    assert any(line.split()[:2] == ["on-demand", "demo-api-on-demand"] for line in lines)
    instance_rows = [line for line in lines if line.startswith("i-")]
    assert len(instance_rows) == 1 and " on-demand " in instance_rows[0] and " yes " in instance_rows[0]


def test_status_of_unknown_cluster_is_not_found(invoke: Any, aws: None) -> None:
    result = invoke("-o", "json", "status", "nope")

    assert result.exit_code == 7
    assert result.stdout == ""
    assert result.stderr == "ecsspot: error: no cluster 'nope' and no ecsspot Auto Scaling groups tagged for it (wrong name or region?)\n"


# --- teardown ---------------------------------------------------------------------------------


def test_teardown_without_yes_and_no_stdin_refuses(invoke: Any, applied: Path, inventory: Any) -> None:
    result = invoke("teardown", "demo-api")

    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1].startswith("ecsspot: error: refusing to tear down without confirmation")
    assert inventory.clusters() == ["demo-api"] and len(inventory.groups()) == 2


def test_teardown_deletes_everything_then_not_found(invoke: Any, applied: Path, inventory: Any) -> None:
    result = invoke("teardown", "demo-api", "--deadline", "60", input="y\n")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Deleted from cluster demo-api:"
    for item in ("autoscaling_group/demo-api-spot", "capacity_provider/demo-api-on-demand", "cluster/demo-api", "dynamodb_table/ecsspot-demo-api"):
        assert f"  - {item}" in result.stdout
    assert inventory.everything() == {"clusters": [], "groups": [], "tables": [], "templates": []}

    # Idempotent (issue 13 item 6): tearing down what is already gone succeeds and says so.
    again = invoke("-o", "json", "teardown", "demo-api", "--yes")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == {"cluster": "demo-api", "deleted": []}
    text = invoke("teardown", "demo-api", "--yes")
    assert text.exit_code == 0
    assert text.stdout == "Nothing to tear down for cluster demo-api: no cluster and no ecsspot resources tagged for it.\n"


def test_teardown_json(invoke: Any, applied: Path) -> None:
    result = invoke("-o", "json", "teardown", "demo-api", "--yes")

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["cluster"] == "demo-api"
    assert "cluster/demo-api" in doc["deleted"]


def test_teardown_deadline_passes_through(invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def teardown(self: Any, cluster: str, *, deadline: float) -> Any:
        seen.update(cluster=cluster, deadline=deadline)
        raise DeadlineError("instances still running after 5 s: demo-api-spot: i-1")

    monkeypatch.setattr(ecsspot.manager.Manager, "teardown", teardown)

    result = invoke("teardown", "demo-api", "--yes", "--deadline", "5")

    assert seen == {"cluster": "demo-api", "deadline": 5.0}
    assert result.exit_code == 6
    assert result.stderr.splitlines()[-1] == "ecsspot: error: instances still running after 5 s: demo-api-spot: i-1"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning:moto.*")
def test_missing_network_is_refused_before_anything_is_created(invoke: Any, aws: None, aws_calls: Any) -> None:
    # The example's subnet ids do not exist in this account: nothing may be half-applied.
    spec = Path(__file__).resolve().parents[2] / "examples" / "demo-api.yaml"

    result = invoke("apply", "-f", spec, "--yes")

    assert result.exit_code == 3
    assert "network.subnets[0]: 'subnet-aaa' does not exist in this account and region" in result.stderr
    assert aws_calls.mutating() == []
    assert "Traceback" not in result.stderr


def test_aws_error_is_one_line_exit_4(invoke: Any, aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(model: Any, **_: Any) -> Any:
        # A before-call handler that answers short-circuits the request, as AWS refusing would.
        if model.name == "DescribeClusters":
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
            return (botocore.awsrequest.AWSResponse("https://ecs", 400, {}, None), error)
        return None

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, ("before-call", denied)])
    result = invoke("status", "demo-api")

    assert result.exit_code == 4
    assert result.stderr.splitlines() == ["ecsspot: error: ecs:describe_clusters failed: AccessDeniedException: not allowed"]


def test_bad_output_value_is_a_usage_error(invoke: Any, aws_calls: Any) -> None:
    result = invoke("--output", "xml", "status", "demo-api")

    assert result.exit_code == 2
    assert "Invalid value for '--output'" in result.stderr
    assert result.stdout == ""
    assert aws_calls == []


def test_verbose_and_quiet_together_is_a_usage_error(invoke: Any) -> None:
    result = invoke("-v", "-q", "status", "demo-api")

    assert result.exit_code == 2
    assert "-v and -q cannot be used together" in result.stderr


def _explode(self: Any, cluster: str) -> Any:
    raise RuntimeError("boom\nsecond line")


def test_unexpected_error_one_line_traceback_only_with_verbose(invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ecsspot.manager.Manager, "status", _explode)

    plain = invoke("status", "demo-api")
    assert plain.exit_code == 1
    assert plain.stderr.splitlines() == ["ecsspot: error: unexpected RuntimeError: boom second line (run with -v for the traceback)"]

    verbose = invoke("-v", "status", "demo-api")
    assert verbose.exit_code == 1
    assert "\nTraceback (most recent call last):\n" in verbose.stderr
    assert "in _explode" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == "ecsspot: error: unexpected RuntimeError: boom second line"


def test_expected_error_has_no_traceback_even_with_verbose(invoke: Any, aws: None) -> None:
    result = invoke("-v", "drain", "nope", "i-0123456789abcdef0", "--no-wait")

    # A cluster ECS does not know is "not found" (exit 7), not an AWS failure (issue 13 item 6).
    assert result.exit_code == 7
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("ecsspot: error: cluster nope not found (ECS: ")


def test_missing_region_is_an_input_error(invoke: Any, aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    result = invoke("status", "demo-api")

    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1].startswith("ecsspot: error: no AWS region")

    monkeypatch.setenv("AWS_REGION", "us-east-1")  # honoured like the AWS CLI does: the call is made
    assert invoke("-q", "status", "demo-api").stderr.startswith("ecsspot: error: no cluster 'demo-api'")


def test_verbose_logs_each_aws_call_on_stderr(invoke: Any, aws: None) -> None:
    result = invoke("-v", "-o", "json", "status", "demo-api")

    assert result.exit_code == 7  # no such cluster, but every call it took to know is logged
    assert "ecsspot: debug: call autoscaling:DescribeAutoScalingGroups https://autoscaling.us-east-1.amazonaws.com/" in result.stderr
    assert "ecsspot: debug: call" not in invoke("-o", "json", "status", "demo-api").stderr
