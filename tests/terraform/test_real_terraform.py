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
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = "registry.terraform.io/hashicorp"
#: Terraform's platform name (GOOS_GOARCH) of this machine.
PLATFORM = f"{sys.platform}_{ {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(platform.machine(), platform.machine())}"
#: Seconds per terraform command; generous for a loaded 2-core machine, where the aws provider
#: (a 700 MB binary) starts for every command.
TIMEOUT = 900
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


def require_aws_mirror(searched: list[Path], environ: Mapping[str, str]) -> Path:
    """The first of ``searched`` holding hashicorp/aws; else skip, or fail when ``CI`` is set."""
    found = next((d for d in searched if has_provider(d, "aws")), None)
    if found is None:
        message = f"no filesystem mirror of {PROVIDERS}/aws for {PLATFORM} in {', '.join(map(str, searched))}"
        if environ.get("CI"):
            pytest.fail(f"{message}; CI is set and terraform is on PATH, so the mirror should be there too")
        pytest.skip(message)
    return found


def test_a_missing_aws_mirror_skips_here_and_fails_in_ci(tmp_path: Path) -> None:
    empty, packed = tmp_path / "empty", tmp_path / "packed"
    (packed / PROVIDERS / "aws").mkdir(parents=True)
    (packed / PROVIDERS / "aws" / f"terraform-provider-aws_5.100.0_{PLATFORM}.zip").touch()
    with pytest.raises(pytest.skip.Exception, match="no filesystem mirror"):
        require_aws_mirror([empty], {})
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_aws_mirror([empty], {"CI": "true"})
    assert require_aws_mirror([empty, packed], {"CI": "true"}) == packed


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
    aws_mirror = require_aws_mirror(plugin_dirs(), os.environ)
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



PROBE = """
import json, os, sys
query = sys.stdin.read()
mode = sys.argv[1]
if mode == "fail":
    sys.stderr.write("probe: refused\\n")
    sys.exit(3)
print(json.dumps({"stdin": query, "cwd": os.getcwd()} if mode == "echo" else {"count": 3}))
"""


def test_the_external_stand_in_keeps_the_protocol(terraform: Terraform, tmp_path: Path) -> None:
    """Query JSON on stdin (nulls dropped), working_dir, result; a failure shows the program's stderr."""
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "run").mkdir()
    program = json.dumps([sys.executable, str(tmp_path / "probe.py")])[:-1]
    (tmp_path / "main.tf").write_text(
        'terraform {\n  required_providers {\n    external = { source = "hashicorp/external" }\n  }\n}\n'
        'variable "mode" {\n  type = string\n}\n'
        f'data "external" "probe" {{\n  program = {program}, var.mode]\n  working_dir = "${{path.module}}/run"\n'
        '  query = { b = "<&>", a = "1", gone = null }\n}\n'
        'output "result" {\n  value = data.external.probe.result\n}\n'
    )
    terraform.run(tmp_path, "init", "-backend=false")
    terraform.run(tmp_path, "apply", "-auto-approve", "-var=mode=echo")
    result = json.loads(terraform.run(tmp_path, "output", "-json", "result").stdout)
    assert result == {"stdin": '{"a":"1","b":"\\u003c\\u0026\\u003e"}', "cwd": str(tmp_path / "run")}
    failed = terraform.run(tmp_path, "plan", "-var=mode=fail", ok_codes=(1,))
    assert "External Program Execution Failed" in failed.stderr and "probe: refused" in failed.stderr
    not_strings = terraform.run(tmp_path, "plan", "-var=mode=count", ok_codes=(1,))
    assert "Unexpected External Program Results" in not_strings.stderr


# --- plan and apply against the simulator --------------------------------------------------------

#: What the example plans to create, at least (all of it new: the simulator starts empty).
EXPECTED_CREATES = {
    "aws_ecs_service.web",
    "aws_ecs_task_definition.web",
    "aws_lb.web",
    "aws_lb_target_group.web",
    "aws_lb_listener.http_forward[0]",
    "module.ecsspot.aws_ecs_cluster.this",
    "module.ecsspot.aws_launch_template.this",
    "module.ecsspot.aws_ecs_cluster_capacity_providers.this",
    "module.ecsspot.aws_dynamodb_table.state",
    "module.ecsspot.aws_dynamodb_table_item.settings",
    "module.ecsspot.aws_lambda_function.interruption",
    "module.ecsspot.aws_lambda_function.refresh",
    "module.ecsspot.aws_lambda_event_source_mapping.interruption",
    "module.ecsspot.aws_sqs_queue.events",
    "module.ecsspot.aws_sqs_queue.dead_letter",
    *(f'module.ecsspot.{kind}.pool["{pool}"]' for kind in ("aws_autoscaling_group", "aws_ecs_capacity_provider") for pool in ("spot", "on-demand")),
    *(f'module.ecsspot.aws_autoscaling_lifecycle_hook.drain["{pool}"]' for pool in ("spot", "on-demand")),
}


def provider_override(endpoint_url: str) -> str:
    """The example's aws provider pointed at the simulator (an override file merges into its block).

    No ``skip_requesting_account_id``: the simulator answers GetCallerIdentity, and without the
    account the provider writes a referenced security group as ``<account>/sg-…``, which reads as
    drift on the next plan.
    """
    endpoints = "".join(f"    {service} = {json.dumps(endpoint_url)}\n" for service in SERVICES)
    return (
        'provider "aws" {\n'
        f"  region                      = {json.dumps(REGION)}\n"
        '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_region_validation      = true\n"
        f"  endpoints {{\n{endpoints}  }}\n"
        "}\n"
    )


def ecsspot_program() -> str:
    """The installed ``ecsspot`` script of this environment, as a user's PATH would find it."""
    script = Path(sys.executable).parent / "ecsspot"
    found = str(script) if script.exists() else shutil.which("ecsspot")
    assert found, "no ecsspot script: pip install -e '.[test]'"
    return found


@attrs.frozen
class Example:
    """terraform/examples/alb-service wired to a running simulator."""

    terraform: Terraform
    directory: Path
    sim: Any
    var_file: Path
    subnets: list[str]

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        # sim.environ(): fake credentials, the region and AWS_ENDPOINT_URL, which the hooks
        # (run by the external provider, with Terraform's environment) use to reach the simulator.
        env = self.sim.environ()
        env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        env.pop("AWS_PROFILE", None)
        return self.terraform.run(self.directory, *args, ok_codes=ok_codes, **env)

    def show(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("show", "-json", *args).stdout)


@pytest.fixture(name="example", scope="module")
def fixture_example(terraform: Terraform, example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    import threading
    import zipfile

    from ecsspot.sim import Simulator

    tmp = tmp_path_factory.mktemp("example")
    package = tmp / "ecsspot-lambda.zip"
    with zipfile.ZipFile(package, "w") as zf:
        for path in sorted((ROOT / "ecsspot").rglob("*.py")):
            zf.write(path, path.relative_to(ROOT).as_posix())
    with Simulator(region=REGION, server=True) as sim:
        # AWS launches instances by itself, and the aws provider waits for each group's min_size
        # healthy instances: run the simulated world (5 s per 0.25 s) while Terraform works.
        stop = threading.Event()

        def run_world() -> None:
            while not stop.wait(0.25):
                sim.advance(5.0)

        ticker = threading.Thread(target=run_world, name="sim-clock", daemon=True)
        ticker.start()
        ec2 = sim.client("ec2")
        by_az: dict[str, dict[str, Any]] = {}
        for subnet in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]:
            by_az.setdefault(subnet["AvailabilityZone"], subnet)
        subnets = [by_az[az] for az in sorted(by_az)][:3]
        var_file = tmp / "example.tfvars.json"
        var_file.write_text(
            json.dumps(
                {
                    "vpc_id": subnets[0]["VpcId"],
                    "instance_subnets": [s["SubnetId"] for s in subnets],
                    "alb_subnets": [s["SubnetId"] for s in subnets[:2]],
                    "lambda_package": str(package),
                    "ecsspot_command": ecsspot_program(),
                }
            )
        )
        override = example_dir / "ecsspot_sim_override.tf"
        override.write_text(provider_override(sim.endpoint_url))
        try:
            yield Example(terraform, example_dir, sim, var_file, [s["SubnetId"] for s in subnets])
        finally:
            stop.set()
            ticker.join()
            override.unlink()
            for leftover in example_dir.glob("terraform.tfstate*"):
                leftover.unlink()


@pytest.fixture(name="planned", scope="module")
def fixture_planned(example: Example) -> dict[str, Any]:
    """``terraform plan`` of the example (the hooks run during it), as ``terraform show -json``."""
    example.run("plan", "-out=tfplan", f"-var-file={example.var_file}")
    return example.show("tfplan")


def _data_result(plan: dict[str, Any], address: str) -> dict[str, str]:
    modules = plan["prior_state"]["values"]["root_module"].get("child_modules", [])
    for resource in (r for m in modules for r in m.get("resources", [])):
        if resource["address"] == address:
            return resource["values"]["result"]
    raise AssertionError(f"{address} was not read during plan")


def test_plan_creates_the_example_with_the_hooks_results(example: Example, planned: dict[str, Any]) -> None:
    from ecsspot import userdata

    managed = {rc["address"]: rc for rc in planned["resource_changes"] if rc["mode"] == "managed"}
    assert set(managed) >= EXPECTED_CREATES, sorted(EXPECTED_CREATES - set(managed))
    assert {a: rc["change"]["actions"] for a, rc in managed.items() if rc["change"]["actions"] != ["create"]} == {}
    assert not [a for a in managed if a.startswith(("aws_lb_listener.https", "aws_lb_listener.http_redirect"))]  # no certificate

    # `ecsspot tf ami` read the simulator's SSM parameter during plan ...
    parameter = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    image_id = example.sim.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    ami = _data_result(planned, "module.ecsspot.data.external.ami")
    assert (ami["image_id"], ami["source"]) == (image_id, f"ssm:{parameter}")
    # ... and `ecsspot tf user-data` rendered what `ecsspot apply` would
    rendered = userdata.render(CLUSTER, {"ECS_CONTAINER_STOP_TIMEOUT": "30s"})
    user_data = _data_result(planned, "module.ecsspot.data.external.user_data")
    assert base64.b64decode(user_data["user_data_base64"]).decode() == rendered
    assert user_data["sha256"] == hashlib.sha256(rendered.encode()).hexdigest()

    # Both flow into the launch template the groups use.
    template = managed["module.ecsspot.aws_launch_template.this"]["change"]["after"]
    assert (template["name"], template["image_id"], template["user_data"]) == (f"{CLUSTER}-ecsspot", image_id, user_data["user_data_base64"])
    assert template["metadata_options"][0]["http_tokens"] == "required"
    spot = managed['module.ecsspot.aws_autoscaling_group.pool["spot"]']["change"]["after"]
    assert (spot["name"], spot["min_size"], spot["max_size"], spot["protect_from_scale_in"]) == (f"{CLUSTER}-spot", 0, 20, True)
    assert sorted(spot["vpc_zone_identifier"]) == sorted(example.subnets)
    (policy,) = spot["mixed_instances_policy"]
    assert [o["instance_type"] for o in policy["launch_template"][0]["override"]] == ["m5.large", "m5a.large", "m5d.large", "m6i.large"]
    assert policy["instances_distribution"][0]["on_demand_percentage_above_base_capacity"] == 0
    service = managed["aws_ecs_service.web"]["change"]["after"]
    strategy = {s["capacity_provider"]: (s["base"], s["weight"]) for s in service["capacity_provider_strategy"]}
    assert strategy == {f"{CLUSTER}-on-demand": (1, 1), f"{CLUSTER}-spot": (0, 3)}


@pytest.fixture(name="applied", scope="module")
def fixture_applied(example: Example, planned: dict[str, Any]) -> dict[str, Any]:
    """``terraform apply tfplan``: the plan shown above, applied as a user applies a reviewed plan
    (the hooks are not run again); the state.

    One apply of the whole example, not the module first: the aws provider's own waits (each SQS
    queue's attributes read back six times 5 s apart, the load balancer's 30 s before its first
    look) then overlap instead of adding up.
    """
    example.run("apply", "tfplan")  # a saved plan applies without asking
    # `state pull` needs no provider (`show -json` would start the 700 MB aws provider again).
    return json.loads(example.run("state", "pull").stdout)


def _state_resource(state: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    """The attributes of the root module's single-instance resource ``type_.name``."""
    for resource in state["resources"]:
        if (resource.get("module"), resource["mode"], resource["type"], resource["name"]) == (None, "managed", type_, name):
            (instance,) = resource["instances"]
            return instance["attributes"]
    raise AssertionError(f"{type_}.{name} is not in the state")


def test_ecsspot_plan_of_the_equivalent_spec_shows_no_changes(example: Example, applied: dict[str, Any], tmp_path: Path) -> None:
    """What the module created is what `ecsspot apply` would have: same names, same data."""
    import yaml

    from tests.conftest import example_spec_dict

    spec = example_spec_dict()  # the example's module call is examples/demo-api.yaml
    spec["network"] = {
        "subnets": example.subnets,
        "security_groups": [_state_resource(applied, "aws_security_group", "instances")["id"]],
    }
    spec["target_groups"] = [_state_resource(applied, "aws_lb_target_group", "web")["arn"]]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [ecsspot_program(), "--output", "json", "plan", "-f", str(path)],
        env=example.sim.environ(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["changes"] == [], plan["changes"]
    assert set(plan["summary"].values()) == {0}


def _drift(example: Example) -> dict[str, list[str]]:
    """Addresses a fresh ``terraform plan`` would change, with their actions."""
    done = example.run("plan", "-detailed-exitcode", "-out=drift", f"-var-file={example.var_file}", ok_codes=(0, 2))
    if done.returncode == 0:
        return {}
    return {rc["address"]: rc["change"]["actions"] for rc in example.show("drift")["resource_changes"] if rc["change"]["actions"] not in (["no-op"], ["read"])}


def test_apply_creates_the_whole_example(example: Example, applied: dict[str, Any]) -> None:
    created = {f"{r['module']}.{r['type']}.{r['name']}" if "module" in r else f"{r['type']}.{r['name']}" for r in applied["resources"] if r["mode"] == "managed"}
    wanted = {address.split("[")[0] for address in EXPECTED_CREATES}
    assert created >= wanted, sorted(wanted - created)
    (service,) = example.sim.client("ecs").describe_services(cluster=CLUSTER, services=["web"])["services"]
    assert service["status"] == "ACTIVE"


def test_a_second_plan_shows_no_drift(example: Example, applied: dict[str, Any]) -> None:
    drift = _drift(example)
    assert drift == {}, f"terraform plan right after apply wants to change {drift}"


def test_instance_requirements_are_recorded_as_ecsspot_apply_records_them(terraform: Terraform, module_dir: Path, tmp_path: Path) -> None:
    """The module's settings document of pools with and without ``instance_requirements`` is
    ``dump_spec``'s (so ``ecsspot plan`` after the module reads no settings change), evaluated by
    ``terraform console`` (variables only: no provider call)."""
    from ecsspot.spec import dump_spec, load_spec
    from tests.conftest import example_spec_dict

    requirements = {
        "vcpu": {"min": 2, "max": 4},
        "memory_mib": {"min": 8192},
        "cpu_manufacturers": ["intel", "amd"],
        "excluded_instance_types": ["t*"],
        "on_demand_max_price_percentage_over_lowest_price": 30,
    }
    module_pools = [
        {"name": "spot", "max_size": 4, "on_demand_percentage_above_base": 0, "instance_requirements": requirements},
        {"name": "on-demand", "max_size": 2, "instance_types": [{"type": "m5.large"}]},
    ]
    spec = example_spec_dict()
    spec["pools"] = [
        {"name": "spot", "max_size": 4, "on_demand_percentage_above_base": 0, "instance_requirements": requirements},
        {"name": "on-demand", "max_size": 2, "instance_types": ["m5.large"]},
    ]
    var_file = tmp_path / "requirements.tfvars.json"
    var_file.write_text(json.dumps({"cluster": CLUSTER, "subnets": spec["network"]["subnets"], "pools": module_pools}))
    done = subprocess.run(
        [terraform.binary, "console", f"-var-file={var_file}"],
        cwd=module_dir,
        env=terraform.env(),
        input="jsonencode(local.settings.pools)\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    recorded = json.loads(json.loads(done.stdout.strip()))
    assert recorded == dump_spec(load_spec(spec))["pools"]
    assert recorded[0]["on_demand_allocation_strategy"] == "lowest-price"
