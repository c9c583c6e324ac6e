"""Every benchmark, one after the other: ``python -m benchmarks`` from the repository root.

Each prints its own figures beside its peer or floor (see benchmarks/README.md). They run in
fresh processes so one's imports and moto state do not colour another's timings.
"""

from __future__ import annotations

import subprocess
import sys
import time

MODULES = ("plan_calls", "drain_calls", "handler_import", "session_reuse")


def main() -> int:
    failed = []
    for name in MODULES:
        print(f"\n== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False)
        print(f"(benchmarks.{name}: {time.perf_counter() - started:.0f} s)", flush=True)
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
