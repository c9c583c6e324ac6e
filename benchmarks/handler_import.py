"""Cold import time of the Lambda handler module, in fresh interpreters (median of 7).

What a Lambda cold start pays before the first event: ``import ecsspot.handlers`` (no boto3 yet:
the driver is built on the first invocation), then that first invocation's imports (boto3 and
botocore, the driver) for an event that makes no AWS call. For contrast, boto3 alone, the CLI's entry module
and the bare interpreter (``process_ms``: the whole child process, interpreter start included).

Run: python -m benchmarks.handler_import
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import emit_rows

RUNS = 7
#: Modules the handler path must not load (DESIGN.md, Lambda).
HEAVY = ("click", "yaml", "moto", "aiobotocore")

_MEASURE = """
import json, sys, time
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
{then}
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "then_s": t2 - t1, "modules": sorted(sys.modules)}}))
"""

_EVENT = {
    "version": "0",
    "id": "0d2b5f4e-1c1f-4e7e-9d1e-3b0c2a7f9e11",
    "detail-type": "ECS Service Action",
    "source": "aws.ecs",
    "account": "123456789012",
    "time": "2024-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/x"},
}

CASES = {
    "ecsspot.handlers": ("import ecsspot.handlers", f"ecsspot.handlers.interruption({_EVENT!r}, None)"),
    "ecsspot_cli.main": ("import ecsspot_cli.main", "pass"),
    "boto3": ("import boto3", "pass"),
    "python -c pass": ("pass", "pass"),
}


def measure(setup: str, then: str) -> dict[str, Any]:
    """One fresh interpreter: its own timings, its modules at the end, and its wall time."""
    env = {**os.environ, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # -E would drop the environment the handler reads; -s keeps user site-packages out.
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-s", "-c", _MEASURE.format(setup=setup, then=then)], env=env, capture_output=True, text=True, check=True
    )
    return {**json.loads(done.stdout.splitlines()[-1]), "process_s": time.perf_counter() - start}


def main() -> None:
    rows = {}
    for name, (setup, then) in CASES.items():
        runs = [measure(setup, then) for _ in range(RUNS)]
        heavy = sorted({m.split(".")[0] for r in runs for m in r["modules"]} & set(HEAVY))
        rows[name] = {
            "import_ms_median": round(statistics.median(r["import_s"] for r in runs) * 1000, 1),
            "import_ms_runs": [round(r["import_s"] * 1000, 1) for r in runs],
            "first_call_ms_median": round(statistics.median(r["then_s"] for r in runs) * 1000, 1),
            "process_ms_median": round(statistics.median(r["process_s"] for r in runs) * 1000, 1),
            "modules_after_first_call": len(runs[0]["modules"]),
            "heavy_modules_loaded": heavy,
        }
    print(json.dumps({"python": sys.version.split()[0], "runs": RUNS, "results": rows}, indent=2))
    handler, bare, boto = rows["ecsspot.handlers"], rows["python -c pass"], rows["boto3"]
    over_bare = handler["process_ms_median"] - bare["process_ms_median"]
    emit_rows(
        [
            {
                "goal": f"5. import ecsspot.handlers (median of {RUNS} fresh interpreters)",
                "ecsspot": f"{handler['import_ms_median']} ms in-process; whole process {over_bare:.0f} ms over the bare interpreter",
                "peer": f"goal ≤ 150 ms (ideally ≤ 100); import boto3 alone: {boto['import_ms_median']} ms",
                "note": f"bare interpreter {bare['process_ms_median']} ms",
            },
            {
                "goal": "5. first event after the import (not ours: no AWS call)",
                "ecsspot": f"{handler['first_call_ms_median']} ms",
                "peer": f"import boto3 alone: {boto['import_ms_median']} ms",
                "note": "boto3, the driver, the event parser and the drain load here",
            },
        ]
    )


if __name__ == "__main__":
    main()
