"""What ``plan`` costs in AWS calls and rounds, pinned for N pools, S services and G target
groups on a steady cluster (issue 12 goal 4), counted from the calls the workflow yields: no
moto, no timings. The benchmark ``benchmarks.plan_calls`` measures the same on moto."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest

from ecsspot import load_spec
from ecsspot.apply import asg_params, plan_cluster
from ecsspot.aws.calls import Call
from ecsspot.errors import ThrottledError
from ecsspot.plan import Plan
from ecsspot.spec import LIFECYCLE_HOOK_NAME, ClusterSpec, dump_spec
from ecsspot.store import DELAYS_MAX_AGE as CACHED_DELAY_MAX_AGE
from ecsspot.store import get_items
from ecsspot.testing import ScriptedDriver, aws_error

NOW = 1_700_000_000.0
ACCOUNT = "123456789012"


def _spec(pools: int) -> ClusterSpec:
    return load_spec(
        {
            "cluster": "c",
            "network": {"subnets": ["subnet-a", "subnet-b", "subnet-c"]},
            "instances": {"ami": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"},
            "pools": [{"name": f"p{i:02d}", "max_size": 100, "on_demand_percentage_above_base": 0, "instance_types": ["m5.large", "m5a.large", "m6i.large"]} for i in range(pools)],
        }
    )


def _group_arn(n: int) -> str:
    return f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/tg{n}/{n:016x}"


class SteadyCluster:
    """Answers a cluster that apply made: tagged groups, their hooks, a table, S services on the
    first (spot) pool, each with its own target group whose delay is 300 s."""

    def __init__(self, spec: ClusterSpec, services: int, cache: tuple[dict[str, Any], float] | None = None) -> None:
        self.spec = spec
        self.services = [f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/c/svc{n}" for n in range(services)]
        self.cache = cache

    def _cache_item(self) -> dict[str, Any]:
        assert self.cache is not None
        document, written = self.cache
        return {"pk": {"S": "cluster"}, "sk": {"S": "target_groups"}, "doc": {"S": json.dumps(document)}, "updated_at": {"N": f"{written:.3f}"}}

    def __call__(self, c: Call) -> Any:
        s, p = self.spec, c.params
        match c.operation:
            case "get_parameter":
                return {"Parameter": {"Value": "ami-0123456789abcdef0"}}
            case "describe_subnets":
                return {"Subnets": [{"SubnetId": x} for x in s.network.subnets]}
            case "batch_get_item":
                items = []
                if self.cache is not None:
                    items.append(self._cache_item())
                return {"Responses": {s.table_name: items}, "UnprocessedKeys": {}}
            case "get_item":  # one record at a time
                if self.cache is None or p["Key"]["sk"]["S"] != "target_groups":
                    return {}
                return {"Item": self._cache_item()}
            case "describe_clusters":
                return {"clusters": [{"clusterName": s.cluster, "clusterArn": f"arn:cluster/{s.cluster}", "status": "ACTIVE", "capacityProviders": []}]}
            case "describe_capacity_providers":
                return {"capacityProviders": []}
            case "describe_auto_scaling_groups":
                return {"AutoScalingGroups": [self._group(pool) for pool in s.pools]}
            case "describe_launch_templates":
                return {"LaunchTemplates": [{"LaunchTemplateId": "lt-1", "LaunchTemplateName": s.launch_template_name, "DefaultVersionNumber": 1, "LatestVersionNumber": 1}]}
            case "describe_table":
                return {"Table": {"TableName": s.table_name, "TableStatus": "ACTIVE", "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}}
            case "describe_lifecycle_hooks":
                hook = {"LifecycleHookName": LIFECYCLE_HOOK_NAME, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "HeartbeatTimeout": 300, "DefaultResult": "CONTINUE"}
                return {"LifecycleHooks": [hook]}
            case "describe_launch_template_versions":
                return {"LaunchTemplateVersions": [{"VersionNumber": 1, "LaunchTemplateData": {}}]}
            case "describe_time_to_live":
                return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}}
            case "describe_continuous_backups":
                return {"ContinuousBackupsDescription": {"PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}}}
            case "list_services":
                return {"serviceArns": self.services}
            case "describe_services":
                return {"services": [self._service(arn) for arn in p["services"]]}
            case "describe_target_group_attributes":
                return {"Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}]}
        raise AssertionError(f"unscripted {c.operation}")

    def _group(self, pool: Any) -> dict[str, Any]:
        params = asg_params(self.spec, pool, "lt-1", 1)
        tags = [{"Key": "ecsspot:cluster", "Value": self.spec.cluster}, {"Key": "ecsspot:pool", "Value": pool.name}]
        return {**params, "AutoScalingGroupARN": f"arn:asg/{params['AutoScalingGroupName']}", "DesiredCapacity": 50, "Tags": tags}

    def _service(self, arn: str) -> dict[str, Any]:
        n = int(arn.rsplit("svc", 1)[1])
        return {
            "serviceName": f"svc{n}",
            "serviceArn": arn,
            "status": "ACTIVE",
            "loadBalancers": [{"targetGroupArn": _group_arn(n), "containerName": "web", "containerPort": 80}],
            "capacityProviderStrategy": [{"capacityProvider": self.spec.capacity_provider_name(self.spec.pools[0]), "weight": 1}],
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200},
        }


def _plan(pools: int, services: int, cache: tuple[dict[str, Any], float] | None = None) -> tuple[Plan, ScriptedDriver]:
    driver = ScriptedDriver(SteadyCluster(_spec(pools), services, cache))
    the_plan, _ = driver.run(plan_cluster(_spec(pools)))
    return the_plan, driver


def _cache(services: int, *, age: float) -> tuple[dict[str, Any], float]:
    """The document a drain leaves in the state table, and when it was written."""
    groups = [_group_arn(n) for n in range(services)]
    return {"service_target_groups": groups, "deregistration_delays": dict.fromkeys(groups, 300)}, NOW - age


@pytest.mark.parametrize(("pools", "services"), [(1, 0), (3, 2), (20, 12), (20, 25)])
def test_plan_calls_with_the_drains_cache(pools: int, services: int) -> None:
    """A steady cluster whose target-group delays a drain cached: 12 calls, one hook read per
    pool and one service describe per 10 services; no ELB read, one ASG describe (without
    instances), the state table's records in one BatchGetItem."""
    _, driver = _plan(pools, services, _cache(services, age=60))
    ops = Counter(driver.operations())
    assert sum(ops.values()) == 8 + pools + 1 + math.ceil(services / 10) + 3
    assert ops["describe_auto_scaling_groups"] == 1
    (described,) = (c for c in driver.calls if c.operation == "describe_auto_scaling_groups")
    assert described.params["IncludeInstances"] is False
    # AWS lists 10 services a page by default.
    assert next(c for c in driver.calls if c.operation == "list_services").params["maxResults"] == 100
    assert ops["describe_lifecycle_hooks"] == pools
    assert ops["batch_get_item"] == 1
    assert ops["describe_target_group_attributes"] == 0
    assert len(driver.rounds) == (5 if services else 4)


def test_the_issue_cluster_plans_in_at_most_40_calls() -> None:
    """The issue's cluster (20 pools, 12 services with 12 target groups): 34 calls with the
    drains' cache, 46 without (the 12 ELB reads)."""
    assert len(_plan(20, 12, _cache(12, age=60))[1].calls) == 34
    assert len(_plan(20, 12)[1].calls) == 46


def test_lint_finds_the_same_with_the_cache_and_without() -> None:
    """The delays from the cache give lint the same findings as reading ELB, and a cache entry
    older than the limit is read again."""
    cold, cold_driver = _plan(3, 4)
    warm, _ = _plan(3, 4, _cache(4, age=60))
    stale, stale_driver = _plan(3, 4, _cache(4, age=CACHED_DELAY_MAX_AGE + 1))
    assert [w.code for w in cold.warnings].count("ES204") == 4
    assert warm.warnings == cold.warnings == stale.warnings
    assert cold_driver.operations().count("describe_target_group_attributes") == 4
    assert stale_driver.operations().count("describe_target_group_attributes") == 4


def test_a_partial_cache_reads_only_the_groups_it_lacks() -> None:
    document, written = _cache(4, age=60)
    del document["deregistration_delays"][_group_arn(1)]
    _, driver = _plan(3, 4, (document, written))
    asked = [c.params["TargetGroupArn"] for c in driver.calls if c.operation == "describe_target_group_attributes"]
    assert asked == [_group_arn(1)]
    # An unreadable cache is no cache.
    document["deregistration_delays"][_group_arn(2)] = "x"
    _, driver = _plan(3, 4, (document, written))
    assert driver.operations().count("describe_target_group_attributes") == 4


def test_unprocessed_keys_are_asked_again_then_given_up() -> None:
    keys = [("cluster", "settings"), ("refresh", "progress")]
    item = {"pk": {"S": "cluster"}, "sk": {"S": "settings"}, "spec": {"S": "{}"}}
    left = {"t": {"Keys": [{"pk": {"S": "refresh"}, "sk": {"S": "progress"}}]}}
    answers = iter([{"Responses": {"t": [item]}, "UnprocessedKeys": left}, {"Responses": {"t": []}, "UnprocessedKeys": {}}])
    driver = ScriptedDriver(lambda c: next(answers))
    assert driver.run(get_items("t", keys)) == {keys[0]: {"Item": item}, keys[1]: {}}
    assert len(driver.rounds) == 2
    driver = ScriptedDriver(lambda c: {"Responses": {}, "UnprocessedKeys": left})
    with pytest.raises(ThrottledError):
        driver.run(get_items("t", keys))
    assert len(driver.rounds) == 5


class UntaggedFirstGroup(SteadyCluster):
    """The first pool's group exists without ecsspot's tags (the tag filter does not find it)."""

    def __call__(self, c: Call) -> Any:
        if c.operation == "describe_auto_scaling_groups" and "Filters" in c.params:
            return {"AutoScalingGroups": [self._group(p) for p in self.spec.pools[1:]]}
        if c.operation == "describe_auto_scaling_groups":
            assert c.params["AutoScalingGroupNames"] == [self.spec.asg_name(self.spec.pools[0])]
            return {"AutoScalingGroups": [{**self._group(self.spec.pools[0]), "Tags": []}]}
        return super().__call__(c)


def test_a_spec_group_without_the_tag_is_described_by_name_once() -> None:
    """Found by name in round two (so the plan updates its tags rather than creating it), its
    hooks read in one more round; no group is described twice."""
    s = _spec(3)
    driver = ScriptedDriver(UntaggedFirstGroup(s, 0))
    the_plan, observed = driver.run(plan_cluster(s))
    assert set(observed.asgs) == {s.asg_name(p) for p in s.pools}
    assert all(g.lifecycle_hooks for g in observed.asgs.values())
    first = s.asg_name(s.pools[0])
    groups = {c.name: c for c in the_plan.changes if c.resource == "autoscaling_group"}
    assert groups[first].action == "update" and "tags" in groups[first].diff
    assert {c.action for c in groups.values()} == {"update"}
    assert driver.operations().count("describe_auto_scaling_groups") == 2
    assert driver.operations().count("describe_lifecycle_hooks") == 3


def test_the_spec_target_groups_are_read_even_when_cached() -> None:
    """A spec target group deleted since the last drain still shows as gone (ES206)."""
    gone = _group_arn(7)
    s = load_spec({**dump_spec(_spec(1)), "target_groups": [gone]})
    document, written = _cache(8, age=60)

    class Gone(SteadyCluster):
        def __call__(self, c: Call) -> Any:
            if c.operation == "describe_target_group_attributes":
                return aws_error(c, "TargetGroupNotFound")
            return super().__call__(c)

    driver = ScriptedDriver(Gone(s, 0, (document, written)))
    the_plan, _ = driver.run(plan_cluster(s))
    assert [c.params["TargetGroupArn"] for c in driver.calls if c.operation == "describe_target_group_attributes"] == [gone]
    assert [w.path for w in the_plan.warnings if w.code == "ES206"] == [f"target_group:{gone}"]
