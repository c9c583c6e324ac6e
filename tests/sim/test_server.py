"""The same behaviours over ThreadedMotoServer: boto3 over HTTP, aiobotocore, requests racing ticks."""

from __future__ import annotations

import threading

from ecsspot.sim import Simulator
from tests.sim.stack import build_stack, container_instances, target_health, tasks_of


def test_boto3_over_http_sees_the_simulated_world(server_sim: Simulator) -> None:
    sim = server_sim
    assert sim.endpoint_url and sim.endpoint_url.startswith("http://127.0.0.1:")
    assert sim.client("ecs").meta.endpoint_url == sim.endpoint_url
    sim.client("ecs").create_cluster(clusterName="empty")
    # moto's server answers HTTP 500 here for a cluster without container instances.
    assert sim.client("ecs").describe_container_instances(cluster="empty", containerInstances=["x"])["containerInstances"] == []

    stack = build_stack(sim, instances=2, tasks=4, delay=30, boot=90)
    assert len(container_instances(sim, "demo")) == 2
    assert set(target_health(sim, stack.target_group_arn).values()) == {"healthy"}
    asg = sim.client("autoscaling")
    asg.put_lifecycle_hook(AutoScalingGroupName=stack.group, LifecycleHookName="drain",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=600)
    victim = sim.spot_instances()[0]
    asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    asg.complete_lifecycle_action(AutoScalingGroupName=stack.group, LifecycleHookName="drain",
                                  InstanceId=victim, LifecycleActionResult="CONTINUE")
    sim.advance(21)
    states = {i["ec2InstanceId"]: i["status"] for i in container_instances(sim, "demo", status="INACTIVE")}
    assert states == {victim: "INACTIVE"}


def test_requests_from_another_thread_while_the_world_moves(server_sim: Simulator) -> None:
    sim = server_sim
    stack = build_stack(sim, instances=4, tasks=4, boot=90)
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()
    polled = threading.Semaphore(0)

    def poll() -> None:
        import boto3

        ecs = boto3.client("ecs", **sim.client_kwargs())
        elb = boto3.client("elbv2", **sim.client_kwargs())
        while not stop.is_set():
            try:
                seen.add(len(ecs.list_tasks(cluster="demo", serviceName="web")["taskArns"]))
                elb.describe_target_health(TargetGroupArn=stack.target_group_arn)
            except BaseException as exc:  # a torn read would surface here
                errors.append(exc)
                polled.release()
                return
            polled.release()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        # Step by step with the poller: each step of the world waits for one more poll, so the
        # requests really interleave with the world moving (however fast either side is).
        assert polled.acquire(timeout=120), "the poller never answered"
        sim.storm(0.5)
        for _ in range(30):
            sim.advance(10)
            assert polled.acquire(timeout=120), f"the poller stopped answering: {errors}"
    finally:
        stop.set()
        poller.join()
    assert errors == []
    assert seen and len(tasks_of(sim, "demo")) == 4


async def test_aiobotocore_smoke(server_sim: Simulator) -> None:
    from aiobotocore.session import get_session

    sim = server_sim
    build_stack(sim, instances=2, boot=0)
    async with get_session().create_client("ecs", **sim.client_kwargs()) as ecs:
        assert (await ecs.list_container_instances(cluster="demo"))["containerInstanceArns"] == []
        await sim.clock.asleep(40)  # boot and agent start
        arns = (await ecs.list_container_instances(cluster="demo"))["containerInstanceArns"]
        described = await ecs.describe_container_instances(cluster="demo", containerInstances=arns)
    assert len(described["containerInstances"]) == 2
    assert {i["status"] for i in described["containerInstances"]} == {"ACTIVE"}
