"""`ecsspot demo`: the seed architecture on the simulator, a spot storm, and an AMI refresh.

Three acts on a virtual clock (minutes of simulated time in seconds of real time):

1. apply the demo spec (an on-demand base pool and a diversified spot pool), put an ALB → target
   group → ECS service on it and send steady traffic;
2. a spot storm: EC2 takes the spot pool's capacity back, so every spot instance gets the
   two-minute warning and no spot capacity is to be had for five minutes. ecsspot's
   interruption Lambda drains and deregisters first. The same storm is replayed on the same
   service without ecsspot (the ECS agent's own spot draining) for comparison;
3. a rolling AMI refresh of both pools under traffic: new capacity first, verified drains.

The service follows ecsspot's own lint advice (its plan shows no warning): minimumHealthyPercent
50 (ES205) and a 30 s deregistration delay + 30 s stop timeout within the spot budget (ES204).
With that advice a storm ECS can absorb costs nothing even without ecsspot (30 % of the spot
instances: 0 failed requests either way, seed 7). What still fails without ecsspot is a storm
taking more of the service than minimumHealthyPercent lets ECS stop at once while no capacity
can come for replacements: ECS keeps the other tasks on their DRAINING instances, registered and
taking requests, until replacements are healthy (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html),
and they die with the instance. ecsspot deregisters every target on the instance at the warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ecsspot.sim import scenario
from ecsspot.sim.alb import HEALTHY
from ecsspot.sim.simulator import Simulator

Line = Callable[[str], None]
#: The image the demo's refresh rolls to: the Amazon Linux 2 ECS-optimized AMI (the spec runs 2023's).
OTHER_IMAGE_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id"
#: The demo's service, as ecsspot's lint advises (ES205: minimumHealthyPercent below 100).
CONFIG = scenario.DemoConfig(minimum_healthy_percent=50)
#: Share of the spot instances the storm warns: all of them, as when EC2 takes a pool's spot
#: capacity back (the storm also leaves none to launch for its outage).
STORM_FRACTION = 1.0
STORM_OUTAGE = 300.0


@attrs.frozen
class StormSummary:
    interrupted: tuple[str, ...]
    requests: int
    #: Every request a user saw fail, the load balancer's own 503s (``no_target_requests``) included.
    failed_requests: int
    no_target_requests: int
    #: Of the failed: cut in flight (target gone mid-request, or connection closed by the load balancer).
    cut_requests: int = 0
    #: Targets on the warned instances still healthy, so taking new requests, when EC2 reclaimed
    #: their instance: what fails the requests a storm costs.
    in_rotation_at_reclaim: int = 0

    def failures(self) -> str:
        return _failures(self.failed_requests, self.requests, self.no_target_requests, self.cut_requests)

    def explained(self) -> str:
        """The failures, and how many targets the load balancer still routed to when their instance went."""
        many = self.in_rotation_at_reclaim
        return f"{self.failures()}; {many} {'target' if many == 1 else 'targets'} still in the load balancer's rotation when EC2 reclaimed the instances"


@attrs.frozen
class DemoSummary:
    seed: int
    cluster: str
    storm: StormSummary
    baseline_storm: StormSummary
    refresh_status: str
    refresh_image_id: str | None
    instances_replaced: int
    requests: int
    failed_requests: int
    no_target_requests: int
    virtual_seconds: float
    lint_warnings: tuple[str, ...] = ()
    cut_requests: int = 0
    #: Failed requests (503s included) while the refresh ran.
    refresh_failed_requests: int = 0


def _failures(failed: int, requests: int, no_target: int, cut: int) -> str:
    why = [f"{n} {what}" for n, what in ((no_target, "503 no target"), (cut, "cut in flight")) if n]
    return f"{failed} failed of {requests} requests" + (f" ({', '.join(why)})" if why else "")


HEADER = f"{'t(s)':>6}  {'spot':>4}  {'od':>3}  {'drain':>5}  {'tasks':>5}  {'healthy':>7}  {'requests':>8}  {'failed':>6}"


def _row(start: float, s: scenario.Snapshot) -> str:
    return (
        f"{s.time - start:6.0f}  {s.spot:4d}  {s.on_demand:3d}  {s.draining:5d}  {s.tasks:5d}  {s.healthy_targets:7d}  "
        f"{s.requests:8d}  {s.failed:6d}"
    )


class _LambdaLines:
    """The interruption Lambda's lines, said before the next line of the timeline in the order
    the invocations started, one per start, outcome and end: a storm warns many instances at
    once, each its own invocation, and six lines saying the same read worse than one naming six."""

    def __init__(self, line: Line) -> None:
        self._line = line
        self._pending: dict[tuple[float, str, float], list[str]] = {}

    def add(self, started: float, outcome: str, finished: float, instance_id: str) -> None:
        self._pending.setdefault((started, outcome, finished), []).append(instance_id)

    def say(self, text: str) -> None:
        for (started, outcome, finished), ids in sorted(self._pending.items(), key=lambda item: item[0][0]):
            which = ids[0] if len(ids) == 1 else f"{len(ids)} instances ({', '.join(ids)})"
            self._line(f"{started:6.0f}  interruption Lambda, {which}: {outcome} [done at {finished:.0f} s]")
        self._pending.clear()
        self._line(text)


def _storm(
    sim: Simulator,
    stack: scenario.Stack,
    *,
    fraction: float,
    outage: float,
    after: float,
    every: float,
    line: Line | None,
    start: float,
    on_snapshot: Callable[[scenario.Snapshot], None] | None = None,
) -> StormSummary:
    before = sim.traffic_stats(stack.target_group_arn)
    group = stack.spec.asg_name(stack.spec.pool("spot"))
    sim.set_spot_capacity(False, group=group)
    candidates = sim.spot_instances(group)
    hit = sim.storm(fraction, group=group)
    if line:
        share = f"all {len(hit)}" if len(hit) == len(candidates) else f"{len(hit)} of {len(candidates)}"
        line(f"spot storm: interruption warnings for {share} spot instances ({', '.join(hit)}); no spot capacity for {outage:.0f} s")

    def show(s: scenario.Snapshot) -> None:
        if on_snapshot:
            on_snapshot(s)
        if line:
            line(_row(start, s))

    scenario.play(sim, outage, every, stack, show)
    sim.set_spot_capacity(True, group=group)
    if line:
        line("spot capacity is back")
    scenario.play(sim, after, every, stack, show)
    after_stats = sim.traffic_stats(stack.target_group_arn)
    return StormSummary(
        interrupted=tuple(hit),
        requests=after_stats.requests - before.requests,
        failed_requests=after_stats.failed - before.failed,
        no_target_requests=after_stats.no_target - before.no_target,
        cut_requests=after_stats.cut - before.cut,
        in_rotation_at_reclaim=_in_rotation_at_reclaim(sim, hit),
    )


def _in_rotation_at_reclaim(sim: Simulator, instance_ids: list[str]) -> int:
    """Targets on ``instance_ids`` that were healthy when their instance was reclaimed, read
    from the simulator's history (target states in the order they changed)."""
    waiting = set(instance_ids)
    state: dict[str, str] = {}
    found = 0
    for r in sim.history:
        if r.kind == "target.state" and r.subject.split(":")[0] in waiting:
            state[r.subject] = r.detail["state"]
        elif r.kind == "spot.reclaimed" and r.subject in waiting:
            waiting.discard(r.subject)
            found += sum(1 for target, now in state.items() if target.startswith(f"{r.subject}:") and now == HEALTHY)
    return found


def baseline_storm(seed: int, config: scenario.DemoConfig, *, fraction: float = STORM_FRACTION) -> StormSummary:
    """The same storm on the same service without ecsspot's interruption Lambda: only the ECS
    agent's spot draining (and ECS managed draining for Auto Scaling's own terminations)."""
    plain = attrs.evolve(config, handle_events=False)
    with Simulator(seed=seed, managed_scaling=config.managed_scaling) as sim:
        stack = scenario.build(sim, plain)
        scenario.play(sim, 60, 60, stack)
        return _storm(sim, stack, fraction=fraction, outage=STORM_OUTAGE, after=120, every=420, line=None, start=sim.now())


def run(
    seed: int = 7,
    *,
    line: Line | None = print,
    config: scenario.DemoConfig | None = None,
    on_snapshot: Callable[[scenario.Snapshot], None] | None = None,
) -> DemoSummary:
    """Play the demo; ``line`` receives the human-readable timeline (None: silent) and
    ``on_snapshot`` each row of it (for ``--chart``)."""
    config = config or CONFIG
    lambda_lines = _LambdaLines(line or (lambda _text: None))
    say = lambda_lines.say
    keep = on_snapshot or (lambda _s: None)

    def row(start: float, s: scenario.Snapshot) -> str:
        keep(s)
        return _row(start, s)

    with Simulator(seed=seed, managed_scaling=config.managed_scaling) as sim:
        start = sim.now()
        say(f"applying the demo spec (cluster {scenario.BASE_SPEC['cluster']}, pools: spot + on-demand) on the simulator, seed {seed}")
        def lambda_said(started: float, finished: float, response: dict[str, Any]) -> None:
            # Per instance and invocation: its drain, and what became of its lifecycle action (a
            # spot warning has none; its terminate hook comes in its own invocation).
            by_instance: dict[str, list[dict[str, Any]]] = {}
            for a in response.get("actions", ()):
                if a["kind"] != "ignore":
                    by_instance.setdefault(a["instance_id"] or "", []).append(a)
            for iid, actions in by_instance.items():
                parts = []
                for a in actions:
                    if a["kind"] == "complete_lifecycle_action" and a["status"] == "done":
                        ended = "had already ended" in a["reason"]
                        parts.append("lifecycle action: nothing left to complete, Auto Scaling had ended it" if ended else "lifecycle action completed (CONTINUE)")
                    elif a["kind"] == "drain" and a["status"] == "timed_out" and set(a["left"]) == {"services_below_desired"}:
                        # The instance is empty; what the deadline caught is the services'
                        # replacements (in the storm, waiting for capacity).
                        below = ", ".join(a["left"]["services_below_desired"])
                        parts.append(f"drained, no task or target left; replacements not running yet at the drain's deadline ({below})")
                    else:
                        parts.append(f"{a['kind']} {a['status']} ({a['reason']})")
                lambda_lines.add(started - start, "; ".join(parts), finished - start, iid)

        stack = scenario.build(sim, config, on_result=lambda_said)
        found = stack.manager.plan(stack.spec).warnings
        warnings = tuple(f"{w.code} {w.path}" for w in found)
        # None expected: the demo's service follows the advice; one would be a regression to show.
        for w in found:
            say(f"  lint {w.code} {w.path}: {w.message}")
        say(
            f"service web: {config.tasks} tasks behind an ALB, {config.rps:.0f} requests/s; as lint advises: "
            f"minimumHealthyPercent {config.minimum_healthy_percent}, deregistration delay {config.deregistration_delay} s"
            + ("" if found else " (plan: no lint warning)")
        )
        say(HEADER)
        scenario.play(sim, 60, 20, stack, lambda s: say(row(start, s)))

        storm = _storm(sim, stack, fraction=STORM_FRACTION, outage=STORM_OUTAGE, after=120, every=30, line=say, start=start, on_snapshot=keep)
        say(f"storm with ecsspot: {storm.explained()}")

        from ecsspot import ami

        current = stack.manager.run(ami.resolve(stack.spec.instances.ami))
        # Another ECS-optimized image by its public parameter (listing moto's 1,300 images
        # of Amazon's took seconds to serialise).
        new_image = stack.manager.run(ami.resolve(f"ssm:{OTHER_IMAGE_PARAMETER}"))
        if new_image == current:
            raise RuntimeError(f"{OTHER_IMAGE_PARAMETER} names the image the cluster runs ({current})")
        say(f"rolling AMI refresh to {new_image}: new capacity first, verified drains, batch size {stack.spec.refresh.batch_size}")
        seen: dict[str, str] = {}

        def progress(p: Any) -> None:
            for pool in p.get("pools", ()):
                text = f"{pool['pool']} {len(pool['replaced'])}/{len(pool['old'])} replaced"
                if pool["replaced"] and seen.get(pool["pool"]) != text:
                    seen[pool["pool"]] = text
                    say(row(start, scenario.snapshot(sim, stack)) + f"   refresh: {text}")

        before = sim.traffic_stats(stack.target_group_arn)
        result = stack.manager.refresh(stack.cluster, ami=new_image, on_progress=progress)
        scenario.play(sim, 60, 60, stack, lambda s: say(row(start, s)))
        during = sim.traffic_stats(stack.target_group_arn)
        say(
            f"refresh {result.status}: {len(result.replaced)} instance(s) replaced, "
            + _failures(during.failed - before.failed, during.requests - before.requests, during.no_target - before.no_target, during.cut - before.cut)
            + " during it"
        )
        total = sim.traffic_stats(stack.target_group_arn)
        elapsed = sim.now() - start

    say("replaying the same storm on the same service without ecsspot (the ECS agent's spot draining only)…")
    baseline = baseline_storm(seed, config)
    say(f"storm without ecsspot: {baseline.explained()}")
    summary = DemoSummary(
        seed=seed,
        cluster=stack.cluster,
        storm=storm,
        baseline_storm=baseline,
        refresh_status=result.status,
        refresh_image_id=result.image_id,
        instances_replaced=len(result.replaced),
        requests=total.requests,
        failed_requests=total.failed,
        no_target_requests=total.no_target,
        virtual_seconds=elapsed,
        lint_warnings=warnings,
        cut_requests=total.cut,
        refresh_failed_requests=during.failed - before.failed,
    )
    say("")
    say(
        f"summary: {summary.requests} requests in {elapsed / 60:.0f} virtual minutes, {summary.failed_requests} failed "
        f"(spot storm {storm.failed_requests} with ecsspot vs {baseline.failed_requests} without; "
        f"AMI refresh {result.status}, {summary.instances_replaced} instances replaced)"
    )
    return summary
