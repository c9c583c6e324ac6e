"""The CLI as users and Terraform run it: a real process against a moto server over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.pty_capture import stderr_on_a_terminal

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TIMEOUT = 60


@pytest.fixture(name="endpoint")
def fixture_endpoint(aws_server: str) -> str:
    """The URL of the shared ThreadedMotoServer (tests/conftest.py), emptied for this test."""
    return aws_server


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def spec_for(endpoint: str, path: Path) -> Path:
    """examples/demo-api.yaml with the server's default-VPC subnets and security group."""
    ec2 = client(endpoint, "ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    raw = yaml.safe_load((ROOT / "examples" / "demo-api.yaml").read_text())
    raw["network"] = {"subnets": [s["SubnetId"] for s in sorted(subnets, key=lambda s: s["AvailabilityZone"])[:3]], "security_groups": [group]}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(command: Sequence[str], *args: str, env: dict[str, str] | None = None, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}  # the autouse fixture isolated AWS_*
    full_env.update(env or {})
    return subprocess.run([*command, *args], env=full_env, stdin=stdin, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


PYTHON_M = (sys.executable, "-m", "ecsspot_cli.main")


def installed_script() -> list[str]:
    script = Path(sys.executable).parent / "ecsspot"
    found = str(script) if script.exists() else shutil.which("ecsspot")
    if not found:
        pytest.skip("the ecsspot console script is not installed (pip install -e .)")
    return [found]


def test_endpoint_url_flag(endpoint: str, tmp_path: Path) -> None:
    spec = spec_for(endpoint, tmp_path / "spec.yaml")
    flag = ("--endpoint-url", endpoint)

    plan = run(PYTHON_M, *flag, "plan", "-f", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    assert "Plan: 10 to create" in plan.stdout

    refused = run(PYTHON_M, *flag, "apply", "-f", str(spec))  # stdin is /dev/null
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.splitlines()[-1].startswith("ecsspot: error: refusing to apply without confirmation")
    assert client(endpoint, "ecs").list_clusters()["clusterArns"] == []

    applied = run(PYTHON_M, *flag, "--output", "json", "apply", "-f", str(spec), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["summary"]["create"] == 10

    status = run(PYTHON_M, *flag, "-o", "json", "status", "demo-api")
    assert status.returncode == 0, status.stderr
    assert [i["pool"] for i in json.loads(status.stdout)["instances"]] == ["on-demand"]


def test_aws_endpoint_url_variable_with_installed_script(endpoint: str, tmp_path: Path) -> None:
    spec = spec_for(endpoint, tmp_path / "spec.yaml")
    ecsspot = installed_script()
    env = {"AWS_ENDPOINT_URL": endpoint}

    applied = run(ecsspot, "apply", "-f", str(spec), "--yes", env=env)
    assert applied.returncode == 0, applied.stderr
    assert client(endpoint, "ecs").describe_clusters(clusters=["demo-api"])["clusters"][0]["status"] == "ACTIVE"

    plan = run(ecsspot, "plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert plan.returncode == 0, plan.stderr

    gone = run(ecsspot, "-o", "json", "teardown", "demo-api", "--yes", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "cluster/demo-api" in json.loads(gone.stdout)["deleted"]


def test_validate_makes_no_aws_call(tmp_path: Path) -> None:
    # The endpoint accepts connections and never answers: any AWS call would connect (and wait).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        spec = tmp_path / "bad.yaml"
        spec.write_text("cluster: demo-api\nnetwork: {subnets: [subnet-aaa]}\ninstances: {ami: ami-1}\npools: [{name: spot, max_size: -1}]\nextra: 1\n")
        result = run(PYTHON_M, "--endpoint-url", endpoint, "validate", "-f", str(spec))
        ok = run(PYTHON_M, "--endpoint-url", endpoint, "validate", "-f", str(ROOT / "examples" / "demo-api.yaml"))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected

    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f"ecsspot: error: invalid spec in {spec} (3 problems):",
        "  extra: unknown key",
        "  pools[0].max_size: must be ≥ 0, got -1",
        "  pools[0].instance_types: needs at least one instance type (or instance_requirements)",
    ]
    assert "Traceback" not in result.stderr

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("spec OK:")


@pytest.mark.parametrize("columns", ["60", "70", "100"])
def test_a_text_table_wraps_its_last_column_between_words_never_inside_an_arn(columns: str) -> None:
    """Issue 13 item 6: an ARN that does not fit stays whole on its line (a terminal may fold it,
    copying it still works); only spaces end a line of the wrapped column."""
    event = ROOT / "tests" / "events" / "ecs-task-state-change.json"
    arn = json.loads(event.read_text())["detail"]["taskArn"]
    result = run(PYTHON_M, "--region", REGION, "handle-event", str(event), "--dry-run", env={"COLUMNS": columns})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "INSTANCE", "STATUS", "REASON"]
    assert any(arn in line for line in lines), result.stdout
    reason = " ".join(line[lines[0].index("REASON") :].strip() for line in lines[1:])
    assert reason == f"task {arn} is RUNNING: informational"


def test_exit_codes_a_script_can_trust_from_a_real_process(endpoint: str, tmp_path: Path) -> None:
    """Issue 13 item 6, as a script runs the CLI: a missing cluster is 7 for drain (like every
    other command), tearing down what is gone is 0 and says so, and an SQS batch whose every
    record failed is not 0."""
    at = ("--endpoint-url", endpoint)
    drain = run(PYTHON_M, *at, "-o", "json", "drain", "nosuch", "i-0123456789abcdef0", "--no-wait")
    assert (drain.returncode, drain.stdout) == (7, "")
    assert drain.stderr.splitlines()[-1].startswith("ecsspot: error: cluster nosuch not found")
    for _ in range(2):
        gone = run(PYTHON_M, *at, "teardown", "nosuch", "--yes")
        assert gone.returncode == 0, gone.stderr
        assert gone.stdout.startswith("Nothing to tear down for cluster nosuch")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # refused at once once the socket is closed
    warning = (ROOT / "tests" / "events" / "spot-interruption-warning.json").read_text()
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"Records": [{"messageId": f"m-{n}", "receiptHandle": "r", "body": warning, "eventSource": "aws:sqs", "awsRegion": REGION} for n in (1, 2)]}))
    failed = run(PYTHON_M, "--endpoint-url", closed, "--max-attempts", "1", "-o", "json", "handle-event", str(batch))
    # AWS unreachable: no record got through (the Lambda would have the whole batch retried).
    assert (failed.returncode, failed.stdout) == (4, ""), failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("ecsspot: error: ec2:describe_instances failed")


def test_a_command_draws_its_progress_live_on_a_terminal_and_as_lines_on_a_pipe(endpoint: str, tmp_path: Path) -> None:
    """Issue 13 item 1, the whole command (not only its renderer): ``plan`` on a pseudo-terminal
    gets rich's live line (cursor codes, cleared at the end), on a pipe one plain line per phase,
    and with -q nothing; stdout is the plan either way."""
    spec = spec_for(endpoint, tmp_path / "spec.yaml")
    command = [*PYTHON_M, "--endpoint-url", endpoint, "plan", "-f", str(spec)]
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "NO_COLOR")}
    done, live = stderr_on_a_terminal(command, env={**env, "TERM": "xterm-256color"}, timeout=TIMEOUT, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith(b"Plan for cluster demo-api")
    assert "plan (" in live and "reading the AMI, the network and the state of cluster demo-api" in live
    assert "\x1b[" in live

    piped = run(command)  # the same command on a pipe
    assert piped.returncode == 0 and piped.stdout.startswith("Plan for cluster demo-api")
    assert "\x1b[" not in piped.stderr
    assert piped.stderr.splitlines()[0] == "ecsspot: plan: reading the AMI, the network and the state of cluster demo-api"
    quiet = run([*PYTHON_M, "--endpoint-url", endpoint, "-q", "plan", "-f", str(spec)])
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_global_options_after_the_command_yaml_and_query_from_a_real_process() -> None:
    """Issue 13 item 2 as the README invites it: the options after the command, awscli's way."""
    demo = str(ROOT / "examples" / "demo-api.yaml")
    as_json = run(PYTHON_M, "validate", "-f", demo, "--output", "json", "--query", "{cluster: cluster, valid: valid}")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"cluster": "demo-api", "valid": True}
    as_yaml = run(PYTHON_M, "validate", "-f", demo, "-o", "yaml")
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout)["cluster"] == "demo-api"
