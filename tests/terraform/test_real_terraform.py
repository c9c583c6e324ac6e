"""The module and its example through the real ``terraform`` binary, offline.

``terraform init`` installs ``hashicorp/aws`` from a local filesystem mirror (found at test time)
and ``hashicorp/external`` from a mirror this file writes: a stand-in built on PyPI ``tf``
(:mod:`tests.terraform.external_provider`) that runs the real ``ecsspot tf`` hooks exactly as
the external data source does. ``plan`` and ``apply`` go to the simulator (moto with the seam)
served on a local port. Skipped only without the ``terraform`` binary or an aws mirror, and a
missing mirror fails instead when ``CI`` is set (the CI machine has one).
"""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = "registry.terraform.io/hashicorp"
#: Terraform's platform name (GOOS_GOARCH) of this machine.
PLATFORM = f"{sys.platform}_{ {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(platform.machine(), platform.machine())}"
TIMEOUT = 900
#: Generous for a loaded 2-core machine: the aws provider is a 700 MB binary to load per command.
CLUSTER = "demo-api"
REGION = "us-east-1"
#: The AWS services the module and the example call (aws provider `endpoints` block keys).
SERVICES = ("autoscaling", "cloudwatchlogs", "dynamodb", "ec2", "ecs", "elbv2", "events", "iam", "lambda", "sqs", "ssm", "sts")


def plugin_dirs() -> list[Path]:
    """Where a provider mirror may be: Terraform's implied local mirrors, then /opt/*."""
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = [Path(d) for d in (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":") if d]
    opt = sorted(p for p in Path("/opt").glob("*") if p.is_dir()) if Path("/opt").is_dir() else []
    return [home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins", *(d / "terraform" / "plugins" for d in data_dirs), *opt]


def has_provider(mirror: Path, name: str) -> bool:
    """Whether ``mirror`` holds ``hashicorp/<name>`` for this platform, unpacked or packed."""
    base = mirror / PROVIDERS / name
    return any(base.glob(f"*/{PLATFORM}/terraform-provider-{name}*")) or any(base.glob(f"terraform-provider-{name}_*_{PLATFORM}.zip"))


@attrs.frozen
class Terraform:
    """The ``terraform`` binary with this session's CLI configuration."""

    binary: str
    root: Path
    config_file: Path
    aws_mirror: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(self.config_file),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            # No version check against checkpoint-api.hashicorp.com: no network here or in CI.
            "CHECKPOINT_DISABLE": "1",
            **extra,
        }

    def run(self, cwd: Path, *args: str, ok_codes: tuple[int, ...] = (0,), **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, *args, "-no-color"], cwd=cwd, env=self.env(**env), capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        assert done.returncode in ok_codes, f"terraform {' '.join(args)} exited {done.returncode}\n{done.stderr}\n{done.stdout}"
        return done


def write_cli_config(root: Path, aws_mirror: Path) -> Path:
    """A mirror for the stand-in ``external`` provider and the CLI config using both mirrors."""
    from tests.terraform import external_provider

    plugin = root / "mirror" / PROVIDERS / "external" / external_provider.VERSION / PLATFORM / f"terraform-provider-external_v{external_provider.VERSION}"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(external_provider.launcher(sys.executable))
    plugin.chmod(0o755)
    (root / "plugin-cache").mkdir()
    config = root / "terraformrc"
    # Only filesystem mirrors and no `direct`: init never reaches a registry.
    config.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(aws_mirror))}\n    include = [\"{PROVIDERS}/aws\"]\n  }}\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(root / 'mirror'))}\n    include = [\"{PROVIDERS}/external\"]\n  }}\n"
        "}\n"
        # One copy of each provider for every working directory of the session (they symlink to it).
        f"plugin_cache_dir = {json.dumps(str(root / 'plugin-cache'))}\n"
    )
    return config


@pytest.fixture(name="terraform", scope="session")
def fixture_terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("the terraform binary is not on PATH")
    searched = plugin_dirs()
    aws_mirror = next((d for d in searched if has_provider(d, "aws")), None)
    if aws_mirror is None:
        message = f"no filesystem mirror of {PROVIDERS}/aws for {PLATFORM} in {', '.join(map(str, searched))}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set and terraform is on PATH, so the mirror should be there too")
        pytest.skip(message)
    try:
        import tf  # noqa: F401  (the stand-in's framework, in the test extra)
    except ImportError:
        pytest.fail("PyPI tf (in the test extra) is needed for the hashicorp/external stand-in: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("terraform")
    return Terraform(binary=binary, root=root, config_file=write_cli_config(root, aws_mirror), aws_mirror=aws_mirror)


@pytest.fixture(name="workdir", scope="session")
def fixture_workdir(terraform: Terraform) -> Path:
    """A copy of terraform/ (init writes .terraform and a lock file next to the configuration)."""
    copy = terraform.root / "terraform"
    shutil.copytree(ROOT / "terraform", copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "*_override.tf"))
    return copy


def initialised(terraform: Terraform, directory: Path) -> Path:
    if not (directory / ".terraform.lock.hcl").exists():
        terraform.run(directory, "init", "-backend=false")
    return directory


@pytest.fixture(name="module_dir", scope="session")
def fixture_module_dir(terraform: Terraform, workdir: Path) -> Path:
    return initialised(terraform, workdir)


@pytest.fixture(name="example_dir", scope="session")
def fixture_example_dir(terraform: Terraform, workdir: Path) -> Path:
    return initialised(terraform, workdir / "examples" / "alb-service")


def test_init_installs_both_providers_from_the_mirrors(terraform: Terraform, example_dir: Path) -> None:
    lock = (example_dir / ".terraform.lock.hcl").read_text()
    assert f'provider "{PROVIDERS}/aws"' in lock and f'provider "{PROVIDERS}/external"' in lock
    versions = json.loads(terraform.run(example_dir, "version", "-json").stdout)["provider_selections"]
    assert set(versions) == {f"{PROVIDERS}/aws", f"{PROVIDERS}/external"}


@pytest.mark.parametrize("which", ["module", "example"])
def test_validate(terraform: Terraform, which: str, request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(f"{which}_dir")
    result = json.loads(terraform.run(directory, "validate", "-json", ok_codes=(0, 1)).stdout)
    problems = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')} ({d.get('range', {}).get('filename')})" for d in result["diagnostics"]]
    assert result["valid"] and not problems, "\n".join(problems)
