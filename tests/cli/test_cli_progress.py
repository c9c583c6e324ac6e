"""Live progress on stderr (issue 13 item 1): a live line on a terminal, a line per phase
otherwise, nothing with ``-q``; NO_COLOR respected. The library only yields reports."""

from __future__ import annotations

import io
from typing import Any

from click.testing import CliRunner

from ecsspot.aws.calls import Report
from ecsspot_cli.main import Context, cli
from ecsspot_cli.progress import Progress
from tests.pty_capture import stderr_on_a_terminal


def _reports() -> list[Report]:
    return [
        Report("plan", "reading the AMI, the network and the state of cluster demo-api"),
        Report("drain", "2 instance(s) set DRAINING; 2 target(s) deregistering"),
        Report("drain", "0/2 instance(s) drained; waiting for i-0ab and 1 more: 2 task(s) (2 RUNNING)", 0, 2),
        Report("drain", "1/2 instance(s) drained; waiting for i-0cd: 1 task(s) (1 STOPPING)", 1, 2),
    ]


def test_without_a_terminal_one_line_per_phase() -> None:
    out = io.StringIO()
    progress = Progress(live=False, stream=out)
    for report in _reports():
        progress(report)
    progress.close()
    assert out.getvalue().splitlines() == [
        "ecsspot: plan: reading the AMI, the network and the state of cluster demo-api",
        "ecsspot: drain: 2 instance(s) set DRAINING; 2 target(s) deregistering",
    ]


def test_quiet_shows_nothing_on_a_terminal_or_not() -> None:
    for live in (True, False):
        out = io.StringIO()
        progress = Progress(quiet=True, live=live, stream=out)
        for report in _reports():
            progress(report)
        progress.close()
        assert out.getvalue() == ""


def test_on_a_terminal_a_live_line_with_the_time_so_far_and_no_colour_under_no_color(monkeypatch: Any) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    ticks = iter([100.0, 100.0, 103.0, 141.0, 141.0, 141.0])
    out = io.StringIO()
    progress = Progress(live=True, stream=out, clock=lambda: next(ticks))
    for report in _reports()[1:]:
        progress(report)
    progress.close()
    shown = out.getvalue()
    line = next(part for part in shown.split("\r") if "1/2" in part)
    assert "drain (41 s): 1/2 instance(s) drained; waiting for i-0cd" in line
    segment = line[line.index("drain (41 s)") :].split("\n")[0]
    assert segment.endswith(("…", "STOPPING)")) and len(segment) <= 80  # cut at the width, never wrapped
    assert "\x1b[3" not in shown and "\x1b[9" not in shown  # no foreground colour codes


def test_the_cli_gives_quiet_to_its_progress() -> None:
    seen: dict[str, Any] = {}

    @cli.command("_probe_progress", hidden=True)
    def probe() -> None:
        import click

        seen["progress"] = click.get_current_context().find_object(Context).progress

    try:
        assert CliRunner().invoke(cli, ["-q", "_probe_progress"]).exit_code == 0
        assert seen["progress"].quiet is True
        assert CliRunner().invoke(cli, ["_probe_progress"]).exit_code == 0
        assert seen["progress"].quiet is False and seen["progress"].live is False  # the runner's stderr is no terminal
    finally:
        cli.commands.pop("_probe_progress")


def test_on_a_real_pseudo_terminal_the_line_is_live_and_on_a_pipe_it_is_plain() -> None:
    """The renderer decides by itself: a pty gets rich's live line (cursor codes), a pipe plain lines."""
    import os
    import subprocess
    import sys

    code = (
        "from ecsspot_cli.progress import Progress\n"
        "from ecsspot.aws.calls import Report\n"
        "p = Progress()\n"
        "import sys; print('live' if p.live else 'plain', flush=True)\n"
        "p(Report('drain', '0/2 instance(s) drained; waiting for i-0ab: 2 task(s) (2 RUNNING)', 0, 2))\n"
        "p(Report('drain', '1/2 instance(s) drained; waiting for i-0cd: 1 task(s) (1 STOPPING)', 1, 2))\n"
        "p.close()\n"
    )
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    done, text = stderr_on_a_terminal([sys.executable, "-c", code], env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == b"live"
    assert "drain (" in text and "1/2 instance(s) drained" in text
    assert "\x1b[" in text  # a live line: cursor control, then cleared at close

    piped = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert piped.stdout.strip() == "plain"
    assert piped.stderr.splitlines() == ["ecsspot: drain: 0/2 instance(s) drained; waiting for i-0ab: 2 task(s) (2 RUNNING)"]
