"""The storm simulator at scale: what ``ecsspot simulate`` costs on a big cluster, and the demo.

The storm of issue 12 (goal 6): a cluster of ``instances`` instances (a quarter on demand, the
rest spot, two 1024-CPU tasks per m5.large) running 50 services behind their own load balancers,
one virtual hour, 30 % of the spot instances interrupted over 10 virtual minutes (ten waves a
minute apart), ecsspot's interruption Lambda handling every warning. It runs through
``ecsspot.sim.simulate.simulate`` with a generated spec and scenario, as ``ecsspot simulate``
runs a user's.

Each size runs in a fresh interpreter (peak RSS is per process): wall and CPU time, peak RSS,
handler errors, failed requests, warned and drained instances. Then ``ecsspot demo`` through the
CLI in a fresh interpreter, wall time beside the README's 20 s.

Run: python -m benchmarks.storm              (100, 200 and 500 instances, then the demo)
     python -m benchmarks.storm --one 100    (one size, its figures as one JSON line)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import emit_rows

SIZES = (100, 200, 500)
SERVICES = 50
WAVES = 10
#: Goals of the issue: 500 instances within 60 s and 1 GB; the demo within 20 s.
GOAL_WALL, GOAL_RSS_MB, GOAL_DEMO = 60.0, 1024.0, 20.0


def storm_spec(instances: int) -> dict[str, Any]:
    """A spot pool and an on-demand pool sized for ``instances`` (ECS managed scaling sizes them
    to the tasks); the network is the simulator's own."""
    return {
        "cluster": "storm",
        "network": {"subnets": ["subnet-aaa"], "security_groups": ["sg-123"]},
        "instances": {"ami": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id", "ecs_config": {"ECS_CONTAINER_STOP_TIMEOUT": "30s"}},
        "pools": [
            {"name": "spot", "max_size": instances * 2, "instance_types": ["m5.large", "m5a.large", "m5d.large", "m6i.large"], "on_demand_percentage_above_base": 0},
            {"name": "on-demand", "min_size": 1, "max_size": instances, "instance_types": ["m5.large"], "on_demand_percentage_above_base": 100},
        ],
        "strategy": [{"pool": "on-demand", "base": 1, "weight": 1}, {"pool": "spot", "weight": 3}],
        "drain": {"deadline_seconds": 110},
    }


def storm_scenario(instances: int, services: int = SERVICES, *, duration: float = 3600.0) -> Any:
    """``services`` services of two tasks per instance in all; 30 % of the spot instances warned
    in ``WAVES`` waves a minute apart, from the fifth minute."""
    from ecsspot.sim.simulate import Interruption, Scenario, ServicePlan

    tasks = max(1, round(2 * instances / services))
    # Each wave warns a share of the spot instances still running, so the ten waves add up to
    # 30 % of the spot pool as it was before the first.
    waves = tuple(Interruption(at=300.0 + 60.0 * n, fraction=0.03 / (1 - 0.03 * n), pool="spot") for n in range(WAVES))
    return Scenario(
        duration=duration,
        every=60.0,
        services=tuple(ServicePlan(name=f"svc{n:02d}", tasks=tasks, task_cpu=1024, rps=10.0) for n in range(services)),
        interruptions=waves,
        shortages=(),
    )


def run(instances: int, services: int = SERVICES, *, duration: float = 3600.0, seed: int = 0) -> dict[str, Any]:
    """Play the storm in this process; its figures (time, memory, what users and handlers saw)."""
    from ecsspot.sim.simulate import simulate

    wall, cpu = time.perf_counter(), time.process_time()
    report = simulate(storm_spec(instances), storm_scenario(instances, services, duration=duration), seed=seed)
    peak = max((r.spot + r.on_demand for r in report.timeline), default=0)
    return {
        "instances": instances,
        "peak_instances": peak,
        "services": services,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "invocations": report.invocations,
        "handler_errors": report.handler_errors,
        "requests": report.requests,
        "failed_requests": report.failed_requests,
        "warned": len(report.interrupted),
        "drained": len(set(report.interrupted) & set(report.drained)),
    }


def _one(instances: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.storm", "--one", str(instances)], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"storm of {instances} instances failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _demo() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ecsspot_cli", "-q", "demo"], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run(int(sys.argv[2]))))
        return
    results = []
    print("| instances (peak) | wall | CPU | peak RSS | invocations | handler errors | requests | failed | warned | drained |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        r = _one(size)
        results.append(r)
        print(
            f"| {r['instances']} ({r['peak_instances']}) | {r['wall_s']:.0f} s | {r['cpu_s']:.0f} s | {r['rss_mb']} MB | {r['invocations']} | "
            f"{r['handler_errors']} | {r['requests']} | {r['failed_requests']} | {r['warned']} | {r['drained']} |",
            flush=True,
        )
    demo = _demo()
    print(f"ecsspot demo: {demo:.1f} s wall (goal {GOAL_DEMO:.0f} s)")
    print(f"(1-minute load average {os.getloadavg()[0]:.1f})")
    rows = [
        {
            "goal": f"6. storm, {r['instances']} instances / {SERVICES} services / 1 virtual h",
            "ecsspot": f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU, {r['rss_mb']} MB",
            "peer": f"≤ {GOAL_WALL:.0f} s, ≤ {GOAL_RSS_MB:.0f} MB at 500" if r["instances"] == 500 else "—",
            "note": f"{r['handler_errors']} handler errors, {r['failed_requests']} failed of {r['requests']} requests, {r['drained']}/{r['warned']} warned drained",
        }
        for r in results
    ]
    rows.append({"goal": "6. ecsspot demo, wall", "ecsspot": f"{demo:.1f} s", "peer": f"≤ {GOAL_DEMO:.0f} s (README)", "note": "fresh interpreter, CLI"})
    emit_rows(rows)


if __name__ == "__main__":
    main()
