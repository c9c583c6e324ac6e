"""``ecsspot sim serve`` (issue 13 item 3): the simulator as a local AWS endpoint that the CLI, in
another process, applies a spec to and sees instances join the cluster, as on AWS (plain
moto_server never registers a container instance)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import example_spec_dict

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "ecsspot_cli.main")


def _document(stream: Any) -> dict[str, Any]:
    """The one JSON document ``-o json`` prints, read line by line (the server keeps running)."""
    text = ""
    while True:
        line = stream.readline()
        assert line, "sim serve ended before printing its document"
        text += line
        try:
            return dict(json.loads(text))
        except ValueError:
            continue


def test_serve_is_an_aws_the_cli_applies_to_and_ctrl_c_stops(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [*CLI, "-o", "json", "sim", "serve", "--network", "--speed", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        served = _document(server.stdout)
        env = {**os.environ, **served["environment"]}
        assert served["endpoint_url"].startswith("http://127.0.0.1:")
        network = served["network"]
        spec = example_spec_dict()
        spec["region"] = served["region"]
        spec["network"] = {"subnets": network["subnets"], "security_groups": [network["security_group"]]}
        spec["instances"]["instance_profile"] = network["instance_profile"]
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=ROOT)

        applied = cli("-o", "json", "apply", "-f", str(path), "--yes")
        assert applied.returncode == 0, applied.stderr
        assert json.loads(applied.stdout)["summary"]["create"] > 0
        # The world moves on its own: the on-demand pool's instance boots and its ECS agent
        # registers it (60 virtual s per s): within a second of wall time on an idle machine. The
        # deadline only catches a hang (a loaded machine serves each `status` slowly).
        deadline = time.monotonic() + 600
        while True:
            status = cli("-o", "json", "status", spec["cluster"])
            assert status.returncode == 0, status.stderr
            instances = json.loads(status.stdout)["instances"]
            if any(i.get("container_instance_status") == "ACTIVE" for i in instances):
                break
            assert time.monotonic() < deadline, status.stdout
            time.sleep(1)
        again = cli("-o", "json", "plan", "-f", str(path))
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["changes"] == []  # converged: a second plan has nothing to do
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert err.splitlines()[-1] == "simulator stopped"
    assert "HTTP/1.1" not in err  # moto's request log stays out of the user's terminal
