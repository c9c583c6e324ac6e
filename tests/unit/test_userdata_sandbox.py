"""The rendered user data, *run* by bash with hostile values: only the intended ecs.config lines.

Each example runs the script in a fresh directory with a fake ``curl`` (the IMDS) first on PATH
and bash's xtrace on, then checks three things: ecs.config holds exactly the intended
``KEY=VALUE`` lines, the trace shows exactly the script's own commands (an injected command
would appear in it), and nothing else was written (a canary ``touch CANARY`` would leave a file).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecsspot import load_spec, userdata
from ecsspot.errors import SpecError
from tests.conftest import example_spec_dict

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash to run the user data")

#: Every way a value could try to reach the shell, or end a quote or the heredoc.
HOSTILE = (
    "$(touch CANARY)",
    "`touch CANARY`",
    '"; touch CANARY; "',
    "'; touch CANARY; '",
    "'\"'\"'",
    "$5",
    "${X:?boom}",
    "$LIFECYCLE",
    "\\",
    "\\n",
    "%s%n%b",
    "ECSSPOT_ECS_CONFIG",
    "\nECSSPOT_ECS_CONFIG\ntouch CANARY\n",
    "\n",
    "\r",
    "\x00",
    "__ECSSPOT_LIFECYCLE__",
    "ECS_CLUSTER=other",
    "\u2028é😀",
)
hostile_text = st.lists(st.one_of(st.text(), st.sampled_from(HOSTILE)), max_size=4).map("".join)
ecs_keys = st.one_of(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True),
    st.sampled_from(["ECSSPOT_ECS_CONFIG\n", "X\n", "ECS_X\nECSSPOT_ECS_CONFIG", "ECS_$(touch CANARY)", "ECS_LOGLEVEL"]),
    st.text(max_size=8),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAKE_CURL = """#!/bin/sh
printf '%s\\n' "$*" >> "$CURL_LOG"
case "$*" in
  *api/token*) printf TOKEN ;;
  *instance-life-cycle*) printf '%s' "$FAKE_LIFECYCLE" ;;
esac
"""
RETRIED = "-fsS --retry 5 --retry-connrefused --retry-delay 1 --max-time 5"
CURL_CALLS = [
    f"{RETRIED} -X PUT http://169.254.169.254/latest/api/token -H X-aws-ec2-metadata-token-ttl-seconds: 300",
    f"{RETRIED} -H X-aws-ec2-metadata-token: TOKEN http://169.254.169.254/latest/meta-data/instance-life-cycle",
]
#: An IMDS that never answers: curl gives up (exit 7, "couldn't connect") every time.
DEAD_CURL = """#!/bin/sh
printf '%s\\n' "$*" >> "$CURL_LOG"
echo "curl: (7) Failed to connect to 169.254.169.254 port 80" >&2
exit 7
"""


def sandboxed(script: str, config: Path) -> str:
    """The script with its two writes to /etc/ecs/ecs.config pointed at ``config`` (test only).

    Only the renderer's own lines are touched (the heredoc's ``cat`` and the ``printf``), never a
    line of data, so a hostile value that mentions the path is left as it is.
    """
    out, moved = [], 0
    for line in script.split("\n"):
        if line.startswith("cat >> /etc/ecs/ecs.config <<"):
            line, moved = line.replace("/etc/ecs/ecs.config", str(config), 1), moved + 1
        elif line.startswith("printf ") and line.endswith(" >> /etc/ecs/ecs.config"):
            line, moved = line.removesuffix("/etc/ecs/ecs.config") + str(config), moved + 1
        out.append(line)
    assert moved == 2, script
    return "\n".join(out)


def run(script: str, lifecycle: str = "spot", *, curl_script: str | None = FAKE_CURL, imds: str | None = None) -> tuple[str, list[str], list[str], list[str]]:
    """Run the user data; (ecs.config text, trace lines, curl invocations, files left in the cwd).

    ``curl_script`` replaces curl (None: the real one, with the IMDS address moved to ``imds``)."""
    with tempfile.TemporaryDirectory() as root:
        bin_dir, work = Path(root, "bin"), Path(root, "work")
        bin_dir.mkdir()
        work.mkdir()
        Path(root, "curl.log").touch()
        if curl_script is not None:
            curl = bin_dir / "curl"
            curl.write_text(curl_script)
            curl.chmod(0o755)
        config = work / "ecs.config"
        script_path = Path(root, "user-data.sh")
        text = sandboxed(script, config)
        if imds is not None:
            text = text.replace("http://169.254.169.254/latest", imds)
        script_path.write_text(text, encoding="utf-8")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CURL_LOG": str(Path(root, "curl.log")), "FAKE_LIFECYCLE": lifecycle, "HOME": root}
        done = subprocess.run([BASH, "-x", str(script_path)], cwd=work, env=env, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        trace = done.stderr.decode("utf-8").splitlines()
        calls = Path(root, "curl.log").read_text().splitlines()
        return config.read_bytes().decode("utf-8"), trace, calls, sorted(os.listdir(work))


def intended(cluster: str, ecs_config: Mapping[str, str], lifecycle: str) -> str:
    """The ecs.config the script must write: ours, the user's lines, the merged attributes."""
    config = dict(ecs_config)
    attributes = json.loads(config.pop(userdata.ATTRIBUTES_KEY, "{}"))
    lines = [
        f"ECS_CLUSTER={cluster}",
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
        f"ECS_CONTAINER_STOP_TIMEOUT={config.pop(userdata.STOP_TIMEOUT_KEY, '1m')}",
        *(f"{k}={v}" for k, v in config.items()),
        "ECS_INSTANCE_ATTRIBUTES=" + json.dumps({**attributes, "ecsspot.lifecycle": lifecycle}, separators=(",", ":"), sort_keys=True),
    ]
    return "\n".join(lines) + "\n"


def commands(trace: list[str]) -> list[str]:
    """The command words bash ran, with their nesting (``++`` is inside ``$(…)``)."""
    words = []
    for line in trace:
        m = re.match(r"(\++) (\S+?)(=|\s|$)", line)
        assert m, f"not a trace line (something else wrote to stderr): {line!r}"
        words.append(m.group(1) + m.group(2))
    return words


def assert_only_intended(script: str, cluster: str, ecs_config: Mapping[str, str], imds_lifecycle: str) -> None:
    lifecycle = "spot" if imds_lifecycle == "spot" else "on-demand"
    written, trace, calls, files = run(script, imds_lifecycle)
    assert written == intended(cluster, ecs_config, lifecycle)
    expected = ["+set", "+cat", "++curl", "+TOKEN", "++curl", "+LIFECYCLE", "+'['"]
    expected += [] if lifecycle == "spot" else ["+LIFECYCLE"]
    assert commands(trace) == expected + ["+printf"]
    assert calls == CURL_CALLS
    assert files == ["ecs.config"]


def test_an_imds_that_never_answers_still_completes_ecs_config() -> None:
    """Issue 10 item 6: under ``set -eu`` a failed curl ended the script before the attribute
    line; now the instance is tagged on-demand and ecs.config is complete."""
    config = {"ECS_LOGLEVEL": "info"}
    written, trace, calls, files = run(userdata.render("demo", config), curl_script=DEAD_CURL)
    assert written == intended("demo", config, "on-demand")
    assert calls == CURL_CALLS[:1] + [CURL_CALLS[1].replace("token: TOKEN", "token: ")]
    assert files == ["ecs.config"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize(("failures", "lifecycle"), [(0, "spot"), (2, "spot"), (4, "spot"), (99, "on-demand")])
def test_the_real_curl_retries_a_flaky_imds(failures: int, lifecycle: str) -> None:
    """The real curl against a local IMDS that answers 503 to its first ``failures`` requests
    (then a token, then ``spot``): the retries ride it out; one that never recovers leaves the
    instance on-demand with ecs.config complete."""
    import http.server
    import threading

    seen: list[str] = []

    class Imds(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            if len(seen) <= failures:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b"<html>Service Unavailable</html>")
                return
            body = b"TOKEN" if self.path.endswith("/api/token") else b"spot"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        written, _, _, files = run(userdata.render("demo", {}), curl_script=None, imds=f"http://127.0.0.1:{server.server_address[1]}/latest")
    finally:
        server.shutdown()
        server.server_close()
    assert written == intended("demo", {}, lifecycle)
    assert files == ["ecs.config"]
    if failures < 99:
        assert seen[-2:] == ["PUT /latest/api/token", "GET /latest/meta-data/instance-life-cycle"]


def test_ordinary_values_write_exactly_their_lines() -> None:
    config = {"ECS_LOGLEVEL": "info", "ECS_INSTANCE_ATTRIBUTES": '{"team": "api"}'}
    assert_only_intended(userdata.render("demo", config), "demo", config, "spot")
    assert_only_intended(userdata.render("demo", {}), "demo", {}, "")


@SETTINGS
@given(
    attributes=st.dictionaries(hostile_text, hostile_text, max_size=4),
    config=st.dictionaries(st.from_regex(r"ECS_[A-Z0-9_]{1,12}", fullmatch=True), hostile_text.filter(lambda v: not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", v)), max_size=4),
    imds=st.sampled_from(["spot", "on-demand", "$(touch CANARY)", "spot'", ""]),
)
@example(attributes={"team": "$(touch CANARY)", "t2": '"; touch CANARY; "', "t3": "`touch CANARY`"}, config={}, imds="spot")
@example(attributes={"a": "$5"}, config={"ECS_X": "$(touch CANARY)`touch CANARY`'\"\\"}, imds="spot")
def test_render_is_inert_for_any_value_it_accepts(attributes: dict[str, str], config: dict[str, str], imds: str) -> None:
    config = {k: v for k, v in config.items() if k not in (userdata.CLUSTER_KEY, userdata.ATTRIBUTES_KEY, userdata.STOP_TIMEOUT_KEY)}
    config[userdata.ATTRIBUTES_KEY] = json.dumps(attributes)
    script = userdata.render("demo", config)
    assert_only_intended(script, "demo", config, imds)


@pytest.mark.parametrize(
    ("cluster", "config"),
    [
        ("demo", {"ECSSPOT_ECS_CONFIG\n": "x"}),
        ("demo", {"ECS_X": "a\nECSSPOT_ECS_CONFIG\ntouch CANARY"}),
        ("demo", {"ECS_X": "a\x00b"}),
        ("demo", {"ECS_X": "a\rb"}),
        ("demo", {"ecs_lower": "x"}),
        ("demo\nECSSPOT_ECS_CONFIG", {}),
        ("demo", {"ECS_INSTANCE_ATTRIBUTES": "[1]"}),
    ],
)
def test_render_refuses_what_no_line_can_carry(cluster: str, config: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        userdata.render(cluster, config)


def test_render_refuses_a_part_that_fakes_our_mime_boundary() -> None:
    with pytest.raises(ValueError, match="boundary"):
        userdata.render("demo", {}, f"#!/bin/sh\n--{userdata.MIME_BOUNDARY}\nContent-Type: text/x-shellscript\n")


def _spec_with(config: Mapping[str, Any]) -> dict[str, Any]:
    d = example_spec_dict()
    d["instances"]["ecs_config"] = dict(config)
    return d


@SETTINGS
@given(
    config=st.dictionaries(ecs_keys, hostile_text, max_size=4),
    attributes=st.none() | st.dictionaries(hostile_text, hostile_text, max_size=3),
)
@example(config={"ECSSPOT_ECS_CONFIG\n": "=$(touch CANARY)"}, attributes=None)
@example(config={"ECS_LOGLEVEL": "info"}, attributes={"team": '$(touch CANARY)"'})
@example(config={"ECS_X": "$(touch CANARY)", "ECS_Y": "\"'`touch CANARY`"}, attributes={"team": "api"})
def test_a_spec_refuses_or_renders_inert(config: dict[str, str], attributes: dict[str, str] | None) -> None:
    """Through the spec (what `validate`, `plan` and `tf user-data` see): refused with the value's
    path, or accepted and then written exactly as given."""
    if attributes is not None:
        config = {**config, userdata.ATTRIBUTES_KEY: json.dumps(attributes)}
    try:
        spec = load_spec(_spec_with(config))
    except SpecError as exc:
        assert exc.problems
        assert all(p.path.startswith("instances.ecs_config") for p in exc.problems), exc.problems
        return
    script = userdata.render(spec.cluster, spec.instances.ecs_config)
    assert_only_intended(script, spec.cluster, spec.instances.ecs_config, "spot")
