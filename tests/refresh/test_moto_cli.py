"""The CLI refreshes a cluster on a plain moto server: no simulator, only an outside "agent".

moto has no ECS agent: here a thread plays it, registering each InService instance of the
cluster's groups as a container instance (with the identity document the agent sends), and
nothing else. The refresh runs as a real ``ecsspot`` process on the wall clock. Launches from the
new template version (sent whole, user data included) work because the session's moto server runs
with the seam's moto bug fixes (``ecsspot.sim.seam.MotoFixes``), not the simulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecsspot import Manager, load_spec
from tests.conftest import REGION, demo_spec_dict

CLUSTER = "demo-api"
GROUPS = [f"{CLUSTER}-spot", f"{CLUSTER}-on-demand"]
NEW_IMAGE = "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id"


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


class Agent(threading.Thread):
    """Registers new InService instances of the groups with the cluster, as the ECS agent would."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.autoscaling = _client("autoscaling", endpoint)
        self.ecs = _client("ecs", endpoint)
        self.registered: list[str] = []
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.wait(0.1):
                for group in self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=GROUPS)["AutoScalingGroups"]:
                    for member in group["Instances"]:
                        iid = member["InstanceId"]
                        if member["LifecycleState"] == "InService" and iid not in self.registered:
                            document = {"instanceId": iid, "region": REGION, "availabilityZone": member["AvailabilityZone"]}
                            self.ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=json.dumps(document))
                            self.registered.append(iid)
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture(name="agent")
def agent_fixture(aws_server: str) -> Iterator[Agent]:
    agent = Agent(aws_server)
    yield agent
    agent.done.set()
    if agent.is_alive():
        agent.join(timeout=5)


def test_cli_refreshes_pools_without_tasks_on_plain_moto(aws_server: str, agent: Agent, tmp_path: Path) -> None:
    Manager(region=REGION, endpoint_url=aws_server).apply(load_spec(demo_spec_dict(aws_server)))
    autoscaling = _client("autoscaling", aws_server)
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{CLUSTER}-spot", DesiredCapacity=1)  # the on-demand pool has min 1
    agent.start()
    old = _members(autoscaling)
    assert len(old) == 2
    _wait(lambda: set(agent.registered) >= set(old), "the agent registered the first instances")
    image = _client("ssm", aws_server).get_parameter(Name=NEW_IMAGE)["Parameter"]["Value"]

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    command = [str(Path(sys.executable).with_name("ecsspot")), "--endpoint-url", aws_server, "--output", "json", "refresh", CLUSTER, "--ami", image]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)

    assert agent.error is None, agent.error
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "done", report
    assert sorted(report["replaced"]) == sorted(old)
    assert report["image_id"] == image and report["new_version"] == 2
    assert "spot: 1/1 replaced" in done.stderr and "on-demand: 1/1 replaced" in done.stderr
    new = _members(autoscaling)
    assert len(new) == 2 and not set(new) & set(old)
    reservations = _client("ec2", aws_server).describe_instances(InstanceIds=new)["Reservations"]
    assert {i["ImageId"] for r in reservations for i in r["Instances"]} == {image}
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=GROUPS)["AutoScalingGroups"]
    assert {g["AutoScalingGroupName"]: (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) for g in groups} == {
        f"{CLUSTER}-spot": (0, 20, 1),
        f"{CLUSTER}-on-demand": (1, 4, 1),
    }
    assert {g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] for g in groups} == {"2"}
    ecs = _client("ecs", aws_server)
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    states = {ci["ec2InstanceId"]: ci["status"] for ci in ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]}
    assert {i: states[i] for i in old} == {i: "DRAINING" for i in old}  # moto keeps them registered after termination
    assert {i: states[i] for i in new} == {i: "ACTIVE" for i in new}


def _members(autoscaling: Any) -> list[str]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=GROUPS)["AutoScalingGroups"]
    return sorted(i["InstanceId"] for g in groups for i in g["Instances"] if i["LifecycleState"] == "InService")


def _wait(condition: Any, what: str, timeout: float = 120.0) -> None:
    """Until ``condition()``; the timeout only catches a hang (the agent thread is slow on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)
