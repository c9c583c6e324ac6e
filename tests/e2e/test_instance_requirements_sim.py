"""A spot pool that gives ``instance_requirements`` instead of a type list, on the simulator:
apply sends the requirements, plan re-plans empty and shows the types they resolve to, the group
launches spot instances of several types, and lint warns when the requirements leave too few."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from ecsspot import Manager, load_spec
from ecsspot.sim import Simulator
from ecsspot_cli.main import cli
from tests.conftest import demo_spec_dict

CLUSTER = "demo-api"
#: 2-4 vCPUs and 8 GiB or more, current generation, no r family (and, by AWS's default, no
#: burstable types): what the table holds for an x86_64 AMI is below.
REQUIREMENTS = {
    "vcpu": {"min": 2, "max": 4},
    "memory_mib": {"min": 8192},
    "instance_generations": ["current"],
    "excluded_instance_types": ["r*"],
}


pytestmark = pytest.mark.usefixtures("simulated_account")


@pytest.fixture(name="sim")
def fixture_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator(seed=7) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        yield sim


def spec_dict(requirements: dict[str, Any]) -> dict[str, Any]:
    d = demo_spec_dict()
    spot = next(p for p in d["pools"] if p["name"] == "spot")
    del spot["instance_types"]
    spot["instance_requirements"] = requirements
    return d


def test_applies_replans_empty_and_launches_diversified_spot(sim: Simulator, tmp_path: Any) -> None:
    spec = load_spec(spec_dict(REQUIREMENTS))
    manager = Manager(region="us-east-1", clock=sim.clock)
    first = manager.plan(spec)
    resolved = first.resolved_instance_types["spot"]
    # m4 is previous generation, t3/t3a burstable, m6g/c6g/t4g arm64, c*.large have 4 GiB.
    expected = {f"{f}.{s}" for f in ("m5", "m5a", "m5d", "m6i", "m6a", "m7i") for s in ("large", "xlarge")}
    assert set(resolved) == expected | {"c5.xlarge", "c6i.xlarge", "c6a.xlarge"}
    manager.apply(spec)

    group = sim.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{CLUSTER}-spot"])["AutoScalingGroups"][0]
    overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert overrides == [{"InstanceRequirements": spec.pools[0].instance_requirements.to_api()}]  # type: ignore[union-attr]
    assert group["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandAllocationStrategy"] == "lowest-price"

    again = manager.plan(spec)
    assert again.changes == ()
    assert not [w for w in again.warnings if w.code == "ES208"]
    # The CLI says the same: no changes, and the resolved types as information.
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec_dict(REQUIREMENTS)))
    text = CliRunner().invoke(cli, ["plan", "-f", str(path)], catch_exceptions=False)
    assert text.exit_code == 0, text.stderr
    assert "No changes" in text.stdout
    assert f"Pool spot: instance_requirements resolve to {len(resolved)} instance types: " in text.stdout
    document = json.loads(CliRunner().invoke(cli, ["plan", "-f", str(path), "-o", "json"], catch_exceptions=False).stdout)
    assert document["resolved_instance_types"] == {"spot": list(resolved)}

    # price-capacity-optimized picks one pool per Availability Zone while it has capacity; when
    # those pools run dry the group keeps launching spot from the other resolved types.
    autoscaling = sim.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-spot", DesiredCapacity=6)
    sim.advance(600)
    for used in {m.instance_type for m in sim.world.machines.values() if m.group == f"{CLUSTER}-spot"}:
        sim.world.market.set_capacity(False, instance_type=used)
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-spot", DesiredCapacity=12)
    sim.advance(600)
    ours = [m for m in sim.world.machines.values() if m.running and m.group == f"{CLUSTER}-spot"]
    assert len(ours) == 12
    assert all(m.lifecycle == "spot" for m in ours)
    assert {m.instance_type for m in ours} <= set(resolved)
    assert len({m.instance_type for m in ours}) >= 3


def test_lint_warns_when_the_requirements_resolve_to_too_few(sim: Simulator) -> None:
    narrow = {"vcpu": {"min": 8, "max": 8}, "memory_mib": {"min": 65536}}
    spec = load_spec(spec_dict(narrow))
    plan = Manager(region="us-east-1", clock=sim.clock).plan(spec)
    assert plan.resolved_instance_types == {"spot": ("r5.2xlarge", "r6i.2xlarge")}
    found = [w for w in plan.warnings if w.code == "ES208"]
    assert [w.path for w in found] == ["pools[0].instance_requirements"]
    assert "resolve to 2 instance types (r5.2xlarge, r6i.2xlarge)" in found[0].message
