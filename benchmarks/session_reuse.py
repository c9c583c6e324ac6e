"""What a new Driver costs: its clients' service models, loaded once per process or per Session.

Every Manager, handler and CLI run builds a Driver, and each Driver a boto3 Session. A plain
``boto3.Session()`` gets its own botocore loader, which reads and parses the JSON service models
again for each client. ecsspot's drivers share one loader per process
(``ecsspot.aws.clients.shared_loader``): only the first Driver pays.

Measured in a fresh interpreter: the time to create the five clients a drain uses (ecs,
autoscaling, ec2, elbv2, dynamodb), for the first Driver and then for each of 5 more (median),
with ecsspot's sessions and with a plain ``boto3.Session`` per Driver.

Run: python -m benchmarks.session_reuse
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.common import emit_rows

SERVICES = ("ecs", "autoscaling", "ec2", "elbv2", "dynamodb")
LATER = 5

_MEASURE = """
import json, statistics, time
import boto3
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.driver import Driver
SERVICES = {services!r}
plain = {plain!r}

def one():
    session = boto3.Session(region_name="us-east-1") if plain else None
    driver = Driver(ClientOptions(region="us-east-1"), session=session)
    t = time.perf_counter()
    for s in SERVICES:
        driver.client(s)
    return time.perf_counter() - t

first = one()
later = [one() for _ in range({later})]
print(json.dumps({{"first_ms": first * 1000, "later_ms": statistics.median(later) * 1000}}))
"""


def measure(plain: bool) -> dict[str, float]:
    code = _MEASURE.format(services=SERVICES, plain=plain, later=LATER)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    timings: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return timings


def main() -> None:
    rows = [("ecsspot (one loader per process)", measure(False)), ("a boto3.Session per Driver", measure(True))]
    print(f"| Driver + {len(SERVICES)} clients | first | each later one (median of {LATER}) |")
    print("|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['first_ms']:.0f} ms | {r['later_ms']:.0f} ms |")
    print(f"(1-minute load average {os.getloadavg()[0]:.1f})")
    (_, ours), (_, naive) = rows
    emit_rows(
        [
            {
                "goal": f"1. a Driver and its {len(SERVICES)} clients after the first, in one process",
                "ecsspot": f"{ours['later_ms']:.0f} ms (first {ours['first_ms']:.0f} ms)",
                "peer": f"a boto3.Session per Driver: {naive['later_ms']:.0f} ms (first {naive['first_ms']:.0f} ms)",
                "note": f"median of {LATER}; botocore's service models loaded once per process",
            }
        ]
    )


if __name__ == "__main__":
    main()
