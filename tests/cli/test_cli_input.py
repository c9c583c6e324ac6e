"""Bad input never crashes the CLI, and it knows its retries and timeouts.

``handle-event`` refuses what is not an event with exit 3 and one line; a batch whose every record
failed exits non-zero. ``--max-attempts``/``--timeout`` (or AWS_MAX_ATTEMPTS / AWS_RETRY_MODE)
bound each AWS call, and every retry is said on stderr. Dead endpoints are a closed local port
(refused at once) and a socket that accepts and never answers.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.handlers
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecsspot.aws.clients import default_config
from ecsspot.drain import Action
from ecsspot.errors import EventError
from ecsspot.handlers import HandlingFailed
from ecsspot.interruption import HandleResult
from ecsspot_cli.commands.drain import MAX_PAYLOAD_BYTES, _check_batch
from ecsspot_cli.main import Context, cli
from tests.cli.conftest import REGION

EVENTS = Path(__file__).resolve().parents[1] / "events"
RETRY_LINE = re.compile(r"ecsspot: warning: retrying (\w[\w-]*:\w+) \(attempt (\d+)/(\d+)\): \S.*")


def ecsspot(*args: str | Path, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    """The single ``ecsspot: error:`` line of a failed command (nothing else on stderr but retries)."""
    errors = [line for line in result.stderr.splitlines() if not RETRY_LINE.fullmatch(line)]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("ecsspot: error: "), errors[0]
    assert "unexpected" not in errors[0], errors[0]
    return errors[0]


def spot_warning() -> dict[str, Any]:
    return json.loads((EVENTS / "spot-interruption-warning.json").read_text())


def sqs_record(body: Any, message_id: str | None) -> dict[str, Any]:
    record = {"receiptHandle": "r", "body": body if isinstance(body, str) else json.dumps(body), "eventSource": "aws:sqs", "awsRegion": REGION}
    if message_id is not None:
        record["messageId"] = message_id
    return record


# --- handle-event: what is not an event ------------------------------------------------------


def _hostile_payloads(tmp_path: Path) -> list[tuple[str, str, bytes | None, str]]:
    """(name, FILE argument, stdin, fragment of the error line)."""
    deep = b"[" * 100_000 + b"]" * 100_000
    huge = b'{"detail": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    files = {
        "binary": b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 100,
        "invalid-utf8": b'{"detail-type": "\xff\xfe"}',
        "deep": deep,
        "huge": huge,
        "array": b"[1, 2]",
        "nan": b"NaN",
        "empty": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "a-directory").mkdir()
    rows = [
        ("binary", str(tmp_path / "binary"), None, "not UTF-8 text (byte 8)"),
        ("invalid-utf8", str(tmp_path / "invalid-utf8"), None, "not UTF-8 text"),
        ("deep", str(tmp_path / "deep"), None, "not JSON: nested too deeply"),
        ("huge", str(tmp_path / "huge"), None, f"larger than {MAX_PAYLOAD_BYTES} bytes"),
        ("array", str(tmp_path / "array"), None, "an event is a JSON object, got list"),
        ("nan", str(tmp_path / "nan"), None, "an event is a JSON object, got float"),
        ("empty", str(tmp_path / "empty"), None, "not JSON"),
        ("directory", str(tmp_path / "a-directory"), None, "Is a directory"),
        ("missing", str(tmp_path / "none.json"), None, "No such file or directory"),
        ("stdin-binary", "-", files["binary"], "stdin: not UTF-8 text"),
        ("stdin-deep", "-", deep, "stdin: not JSON: nested too deeply"),
        ("stdin-huge", "-", huge, f"stdin: larger than {MAX_PAYLOAD_BYTES} bytes"),
    ]
    return rows


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "handled"])
def test_handle_event_refuses_what_is_not_an_event_with_exit_3_and_one_line(tmp_path: Path, dry_run: bool) -> None:
    wrong = []
    for name, source, stdin, fragment in _hostile_payloads(tmp_path):
        aws = [] if dry_run else ["--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "1"]
        flags = ["--dry-run"] if dry_run else []
        result = ecsspot("--region", REGION, *aws, "-o", "json", "handle-event", *flags, source, input=stdin)
        lines = result.stderr.splitlines()
        if result.exit_code != 3 or result.stdout or len(lines) != 1 or fragment not in lines[0] or "unexpected" in lines[0]:
            wrong.append(f"{name}: exit {result.exit_code}, stdout {result.stdout[:60]!r}, stderr {lines}")
    assert not wrong, "\n".join(wrong)


def test_lambda_payload_limit_is_the_documented_6291456_bytes() -> None:
    # Lambda's Invoke: "For synchronous invocations, the maximum payload size is 6 MB", which its
    # RequestEntityTooLargeException spells out as 6291456 bytes.
    assert MAX_PAYLOAD_BYTES == 6_291_456


# --- handle-event: batches -------------------------------------------------------------------


def test_batch_whose_every_record_is_malformed_exits_3(tmp_path: Path) -> None:
    batch = {"Records": [sqs_record("not json", "m-1"), sqs_record({"detail-type": "x"}, "m-2")]}
    result = ecsspot("-o", "json", "handle-event", "--dry-run", "-", input=json.dumps(batch))
    assert result.exit_code == 3, result.stderr
    document = json.loads(result.stdout)  # the actions are still shown
    assert [a["kind"] for a in document["actions"]] == ["error", "error"]
    assert document["batch_item_failures"] == ["m-1", "m-2"]
    line = one_error_line(result)
    assert line.startswith("ecsspot: error: all 2 records of the batch are malformed; the first: Records[0].body: not JSON")


def test_batch_record_without_message_id_is_reported_and_counts_as_failed() -> None:
    batch = {"Records": [sqs_record(spot_warning(), None)]}
    result = ecsspot("-o", "json", "handle-event", "--dry-run", "-", input=json.dumps(batch))
    assert result.exit_code == 3, result.stderr
    (action,) = json.loads(result.stdout)["actions"]
    assert (action["kind"], action["status"]) == ("error", "failed")
    assert action["reason"].startswith("Records[0].messageId: missing")
    assert "all 1 record of the batch are malformed" in one_error_line(result)


def test_batch_with_one_good_record_exits_0() -> None:
    batch = {"Records": [sqs_record(spot_warning(), "m-1"), sqs_record("not json", "m-2")]}
    result = ecsspot("-o", "json", "handle-event", "--dry-run", "-", input=json.dumps(batch))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["batch_item_failures"] == ["m-2"]
    empty = ecsspot("-o", "json", "handle-event", "--dry-run", "-", input='{"Records": []}')
    assert empty.exit_code == 0 and json.loads(empty.stdout)["actions"] == []


def test_hostile_text_in_a_payload_is_shown_escaped() -> None:
    """A lone surrogate (unencodable on stdout) or a terminal escape in a message id, in text mode."""
    batch = '{"Records": [{"messageId": "\\ud800\\u001b[31m", "body": "x", "eventSource": "aws:sqs"}]}'
    result = ecsspot("handle-event", "--dry-run", "-", input=batch)
    assert result.exit_code == 3, result.stderr
    assert "Batch item failures (returned to the queue): \\ud800\\x1b[31m" in result.stdout
    assert "\x1b" not in result.stdout
    one_error_line(result)


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(["\ud800", "\x1b[2J", "a\x00b", "m-1"])
_KEYS = st.sampled_from(["Records", "Messages", "messageId", "MessageId", "body", "Body", "eventSource", "Sns", "Type", "TopicArn", "Message", "detail-type", "detail", "id", "source", "time", "instance-id", "instance-action"])
_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _ANY_TEXT | st.sampled_from(["aws:sqs", "aws:sns", "Notification", "EC2 Spot Instance Interruption Warning"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_KEYS | _ANY_TEXT, kids, max_size=5) | kids.map(json.dumps),
    max_leaves=25,
)


_SQS_RECORD = st.fixed_dictionaries(
    {"body": _ANY_JSON.map(json.dumps) | _ANY_TEXT, "eventSource": st.just("aws:sqs")},
    optional={"messageId": _ANY_TEXT | _ANY_JSON},
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=_ANY_JSON | st.lists(_ANY_JSON | _SQS_RECORD, max_size=3).map(lambda items: {"Records": items}),
    json_output=st.booleans(),
)
def test_any_json_to_handle_event_is_handled_or_exit_3(payload: Any, json_output: bool) -> None:
    """Whatever JSON arrives (NaN, lone surrogates, control characters), a dry run answers with
    exit 0 or 3 and at most one error line, never a crash."""
    result = ecsspot(*(["-o", "json"] if json_output else []), "handle-event", "--dry-run", "-", input=json.dumps(payload))
    assert result.exit_code in (0, 3), result.stderr
    if result.exit_code:
        one_error_line(result)


def _result(failures: tuple[str, ...], *actions: Action) -> HandleResult:
    return HandleResult(tuple(actions), failures, batch=True)


def test_batch_exit_decision_from_the_handle_result() -> None:
    """The exit code the CLI takes from a HandleResult (actions, batch_item_failures, batch)."""
    spot = spot_warning()
    two = {"Records": [sqs_record(spot, "m-1"), sqs_record({**spot, "id": "other"}, "m-2")]}
    drain_failed = Action("drain", "i-0b662ef9931388ba0", "failed", "ec2:describe_instances failed: Throttling: slow down")
    drained = Action("drain", "i-0b662ef9931388ba0", "drained", "verified")

    # Every record failed on AWS's side: 4, naming the first failure.
    with pytest.raises(HandlingFailed, match=r"^all 2 records of the batch failed \(2 while handling, 0 malformed\); the first: drain i-0b662ef9931388ba0: ec2:describe_instances failed") as info:
        _check_batch(two, _result(("m-1", "m-2"), drain_failed, drain_failed))
    assert info.value.exit_code == 4
    # One failed while handling, one malformed: still nothing got through, and retrying may help.
    mixed = {"Records": [sqs_record(spot, "m-1"), sqs_record("[]", "m-2")]}
    with pytest.raises(HandlingFailed, match=r"\(1 while handling, 1 malformed\)"):
        _check_batch(mixed, _result(("m-1", "m-2"), drain_failed, Action("error", None, "failed", "Records[1].body: …")))
    # Every record malformed: 3.
    with pytest.raises(EventError, match=r"^all 2 records of the batch are malformed") as bad:
        _check_batch({"Records": [sqs_record("x", "m-1"), sqs_record("[]", "m-2")]}, _result(("m-1", "m-2")))
    assert bad.value.exit_code == 3
    # Handled: a record that got through, or a failure SQS will retry alone, is not a failed batch.
    _check_batch(two, _result(("m-2",), drained, drain_failed))
    _check_batch(two, _result((), drained, drained))
    _check_batch({"Records": []}, _result(()))


# --- retries and timeouts --------------------------------------------------------------------


@pytest.fixture(name="attempts")
def fixture_attempts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each AWS operation was sent (``before-send`` fires once per attempt)."""
    sent: Counter[str] = Counter()

    def count(request: Any, event_name: str, **_: Any) -> None:
        if "ecsspot" in str(request.headers.get("User-Agent", "")):
            sent[event_name.split(".", 1)[1]] += 1

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, ("before-send", count)])
    return sent


@pytest.fixture(name="closed_port")
def fixture_closed_port() -> str:
    """An endpoint nothing listens on: every connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(name="silent_endpoint")
def fixture_silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a hung load balancer)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture(name="html_500")
def fixture_html_500() -> Iterator[str]:
    """An endpoint that answers every request with an HTML 500 page (a broken proxy)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def retry_lines(result: Result) -> list[tuple[str, int, int]]:
    return [(m[1], int(m[2]), int(m[3])) for m in map(RETRY_LINE.fullmatch, result.stderr.splitlines()) if m]


def test_dead_endpoint_fails_after_max_attempts_saying_it_retries(closed_port: str, attempts: Counter[str]) -> None:
    result = ecsspot("--region", REGION, "--endpoint-url", closed_port, "--max-attempts", "2", "--timeout", "1", "status", "demo-api")
    assert result.exit_code == 4, result.stderr
    assert "EndpointConnectionError" in one_error_line(result)
    assert attempts and set(attempts.values()) == {2}, attempts  # each call sent twice, no more
    said = retry_lines(result)
    assert said and all(attempt == 2 and total == 2 for _, attempt, total in said), result.stderr
    assert {f"{call.split(':')[1]}" for call, _, _ in said} == {op.split(".")[1] for op in attempts}


def test_endpoint_that_never_answers_times_out_per_attempt(silent_endpoint: str, attempts: Counter[str]) -> None:
    result = ecsspot("--region", REGION, "--endpoint-url", silent_endpoint, "--max-attempts", "2", "--timeout", "1", "status", "demo-api")
    assert result.exit_code == 4, result.stderr
    assert "ReadTimeoutError" in one_error_line(result)
    assert attempts and set(attempts.values()) == {2}, attempts
    assert [(a, t) for _, a, t in retry_lines(result)] == [(2, 2)] * len(attempts)
    assert "ReadTimeoutError" in result.stderr.splitlines()[0]


def test_html_500_is_retried_then_exit_4(html_500: str, attempts: Counter[str]) -> None:
    result = ecsspot("--region", REGION, "--endpoint-url", html_500, "--max-attempts", "2", "status", "demo-api")
    assert result.exit_code == 4, result.stderr
    assert "500" in one_error_line(result)
    assert attempts and set(attempts.values()) == {2}, attempts
    said = [line for line in result.stderr.splitlines() if RETRY_LINE.fullmatch(line)]
    assert said and all("(attempt 2/2): HTTP 500: " in line for line in said), said


def test_handle_event_batch_against_a_dead_endpoint_exits_4(closed_port: str, attempts: Counter[str]) -> None:
    batch = {"Records": [sqs_record(spot_warning(), "m-1")]}
    result = ecsspot("--region", REGION, "--endpoint-url", closed_port, "--max-attempts", "2", "handle-event", "-", input=json.dumps(batch))
    assert result.exit_code == 4, result.stderr
    one_error_line(result)
    assert attempts and set(attempts.values()) == {2}, attempts
    assert retry_lines(result)


def test_aws_max_attempts_is_honoured_and_the_option_wins(closed_port: str, attempts: Counter[str]) -> None:
    by_env = ecsspot("--region", REGION, "--endpoint-url", closed_port, "-q", "status", "demo-api", env={"AWS_MAX_ATTEMPTS": "3"})
    assert by_env.exit_code == 4 and set(attempts.values()) == {3}, (by_env.stderr, attempts)
    assert retry_lines(by_env) == []  # -q: only the error
    one_error_line(by_env)
    attempts.clear()
    by_option = ecsspot("--region", REGION, "--endpoint-url", closed_port, "--max-attempts", "1", "status", "demo-api", env={"AWS_MAX_ATTEMPTS": "5"})
    assert by_option.exit_code == 4 and set(attempts.values()) == {1}, (by_option.stderr, attempts)
    assert retry_lines(by_option) == []  # one attempt: nothing retried


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS='0': expected a whole number of attempts, 1 or more"),
        ({"AWS_MAX_ATTEMPTS": "many"}, "AWS_MAX_ATTEMPTS='many'"),
        ({"AWS_RETRY_MODE": "eager"}, "AWS_RETRY_MODE='eager': expected one of legacy, standard, adaptive"),
    ],
)
def test_bad_retry_environment_is_input_error(env: dict[str, str], fragment: str, attempts: Counter[str]) -> None:
    result = ecsspot("--region", REGION, "--endpoint-url", "http://127.0.0.1:9", "status", "demo-api", env=env)
    assert result.exit_code == 3, result.stderr
    assert fragment in one_error_line(result)
    assert not attempts  # refused before any call


@pytest.mark.parametrize(("args", "fragment"), [(["--max-attempts", "0"], "--max-attempts"), (["--timeout", "0"], "--timeout"), (["--timeout", "x"], "--timeout")])
def test_bad_retry_options_are_usage_errors(args: list[str], fragment: str) -> None:
    result = ecsspot(*args, "status", "demo-api")
    assert result.exit_code == 2 and fragment in result.stderr


def test_client_config_merges_over_the_library_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    base = default_config()
    plain = Context().client_config()
    assert (plain.retries, plain.connect_timeout, plain.read_timeout) == (base.retries, base.connect_timeout, base.read_timeout)
    assert plain.user_agent_extra == base.user_agent_extra
    tuned = Context(max_attempts=2, timeout=1.5).client_config()
    assert tuned.retries == {"mode": base.retries["mode"], "total_max_attempts": 2}
    assert (tuned.connect_timeout, tuned.read_timeout) == (1.5, 1.5)
    assert tuned.user_agent_extra == base.user_agent_extra
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    assert Context().client_config().retries == {"mode": "adaptive", "total_max_attempts": 4}


@pytest.mark.parametrize(
    ("args", "content", "line"),
    [
        (["simulate", "-f", "examples/demo-api.yaml", "--scenario"], b"\xff\xfe", "ecsspot: error: --scenario: {path} is not YAML: "),
        (["savings", "demo-api", "--prices"], None, "ecsspot: error: --prices: cannot read {path}: No such file or directory"),
        (["savings", "demo-api", "--prices"], b"a: [", "ecsspot: error: --prices: {path} is not YAML: "),
    ],
)
def test_a_document_file_that_cannot_be_read_is_one_line_exit_3(tmp_path: Path, args: list[str], content: bytes | None, line: str) -> None:
    """Before any AWS call: a missing file, or one that is not YAML (one reader for both options)."""
    from ecsspot_cli.main import cli

    path = tmp_path / "doc.yaml"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(cli, [*args, str(path)])
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines()[-1].startswith(line.format(path=path))
