"""instance_requirements in the spec (AWS's rules, each refusal naming its field), in apply's
parameters and in plan's normalised diff; none of it talks to AWS."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ecsspot import InstanceRequirements, dump_spec, load_spec
from ecsspot.apply import asg_params
from ecsspot.errors import SpecError
from ecsspot.plan import desired_settings, plan
from ecsspot.spec import Range
from tests.conftest import example_spec_dict
from tests.unit.test_plan import IMAGE, converged

REQUIREMENTS = {"vcpu": {"min": 2, "max": 4}, "memory_mib": {"min": 8192}, "excluded_instance_types": ["t*", "c4*"]}


def with_requirements(requirements: Any = REQUIREMENTS, **pool: Any) -> dict[str, Any]:
    d = example_spec_dict()
    spot = d["pools"][0]
    del spot["instance_types"]
    spot["instance_requirements"] = copy.deepcopy(requirements)
    spot.update(pool)
    return d


def problems(d: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as exc:
        load_spec(d)
    return {p.path: p.message for p in exc.value.problems}


def test_requirements_load_with_aws_defaults_and_round_trip() -> None:
    s = load_spec(with_requirements())
    req = s.pools[0].instance_requirements
    assert req == InstanceRequirements(Range(2, 4), Range(8192), excluded_instance_types=("t*", "c4*"))
    assert (req.burstable_performance, req.bare_metal, req.local_storage) == ("excluded", "excluded", "included")
    # lowest-price "is the default value for Auto Scaling groups that specify InstanceRequirements".
    assert s.pools[0].on_demand_allocation_strategy == "lowest-price"
    assert s.pools[1].on_demand_allocation_strategy == "prioritized"
    assert load_spec(dump_spec(s)) == s
    assert dump_spec(s)["pools"][0]["instance_requirements"] == {**REQUIREMENTS, "burstable_performance": "excluded", "bare_metal": "excluded", "local_storage": "included"}


def test_a_pool_of_types_records_the_same_settings_as_before() -> None:
    # Written only when set: clusters applied before this key existed re-plan empty.
    s = load_spec(example_spec_dict())
    assert all("instance_requirements" not in p for p in json.loads(desired_settings(s))["pools"])


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        (lambda d: d["pools"][0].update(instance_types=["m5.large"]), "pools[0].instance_requirements", "not both"),
        (lambda d: d["pools"][0]["instance_requirements"].update(allowed_instance_types=["m5.*"]), "pools[0].instance_requirements.excluded_instance_types", "allowed_instance_types"),
        (lambda d: d["pools"][0].update(spot_allocation_strategy="capacity-optimized-prioritized"), "pools[0].spot_allocation_strategy", "capacity-optimized-prioritized"),
        (lambda d: d["pools"][0].update(on_demand_allocation_strategy="prioritized"), "pools[0].on_demand_allocation_strategy", "lowest-price"),
        (
            lambda d: d["pools"][0]["instance_requirements"].update(spot_max_price_percentage_over_lowest_price=50, max_spot_price_as_percentage_of_optimal_on_demand_price=60),
            "pools[0].instance_requirements.max_spot_price_as_percentage_of_optimal_on_demand_price",
            "one of the two",
        ),
        (lambda d: d["pools"][0]["instance_requirements"]["vcpu"].update(max=1), "pools[0].instance_requirements.vcpu.max", "≥ min (2)"),
        (lambda d: d["pools"][0]["instance_requirements"]["memory_mib"].update(min=-1), "pools[0].instance_requirements.memory_mib.min", "≥ 0"),
        (lambda d: d["pools"][0]["instance_requirements"].pop("vcpu"), "pools[0].instance_requirements.vcpu", "is required"),
        (lambda d: d["pools"][0]["instance_requirements"].update(cpu_manufacturers=["ibm"]), "pools[0].instance_requirements.cpu_manufacturers[0]", "intel, amd"),
        (lambda d: d["pools"][0]["instance_requirements"].update(instance_generations=["next"]), "pools[0].instance_requirements.instance_generations[0]", "current, previous"),
        (lambda d: d["pools"][0]["instance_requirements"].update(burstable_performance="yes"), "pools[0].instance_requirements.burstable_performance", "included, excluded, required"),
        (lambda d: d["pools"][0]["instance_requirements"].update(excluded_instance_types=["m5 large"]), "pools[0].instance_requirements.excluded_instance_types[0]", "pattern"),
        (lambda d: d["pools"][0]["instance_requirements"].update(excluded_instance_types=[f"m{i}.*" for i in range(401)]), "pools[0].instance_requirements.excluded_instance_types", "at most 400"),
        (lambda d: d["pools"][0]["instance_requirements"].update(excluded_instance_types=["t*", "t*"]), "pools[0].instance_requirements.excluded_instance_types[1]", "twice"),
        (lambda d: d["pools"][0]["instance_requirements"].update(local_storage="excluded", local_storage_types=["ssd"]), "pools[0].instance_requirements.local_storage_types", "excluded"),
        (lambda d: d["pools"][0]["instance_requirements"].update(accelerator_count={"min": 1}), "pools[0].instance_requirements.accelerator_count", "unknown key"),
        (lambda d: d["pools"][0].pop("instance_requirements"), "pools[0].instance_types", "instance_requirements"),
    ],
)
def test_each_refusal_names_its_field(change: Any, path: str, fragment: str) -> None:
    d = with_requirements()
    change(d)
    found = problems(d)
    assert path in found, found
    assert fragment in found[path]


def test_apply_sends_the_requirements_as_the_one_override() -> None:
    s = load_spec(with_requirements())
    params = asg_params(s, s.pools[0], "lt-1", 3)
    assert params["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"] == [
        {
            "InstanceRequirements": {
                "VCpuCount": {"Min": 2, "Max": 4},
                "MemoryMiB": {"Min": 8192},
                "BurstablePerformance": "excluded",
                "BareMetal": "excluded",
                "LocalStorage": "included",
                "ExcludedInstanceTypes": ["t*", "c4*"],
            }
        }
    ]
    assert params["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandAllocationStrategy"] == "lowest-price"


def _echoed(observed: Any, name: str, edit: Any) -> Any:
    """``observed`` with the group ``name``'s requirements as AWS (or moto) might echo them."""
    import attrs

    raw_policy = copy.deepcopy(observed.asgs[name].mixed_instances_policy)
    edit(raw_policy["LaunchTemplate"]["Overrides"][0]["InstanceRequirements"])
    group = attrs.evolve(observed.asgs[name], mixed_instances_policy=raw_policy)
    return attrs.evolve(observed, asgs={**observed.asgs, name: group})


@pytest.mark.parametrize(
    "echo",
    [
        lambda r: None,
        # An answer without the defaults the request sent, or with lists in another order.
        lambda r: [r.pop(k) for k in ("BurstablePerformance", "BareMetal", "LocalStorage")],
        lambda r: r["ExcludedInstanceTypes"].reverse(),
        # Fields the spec does not set are not its to compare.
        lambda r: r.update(RequireHibernateSupport=False),
    ],
)
def test_requirements_read_back_plan_nothing(echo: Any) -> None:
    s = load_spec(with_requirements())
    observed, settings = converged(s)
    assert plan(s, _echoed(observed, "demo-api-spot", echo), IMAGE, settings=settings).changes == ()


def test_changed_requirements_and_a_switch_from_types_are_one_update_each() -> None:
    s = load_spec(with_requirements())
    observed, _ = converged(s)
    wider = load_spec(with_requirements({**REQUIREMENTS, "vcpu": {"min": 2, "max": 8}}))
    [change] = [c for c in plan(wider, observed, IMAGE).changes if c.resource == "autoscaling_group"]
    before, after = change.diff["instance_requirements"]
    assert (before["VCpuCount"], after["VCpuCount"]) == ({"Min": 2, "Max": 4}, {"Min": 2, "Max": 8})

    types = load_spec(example_spec_dict())
    old, _ = converged(types)
    [switch] = [c for c in plan(s, old, IMAGE).changes if c.resource == "autoscaling_group"]
    assert set(switch.diff) == {"instance_types", "instance_requirements", "on_demand_allocation_strategy"}
    assert switch.diff["instance_types"][1] == []
    assert switch.diff["instance_requirements"][0] is None


def test_resolved_types_are_information_on_the_plan() -> None:
    import attrs

    s = load_spec(with_requirements())
    observed, settings = converged(s)
    observed = attrs.evolve(observed, resolved_types={"spot": ("m5.large", "m6i.large")})
    p = plan(s, observed, IMAGE, settings=settings)
    assert p.changes == () and p.resolved_instance_types == {"spot": ("m5.large", "m6i.large")}


def _resolve(spec: Any, image: dict[str, Any] | None) -> tuple[list[Any], Any]:
    """Step ``resolve_requirements`` by hand: the calls it yields and what it returns."""
    from ecsspot.observe import resolve_requirements

    flow = resolve_requirements(spec, IMAGE)
    asked = [next(flow)]
    asked.append(flow.send({"Images": [image] if image else []}))
    try:
        flow.send(tuple({"InstanceTypes": [{"InstanceType": "m6g.large"}, {"InstanceType": "c6g.large"}]} for _ in asked[1]))
    except StopIteration as done:
        return asked, done.value
    raise AssertionError("resolve_requirements asked for more than two rounds")


def test_resolution_asks_for_the_image_s_architecture_and_sorts_the_types() -> None:
    s = load_spec(with_requirements())
    (describe, (resolve,)), resolved = _resolve(s, {"ImageId": IMAGE, "Architecture": "arm64", "VirtualizationType": "hvm"})
    assert (describe.operation, describe.params["Filters"]) == ("describe_images", [{"Name": "image-id", "Values": [IMAGE]}])
    assert resolve.operation == "get_instance_types_from_instance_requirements" and resolve.paginate
    assert resolve.params == {"ArchitectureTypes": ["arm64"], "VirtualizationTypes": ["hvm"], "InstanceRequirements": s.pools[0].instance_requirements.to_api()}  # type: ignore[union-attr]
    assert resolved == {"spot": ("c6g.large", "m6g.large")}
    # An image that cannot be described: x86_64 HVM, what the ECS-optimized AMIs are by default.
    (_, (fallback,)), _ = _resolve(s, None)
    assert (fallback.params["ArchitectureTypes"], fallback.params["VirtualizationTypes"]) == (["x86_64"], ["hvm"])


def test_a_spec_without_requirements_costs_no_call() -> None:
    from ecsspot.observe import resolve_requirements

    flow = resolve_requirements(load_spec(example_spec_dict()), IMAGE)
    with pytest.raises(StopIteration) as done:
        next(flow)
    assert done.value.value == {}
