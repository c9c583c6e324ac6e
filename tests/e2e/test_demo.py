"""`ecsspot demo` as the README runs it: exit 0, a summary, the storm and refresh figures.

The demo runs twice here: once as the README runs it (a real ``ecsspot`` process) and once
in-process with the same seed, which must tell the same story (across processes, so nothing
may hang on hash order or the wall clock). Both tests read the one CLI run, even on two
pytest-xdist workers.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest

from ecsspot.sim import demo
from ecsspot_cli.output import jsonable

SEED = 7


@pytest.fixture(scope="session", name="cli_demo")
def cli_demo_fixture(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """One CLI run for the session: under pytest-xdist the first worker to take the lock plays
    it and the others read what it saved (in the run's own temporary directory)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    command = [sys.executable, "-m", "ecsspot_cli.main", "--output", "json", "demo", "--seed", str(SEED)]
    with open(shared / "cli-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = shared / "cli-demo.json"
        if not saved.exists():
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
            saved.write_text(json.dumps([done.returncode, done.stdout, done.stderr]))
        returncode, stdout, stderr = json.loads(saved.read_text())
    return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def test_demo_from_the_cli_prints_a_summary_and_exits_0(cli_demo: subprocess.CompletedProcess[str]) -> None:
    result = cli_demo
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["storm"]["failed_requests"] == 0
    assert summary["baseline_storm"]["failed_requests"] > 0  # the same storm without ecsspot
    assert len(summary["storm"]["interrupted"]) == 2  # 30 % of six spot instances
    assert summary["refresh_status"] == "done" and summary["instances_replaced"] == 10  # sized by managed scaling
    assert summary["failed_requests"] == 0 and summary["requests"] > 100_000
    assert "storm with ecsspot: 0 failed" in result.stderr  # the timeline, on stderr with --output json


def test_same_seed_same_story(cli_demo: subprocess.CompletedProcess[str]) -> None:
    lines: list[str] = []
    summary = demo.run(SEED, line=lines.append)
    assert jsonable(summary) == json.loads(cli_demo.stdout)
    first, *timeline = cli_demo.stderr.splitlines()
    assert first.startswith("starting the embedded AWS simulator")  # the CLI's own progress line
    assert lines == timeline


def test_the_demos_own_lint_warning_says_it_is_there_on_purpose(cli_demo: subprocess.CompletedProcess[str]) -> None:
    # Issue 13 item 9: a product's demo tripping its own lint must say why, plainly.
    lines = cli_demo.stderr.splitlines()
    own = [n for n, line in enumerate(lines) if line.startswith("  lint ES205 service:web:")]
    assert own, "the demo's service keeps minimumHealthyPercent 100, the case it shows"
    for n in own:
        assert lines[n + 1].startswith("  (on purpose: the demo's service keeps AWS's default minimumHealthyPercent 100")
