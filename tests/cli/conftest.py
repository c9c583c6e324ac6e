"""Fixtures for the CLI tests: an isolated AWS environment, moto in-process, spec files, a runner.

Every AWS request made in-process is recorded by one botocore ``before-call`` handler added to
``botocore.handlers.BUILTIN_HANDLERS`` (the list every new botocore session registers, and the
same seam moto itself uses), so a test can assert how many calls a command made, and where to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import boto3
import botocore.handlers
import pytest
import yaml
from click.testing import CliRunner, Result
from moto import mock_aws

from ecsspot.sim.seam import MotoFixes
from ecsspot_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "examples" / "demo-api.yaml"
REGION = "us-east-1"
CLUSTER = "demo-api"

#: Environment a fresh user (or Terraform) would run with: dummy credentials, no config files.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
#: Variables of the developer's shell that would leak into the tests.
AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL")


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """AWS_* settings for a test process: dummy credentials, config files that do not exist."""
    return {
        **AWS_ENV,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)


@attrs.frozen
class Request:
    service: str
    operation: str
    url: str


class CallLog(list[Request]):
    def mutating(self) -> list[str]:
        """The calls that change something (anything but Describe/List/Get/BatchGet)."""
        return [f"{c.service}:{c.operation}" for c in self if not c.operation.startswith(("Describe", "List", "Get", "BatchGet"))]

    def hosts(self) -> set[str]:
        return {c.url.split("/")[2] for c in self if "://" in c.url}


@pytest.fixture(name="aws_calls")
def fixture_aws_calls(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    """Every AWS request ecsspot makes from now on (in this process)."""
    seen = CallLog()

    def record(model: Any, params: Any, **_: Any) -> None:
        # Only ecsspot's clients (its user agent says so), not the test's own boto3 checks.
        if "ecsspot" not in str(params.get("headers", {}).get("User-Agent", "")):
            return
        seen.append(Request(model.service_model.service_name, model.name, str(params.get("url", ""))))

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, ("before-call", record)])
    return seen


@pytest.fixture(name="aws")
def fixture_aws() -> Iterator[None]:
    """moto in-process, empty at the start of each test, with the seam's fixes of moto bugs AWS
    does not have (``ecsspot.sim.seam.MotoFixes``), not the simulator."""
    with MotoFixes(), mock_aws():
        yield


@attrs.frozen
class Network:
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]


def default_network(ec2: Any) -> Network:
    """Three default-VPC subnets (one per AZ) and the default security group."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:3]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    return Network(tuple(s["SubnetId"] for s in subnets), (group["GroupId"],))


@pytest.fixture(name="network")
def fixture_network(aws: None) -> Network:
    return default_network(boto3.client("ec2", region_name=REGION))


def write_spec(path: Path, network: Network | None, **changes: Any) -> Path:
    """examples/demo-api.yaml with real subnet/sg ids and top-level ``changes``; returns ``path``."""
    raw = yaml.safe_load(DEMO_SPEC.read_text())
    if network is not None:
        raw["network"] = {"subnets": list(network.subnets), "security_groups": list(network.security_groups)}
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(name="spec_file")
def fixture_spec_file(tmp_path: Path, network: Network) -> Path:
    return write_spec(tmp_path / "demo-api.yaml", network)


@pytest.fixture(name="invoke")
def fixture_invoke() -> Any:
    """Run the CLI in-process: ``ecsspot("plan", "-f", path, input="y\\n")`` → click Result."""
    runner = CliRunner()

    def run(*args: str | Path, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

    return run


@attrs.frozen
class Inventory:
    """What exists in (moto's) AWS, read directly with boto3, never through ecsspot."""

    region: str = REGION

    def clusters(self) -> list[str]:
        ecs = boto3.client("ecs", region_name=self.region)
        arns = ecs.list_clusters()["clusterArns"]
        described = ecs.describe_clusters(clusters=arns)["clusters"] if arns else []
        return sorted(c["clusterName"] for c in described if c["status"] == "ACTIVE")

    def groups(self) -> list[str]:
        groups = boto3.client("autoscaling", region_name=self.region).describe_auto_scaling_groups()["AutoScalingGroups"]
        return sorted(g["AutoScalingGroupName"] for g in groups)

    def tables(self) -> list[str]:
        return sorted(boto3.client("dynamodb", region_name=self.region).list_tables()["TableNames"])

    def templates(self) -> list[str]:
        answer = boto3.client("ec2", region_name=self.region).describe_launch_templates()
        return sorted(t["LaunchTemplateName"] for t in answer["LaunchTemplates"])

    def everything(self) -> dict[str, list[str]]:
        return {"clusters": self.clusters(), "groups": self.groups(), "tables": self.tables(), "templates": self.templates()}


@pytest.fixture(name="inventory")
def fixture_inventory(aws: None) -> Inventory:
    return Inventory()


@pytest.fixture(name="make_spec")
def fixture_make_spec(tmp_path: Path, network: Network) -> Any:
    """``make_spec("name.yaml", region=…)``: a demo spec in tmp_path with top-level changes."""

    def make(name: str = "spec.yaml", **changes: Any) -> Path:
        return write_spec(tmp_path / name, network, **changes)

    return make


@pytest.fixture(name="applied")
def fixture_applied(invoke: Any, spec_file: Path) -> Path:
    """The demo cluster, applied with ``apply --yes``; returns its spec file."""
    result = invoke("apply", "-f", spec_file, "--yes")
    assert result.exit_code == 0, result.stderr
    return spec_file

