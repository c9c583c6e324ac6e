"""Every benchmark, one after the other: ``python -m benchmarks`` from the repository root.

Each prints its own figures beside its peer or floor (see benchmarks/README.md). They run in
fresh processes so one's imports and moto state do not colour another's timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.common import ROWS_PREFIX

MODULES = ("plan_calls", "drain_calls", "interruption_rounds", "handler_import", "session_reuse", "storm")


def main() -> int:
    failed = []
    table: list[dict[str, str]] = []
    for name in MODULES:
        print(f"\n== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False, stdout=subprocess.PIPE, text=True)
        for line in done.stdout.splitlines():
            if line.startswith(ROWS_PREFIX):
                table += [{**row, "module": name} for row in json.loads(line[len(ROWS_PREFIX) :])]
            else:
                print(line, flush=True)
        print(f"(benchmarks.{name}: {time.perf_counter() - started:.0f} s)", flush=True)
        if done.returncode:
            failed.append(name)
    print(f"\n== every figure, side by side (1-minute load average at the end: {os.getloadavg()[0]:.1f})")
    print("| goal | ecsspot | peer or floor (same run) | note |")
    print("|---|---|---|---|")
    # By goal number only (a stable sort): each module's rows keep their own order (N = 1, 20, 100).
    for row in sorted(table, key=lambda r: int(r["goal"].split(".", 1)[0])):
        print(f"| {row['goal']} | {row['ecsspot']} | {row['peer']} | {row.get('note', '')} |")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
