"""Spec loading and every validation rule: each failing case names its exact path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsspot import ClusterSpec, Instances, Network, Pool, StrategyItem, dump_spec, load_spec, loads_spec
from ecsspot.errors import SpecError
from ecsspot.spec import MAX_SPEC_BYTES, batch_count, dumps_spec, parse_duration, validate
from tests.conftest import EXAMPLE_SPEC, example_spec_dict


def problems(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec(d)
    return {p.path: p.message for p in info.value.problems}


def with_pool(**changes: Any) -> dict[str, Any]:
    d = example_spec_dict()
    d["pools"][0].update(changes)
    return d


def test_example_spec_loads_and_round_trips() -> None:
    spec = load_spec(EXAMPLE_SPEC)
    assert spec.cluster == "demo-api"
    assert [p.name for p in spec.pools] == ["spot", "on-demand"]
    assert spec.pools[0].all_spot and not spec.pools[1].has_spot
    assert load_spec(dump_spec(spec)) == spec
    assert loads_spec(dumps_spec(spec)) == spec


def test_python_objects_equal_yaml() -> None:
    spec = ClusterSpec(
        cluster="demo-api",
        network=Network(subnets=["subnet-aaa"]),
        instances=Instances(ami="ami-123"),
        pools=[Pool(name="spot", max_size=3, instance_types=["m5.large"], on_demand_percentage_above_base=0)],
        strategy=[StrategyItem(pool="spot")],
    )
    assert validate(spec) is spec
    assert load_spec(dump_spec(spec)) == spec
    assert spec.pools[0].capacity_rebalance is True  # on by default for pools that can run spot


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d.update(extra=1), "extra", "unknown key"),
        (lambda d: d["pools"][0].update(instance_typs=["m5.large"]), "pools[0].instance_typs", "did you mean 'instance_types'"),
        (lambda d: d["pools"][0].update(min_size=-1), "pools[0].min_size", "≥ 0"),
        (lambda d: d["pools"][0].update(max_size=-1), "pools[0].max_size", "≥ 0"),
        (lambda d: d["pools"][1].update(min_size=5), "pools[1].min_size", "≤ max_size (4)"),
        (lambda d: d["pools"][1].update(on_demand_percentage_above_base=101), "pools[1].on_demand_percentage_above_base", "0..100"),
        (lambda d: d["pools"][0].update(on_demand_percentage_above_base=-1), "pools[0].on_demand_percentage_above_base", "0..100"),
        (lambda d: d["pools"][0].update(on_demand_base_capacity=-1), "pools[0].on_demand_base_capacity", "≥ 0"),
        (lambda d: d["pools"][0].update(spot_allocation_strategy="cheapest"), "pools[0].spot_allocation_strategy", "price-capacity-optimized"),
        (lambda d: d["pools"][0].update(on_demand_allocation_strategy="x"), "pools[0].on_demand_allocation_strategy", "prioritized"),
        (lambda d: d["pools"][1].update(name="spot"), "pools[1].name", "used by another pool"),
        (lambda d: d["pools"][0].update(name="bad name"), "pools[0].name", "letters, digits"),
        (lambda d: d.update(cluster="ecs-prod"), "pools[0].name", "may not start with aws, ecs or fargate"),
        (lambda d: d.update(cluster="fargate"), "pools[0].name", "may not start with aws, ecs or fargate"),
        (lambda d: d["strategy"].append({"pool": "nope", "weight": 1}), "strategy[2].pool", "names no pool"),
        (lambda d: d["strategy"][1].update(base=2), "strategy[1].base", "only one strategy item"),
        (lambda d: d["strategy"].append({"pool": "spot"}), "strategy[2].pool", "appears twice"),
        (lambda d: d["pools"][0].update(managed_scaling=False), "pools[0].managed_termination_protection", "requires managed_scaling"),
        (lambda d: d["pools"][0].update(managed_scaling={"target_capacity": 0}), "pools[0].managed_scaling.target_capacity", "1..100"),
        (lambda d: d["pools"][0].update(instance_types=[]), "pools[0].instance_types", "at least one"),
        (lambda d: d["pools"][0].update(instance_types=["m5.large", "m5.large"]), "pools[0].instance_types[1]", "twice"),
        (lambda d: d["pools"][0].update(instance_types=["M5 Large"]), "pools[0].instance_types[0]", "not an instance type"),
        (lambda d: d["pools"][0].update(instance_types=[{"type": "m5.large", "weight": 0}]), "pools[0].instance_types[0].weight", "1..999"),
        (lambda d: d["pools"][0].update(max_size="20"), "pools[0].max_size", "must be an integer"),
        (lambda d: d["pools"][0].update(capacity_rebalance="yes"), "pools[0].capacity_rebalance", "true or false"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_ENGINE_AUTH_DATA='{"https://r": {"password": "p"}}'), "instances.ecs_config.ECS_ENGINE_AUTH_DATA", "repositoryCredentials"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_ENGINE_AUTH_TYPE="dockercfg"), "instances.ecs_config.ECS_ENGINE_AUTH_TYPE", "Secrets Manager"),
        (lambda d: d["instances"]["ecs_config"].update(DB_PASSWORD="hunter2"), "instances.ecs_config.DB_PASSWORD", "credentials must not"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_CLUSTER="other"), "instances.ecs_config.ECS_CLUSTER", "set by ecsspot"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_ENABLE_SPOT_INSTANCE_DRAINING=False), "instances.ecs_config.ECS_ENABLE_SPOT_INSTANCE_DRAINING", "always enables"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_CONTAINER_STOP_TIMEOUT="soon"), "instances.ecs_config.ECS_CONTAINER_STOP_TIMEOUT", "duration"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_INSTANCE_ATTRIBUTES="[1]"), "instances.ecs_config.ECS_INSTANCE_ATTRIBUTES", "JSON object"),
        (lambda d: d["instances"].update(ami="latest"), "instances.ami", "AMI id"),
        (lambda d: d["instances"]["tags"].update({"aws:x": "y"}), "instances.tags.aws:x", "reserved"),
        (lambda d: d["network"].update(subnets=[]), "network.subnets", "at least one"),
        (lambda d: d["network"].update(subnets=["vpc-1"]), "network.subnets[0]", "not a subnet id"),
        (lambda d: d["network"].pop("subnets"), "network.subnets", "required"),
        (lambda d: d.pop("pools"), "pools", "required"),
        (lambda d: d["target_groups"].append("tg-1"), "target_groups[0]", "target group ARN"),
        (lambda d: d["refresh"].update(batch_size="150%"), "refresh.batch_size", "percentage"),
        (lambda d: d["refresh"].update(batch_size=0), "refresh.batch_size", "count ≥ 1"),
        (lambda d: d["refresh"].update(min_healthy_percent=101), "refresh.min_healthy_percent", "0..100"),
        (lambda d: d["refresh"].update(ami_parameter="aws/service"), "refresh.ami_parameter", "starting with /"),
        (lambda d: d["drain"].update(lifecycle_timeout_seconds=10), "drain.lifecycle_timeout_seconds", "30..7200"),
        (lambda d: d.update(region="Virginia"), "region", "not an AWS region"),
        # A trailing newline passed every `^…$` pattern (`$` matches before a final "\n").
        (lambda d: d.update(cluster="demo-api\n"), "cluster", "letters, digits"),
        (lambda d: d.update(region="us-east-1\n"), "region", "not an AWS region"),
        (lambda d: d["pools"][0].update(instance_types=["m5.large\n"]), "pools[0].instance_types[0]", "not an instance type"),
        (lambda d: d["pools"][0].update(name="spot\n"), "pools[0].name", "letters, digits"),
        (lambda d: d["pools"][0].update(asg_name="my-asg\n"), "pools[0].asg_name", "not a valid Auto Scaling group name"),
        (lambda d: d["network"].update(subnets=["subnet-aaa\n"]), "network.subnets[0]", "not a subnet id"),
        (lambda d: d["network"].update(security_groups=["sg-123\n"]), "network.security_groups[0]", "not a security group id"),
        (lambda d: d["instances"].update(ami="ami-123\n"), "instances.ami", "AMI id"),
        (lambda d: d["target_groups"].append("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef\n"), "target_groups[0]", "target group ARN"),
        (lambda d: d["refresh"].update(batch_size="25%\n"), "refresh.batch_size", "percentage"),
        (lambda d: d["refresh"].update(ami_parameter="/aws/x\n"), "refresh.ami_parameter", "starting with /"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_CONTAINER_STOP_TIMEOUT="30s\n"), "instances.ecs_config.ECS_CONTAINER_STOP_TIMEOUT", "single line"),
        (lambda d: d["instances"]["ecs_config"].update({"ECSSPOT_ECS_CONFIG\n": "=$(reboot)"}), "instances.ecs_config.'ECSSPOT_ECS_CONFIG\\n'", "upper case letters"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_LOGLEVEL="info\rX"), "instances.ecs_config.ECS_LOGLEVEL", "control characters"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_LOGLEVEL="a\x00b"), "instances.ecs_config.ECS_LOGLEVEL", "control characters"),
        # AWS's upper bounds.
        (lambda d: d.update(cluster="c" * 121), "cluster", "at most 120 characters"),
        (lambda d: d["instances"].update(root_volume_gib=16385), "instances.root_volume_gib", "1..16384"),
        (lambda d: d["pools"][0].update(instance_types=[f"m{i}.large" for i in range(41)]), "pools[0].instance_types", "at most 40"),
        (lambda d: d["pools"][0].update(max_size=2**31), "pools[0].max_size", "out of range"),
        (lambda d: d["pools"][0].update(max_size=10**5000), "pools[0].max_size", "out of range"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_RESERVED_MEMORY=10**5000), "instances.ecs_config.ECS_RESERVED_MEMORY", "too large"),
        (lambda d: d["network"].update(subnets=[f"subnet-{i:017x}" for i in range(210)]), "network.subnets", "5000 characters"),
        (lambda d: d["network"].update(security_groups=[f"sg-{i}" for i in range(17)]), "network.security_groups", "at most 16"),
        (lambda d: d["instances"].update(tags={f"k{i}": "v" for i in range(48)}), "instances.tags", "at most 47"),
        (lambda d: d["instances"]["tags"].update({"k" * 128: "v"}), "instances.tags." + "'" + "k" * 76 + "...", "1..127"),
        (lambda d: d["instances"]["tags"].update(team="v" * 257), "instances.tags.team", "at most 256"),
        (lambda d: d["instances"]["tags"].update(AmazonECSManaged=""), "instances.tags.AmazonECSManaged", "reserved"),
        (lambda d: d["instances"].update(user_data="#!/bin/sh\n" + "echo padding\n" * 1400), "instances.user_data", "16384 (16 KB before base64)"),
        (lambda d: d["instances"].update(metadata_hop_limit=0), "instances.metadata_hop_limit", "1..64"),
        (lambda d: d["instances"].update(metadata_hop_limit=65), "instances.metadata_hop_limit", "1..64"),
        (lambda d: d["instances"].update(instance_profile="role\n"), "instances.instance_profile", "instance profile name"),
        # ECS refuses such attributes when the agent registers (API_Attribute).
        (lambda d: d["instances"]["ecs_config"].update(ECS_INSTANCE_ATTRIBUTES='{"team": "$(reboot)"}'), "instances.ecs_config.ECS_INSTANCE_ATTRIBUTES", "the value of team"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_INSTANCE_ATTRIBUTES='{"te am": "api"}'), "instances.ecs_config.ECS_INSTANCE_ATTRIBUTES", "attribute name"),
        # Secrets, by key name and by value shape.
        (lambda d: d["instances"]["ecs_config"].update(DB_PASS="hunter2"), "instances.ecs_config.DB_PASS", "credentials must not"),
        (lambda d: d["instances"]["ecs_config"].update(API_KEY="abc"), "instances.ecs_config.API_KEY", "credentials must not"),
        (lambda d: d["instances"]["ecs_config"].update(GITHUB_TOKEN="ghp_x"), "instances.ecs_config.GITHUB_TOKEN", "credentials must not"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_LOGLEVEL="AKIAIOSFODNN7EXAMPLE"), "instances.ecs_config.ECS_LOGLEVEL", "AWS access key id"),
        (lambda d: d["instances"]["ecs_config"].update(ECS_X="-----BEGIN RSA PRIVATE KEY-----"), "instances.ecs_config.ECS_X", "PEM private key"),
        (lambda d: d["instances"].update(user_data="#!/bin/sh\nexport AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE\n"), "instances.user_data", "line 2 holds an AWS access key id"),
        (lambda d: d["instances"].update(user_data="#!/bin/sh\ncat > /k <<EOF\n-----BEGIN OPENSSH PRIVATE KEY-----\n"), "instances.user_data", "line 3 holds a PEM private key"),
        (lambda d: d["instances"].update(user_data="#!/bin/sh\nDB_PASSWORD='hunter22'\n"), "instances.user_data", "literal value for 'DB_PASSWORD'"),
        (lambda d: d["instances"].update(user_data="#cloud-config\nchpasswd:\n  users: [{name: ec2-user, password: hunter22}]\n"), "instances.user_data", "line 3 holds a literal value for 'password'"),
        (lambda d: d["instances"].update(user_data="[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"), "instances.user_data", "aws_secret_access_key"),
    ],
)
def test_rule(mutate: Any, path: str, fragment: str) -> None:
    d = example_spec_dict()
    mutate(d)
    found = problems(d)
    assert path in found, found
    assert fragment in found[path]


def test_every_problem_is_reported_at_once() -> None:
    d = example_spec_dict()
    d["pools"][0]["on_demand_percentage_above_base"] = 150
    d["pools"][1]["min_size"] = 9
    d["strategy"].append({"pool": "ghost"})
    d["instances"]["ecs_config"]["ECS_ENGINE_AUTH_DATA"] = "secret"
    d["surprise"] = True
    with pytest.raises(SpecError) as info:
        load_spec(d)
    assert {p.path for p in info.value.problems} == {
        "pools[0].on_demand_percentage_above_base",
        "pools[1].min_size",
        "strategy[2].pool",
        "instances.ecs_config.ECS_ENGINE_AUTH_DATA",
        "surprise",
    }
    assert "5 problems" in str(info.value)
    assert "pools[0].on_demand_percentage_above_base: must be 0..100" in str(info.value)


def test_file_errors_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(bad)


def test_durations_and_batches() -> None:
    assert parse_duration("1m30s") == 90 and parse_duration("30s") == 30 and parse_duration("2h") == 7200
    assert parse_duration("soon") is None
    assert batch_count("25%", 8) == 2 and batch_count("25%", 2) == 1 and batch_count(3, 10) == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["cluster", "network", "instances", "pools", "strategy", "drain", "x"]), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10)))
def test_arbitrary_input_only_raises_spec_error(raw: dict[str, Any]) -> None:
    try:
        load_spec(raw)
    except SpecError as exc:
        assert exc.problems


def test_values_that_only_name_secrets_pass() -> None:
    d = example_spec_dict()
    d["instances"]["ecs_config"].update(ECS_ALTERNATE_CREDENTIAL_PROFILE="ecs", ECS_LOGLEVEL="info", ECS_INSTANCE_ATTRIBUTES='{"team": "api/web", "tier": "gold:1"}')
    d["instances"]["user_data"] = (
        "#!/bin/bash\n"
        "TOKEN=$(curl -sS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')\n"
        "DB_PASSWORD=$(aws secretsmanager get-secret-value --secret-id db --query SecretString --output text)\n"
        "SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:db\n"
        "API_KEY=\"$API_KEY_FROM_SSM\"\n"
        "BYPASS=enabled compass=north\n"
        "#cloud-config\nusers: [{name: app, lock_passwd: true, passwd: $6$rounds=4096$salt$hash}]\n"
    )
    d["instances"]["tags"] = {f"k{i}": "v" * 256 for i in range(47)}
    d["instances"]["metadata_hop_limit"] = 2
    spec = load_spec(d)
    assert spec.instances.metadata_hop_limit == 2
    assert load_spec(dump_spec(spec)) == spec
    assert load_spec(example_spec_dict()).instances.metadata_hop_limit == 1


def test_secrets_are_never_echoed() -> None:
    d = example_spec_dict()
    d["instances"]["ecs_config"]["ECS_X"] = "AKIAIOSFODNN7EXAMPLE"
    d["instances"]["user_data"] = "#!/bin/sh\nexport DB_PASSWORD=hunter22-secret\n"
    with pytest.raises(SpecError) as info:
        load_spec(d)
    assert "AKIAIOSFODNN7EXAMPLE" not in str(info.value) and "hunter22" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes(range(256)) * 4, "not UTF-8 text (byte 128 is 0x80)"),
        (b"cluster: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 32 levels"),
        (b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 200)), "nested more than 32 levels"),
        (b"cluster: demo\n" + b"# padding\n" * (MAX_SPEC_BYTES // 10), "larger than 1024 KiB"),
        (b"cluster: demo\npools: [{name: a, max_size: " + b"9" * 5000 + b"}]\n", "a number is too long"),
        (b"cluster: demo\ndrain: {deadline_seconds: 2001-13-45}\n", "not valid YAML"),
        (b"cluster: !!python/object:os.system x\n", "not valid YAML"),
    ],
)
def test_hostile_files_are_one_clear_spec_error(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    ((problem,),) = [info.value.problems]
    assert problem.path == "" and fragment in problem.message, problem
    with pytest.raises(SpecError) as again:
        loads_spec(content)
    assert again.value.problems[0].message == problem.message


def test_every_type_problem_is_reported_at_once_with_its_path() -> None:
    """cattrs structures the document; every failure of every kind is one line naming its field."""
    d = example_spec_dict()
    d["pools"][0]["max_size"] = "20"
    d["pools"][0]["managed_scaling"] = {"target_capacity": "x", "bogus": 1}
    d["pools"][1]["instance_types"] = [5, "m5.large", {"type": "m5.xlarge", "wieght": 2}]
    d["pools"].append({"name": None})
    d["network"]["subnets"] = "subnet-a"
    d["instances"]["ecs_config"]["X_Y"] = [1]
    d["drain"]["deadline_seconds"] = True
    d["strategy"][0]["colour"] = "x"
    del d["instances"]["ami"]
    d[7] = 2
    found = problems(d)
    assert found == found | {
        "pools[0].max_size": "must be an integer, got a string",
        "pools[0].managed_scaling.target_capacity": "must be an integer, got a string",
        "pools[0].managed_scaling.bogus": "unknown key",
        "pools[1].instance_types[0]": "must be a mapping, got an integer",
        "pools[1].instance_types[2].wieght": "unknown key (did you mean 'weight'?)",
        "pools[2].name": "is required",
        "pools[2].max_size": "is required",
        "network.subnets": "must be a list of strings, got a string",
        "instances.ecs_config.X_Y": "must be a string, got a list",
        "drain.deadline_seconds": "must be an integer, got a boolean",
        "strategy[0].colour": "unknown key",
        "instances.ami": "is required",
        "7": "unknown key",
    }
    # The rules still run on the rest, but say nothing more about a field already reported.
    assert "pools[2].instance_types" in found and "network.subnets[0]" not in found


def test_a_count_beyond_32_bits_is_refused_wherever_it_is() -> None:
    """The 32-bit limit is the int hook's, so it holds for every integer: batch_size had slipped through."""
    d = example_spec_dict()
    d["refresh"]["batch_size"] = 2**40
    assert problems(d) == {"refresh.batch_size": f"is out of range (AWS takes 32-bit integers, up to {2**31 - 1})"}


def test_an_omitted_or_empty_key_takes_the_class_default() -> None:
    """Defaults live on the classes only: a document without them equals the classes' own."""
    from ecsspot.spec import Drain, ManagedScaling, Refresh

    d = {
        "cluster": "c",
        "network": {"subnets": ["subnet-1"], "security_groups": None},
        "instances": {"ami": "ami-1", "root_volume_gib": None},
        "pools": [{"name": "spot", "max_size": 2, "instance_types": ["m5.large"], "managed_scaling": True}],
        "drain": None,
    }
    spec = load_spec(d)
    assert spec == ClusterSpec(
        cluster="c",
        network=Network(subnets=["subnet-1"]),
        instances=Instances(ami="ami-1"),
        pools=[Pool(name="spot", max_size=2, instance_types=["m5.large"])],
    )
    assert (spec.drain, spec.refresh, spec.pools[0].managed_scaling) == (Drain(), Refresh(), ManagedScaling())
    d["pools"][0].update(managed_scaling=False, managed_termination_protection=False)
    assert load_spec(d).pools[0].managed_scaling is None


def test_an_unknown_strategy_pool_shows_the_bad_value_and_the_pools() -> None:
    """Issue 13 item 8: the value itself in the line, inert and short."""
    d = example_spec_dict()
    d["strategy"].append({"pool": "nosuch", "weight": 1})
    with pytest.raises(SpecError) as caught:
        load_spec(d)
    assert "strategy[2].pool: 'nosuch' names no pool (pools: on-demand, spot)" in str(caught.value)
    d["strategy"][2]["pool"] = "x\x1b[31m" * 40
    with pytest.raises(SpecError) as hostile:
        load_spec(d)
    assert "\x1b" not in str(hostile.value) and "names no pool" in str(hostile.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("cluster: demo\npools:\n  - name: [unclosed\n", "not valid YAML: line 4, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 3, column 11)"),
        ("a: b: c\n", "not valid YAML: line 1, column 5: mapping values are not allowed here"),
    ],
)
def test_a_yaml_syntax_error_is_one_line_with_line_and_column(text: str, said: str) -> None:
    """Issue 13 item 8: file, line and column on one line, not PyYAML's excerpt and caret."""
    with pytest.raises(SpecError) as caught:
        loads_spec(text, source="spec.yaml")
    message = str(caught.value)
    assert said in message and "spec.yaml" in message
    assert "\n" not in message and "^" not in message


def test_a_misspelt_required_key_is_said_once_at_the_typo() -> None:
    """Issue 13 item 8: `nme:` for `name:` is one problem, not also "pools[0].name: is required"."""
    d = example_spec_dict()
    d["pools"][0]["nme"] = d["pools"][0].pop("name")
    with pytest.raises(SpecError) as caught:
        load_spec(d)
    said = [f"{p.path}: {p.message}" for p in caught.value.problems]
    assert "pools[0].nme: unknown key (did you mean 'name'?)" in said
    assert "pools[0].name: is required" not in said
    # A required key missing with no typo beside it is still said.
    del d["pools"][0]["nme"]
    with pytest.raises(SpecError) as missing:
        load_spec(d)
    assert "pools[0].name: is required" in [f"{p.path}: {p.message}" for p in missing.value.problems]


@pytest.mark.parametrize(
    ("mutate", "said"),
    [
        pytest.param(lambda d: d.update(cluster="demo api"), "cluster: must be 1-255 letters, digits, hyphens or underscores, got 'demo api'", id="cluster"),
        pytest.param(
            lambda d: d["network"].update(security_groups=[f"sg-{i}" for i in range(17)]),
            "network.security_groups: at most 16 security groups per network interface (the VPC quota's ceiling), got 17",
            id="network",
        ),
        pytest.param(
            lambda d: d["instances"].update(ami="latest"),
            "instances.ami: must be an AMI id (ami-…) or an SSM parameter (ssm:/aws/service/ecs/…), got 'latest'",
            id="instances",
        ),
        pytest.param(lambda d: d["instances"].update(root_volume_gib=0), "instances.root_volume_gib: must be 1..16384 (the gp3 size range), got 0", id="instance-sizes"),
        pytest.param(lambda d: d["instances"]["tags"].update(team="v" * 300), "instances.tags.team: tag values are at most 256 characters, got 300: '" + "v" * 76 + "...", id="tags"),
        pytest.param(lambda d: d["pools"][0].update(max_size=-1), "pools[0].max_size: must be ≥ 0, got -1", id="pool-sizes"),
        pytest.param(lambda d: d["pools"][0].update(name="bad name"), "pools[0].name: must be letters, digits, hyphens or underscores, got 'bad name'", id="pool-names"),
        pytest.param(lambda d: d["pools"][0].update(instance_types=[{"type": "m5.large", "weight": 0}]), "pools[0].instance_types[0].weight: must be 1..999, got 0", id="instance-types"),
        pytest.param(
            lambda d: d["pools"][0].update(spot_allocation_strategy="cheapest"),
            "pools[0].spot_allocation_strategy: must be one of price-capacity-optimized, capacity-optimized, capacity-optimized-prioritized, lowest-price, got 'cheapest'",
            id="allocation-strategies",
        ),
        pytest.param(lambda d: d["pools"][0].update(managed_scaling={"target_capacity": 0}), "pools[0].managed_scaling.target_capacity: must be 1..100, got 0", id="managed-scaling"),
        pytest.param(lambda d: d["strategy"][0].update(weight=5000), "strategy[0].weight: must be 0..1000, got 5000", id="strategy"),
        pytest.param(
            lambda d: d["drain"].update(lifecycle_timeout_seconds=10),
            "drain.lifecycle_timeout_seconds: must be 30..7200 (the lifecycle hook heartbeat timeout AWS allows), got 10",
            id="drain",
        ),
        pytest.param(lambda d: d["refresh"].update(batch_size="150%"), "refresh.batch_size: must be a count ≥ 1 or a percentage \"1%\"..\"100%\", got '150%'", id="refresh"),
        pytest.param(
            lambda d: d["instances"]["ecs_config"].update(ECS_INSTANCE_ATTRIBUTES="[1]"),
            "instances.ecs_config.ECS_INSTANCE_ATTRIBUTES: must be a JSON object of strings, e.g. {\"team\": \"api\"}, got '[1]'",
            id="ecs-config",
        ),
    ],
)
def test_every_rule_family_shows_the_bad_value(mutate: Any, said: str) -> None:
    """Issue 13 item 8: not only the strategy's pool; the line names the value it refuses."""
    d = example_spec_dict()
    mutate(d)
    with pytest.raises(SpecError) as caught:
        load_spec(d)
    assert said in [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_a_hostile_bad_value_is_shown_inert_and_short_and_a_secret_never() -> None:
    d = example_spec_dict()
    d["pools"][0]["name"] = "x\x1b[31m\u202e" * 40
    d["instances"]["ecs_config"]["DB_PASSWORD"] = "hunter2-hunter2"
    with pytest.raises(SpecError) as caught:
        load_spec(d)
    name = next(p.message for p in caught.value.problems if p.path == "pools[0].name")
    assert name.startswith("must be letters, digits, hyphens or underscores, got 'x\\x1b[31m\\u202ex")
    assert name.isascii() and len(name) < 160  # the escape and the bidi override written out, cut at 80
    assert "hunter2" not in str(caught.value)
