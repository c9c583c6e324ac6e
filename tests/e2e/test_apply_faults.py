"""apply converges after a failure at any mutating call.

A clean apply records its mutating calls (everything but Describe/List/Get/BatchGet). Then, for each of
them in turn, a fresh simulator runs the same apply with that call failing, either *before* it
takes effect (a botocore ``before-call`` hook raises, nothing is sent) or *after* (an
``after-call`` hook raises once AWS has done it: the answer is lost, as on a read timeout). A
second apply without faults must then leave the plan empty and AWS in the same shape as the
clean run: no launch template version, group or provider too many, TTL and point-in-time
recovery on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from ecsspot import Manager, load_spec
from ecsspot.errors import AwsError
from ecsspot.sim import Simulator
from tests.conftest import REGION, demo_spec_dict

READS = ("Describe", "List", "Get", "BatchGet")


class Faults:
    """botocore hooks that count mutating calls and fail the ``at``-th one, ``before`` or ``after`` it takes effect."""

    def __init__(self) -> None:
        self.arm(None)

    def arm(self, at: int | None, when: str = "before") -> None:
        """Count afresh; fail mutating call ``at`` (None: none)."""
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


@pytest.fixture(scope="module", name="sim")
def sim_fixture() -> Iterator[Simulator]:
    """One simulator for the module: each run works on a cluster of its own (names differ)."""
    with Simulator(region=REGION, seed=2) as sim:
        yield sim


class Runs:
    """Applies on the shared simulator through one manager whose fault hooks are re-armed per run
    (clients are made once: most of a fresh manager's cost)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.faults = Faults()
        self.manager = Manager(region=REGION, clock=sim.clock, event_handlers=self.faults.handlers())
        self.base = demo_spec_dict()
        self.next_image = sim.client("ec2").register_image(Name="ecsspot-test-next", Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
        self.clean: dict[str, tuple[list[str], dict[str, Any]]] = {}

    def spec(self, cluster: str, scenario: str, step: int) -> Any:
        """Step 0 is the cluster a scenario starts from (nothing for ``create``), step 1 its target."""
        d = copy.deepcopy(self.base)
        d["cluster"] = cluster
        if step == 1 and scenario == "update":
            # A new AMI (new template version, every group re-pointed), an instance type and
            # size change, a provider and the default strategy changed, other recorded settings.
            d["instances"]["ami"] = self.next_image
            d["pools"][0]["instance_types"] = ["m5.large", "c5.large"]
            d["pools"][0]["managed_scaling"] = {"target_capacity": 80}
            d["pools"][1]["max_size"] = 6
            d["strategy"][1]["weight"] = 2
            d["drain"] = {"deadline_seconds": 90}
        elif step == 1 and scenario == "replace":
            # A new group under the spot pool: its provider is replaced, the old group retired.
            d["pools"][0]["asg_name"] = f"{cluster}-spot-v2"
        return load_spec(d)

    def apply(self, cluster: str, scenario: str, at: int | None = None, when: str = "before") -> None:
        """Prepare ``cluster`` for ``scenario`` and apply its target, failing mutating call ``at``."""
        if scenario != "create":
            self.manager.apply(self.spec(cluster, scenario, 0))
        self.faults.arm(at, when)
        try:
            self.manager.apply(self.spec(cluster, scenario, 1))
        finally:
            self.faults.at = None

    def shape(self, cluster: str) -> dict[str, Any]:
        """What must match the clean run: every resource ecsspot made, counted and linked by name
        (with the cluster's name taken out)."""
        sim = self.sim
        ec2, asg, ecs, ddb = (sim.client(s) for s in ("ec2", "autoscaling", "ecs", "dynamodb"))

        def local(name: str) -> str:
            return name.replace(cluster, "<cluster>")

        template = ec2.describe_launch_templates(LaunchTemplateNames=[f"{cluster}-ecsspot"])["LaunchTemplates"][0]
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])["LaunchTemplateVersions"]
        raw_groups = asg.describe_auto_scaling_groups(Filters=[{"Name": "tag:ecsspot:cluster", "Values": [cluster]}])["AutoScalingGroups"]
        groups = {
            local(g["AutoScalingGroupName"]): {
                "version": g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"],
                "sizes": (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]),
                "types": [o["InstanceType"] for o in g["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]],
                "hooks": [h["LifecycleHookName"] for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=g["AutoScalingGroupName"])["LifecycleHooks"]],
            }
            for g in raw_groups
        }
        details = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
        names = [f"{cluster}-spot", f"{cluster}-on-demand"]
        providers = {
            local(p["name"]): local(p["autoScalingGroupProvider"]["autoScalingGroupArn"].rsplit("/", 1)[-1])
            for p in ecs.describe_capacity_providers(capacityProviders=names)["capacityProviders"]
            if p.get("status") == "ACTIVE"
        }
        table = f"ecsspot-{cluster}"
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        return {
            "template_versions": sorted(v["VersionNumber"] for v in versions),
            "latest_version": template["LatestVersionNumber"],
            "groups": groups,
            "providers": providers,
            "cluster_providers": sorted(local(n) for n in details["capacityProviders"]),
            "strategy": sorted((local(s["capacityProvider"]), s["weight"], s.get("base", 0)) for s in details["defaultCapacityProviderStrategy"]),
            "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
            "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
            "settings": "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "cluster"}, "sk": {"S": "settings"}}),
        }

    def clean_run(self, scenario: str) -> tuple[list[str], dict[str, Any]]:
        """The clean apply's mutating calls and the shape it leaves (once per scenario)."""
        if scenario not in self.clean:
            cluster = f"clean-{scenario}"
            self.apply(cluster, scenario)
            self.clean[scenario] = (list(self.faults.mutations), self.shape(cluster))
        return self.clean[scenario]


@pytest.fixture(scope="module", name="runs")
def runs_fixture(sim: Simulator) -> Runs:
    return Runs(sim)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("scenario", ["create", "update", "replace"])
def test_apply_converges_after_a_failure_at_any_mutating_call(runs: Runs, scenario: str, when: str) -> None:
    mutations, want = runs.clean_run(scenario)
    for at in range(1, len(mutations) + 1):
        cluster = f"{scenario}-{when}-{at}"
        where = f"{scenario}: failure {when} mutating call {at} ({mutations[at - 1]})"
        with pytest.raises(AwsError):
            runs.apply(cluster, scenario, at, when)
        assert runs.faults.mutations[at - 1] == mutations[at - 1], where
        target = runs.spec(cluster, scenario, 1)
        runs.manager.apply(target)
        assert runs.manager.plan(target).changes == (), where
        assert runs.shape(cluster) == want, where


def test_clean_apply_shape(runs: Runs) -> None:
    """The invariants the fault test compares against are the intended ones."""
    mutations, created = runs.clean_run("create")
    assert mutations[:3] == ["dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:UpdateContinuousBackups"]
    assert created["template_versions"] == [1] and created["ttl"] == ("ENABLED", "expires_at") and created["pitr"] == "ENABLED"
    assert created["settings"] and set(created["groups"]) == {"<cluster>-spot", "<cluster>-on-demand"}
    mutations, updated = runs.clean_run("update")
    assert {"ec2:CreateLaunchTemplateVersion", "ecs:UpdateCapacityProvider", "ecs:PutClusterCapacityProviders"} <= set(mutations)
    assert updated["template_versions"] == [1, 2]
    assert {g["version"] for g in updated["groups"].values()} == {"2"}
    mutations, replaced = runs.clean_run("replace")
    assert "ecs:DeleteCapacityProvider" in mutations and "autoscaling:DeleteAutoScalingGroup" in mutations
    assert set(replaced["groups"]) == {"<cluster>-spot-v2", "<cluster>-on-demand"}
    assert replaced["providers"]["<cluster>-spot"] == "<cluster>-spot-v2"
