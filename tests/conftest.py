"""Shared fixtures: fake AWS credentials, moto (in-process and server), spec builders."""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

# Property tests never assert wall-clock time: hypothesis's default 200 ms deadline per example
# fails them on a loaded CI machine (seen: test_userdata's round trip under a load of 10).
settings.register_profile("ecsspot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ecsspot")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = ROOT / "examples" / "demo-api.yaml"
REGION = "us-east-1"

# moto's server logs every request at INFO; a failing test's captured log would drown in them.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


#: The longest test files (``--durations`` of a full run, summed per file), collected first:
#: ``--dist loadfile`` hands out whole files in collection order, so they start early and the run
#: ends on short files, the workers finishing together. Real Terraform first: it mostly waits on
#: the aws provider's own timers, which is why the README's command runs three workers on two
#: cores (the third takes the CPU Terraform leaves). In path order tests/terraform would start
#: last and hold the run's end.
LONG_FILES = (
    "tests/terraform/test_real_terraform.py",
    "tests/e2e/test_demo.py",
    "tests/refresh/test_crash.py",
    "tests/refresh/test_rolling.py",
    "tests/terraform/test_hooks.py",
    "tests/unit/test_events.py",
    "tests/cli/test_cli_subprocess.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(ROOT).as_posix()
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: each file's own order (plan before apply) is kept


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach real AWS from a test: fake credentials, fixed region, no profile or endpoint."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "ECSSPOT_CLUSTER", "ECSSPOT_TABLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    """The CLI configures the ecsspot/botocore loggers when run in-process; put them back."""
    loggers = [logging.getLogger(name) for name in ("ecsspot", "botocore", "boto3")]
    saved = [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    yield
    for lg, (level, handlers, propagate) in zip(loggers, saved):
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def example_spec_dict() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE_SPEC.read_text()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One ThreadedMotoServer for the session (aiobotocore needs HTTP); reset per test by `aws_server`.

    With the seam's fixes of moto bugs AWS does not have (``ecsspot.sim.seam.MotoFixes``), not
    the simulator.
    """
    from moto.server import ThreadedMotoServer

    from ecsspot.sim.seam import MotoFixes

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with MotoFixes():
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture()
def aws_server(moto_server: str) -> Iterator[str]:
    """The moto server's URL, with every backend reset before the test."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    yield moto_server


def network_ids(endpoint_url: str | None = None) -> tuple[list[str], str]:
    """Three default-VPC subnets in distinct AZs and the default security group (moto creates them)."""
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint_url)
    by_az: dict[str, str] = {}
    for s in ec2.describe_subnets()["Subnets"]:
        by_az.setdefault(s["AvailabilityZone"], s["SubnetId"])
    sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    return [by_az[az] for az in sorted(by_az)][:3], sg


def demo_spec_dict(endpoint_url: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The example spec with real (moto) subnet and security group ids."""
    d = example_spec_dict()
    subnets, sg = network_ids(endpoint_url)
    d["network"] = {"subnets": subnets, "security_groups": [sg]}
    d.update(overrides)
    return d


class CallCounter:
    """A botocore ``before-call`` handler recording each API call's operation name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any = None, **kwargs: Any) -> None:
        self.calls.append(model.name if model is not None else "?")

    def handler(self) -> tuple[str, Any]:
        return ("before-call", self)

    def __len__(self) -> int:
        return len(self.calls)


class SyncOrAsync:
    """The Manager API with one face, whichever driver is behind it (for parametrised e2e tests)."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        if kind == "sync":
            from ecsspot import Manager

            self._m: Any = Manager(**kwargs)
            self._loop = None
        else:
            from ecsspot import AsyncManager

            self._loop = asyncio.new_event_loop()
            self._m = AsyncManager(**kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._m, name)
        if self._loop is None:
            return method

        def run(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return run

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._m.__aexit__(None, None, None))
            self._loop.close()
