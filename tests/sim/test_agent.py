"""ECS agent: registration from user data, spot draining only with the flag, INACTIVE after termination."""

from __future__ import annotations

from ecsspot import userdata
from ecsspot.sim import Simulator
from tests.sim.stack import build_stack, container_instances, launch_template, mixed_group


def attributes(instance: dict) -> dict[str, str | None]:
    return {a["name"]: a.get("value") for a in instance["attributes"]}


def test_booted_instances_register_with_the_cluster_in_their_user_data(sim: Simulator) -> None:
    # Registration waits for the boot (30 s) and the agent's start (10 s).
    stack = build_stack(sim, instances=3, base=1, percent=0, boot=39)
    assert container_instances(sim, "demo") == []
    # moto answers HTTP 500 here for a cluster that never had a container instance.
    assert sim.client("ecs").describe_container_instances(cluster="demo", containerInstances=["nope"])["failures"][0]["reason"] == "MISSING"
    sim.advance(2)

    registered = container_instances(sim, "demo")
    assert len(registered) == 3
    machines = sim.world.machines
    for instance in registered:
        machine = machines[instance["ec2InstanceId"]]
        attrs_ = attributes(instance)
        assert attrs_["ecs.instance-type"] == machine.instance_type
        assert attrs_["ecs.availability-zone"] == machine.availability_zone
        assert attrs_["ecsspot.lifecycle"] == machine.lifecycle
        resources = {r["name"]: r for r in instance["registeredResources"]}
        assert resources["CPU"]["integerValue"] == 2048  # m5.large family: 2 vCPUs
        assert 7000 < resources["MEMORY"]["integerValue"] < 8192
        assert instance["status"] == "ACTIVE" and instance["agentConnected"]
    assert sorted(attributes(i)["ecsspot.lifecycle"] for i in registered) == ["on-demand", "spot", "spot"]
    assert stack.group == "demo-spot"
    assert len(sim.events("ECS Container Instance State Change")) == 3


def _spot_instance(sim: Simulator) -> str:
    return sim.spot_instances("demo-spot")[0]


def test_spot_warning_drains_only_with_the_agent_flag() -> None:
    for flag, expected in ((True, "DRAINING"), (False, "ACTIVE")):
        with Simulator(seed=3) as sim:
            build_stack(sim, instances=2, spot_draining=flag)
            victim = _spot_instance(sim)
            sim.interrupt([victim])
            sim.advance(1)
            status = {i["ec2InstanceId"]: i["status"] for i in container_instances(sim, "demo")}
            assert status[victim] == expected
            assert [s for i, s in status.items() if i != victim] == ["ACTIVE"]


def test_terminated_instance_container_instance_becomes_inactive(sim: Simulator) -> None:
    build_stack(sim, instances=2)
    victim = _spot_instance(sim)
    sim.interrupt([victim])
    sim.advance(120)  # EC2 reclaims it at 120 s; ECS notices 20 s later
    assert victim in {i["ec2InstanceId"] for i in container_instances(sim, "demo")}
    sim.advance(21)

    listed = {i["ec2InstanceId"] for i in container_instances(sim, "demo")}
    assert victim not in listed  # moto would keep it listed and ACTIVE
    inactive = container_instances(sim, "demo", status="INACTIVE")
    assert [(i["ec2InstanceId"], i["status"], i["agentConnected"]) for i in inactive] == [(victim, "INACTIVE", False)]
    changes = [e["detail"]["status"] for e in sim.events("ECS Container Instance State Change") if e["detail"]["ec2InstanceId"] == victim]
    assert changes == ["ACTIVE", "DRAINING", "INACTIVE"]


def test_user_data_of_a_later_template_version_is_read(sim: Simulator) -> None:
    """moto keeps a later version's UserData unwrapped; an Auto Scaling launch from it fails with
    HTTP 500 under plain moto. The simulated launch reads either form."""
    sim.client("ecs").create_cluster(clusterName="demo")
    launch_template(sim, "demo-lt", "old-cluster")
    sim.client("ec2").create_launch_template_version(
        LaunchTemplateName="demo-lt",
        LaunchTemplateData={"ImageId": "ami-12345678", "UserData": userdata.encode(userdata.render("demo"))},
    )
    mixed_group(sim, "demo-spot", "demo-lt", desired=1)
    sim.advance(40)
    [registered] = container_instances(sim, "demo")
    assert registered["ec2InstanceId"] == sim.spot_instances()[0]
