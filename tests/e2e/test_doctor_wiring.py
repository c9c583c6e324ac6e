"""``ecsspot doctor`` on the simulator: a deployment wired as the Terraform module wires it passes
every check; each link broken on purpose is found, named, and exits 8."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ecsspot import Manager, load_spec
from ecsspot.doctor import INSTANCE_RULES
from ecsspot.sim import Simulator
from ecsspot.spec import ClusterSpec
from ecsspot_cli.main import cli
from tests.conftest import demo_spec_dict

CLUSTER = "demo-api"
PREFIX = f"ecsspot-{CLUSTER}"


pytestmark = pytest.mark.usefixtures("simulated_account")


def wire_like_the_module(sim: Simulator, spec: ClusterSpec) -> str:
    """terraform/events.tf on the simulator: the three instance rules → the events queue (policy
    for those rules, redrive to a dead-letter queue) → the interruption function's mapping, and
    the refresh tick. Returns the queue's ARN."""
    sqs, events = sim.client("sqs"), sim.client("events")
    dlq = sqs.create_queue(QueueName=f"{PREFIX}-events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=f"{PREFIX}-events", Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})["QueueUrl"]
    queue_arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    patterns = {
        "spot": {"source": ["aws.ec2"], "detail-type": [INSTANCE_RULES["spot"]]},
        "rebalance": {"source": ["aws.ec2"], "detail-type": [INSTANCE_RULES["rebalance"]]},
        "lifecycle": {
            "source": ["aws.autoscaling"],
            "detail-type": [INSTANCE_RULES["lifecycle"]],
            "detail": {"AutoScalingGroupName": [spec.asg_name(p) for p in spec.pools], "LifecycleHookName": ["ecsspot-drain"]},
        },
    }
    arns = []
    for key, pattern in patterns.items():
        arns.append(events.put_rule(Name=f"{PREFIX}-{key}", EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"])
        events.put_targets(Rule=f"{PREFIX}-{key}", Targets=[{"Id": "ecsspot-interruption-queue", "Arn": queue_arn}])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyThisClustersRules",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": arns}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    with sim.world.lock:
        sim.world.events.create_event_source_mapping(queue_arn, f"{PREFIX}-interruption")
    events.put_rule(Name=f"{PREFIX}-tick", ScheduleExpression="rate(5 minutes)", State="ENABLED")
    events.put_targets(Rule=f"{PREFIX}-tick", Targets=[{"Id": "ecsspot-refresh", "Arn": f"arn:aws:lambda:{sim.region}:{sim.world.account_id}:function:{PREFIX}-refresh"}])
    return queue_arn


@pytest.fixture(name="wired")
def fixture_wired(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Simulator, ClusterSpec]]:
    with Simulator(seed=3) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        wire_like_the_module(sim, spec)
        yield sim, spec


def doctor(*args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["doctor", CLUSTER, "-o", "json", *args], catch_exceptions=False)
    return result, json.loads(result.stdout) if result.stdout else {}


def failed(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["code"], f["subject"]) for f in doc["findings"] if f["status"] == "fail"}


def test_a_deployment_wired_as_the_module_does_passes_every_check(wired: tuple[Simulator, ClusterSpec]) -> None:
    result, doc = doctor()
    assert result.exit_code == 0, result.stderr
    assert failed(doc) == set()
    assert {f["code"] for f in doc["findings"]} == {"DR101", "DR102", "DR103", "DR104", "DR105", "DR106", "DR107", "DR108", "DR201", "DR202", "DR203"}
    text = CliRunner().invoke(cli, ["doctor", CLUSTER], catch_exceptions=False)
    assert text.exit_code == 0 and text.stdout.startswith(f"Doctor of cluster {CLUSTER} (names {PREFIX}-*):")


def test_each_broken_link_is_found_and_exits_8(wired: tuple[Simulator, ClusterSpec]) -> None:
    sim, spec = wired
    events, sqs, asg = sim.client("events"), sim.client("sqs"), sim.client("autoscaling")
    spot_group = spec.asg_name(spec.pool("spot"))
    # A lifecycle rule narrowed to another group: this cluster's actions no longer match.
    events.put_rule(
        Name=f"{PREFIX}-lifecycle",
        EventPattern=json.dumps({"source": ["aws.autoscaling"], "detail-type": [INSTANCE_RULES["lifecycle"]], "detail": {"AutoScalingGroupName": ["someone-else"]}}),
        State="ENABLED",
    )
    events.remove_targets(Rule=f"{PREFIX}-rebalance", Ids=["ecsspot-interruption-queue"])
    events.disable_rule(Name=f"{PREFIX}-tick")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-events")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": []})})
    asg.delete_lifecycle_hook(LifecycleHookName="ecsspot-drain", AutoScalingGroupName=spot_group)
    result, doc = doctor()
    assert result.exit_code == 8
    assert failed(doc) == {
        ("DR102", f"rule {PREFIX}-lifecycle"),
        ("DR103", f"rule {PREFIX}-rebalance"),
        ("DR105", f"queue {PREFIX}-events"),
        ("DR108", f"rule {PREFIX}-tick"),
        ("DR201", f"group {spot_group}"),
    }
    last = result.stderr.splitlines()[-1]
    assert last.startswith("ecsspot: error: DR103 rule ecsspot-demo-api-rebalance: does not target") and "; DR102 rule ecsspot-demo-api-lifecycle: its pattern misses every sample" in last


def test_a_deployment_never_wired_fails_at_the_first_links_and_a_foreign_prefix_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(seed=4) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        Manager(region="us-east-1", clock=sim.clock).apply(load_spec(demo_spec_dict()))
        result, doc = doctor()
        assert result.exit_code == 8
        assert {code for code, _ in failed(doc)} == {"DR101", "DR104", "DR108"}
        assert CliRunner().invoke(cli, ["doctor", "nosuch"]).exit_code == 7
        result, doc = doctor("--prefix", "mine")
        assert doc["prefix"] == "mine" and ("DR104", "queue mine-events") in failed(doc)


def test_a_target_group_whose_delay_outlasts_the_spot_notice_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import attrs

    with Simulator(seed=5) as sim:
        monkeypatch.setattr("ecsspot.aws.driver.SystemClock", lambda: sim.clock)
        spec = load_spec(demo_spec_dict())
        vpc = sim.client("ec2").describe_subnets(SubnetIds=[spec.network.subnets[0]])["Subnets"][0]["VpcId"]
        group = sim.client("elbv2").create_target_group(Name="slow", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        spec = attrs.evolve(spec, target_groups=(group,))  # AWS's default delay: 300 s
        Manager(region="us-east-1", clock=sim.clock).apply(spec)
        wire_like_the_module(sim, spec)
        result, doc = doctor()
        assert result.exit_code == 8
        (finding,) = [f for f in doc["findings"] if f["status"] == "fail"]
        assert (finding["code"], finding["subject"]) == ("DR203", f"target group {group}")
        assert "deregistration delay 300 s" in finding["detail"] and "deregistration_delay.timeout_seconds" in finding["fix"]


def test_the_test_event_goes_through_the_queue_to_the_handler_and_back(wired: tuple[Simulator, ClusterSpec]) -> None:
    from ecsspot.aws.clients import ClientOptions
    from ecsspot.aws.driver import Driver
    from ecsspot.handlers import Handlers
    from ecsspot.store import probe_key

    sim, spec = wired
    # Nobody polls for the function yet: the message waits in the queue, the doctor gives up.
    result, doc = doctor("--send-test-event", "--wait", "20")
    assert result.exit_code == 8
    (missed,) = [f for f in doc["findings"] if f["code"] == "DR301"]
    assert missed["status"] == "fail" and "not recorded within 20 s" in missed["detail"]

    handlers = Handlers(Driver(ClientOptions(region=sim.region), clock=sim.clock), default_cluster=CLUSTER)
    sim.register_lambda(f"{PREFIX}-interruption", handlers.interruption)
    result, doc = doctor("--send-test-event")
    assert result.exit_code == 0, result.stderr
    (seen,) = [f for f in doc["findings"] if f["code"] == "DR301"]
    assert seen["status"] == "ok" and seen["detail"].startswith("the interruption handler recorded test event")
    probe = seen["detail"].split()[5]
    table = sim.client("dynamodb")
    pk, sk = probe_key(probe)
    assert "Item" not in table.get_item(TableName=spec.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}})  # read, then removed
