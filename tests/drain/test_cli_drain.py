"""``ecsspot drain`` as a user runs it: a real process against the simulator's server.

The CLI runs on the wall clock; the simulated world moves only when the test moves it. A
``--no-wait`` drain and a drain that runs out of deadline need no movement. A verified drain is
waited for: once the CLI says the instance is DRAINING, the test runs the world until the tasks
and targets are gone, and the CLI's next look finds it drained. The world moves as far as the
drain needs, whatever the machine's load (no thread pacing it with ``time.sleep``).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ecsspot.sim import Simulator
from ecsspot.sim.scenario import Stack, healthy_targets
from tests.drain.conftest import build, container_instances, service, spot_instances_with_tasks, targets

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "ecsspot_cli.main")
#: Seconds before a CLI process counts as hung: a guard against hangs, not a bound on speed (a
#: loaded 2-core machine starts Python with boto3 slowly).
TIMEOUT = 300


def ecsspot(sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, pointed at the simulator by the environment (AWS_ENDPOINT_URL)."""
    return subprocess.run([*CLI, *args], env=sim.environ(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


def drain_waited_for(sim: Simulator, stack: Stack, instance_id: str) -> subprocess.CompletedProcess[str]:
    """``ecsspot drain CLUSTER INSTANCE`` (waiting), with the world run forward by the test once the
    CLI's progress line says the instance is DRAINING and its targets deregistering."""
    process = subprocess.Popen(
        [*CLI, "drain", stack.cluster, instance_id], env=sim.environ(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    watchdog = threading.Timer(TIMEOUT, process.kill)  # a CLI that hangs before its line fails the test
    watchdog.start()
    try:
        assert process.stderr is not None
        said = []
        for line in process.stderr:  # blocks until the CLI writes a line (or exits)
            said.append(line)
            if " set DRAINING; " in line:
                break
        assert said and " set DRAINING; " in said[-1], "".join(said)
        assert sim.run_until(lambda: drained(sim, stack, instance_id), timeout=600, step=5), "the world never drained it"
        out, err = process.communicate()
    finally:
        watchdog.cancel()
        if process.poll() is None:  # a failed assertion above: do not leave the CLI running
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, "".join(said) + err)


def drained(sim: Simulator, stack: Stack, instance_id: str) -> bool:
    """What the drain waits for: every task on the instance STOPPED, none of its targets
    registered (draining ones included), the service back at its desired count of healthy targets."""
    ecs = sim.client("ecs")
    arn = container_instances(sim, stack.cluster)[instance_id]["containerInstanceArn"]
    on = [t for status in ("RUNNING", "STOPPED") for t in ecs.list_tasks(cluster=stack.cluster, containerInstance=arn, desiredStatus=status)["taskArns"]]
    stopping = [t for t in ecs.describe_tasks(cluster=stack.cluster, tasks=on)["tasks"] if t["lastStatus"] != "STOPPED"] if on else []
    left = [k for k in targets(sim, stack.target_group_arn) if k[0] == instance_id]
    return not stopping and not left and healthy_targets(sim, stack.target_group_arn) >= service(sim, stack)["desiredCount"]


def actions(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    document = json.loads(result.stdout)  # exactly one JSON document on stdout
    for action in document["actions"]:
        assert {"kind", "instance_id", "status", "reason"} <= set(action)
    return document["actions"]


def test_drain_cli_no_wait_verified_and_timed_out(server_sim: Simulator) -> None:
    sim = server_sim
    stack = build(sim)
    quick, verified, late = spot_instances_with_tasks(sim, stack)[:3]

    # --no-wait: DRAINING and deregistering, then straight back.
    result = ecsspot(sim, "--output", "json", "drain", stack.cluster, quick, "--no-wait")
    assert result.returncode == 0, result.stderr
    (action,) = actions(result)
    assert (action["kind"], action["instance_id"], action["status"]) == ("drain", quick, "draining")
    assert action["reason"].startswith("DRAINING; targets deregistering")
    assert "\necsspot: drain: 1 instance(s) set DRAINING; " in result.stderr  # progress, on stderr only
    assert container_instances(sim, stack.cluster)[quick]["status"] == "DRAINING"
    assert {state for (iid, _), state in targets(sim, stack.target_group_arn).items() if iid == quick} == {"draining"}

    # Waited for (the world moving meanwhile): drained, exit 0, the text table.
    result = drain_waited_for(sim, stack, verified)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["KIND", "INSTANCE", "STATUS", "REASON"]
    assert row.split()[:3] == ["drain", verified, "drained"]
    assert container_instances(sim, stack.cluster)[verified]["runningTasksCount"] == 0
    assert not [k for k in targets(sim, stack.target_group_arn) if k[0] == verified]

    # The world stands still: at the deadline the task and the draining targets are still
    # there. Exit 6, the JSON says what is left, stderr (after the progress line) which instance.
    result = ecsspot(sim, "-o", "json", "drain", stack.cluster, late, "--deadline", "1")
    assert result.returncode == 6, result.stderr
    (action,) = actions(result)
    assert (action["instance_id"], action["status"]) == (late, "timed_out")
    assert action["reason"].startswith("deadline passed with ") and "task(s)" in action["reason"]
    assert action["left"]["tasks"] >= 1
    assert action["left"]["targets"] and all(t.endswith("(draining)") for t in action["left"]["targets"])
    # Not a terminal: one progress line per phase (issue 13 item 1), not one per poll.
    said = result.stderr.splitlines()
    assert said[0] == f"draining 1 instance(s) of {stack.cluster}…"
    assert said[1].startswith("ecsspot: drain: 1 instance(s) set DRAINING; ") and said[1].endswith("target(s) deregistering")
    assert said[2:] == [f"ecsspot: error: drain timed out with work left on {late}"]


def test_drain_cli_refuses_what_is_not_an_instance_id(server_sim: Simulator) -> None:
    result = ecsspot(server_sim, "drain", "demo-api", "i-0123456789abcdef0", "web-1")
    assert result.returncode == 3
    assert result.stderr == "ecsspot: error: not EC2 instance ids: web-1\n"


def test_handle_event_exits_4_when_aws_refuses_and_0_once_handled(server_sim: Simulator, monkeypatch: Any, tmp_path: Path) -> None:
    """``handle-event`` runs the Lambda's path: an event whose handling failed exits 4 (the
    Lambda fails, to be retried), and handling it again succeeds. In-process, with a
    ``before-send`` hook on ecsspot's clients refusing the first DeregisterTargets."""
    import botocore.handlers
    from botocore.awsrequest import AWSResponse
    from click.testing import CliRunner

    import ecsspot.manager
    from ecsspot_cli.main import cli
    from tests.drain.conftest import RawBody, spot_warning

    sim = server_sim
    stack = build(sim)
    victim = spot_instances_with_tasks(sim, stack)[0]
    refused: list[str] = []

    def refuse_once(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if event_name.endswith(".DeregisterTargets") and "ecsspot" in str(request.headers.get("User-Agent", "")) and not refused:
            refused.append(event_name)
            body = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not now</Message></Error><RequestId>x</RequestId></ErrorResponse>"
            return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, RawBody(body))
        return None

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, ("before-send", refuse_once)])
    monkeypatch.setenv("AWS_ENDPOINT_URL", sim.endpoint_url)
    # The CLI's Manager on the simulator's clock: the drain's waits run the world forward, and
    # the warning (sent at the world's now) gives it its two virtual minutes.
    monkeypatch.setattr(ecsspot.manager, "Manager", functools.partial(ecsspot.manager.Manager, clock=sim.clock))
    event = tmp_path / "spot.json"
    event.write_text(json.dumps(spot_warning(sim, victim, "5f0c6a1e-0000-4000-8000-0000000000a7")))

    first_try = CliRunner().invoke(cli, ["-o", "json", "handle-event", str(event)], catch_exceptions=False)
    again = CliRunner().invoke(cli, ["-o", "json", "handle-event", str(event)], catch_exceptions=False)
    assert first_try.exit_code == 4, first_try.stderr
    (action,) = actions_of(first_try.stdout)
    assert (action["kind"], action["status"]) == ("drain", "failed") and "AccessDenied" in action["reason"]
    assert first_try.stderr.startswith(f"ecsspot: error: drain {victim}: elbv2:deregister_targets failed: AccessDenied")
    # Its claim and lease were let go: the retry drains at once instead of "in hand elsewhere".
    assert again.exit_code == 0, again.stderr
    assert [(a["kind"], a["status"]) for a in actions_of(again.stdout)] == [("drain", "drained")]


def actions_of(stdout: str) -> list[dict[str, Any]]:
    return json.loads(stdout)["actions"]
