"""apply converges after a failure at any mutating call.

A clean apply records its mutating calls (everything but Describe/List/Get). Then, for each of
them in turn, a fresh simulator runs the same apply with that call failing, either *before* it
takes effect (a botocore ``before-call`` hook raises, nothing is sent) or *after* (an
``after-call`` hook raises once AWS has done it: the answer is lost, as on a read timeout). A
second apply without faults must then leave the plan empty and AWS in the same shape as the
clean run: no launch template version, group or provider too many, TTL and point-in-time
recovery on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from ecsspot import Manager, load_spec
from ecsspot.errors import AwsError
from ecsspot.sim import Simulator
from tests.conftest import REGION, demo_spec_dict

READS = ("Describe", "List", "Get")


class Faults:
    """botocore hooks that count mutating calls and fail the ``at``-th one, ``before`` or ``after`` it takes effect."""

    def __init__(self, at: int | None = None, when: str = "before") -> None:
        self.at = at
        self.when = when
        self.mutations: list[str] = []
        self._armed = False

    def handlers(self) -> list[tuple[str, Callable[..., Any]]]:
        return [("before-call", self.before), ("after-call", self.after)]

    def before(self, model: Any, **kwargs: Any) -> None:
        if model.name.startswith(READS):
            return
        self.mutations.append(f"{model.service_model.service_name}:{model.name}")
        if len(self.mutations) != self.at:
            return
        if self.when == "before":
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected before the call"}}, model.name)
        self._armed = True

    def after(self, model: Any, **kwargs: Any) -> None:
        if self._armed:
            self._armed = False
            raise ReadTimeoutError(endpoint_url=f"injected after {model.name}")


def _spec(scenario: str, step: int) -> Any:
    """Step 0 is the cluster a scenario starts from (nothing for ``create``), step 1 its target."""
    d = demo_spec_dict()
    if step == 0 or scenario == "create":
        return load_spec(d)
    if scenario == "update":
        # A new AMI (new template version, every group re-pointed), an instance type and size
        # change, other recorded settings.
        d["instances"]["ami"] = "ami-0fedcba987654321f"
        d["pools"][0]["instance_types"] = ["m5.large", "c5.large"]
        d["pools"][1]["max_size"] = 6
        d["drain"] = {"deadline_seconds": 90}
    elif scenario == "replace":
        # A new group under the spot pool: its provider is replaced, the old group retired.
        d["pools"][0]["asg_name"] = "demo-api-spot-v2"
    return load_spec(d)


def _manager(sim: Simulator, faults: Faults | None = None) -> Manager:
    return Manager(region=REGION, clock=sim.clock, event_handlers=faults.handlers() if faults else ())


def _prepare(sim: Simulator, scenario: str) -> None:
    sim.client("ec2").register_image(Name="ecsspot-test-next", Architecture="x86_64", RootDeviceName="/dev/xvda")
    if scenario != "create":
        _manager(sim).apply(_spec(scenario, 0))


def _shape(sim: Simulator) -> dict[str, Any]:
    """What must match the clean run: every resource ecsspot made, counted and linked by name."""
    ec2, asg, ecs, ddb = (sim.client(s) for s in ("ec2", "autoscaling", "ecs", "dynamodb"))
    template = ec2.describe_launch_templates(LaunchTemplateNames=["demo-api-ecsspot"])["LaunchTemplates"][0]
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])["LaunchTemplateVersions"]
    groups = {
        g["AutoScalingGroupName"]: {
            "version": g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"],
            "sizes": (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]),
            "types": [o["InstanceType"] for o in g["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]],
            "hooks": [h["LifecycleHookName"] for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=g["AutoScalingGroupName"])["LifecycleHooks"]],
        }
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    }
    cluster = ecs.describe_clusters(clusters=["demo-api"])["clusters"][0]
    names = ["demo-api-spot", "demo-api-on-demand"]
    providers = {
        p["name"]: p["autoScalingGroupProvider"]["autoScalingGroupArn"].rsplit("/", 1)[-1]
        for p in ecs.describe_capacity_providers(capacityProviders=names)["capacityProviders"]
        if p.get("status") == "ACTIVE"
    }
    ttl = ddb.describe_time_to_live(TableName="ecsspot-demo-api")["TimeToLiveDescription"]
    backups = ddb.describe_continuous_backups(TableName="ecsspot-demo-api")["ContinuousBackupsDescription"]
    return {
        "template_versions": sorted(v["VersionNumber"] for v in versions),
        "latest_version": template["LatestVersionNumber"],
        "groups": groups,
        "providers": providers,
        "cluster_providers": sorted(cluster["capacityProviders"]),
        "strategy": sorted((s["capacityProvider"], s["weight"], s.get("base", 0)) for s in cluster["defaultCapacityProviderStrategy"]),
        "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
        "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
    }


@pytest.fixture(scope="module", name="clean")
def clean_fixture() -> Iterator[dict[str, tuple[list[str], dict[str, Any]]]]:
    """Per scenario, lazily: the clean apply's mutating calls and the shape it leaves."""
    runs: dict[str, tuple[list[str], dict[str, Any]]] = {}

    def run(scenario: str) -> tuple[list[str], dict[str, Any]]:
        if scenario not in runs:
            with Simulator(region=REGION, seed=2) as sim:
                _prepare(sim, scenario)
                faults = Faults()
                _manager(sim, faults).apply(_spec(scenario, 1))
                runs[scenario] = (faults.mutations, _shape(sim))
        return runs[scenario]

    yield run  # type: ignore[misc]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("scenario", ["create", "update", "replace"])
def test_apply_converges_after_a_failure_at_any_mutating_call(clean: Any, scenario: str, when: str) -> None:
    mutations, want = clean(scenario)
    assert len(mutations) >= 5, mutations  # the scenario exercises apply, not a no-op
    for at in range(1, len(mutations) + 1):
        where = f"{scenario}: failure {when} mutating call {at} ({mutations[at - 1]})"
        with Simulator(region=REGION, seed=2) as sim:
            _prepare(sim, scenario)
            faults = Faults(at, when)
            with pytest.raises(AwsError):
                _manager(sim, faults).apply(_spec(scenario, 1))
            assert faults.mutations[at - 1] == mutations[at - 1], where
            _manager(sim).apply(_spec(scenario, 1))
            assert _manager(sim).plan(_spec(scenario, 1)).changes == (), where
            assert _shape(sim) == want, where


def test_clean_apply_shape(clean: Any) -> None:
    """The invariants the fault test compares against are the intended ones."""
    _, created = clean("create")
    assert created["template_versions"] == [1] and created["ttl"] == ("ENABLED", "expires_at") and created["pitr"] == "ENABLED"
    _, updated = clean("update")
    assert updated["template_versions"] == [1, 2]
    assert {g["version"] for g in updated["groups"].values()} == {"2"}
    _, replaced = clean("replace")
    assert set(replaced["groups"]) == {"demo-api-spot-v2", "demo-api-on-demand"}
    assert replaced["providers"]["demo-api-spot"] == "demo-api-spot-v2"
