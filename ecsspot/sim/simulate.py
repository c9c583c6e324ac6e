"""``ecsspot simulate``: the storm simulator on the user's own spec.

The spec is applied to a simulated account (its network replaced by the simulator's default VPC:
the real subnet ids mean nothing there), ecsspot's interruption Lambda is wired as the Terraform
module wires it, and a scenario plays: services behind load balancers with steady traffic, spot
interruptions, spot capacity shortages by pool, an AMI refresh. The report counts what users
would see (failed requests), how long drains took from the warning, instances by lifecycle over
time, and what the instances cost (on-demand list prices, spot prices of the simulated market).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import cattrs

from ecsspot.errors import InputError
from ecsspot.sim import instancetypes, scenario
from ecsspot.sim.alb import HEALTHY
from ecsspot.sim.simulator import Simulator
from ecsspot.sim.spot import SPOT

#: Upper bounds that keep one run within minutes of real time.
MAX_DURATION = 6 * 3600.0
MAX_SERVICES = 50
MAX_TASKS = 200


@attrs.frozen
class ServicePlan:
    name: str = "web"
    tasks: int = 6
    #: CPU units per task (an m5.large has 2048).
    task_cpu: int = 512
    rps: float = 50.0
    deregistration_delay: int = 30
    minimum_healthy_percent: int = 100


@attrs.frozen
class Interruption:
    """Two-minute warnings for a ``fraction`` of the running spot instances (of ``pool``) at ``at`` seconds."""

    at: float
    fraction: float = 0.3
    pool: str | None = None


@attrs.frozen
class Shortage:
    """No spot capacity (for ``pool``) from ``at`` for ``seconds``."""

    at: float
    seconds: float = 300.0
    pool: str | None = None


@attrs.frozen
class Scenario:
    duration: float = 1200.0
    #: Seconds between two timeline rows.
    every: float = 30.0
    services: tuple[ServicePlan, ...] = (ServicePlan(),)
    interruptions: tuple[Interruption, ...] = (Interruption(at=300.0),)
    shortages: tuple[Shortage, ...] = (Shortage(at=300.0),)
    #: Start a rolling AMI refresh at this time (None: no refresh). The timeline gets a row at
    #: each step it saves; events due while it runs play when it has finished.
    refresh_at: float | None = None


@attrs.frozen
class Row:
    time: float
    spot: int
    on_demand: int
    draining: int
    healthy_targets: int
    requests: int
    failed: int


@attrs.frozen
class Report:
    cluster: str
    seed: int
    virtual_seconds: float
    requests: int
    failed_requests: int
    no_target_requests: int
    cut_requests: int
    interrupted: tuple[str, ...]
    #: Seconds from the interruption Lambda's start to "drained", one per drained instance.
    drain_seconds: tuple[float, ...]
    #: (seconds from the start, what happened): interruptions, shortages, the refresh.
    marks: tuple[tuple[float, str], ...]
    spot_instance_hours: float
    on_demand_instance_hours: float
    cost: float
    on_demand_equivalent_cost: float
    refresh_status: str | None
    #: Instances the refresh replaced (0 without one).
    refresh_replaced: int
    timeline: tuple[Row, ...]
    #: Instances drained (by the interruption Lambda), in the order they were.
    drained: tuple[str, ...] = ()
    #: Lambda invocations, and how many of them raised or ran out of time.
    invocations: int = 0
    handler_errors: int = 0

    @property
    def savings_percent(self) -> float:
        return 0.0 if not self.on_demand_equivalent_cost else 100.0 * (1 - self.cost / self.on_demand_equivalent_cost)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)?")
_converter = cattrs.Converter(forbid_extra_keys=True)


def _seconds(value: Any, _type: Any = None) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration (like 90, 90s, 5m, 1h)")
    return float(match[1]) * {"h": 3600, "m": 60, "s": 1, None: 1}[match[2]]


_converter.register_structure_hook(float, _seconds)


def load_scenario(document: Mapping[str, Any] | None) -> Scenario:
    """A scenario from its YAML/JSON document; InputError naming the field when it is wrong."""
    try:
        plan = _converter.structure(dict(document or {}), Scenario)
    except Exception as exc:  # noqa: BLE001 - cattrs raises groups of whatever went wrong: one line
        messages = cattrs.transform_error(exc, path="scenario") if isinstance(exc, cattrs.BaseValidationError) else [str(exc)]
        raise InputError("; ".join(messages)) from None
    problems = []
    if not 0 < plan.duration <= MAX_DURATION:
        problems.append(f"scenario.duration: must be within (0, {MAX_DURATION:.0f}] seconds")
    if not 1 <= plan.every <= plan.duration:
        problems.append("scenario.every: must be between 1 s and the duration")
    if not 1 <= len(plan.services) <= MAX_SERVICES:
        problems.append(f"scenario.services: 1 to {MAX_SERVICES} services")
    names = [s.name for s in plan.services]
    for n, s in enumerate(plan.services):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", s.name) or names.count(s.name) > 1:
            problems.append(f"scenario.services[{n}].name: 1-32 letters, digits, _ or -, unique")
        if not 1 <= s.tasks <= MAX_TASKS:
            problems.append(f"scenario.services[{n}].tasks: 1 to {MAX_TASKS}")
        if not 0 <= s.rps <= 10_000:
            problems.append(f"scenario.services[{n}].rps: 0 to 10000")
    timed: tuple[tuple[str, Sequence[Interruption | Shortage]], ...] = (("interruptions", plan.interruptions), ("shortages", plan.shortages))
    for kind, items in timed:
        for n, item in enumerate(items):
            if not 0 <= item.at < plan.duration:
                problems.append(f"scenario.{kind}[{n}].at: within the duration")
    if plan.refresh_at is not None and not 0 <= plan.refresh_at < plan.duration:
        problems.append("scenario.refresh_at: within the duration")
    for n, i in enumerate(plan.interruptions):
        if not 0 < i.fraction <= 1:
            problems.append(f"scenario.interruptions[{n}].fraction: in (0, 1]")
    if problems:
        raise InputError("; ".join(problems))
    return plan


def simulate(spec_document: Mapping[str, Any], plan: Scenario, *, seed: int = 0, on_row: Callable[[Row], None] | None = None) -> Report:
    """Play ``plan`` on ``spec_document`` in a fresh simulated account; see the module docstring."""
    from ecsspot.spec import load_spec

    with Simulator(seed=seed, managed_scaling=True) as sim:
        document = copy.deepcopy(dict(spec_document))
        network = scenario.spec_dict(sim, scenario.DemoConfig())["network"]
        document["network"] = {**dict(document.get("network") or {}), **network}
        document["region"] = sim.region
        document.pop("target_groups", None)  # real ARNs: the simulated services bring their own
        spec = load_spec(document)
        pools = {p.name for p in spec.pools}
        timed: tuple[Interruption | Shortage, ...] = (*plan.interruptions, *plan.shortages)
        unknown = sorted({i.pool for i in timed if i.pool is not None} - pools)
        if unknown:
            raise InputError(f"scenario: pool(s) {', '.join(unknown)} not in the spec ({', '.join(sorted(pools))})")
        manager = scenario.manager_for(sim)
        manager.apply(spec)
        drains: dict[str, float] = {}

        def on_result(started: float, finished: float, response: Mapping[str, Any]) -> None:
            for action in response.get("actions", ()):
                # An instance drained on its warning is drained again (at once) on its hook: the first counts.
                if action.get("kind") == "drain" and action.get("status") == "drained":
                    drains.setdefault(str(action.get("instance_id")), finished - started)

        scenario.wire_interruption_handler(sim, spec.cluster, on_result)
        groups = _services(sim, spec, plan.services)
        start = sim.now()
        rows: list[Row] = []
        hours = {"spot": 0.0, "on-demand": 0.0}
        cost = [0.0, 0.0]
        #: The running instances' price per hour (paid, list) since the last row.
        rate = [0.0, 0.0]
        refresh_replaced = 0
        interrupted: list[str] = []
        marks: list[tuple[float, str]] = []
        refresh_status: str | None = None
        events: list[tuple[float, str, Interruption | Shortage | None]] = sorted(
            [(i.at, "interrupt", i) for i in plan.interruptions]
            + [(s.at, "short", s) for s in plan.shortages]
            + [(s.at + s.seconds, "back", s) for s in plan.shortages]
            + ([(plan.refresh_at, "refresh", None)] if plan.refresh_at is not None else []),
            key=lambda e: e[0],
        )

        def row(*_: Any) -> None:
            """A timeline row now; the span since the last one is counted with what ran in it."""
            now = scenario.fleet(sim, spec)
            r = _row(sim, now, groups, start)
            if rows and r.time <= rows[-1].time:
                return  # a refresh step saved within the same virtual second
            if rows:
                span = (r.time - rows[-1].time) / 3600
                hours["spot"] += rows[-1].spot * span
                hours["on-demand"] += rows[-1].on_demand * span
                cost[0] += rate[0] * span
                cost[1] += rate[1] * span
            rate[:] = _prices(sim, now)
            rows.append(r)
            if on_row is not None:
                on_row(r)

        row()
        while sim.now() - start < plan.duration:
            t = sim.now() - start
            due = [e for e in events if e[0] <= t]
            for at, kind, item in due:
                events.remove((at, kind, item))
                group = spec.asg_name(spec.pool(item.pool)) if item is not None and item.pool else None
                where = f" ({item.pool})" if item is not None and item.pool else ""
                if isinstance(item, Interruption):  # kind "interrupt": the only events carrying one
                    hit = sim.storm(item.fraction, group=group)
                    interrupted += hit
                    marks.append((t, f"{len(hit)} spot warning(s){where}"))
                elif kind == "short":
                    sim.set_spot_capacity(False, group=group)
                    marks.append((t, f"no spot capacity{where}"))
                elif kind == "back":
                    sim.set_spot_capacity(True, group=group)
                    marks.append((t, f"spot back{where}"))
                elif kind == "refresh":
                    marks.append((t, "AMI refresh"))
                    from ecsspot import ami
                    from ecsspot.sim.demo import OTHER_IMAGE_PARAMETER

                    # Another ECS-optimized image, by its public parameter (as the demo's refresh).
                    current = manager.run(ami.resolve(spec.instances.ami))
                    target = manager.run(ami.resolve(f"ssm:{OTHER_IMAGE_PARAMETER}"))
                    if target == current:
                        target = manager.run(ami.resolve("ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"))
                    # A row at every step it saves: instances by lifecycle while it rolls them.
                    result = manager.refresh(spec.cluster, ami=target, on_progress=row)
                    refresh_status, refresh_replaced = result.status, len(result.replaced)
                    row()
            t = sim.now() - start
            if t >= plan.duration:
                break  # the refresh ran past the end
            step = min(plan.every, plan.duration - t, *(e[0] - t for e in events if e[0] > t))
            # On time: Lambdas still draining go on in the next step, so each event plays when due.
            sim.advance(step, settle=False)
            row()
        sim.advance(0)  # the invocations still running finish: each one counts in the report
        stats = [sim.traffic_stats(g) for g in groups]
        return Report(
            cluster=spec.cluster,
            seed=seed,
            virtual_seconds=sim.now() - start,
            requests=sum(s.requests for s in stats),
            failed_requests=sum(s.failed for s in stats),
            no_target_requests=sum(s.no_target for s in stats),
            cut_requests=sum(s.cut for s in stats),
            interrupted=tuple(interrupted),
            # Warned instances only: one a refresh or a scale-in drains had no warning.
            drain_seconds=tuple(seconds for iid, seconds in drains.items() if iid in interrupted),
            marks=tuple(marks),
            spot_instance_hours=round(hours["spot"], 3),
            on_demand_instance_hours=round(hours["on-demand"], 3),
            cost=round(cost[0], 4),
            on_demand_equivalent_cost=round(cost[1], 4),
            refresh_status=refresh_status,
            refresh_replaced=refresh_replaced,
            timeline=tuple(rows),
            drained=tuple(drains),
            invocations=len(sim.invocations),
            handler_errors=sum(1 for i in sim.invocations if i.error is not None),
        )


def _services(sim: Simulator, spec: Any, services: Sequence[ServicePlan]) -> list[str]:
    """Each service behind its own ALB and target group, on the cluster's default strategy; waits
    until all serve, then starts their traffic. Returns the target group ARNs."""
    ec2, elb, ecs = sim.client("ec2"), sim.client("elbv2"), sim.client("ecs")
    subnets = list(spec.network.subnets)
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    groups = []
    for s in services:
        lb = elb.create_load_balancer(Name=f"sim-{s.name}", Subnets=subnets)["LoadBalancers"][0]
        tg = elb.create_target_group(
            Name=f"sim-{s.name}", Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckIntervalSeconds=10, HealthyThresholdCount=2, UnhealthyThresholdCount=2
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(s.deregistration_delay)}])
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        ecs.register_task_definition(
            family=s.name,
            networkMode="bridge",
            containerDefinitions=[{"name": s.name, "image": "public.ecr.aws/nginx/nginx:stable", "cpu": s.task_cpu, "memory": 256, "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
        )
        ecs.create_service(
            cluster=spec.cluster,
            serviceName=s.name,
            taskDefinition=s.name,
            desiredCount=s.tasks,
            deploymentConfiguration={"minimumHealthyPercent": s.minimum_healthy_percent, "maximumPercent": 200},
            loadBalancers=[{"targetGroupArn": tg, "containerName": s.name, "containerPort": 80}],
        )
        groups.append(tg)
    wanted = dict(zip(groups, (s.tasks for s in services), strict=True))
    if not sim.run_until(lambda: all(_healthy(sim, g) >= n for g, n in wanted.items()), timeout=1200, step=5):
        raise InputError("the scenario's services did not become healthy within 20 virtual minutes: do the spec's pools have room for their tasks?")
    for g, s in zip(groups, services, strict=True):
        sim.start_traffic(g, s.rps)
    return groups


def _row(sim: Simulator, now: scenario.Fleet, groups: Sequence[str], start: float) -> Row:
    stats = [sim.traffic_stats(g) for g in groups]
    return Row(
        time=sim.now() - start,
        spot=now.spot,
        on_demand=now.on_demand,
        draining=now.draining,
        healthy_targets=sum(_healthy(sim, g) for g in groups),
        requests=sum(s.requests for s in stats),
        failed=sum(s.failed for s in stats),
    )


def _healthy(sim: Simulator, target_group_arn: str) -> int:
    """The group's healthy targets, as DescribeTargetHealth shows them, read from the simulated
    load balancer itself: the timeline's own reads are no AWS calls (one per group per row, and
    per group every 5 s while the services start)."""
    return sum(1 for t in sim.world.alb.targets.get(target_group_arn, {}).values() if t.state == HEALTHY)


def _prices(sim: Simulator, now: scenario.Fleet) -> list[float]:
    """The running instances' price per hour: paid (spot at the simulated market's price) and at
    on-demand list prices."""
    paid = list_price = 0.0
    for m in now.instances:
        on_demand = instancetypes.lookup(m.instance_type).on_demand_price
        list_price += on_demand
        paid += sim.world.market.pool(m.instance_type, m.availability_zone).price if m.lifecycle == SPOT else on_demand
    return [paid, list_price]


def render(report: Report) -> str:
    """The report as text: the timeline, then the figures."""
    lines = [f"{'t(s)':>6}  {'spot':>4}  {'od':>3}  {'drain':>5}  {'healthy':>7}  {'requests':>8}  {'failed':>6}"]
    lines += [f"{r.time:6.0f}  {r.spot:4d}  {r.on_demand:3d}  {r.draining:5d}  {r.healthy_targets:7d}  {r.requests:8d}  {r.failed:6d}" for r in report.timeline]
    drains = sorted(report.drain_seconds)
    drained = f"{len(drains)} drained, {drains[0]:.0f} to {drains[-1]:.0f} s from the warning" if drains else "none drained"
    lines += [
        "",
        f"cluster {report.cluster}, seed {report.seed}: {report.virtual_seconds / 60:.0f} virtual minutes",
        f"requests: {report.requests}, failed {report.failed_requests} ({report.no_target_requests} 503 no target, {report.cut_requests} cut in flight)",
        f"interruptions: {len(report.interrupted)} instance(s) warned; {drained}",
        f"instance-hours: spot {report.spot_instance_hours:.2f}, on-demand {report.on_demand_instance_hours:.2f}",
        f"cost: ${report.cost:.2f} against ${report.on_demand_equivalent_cost:.2f} all on-demand ({report.savings_percent:.0f} % saved; simulated spot prices, us-east-1 list prices)",
    ]
    if report.refresh_status is not None:
        lines.append(f"AMI refresh: {report.refresh_status}, {report.refresh_replaced} instance(s) replaced")
    return "\n".join(lines)
