"""Global options where users put them: before the subcommand or after it, as awscli takes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot_cli.main import cli, hoist_global_options
from tests.cli.test_cli_spec import _demo


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["demo", "--output", "json"], ["--output", "json", "demo"]),
        (["demo", "--output=json", "--seed", "3"], ["--output=json", "demo", "--seed", "3"]),
        (["plan", "-f", "s.yaml", "-o", "json", "--region", "eu-west-1"], ["-o", "json", "--region", "eu-west-1", "plan", "-f", "s.yaml"]),
        (["-v", "status", "c", "-ojson", "-vv", "-q"], ["-v", "-ojson", "-vv", "-q", "status", "c"]),
        (["--region", "demo", "status", "c"], ["--region", "demo", "status", "c"]),  # a value, not the command
        (["drain", "c", "i-1", "--", "--output", "json"], ["drain", "c", "i-1", "--", "--output", "json"]),
        (["handle-event", "-", "--max-attempts", "2", "--timeout", "5"], ["--max-attempts", "2", "--timeout", "5", "handle-event", "-"]),
        (["demo", "--help"], ["demo", "--help"]),
        (["sim", "serve", "--speed", "5", "-o", "json", "--region", "eu-west-1"], ["-o", "json", "--region", "eu-west-1", "sim", "serve", "--speed", "5"]),
        (["--output", "json"], ["--output", "json"]),
        ([], []),
    ],
)
def test_global_options_after_the_subcommand_move_before_it(given: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(given, cli) == parsed


def test_no_subcommand_option_shares_a_name_with_a_global_one() -> None:
    """What makes moving them safe: an option after the subcommand can only be the global one."""
    global_names = {o for p in cli.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    commands = list(cli.commands.items())
    while commands:  # groups' subcommands (``sim serve``) too
        name, command = commands.pop()
        own = {o for p in command.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        assert not own & global_names, (name, own & global_names)
        commands += [(f"{name} {sub}", c) for sub, c in getattr(command, "commands", {}).items()]


def test_validate_with_the_output_option_after_it(invoke: Any, aws_calls: list[Any]) -> None:
    result = invoke("validate", "-f", _demo(), "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True
    assert aws_calls == []


def test_output_yaml_is_the_same_document(invoke: Any, aws_calls: list[Any]) -> None:
    import yaml

    as_json = json.loads(invoke("validate", "-f", _demo(), "--output", "json").stdout)
    as_yaml = invoke("validate", "-f", _demo(), "--output", "yaml")
    assert as_yaml.exit_code == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == as_json


def test_query_selects_from_the_document_as_awscli_does(invoke: Any, aws_calls: list[Any]) -> None:
    result = invoke("--output", "json", "--query", "{valid: valid, cluster: cluster}", "validate", "-f", _demo())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"valid": True, "cluster": "demo-api"}
    assert invoke("validate", "-f", _demo(), "-o", "yaml", "--query", "cluster").stdout == "demo-api\n...\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query", "cluster"], "use it with --output json or --output yaml"),
        (["-o", "json", "--query", "warnings[?"], "Invalid value for '--query'"),
    ],
)
def test_a_query_that_cannot_apply_is_a_usage_error_before_anything_runs(invoke: Any, aws_calls: list[Any], args: list[str], message: str) -> None:
    result = invoke(*args, "validate", "-f", _demo())
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""
    assert aws_calls == []


@pytest.mark.parametrize(
    ("args", "stdout_has_timeline", "stderr_has_timeline"),
    [([], True, False), (["-q"], True, False), (["-o", "json"], False, True), (["-o", "json", "-q"], False, False)],
)
def test_demo_timeline_is_the_text_result_and_json_progress_that_q_silences(
    invoke: Any, monkeypatch: pytest.MonkeyPatch, args: list[str], stdout_has_timeline: bool, stderr_has_timeline: bool
) -> None:
    import attrs

    from ecsspot.sim import demo as play

    def run(seed: int, *, line: Any = None, on_snapshot: Any = None) -> Any:
        if line is not None:
            line("  60  timeline line")
        storm = play.StormSummary(**{f.name: 0 for f in attrs.fields(play.StormSummary)})
        fields = {f.name: (storm if f.type in ("StormSummary", play.StormSummary) else 0) for f in attrs.fields(play.DemoSummary)}
        return play.DemoSummary(**{**fields, "refresh_status": "done"})

    monkeypatch.setattr(play, "run", run)
    result = invoke(*args, "demo")
    assert result.exit_code == 0, result.stderr
    assert ("timeline line" in result.stdout) is stdout_has_timeline
    assert ("timeline line" in result.stderr) is stderr_has_timeline
    # The first thing said, before seconds of imports and server start (issue 13 item 1); not with -q.
    assert result.stderr.startswith("starting the embedded AWS simulator") is ("-q" not in args)


def test_demo_chart_draws_the_rows_it_played(invoke: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import xml.etree.ElementTree as ET

    import attrs

    from ecsspot.sim import demo as play
    from ecsspot.sim import scenario

    def run(seed: int, *, line: Any = None, on_snapshot: Any = None) -> Any:
        for n in range(3):
            on_snapshot(scenario.Snapshot(time=1000.0 + 60 * n, spot=3, on_demand=1, draining=n, tasks=8, healthy_targets=8, requests=100 * n, failed=0, no_target=0))
        storm = play.StormSummary(**{f.name: 0 for f in attrs.fields(play.StormSummary)})
        fields = {f.name: (storm if f.type in ("StormSummary", play.StormSummary) else 0) for f in attrs.fields(play.DemoSummary)}
        return play.DemoSummary(**{**fields, "refresh_status": "done"})

    monkeypatch.setattr(play, "run", run)
    chart = tmp_path / "demo.svg"
    result = invoke("demo", "--chart", str(chart))
    assert result.exit_code == 0, result.stderr
    points = [p.get("points") for p in ET.fromstring(chart.read_text()).iter("{http://www.w3.org/2000/svg}polyline")]
    assert len(points) == 4 and all(len(p.split()) == 3 for p in points)
    unwritable = invoke("demo", "--chart", str(tmp_path / "no" / "such" / "dir.svg"))
    assert unwritable.exit_code == 3 and "--chart: cannot write" in unwritable.stderr


def test_shell_completion_is_clicks_as_the_readme_says() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "_ECSSPOT_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-c", "from ecsspot_cli.main import main; main()"], env=env, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    assert "_ecsspot_completion()" in script.stdout and "complete -o nosort -F _ecsspot_completion ecsspot" in script.stdout
