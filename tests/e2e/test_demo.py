"""`ecsspot demo` as the README runs it: exit 0, a summary, the storm and refresh figures.

The demo runs twice here: once as the README runs it (a real ``ecsspot`` process) and once
in-process with the same seed, which must tell the same story (across processes, so nothing
may hang on hash order or the wall clock). The CLI process starts first and plays while the
in-process run does (two cores, not one after the other); both tests read its one run (one
pytest-xdist worker runs the file: ``--dist loadfile``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from ecsspot.sim import demo
from ecsspot_cli.output import jsonable

SEED = 7


@attrs.frozen
class Started:
    """The CLI demo, playing in the background; its output goes to files (a pipe nobody reads
    while the in-process run plays could fill and stall it)."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


@pytest.fixture(scope="module", name="cli_demo_process")
def cli_demo_process_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """``ecsspot --output json demo --seed 7``, started in the background."""
    out = tmp_path_factory.mktemp("cli-demo")
    command = [sys.executable, "-m", "ecsspot_cli.main", "--output", "json", "demo", "--seed", str(SEED)]
    with open(out / "stdout", "wb") as stdout, open(out / "stderr", "wb") as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    try:
        yield Started(process, out / "stdout", out / "stderr")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", name="cli_demo")
def cli_demo_fixture(cli_demo_process: Started) -> subprocess.CompletedProcess[str]:
    """The CLI run's outcome (waits for it; a hang fails after 15 minutes)."""
    started = cli_demo_process
    returncode = started.process.wait(timeout=900)
    return subprocess.CompletedProcess(started.process.args, returncode, started.stdout.read_text(), started.stderr.read_text())


def test_same_seed_same_story(cli_demo_process: Started, request: pytest.FixtureRequest) -> None:
    lines: list[str] = []
    summary = demo.run(SEED, line=lines.append)  # while the CLI process plays the same seed
    cli_demo: subprocess.CompletedProcess[str] = request.getfixturevalue("cli_demo")
    assert cli_demo.returncode == 0, cli_demo.stderr[-2000:]
    assert jsonable(summary) == json.loads(cli_demo.stdout)
    first, *timeline = cli_demo.stderr.splitlines()
    assert first.startswith("starting the embedded AWS simulator")  # the CLI's own progress line
    assert lines == timeline


def test_demo_from_the_cli_prints_a_summary_and_exits_0(cli_demo: subprocess.CompletedProcess[str]) -> None:
    result = cli_demo
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["storm"]["failed_requests"] == 0
    assert summary["baseline_storm"]["failed_requests"] > 0  # the same storm, the same service, without ecsspot
    # Why: ECS stopped 7 of the 11 warned tasks (down to minimumHealthyPercent 50) and kept 4 in
    # rotation until their instances went; ecsspot took all of them out at the warning.
    assert (summary["baseline_storm"]["in_rotation_at_reclaim"], summary["storm"]["in_rotation_at_reclaim"]) == (4, 0)
    assert len(summary["storm"]["interrupted"]) == len(summary["baseline_storm"]["interrupted"]) == 6  # every spot instance
    # Sized by managed scaling: 12 spot instances after the storm (it counted the doomed ones
    # as busy while their tasks waited for capacity) and 2 on-demand.
    assert summary["refresh_status"] == "done" and summary["instances_replaced"] == 14
    assert summary["failed_requests"] == 0 and summary["requests"] > 100_000
    assert "storm with ecsspot: 0 failed" in result.stderr  # the timeline, on stderr with --output json
    assert "; 4 targets still in the load balancer's rotation when EC2 reclaimed the instances" in result.stderr


def test_the_demos_service_follows_the_lint_advice(cli_demo: subprocess.CompletedProcess[str]) -> None:
    # Issue 13 item 9: no lint warning about the demo's own service.
    assert json.loads(cli_demo.stdout)["lint_warnings"] == []
    lines = cli_demo.stderr.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("lint ")]
    assert any(line.startswith("service web: ") and line.endswith("(plan: no lint warning)") for line in lines)


def test_one_line_for_the_instances_one_warning_drained_alike(cli_demo: subprocess.CompletedProcess[str]) -> None:
    # Six warnings, six invocations saying the same: one line naming the six, not six lines,
    # and none that reads like a failure when only the replacements wait for capacity.
    lambda_lines = [line for line in cli_demo.stderr.splitlines() if "interruption Lambda" in line]
    storm = [line for line in lambda_lines if "6 instances (" in line]
    assert len(storm) == 2, lambda_lines  # the spot warnings, and the terminate lifecycle actions
    assert not [line for line in lambda_lines if "timed_out" in line or "failed" in line]


def test_the_baseline_is_the_same_service_without_the_interruption_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecsspot.sim import scenario

    built: list[scenario.DemoConfig] = []

    class Built(Exception):
        pass

    def build(sim: object, config: scenario.DemoConfig, **_: object) -> scenario.Stack:
        built.append(config)
        raise Built

    monkeypatch.setattr(scenario, "build", build)
    with pytest.raises(Built):
        demo.baseline_storm(SEED, demo.CONFIG)
    assert built == [attrs.evolve(demo.CONFIG, handle_events=False)]  # same delay, same minimumHealthyPercent


def test_a_storm_ecs_can_absorb_costs_nothing_without_ecsspot_either() -> None:
    # What the README says, and why the demo's storm takes every spot instance: with the advice
    # followed, a 30 % storm leaves ECS room to stop the warned tasks before the instances go.
    assert demo.baseline_storm(SEED, demo.CONFIG, fraction=0.3).failed_requests == 0
