"""`ecsspot demo` as the README runs it: exit 0, a summary, the storm and refresh figures."""

from __future__ import annotations

import json
import subprocess
import sys

from ecsspot.sim import demo


def test_demo_from_the_cli_prints_a_summary_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecsspot_cli.main", "--output", "json", "demo", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["storm"]["failed_requests"] == 0
    assert summary["baseline_storm"]["failed_requests"] > 0  # the same storm without ecsspot
    assert len(summary["storm"]["interrupted"]) == 2  # 30 % of six spot instances
    assert summary["refresh_status"] == "done" and summary["instances_replaced"] == 10  # sized by managed scaling
    assert summary["failed_requests"] == 0 and summary["requests"] > 100_000
    assert "storm with ecsspot: 0 failed" in result.stderr  # the timeline, on stderr with --output json


def test_same_seed_same_story() -> None:
    lines_a: list[str] = []
    lines_b: list[str] = []
    a = demo.run(3, line=lines_a.append)
    b = demo.run(3, line=lines_b.append)
    assert a == b and lines_a == lines_b
