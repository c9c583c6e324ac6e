"""Capacity providers in use stay: ECS will not take them off a cluster or delete them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ecsspot.sim import Simulator
from tests.sim.stack import capacity_provider, launch_template, mixed_group, tasks_of, web_task_definition


def _cluster(sim: Simulator) -> None:
    ecs = sim.client("ecs")
    ecs.create_cluster(clusterName="demo")
    template = launch_template(sim, "demo-lt", "demo")
    mixed_group(sim, "demo-od", template, desired=1, percent=100)
    mixed_group(sim, "demo-spot", template, desired=1)
    capacity_provider(sim, "demo-od", "demo-od")
    capacity_provider(sim, "demo-spot", "demo-spot")
    ecs.put_cluster_capacity_providers(
        cluster="demo",
        capacityProviders=["demo-od", "demo-spot"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}],
    )


def _status(sim: Simulator, name: str) -> tuple[str, str | None]:
    [provider] = sim.client("ecs").describe_capacity_providers(capacityProviders=[name])["capacityProviders"]
    return provider["status"], provider.get("updateStatus")


def test_a_provider_a_service_names_cannot_be_removed_or_deleted(sim: Simulator) -> None:
    _cluster(sim)
    ecs = sim.client("ecs")
    web_task_definition(sim)
    ecs.create_service(
        cluster="demo", serviceName="web", taskDefinition="web", desiredCount=2, capacityProviderStrategy=[{"capacityProvider": "demo-spot", "weight": 1}]
    )
    sim.advance(60)
    # The strategy is kept (moto drops it) and the tasks run on the provider.
    assert ecs.describe_services(cluster="demo", services=["web"])["services"][0]["capacityProviderStrategy"][0]["capacityProvider"] == "demo-spot"
    assert {t["capacityProviderName"] for t in tasks_of(sim, "demo")} == {"demo-spot"}

    with pytest.raises(ClientError) as info:
        ecs.put_cluster_capacity_providers(
            cluster="demo", capacityProviders=["demo-od"], defaultCapacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}]
        )
    assert info.value.response["Error"]["Code"] == "ResourceInUseException"
    assert sorted(ecs.describe_clusters(clusters=["demo"])["clusters"][0]["capacityProviders"]) == ["demo-od", "demo-spot"]

    # Still on the cluster: the delete "succeeds" as DELETE_FAILED and the provider stays.
    answer = ecs.delete_capacity_provider(capacityProvider="demo-spot")["capacityProvider"]
    assert answer["updateStatus"] == "DELETE_FAILED" and "associated with cluster demo" in answer["updateStatusReason"]
    assert _status(sim, "demo-spot") == ("ACTIVE", "DELETE_FAILED")

    # A provider nobody uses leaves the cluster and is deleted.
    ecs.put_cluster_capacity_providers(
        cluster="demo", capacityProviders=["demo-spot"], defaultCapacityProviderStrategy=[{"capacityProvider": "demo-spot", "weight": 1}]
    )
    assert ecs.delete_capacity_provider(capacityProvider="demo-od")["capacityProvider"].get("updateStatus") != "DELETE_FAILED"


def test_tasks_still_on_a_provider_keep_it_on_the_cluster(sim: Simulator) -> None:
    """Tasks placed through a provider hold it even once their service names another one (until
    a new deployment moves them)."""
    _cluster(sim)
    ecs = sim.client("ecs")
    web_task_definition(sim)
    ecs.create_service(
        cluster="demo", serviceName="web", taskDefinition="web", desiredCount=1, capacityProviderStrategy=[{"capacityProvider": "demo-spot", "weight": 1}]
    )
    sim.advance(60)
    ecs.update_service(cluster="demo", service="web", capacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}])
    assert {t["capacityProviderName"] for t in tasks_of(sim, "demo")} == {"demo-spot"}
    with pytest.raises(ClientError) as info:
        ecs.put_cluster_capacity_providers(
            cluster="demo", capacityProviders=["demo-od"], defaultCapacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}]
        )
    assert info.value.response["Error"]["Code"] == "ResourceInUseException"
    # No task left, but the service's strategy still names it: refused too.
    ecs.update_service(cluster="demo", service="web", capacityProviderStrategy=[{"capacityProvider": "demo-spot", "weight": 1}])
    ecs.update_service(cluster="demo", service="web", desiredCount=0)
    sim.advance(600)
    assert tasks_of(sim, "demo") == []
    with pytest.raises(ClientError):
        ecs.put_cluster_capacity_providers(
            cluster="demo", capacityProviders=["demo-od"], defaultCapacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}]
        )
    # Once the service is gone, the provider leaves the cluster and is deleted.
    ecs.delete_service(cluster="demo", service="web")
    sim.advance(60)
    ecs.put_cluster_capacity_providers(
        cluster="demo", capacityProviders=["demo-od"], defaultCapacityProviderStrategy=[{"capacityProvider": "demo-od", "weight": 1}]
    )
    assert ecs.delete_capacity_provider(capacityProvider="demo-spot")["capacityProvider"].get("updateStatus") != "DELETE_FAILED"
