"""Render the launch template's user data, and parse user data (ours or anyone's) back.

The rendered script appends to ``/etc/ecs/ecs.config`` (the ECS agent's configuration file,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html):

* ``ECS_CLUSTER`` so the agent joins the right cluster;
* ``ECS_ENABLE_SPOT_INSTANCE_DRAINING=true`` so the agent sets the instance DRAINING on the
  spot two-minute warning (our handler does too: belt and braces);
* ``ECS_CONTAINER_STOP_TIMEOUT`` (default ``1m``), which must fit in the spot budget;
* ``ECS_INSTANCE_ATTRIBUTES`` with ``ecsspot.lifecycle`` = ``spot``/``on-demand``, read at boot
  from IMDSv2 (``meta-data/instance-life-cycle``) since one template serves both lifecycles;
* the spec's extra lines.

No user value is ever interpreted by the shell: the ecs.config lines go through a quoted
heredoc (``<<'TAG'``: no expansion at all), and the attributes line is one ``printf '%s\\n'``
argument in single quotes, the instance's lifecycle spliced in from a variable that can only hold
``spot`` or ``on-demand``. What a quoted heredoc cannot carry (a line break, a NUL, a key that is
not ``[A-Z][A-Z0-9_]*``) is refused by :func:`render` (and earlier, with its path, by the spec).

When the user adds a cloud-init part of their own, the result is a MIME multi-part document
(cloud-init runs every part). Rendering is byte-stable: the same input gives the same bytes, so
``plan`` only proposes a new template version when something really changed.
"""

from __future__ import annotations

import base64
import binascii
import email
import json
import re
import shlex
from collections.abc import Mapping

import attrs

#: The ecs.config keys ecsspot always sets; the spec may not override them.
CLUSTER_KEY = "ECS_CLUSTER"
SPOT_DRAINING_KEY = "ECS_ENABLE_SPOT_INSTANCE_DRAINING"
STOP_TIMEOUT_KEY = "ECS_CONTAINER_STOP_TIMEOUT"
ATTRIBUTES_KEY = "ECS_INSTANCE_ATTRIBUTES"
LIFECYCLE_ATTRIBUTE = "ecsspot.lifecycle"
DEFAULT_STOP_TIMEOUT = "1m"

_HEREDOC = "ECSSPOT_ECS_CONFIG"
_BOUNDARY = "==ecsspot-user-data=="
_IMDS = "http://169.254.169.254/latest"
#: curl's options for IMDS reads: fail on an HTTP error (never take an error page for an answer),
#: retry transient failures (timeouts, 5xx, 429, and a refused connection early in boot) five
#: times a second apart, each try at most 5 s.
_CURL = "-fsS --retry 5 --retry-connrefused --retry-delay 1 --max-time 5"
_LIFECYCLE_MARK = "__ECSSPOT_LIFECYCLE__"
#: What ``boundary`` lines of our multi-part document start with (a user part may not contain it).
MIME_BOUNDARY = _BOUNDARY
_ECHO_LINE = re.compile(r"""\s*(?P<cmd>(?:echo|printf)\s.*?)\s*>>?\s*/etc/ecs/ecs\.config\s*""")
_KV_LINE = re.compile(r"(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)")
#: What ecs.config accepts as a key (the agent reads ``KEY=VALUE`` lines).
ECS_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
#: Characters a heredoc line cannot carry as data (a line break ends the line; bash drops NULs).
_UNREPRESENTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEREDOC_START = re.compile(r"""<<-?\s*(?P<q>['"]?)(?P<tag>\w+)(?P=q)""")


@attrs.frozen
class UserData:
    """What user data configures for the ECS agent."""

    #: ``/etc/ecs/ecs.config`` keys in file order (the last write of a key wins, as in the agent).
    ecs_config: Mapping[str, str]
    #: Whether the script tags the instance with its lifecycle at boot (ours does).
    sets_lifecycle_attribute: bool
    #: MIME parts other than the ECS configuration script (the user's own cloud-init), as text.
    extra_parts: tuple[str, ...] = ()

    @property
    def spot_draining(self) -> bool:
        return self.ecs_config.get(SPOT_DRAINING_KEY, "").strip().lower() == "true"

    @property
    def cluster(self) -> str | None:
        return self.ecs_config.get(CLUSTER_KEY)


def render(cluster: str, ecs_config: Mapping[str, str] | None = None, extra_user_data: str | None = None) -> str:
    """The user data text for ``cluster`` (not base64: the launch template wants that done by the caller).

    Raises ValueError for what no script line can carry (see :func:`unrepresentable`); the spec
    refuses the same with a path first.
    """
    config = dict(ecs_config or {})
    problem = unrepresentable({CLUSTER_KEY: cluster, **config})
    if problem:
        raise ValueError(problem)
    lines = [
        f"{CLUSTER_KEY}={cluster}",
        f"{SPOT_DRAINING_KEY}=true",
        f"{STOP_TIMEOUT_KEY}={config.pop(STOP_TIMEOUT_KEY, DEFAULT_STOP_TIMEOUT)}",
    ]
    user_attributes = json.loads(config.pop(ATTRIBUTES_KEY, "{}") or "{}")
    if not isinstance(user_attributes, dict):
        raise ValueError(f"{ATTRIBUTES_KEY} must be a JSON object")
    lines += [f"{key}={value}" for key, value in config.items()]
    # The lifecycle is only known on the instance; merge it into the user's own attributes there.
    # json.dumps escapes every control and non-ASCII character, so the JSON is one printable line.
    mark = _LIFECYCLE_MARK
    while mark in json.dumps(user_attributes):
        mark += "_"
    attributes = json.dumps({**user_attributes, LIFECYCLE_ATTRIBUTE: mark}, separators=(",", ":"), sort_keys=True)
    before, after = f"{ATTRIBUTES_KEY}={attributes}".split(mark)
    # LIFECYCLE is "spot" or "on-demand" by the line before; everything else is single-quoted.
    attributes_word = f'{_single_quote(before)}"$LIFECYCLE"{_single_quote(after)}'
    script = "\n".join(
        [
            "#!/bin/bash",
            "# Rendered by ecsspot: ECS agent configuration for spot-safe capacity.",
            "set -eu",
            f"cat >> /etc/ecs/ecs.config <<'{_HEREDOC}'",
            *lines,
            _HEREDOC,
            "# IMDSv2 only (the launch template requires tokens). Retried, and never fatal: an IMDS",
            "# that does not answer leaves the instance on-demand, never ecs.config half written.",
            f"TOKEN=$(curl {_CURL} -X PUT {_IMDS}/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || TOKEN=",
            f'LIFECYCLE=$(curl {_CURL} -H "X-aws-ec2-metadata-token: $TOKEN" {_IMDS}/meta-data/instance-life-cycle) || LIFECYCLE=',
            '[ "$LIFECYCLE" = spot ] || LIFECYCLE=on-demand',
            f"printf '%s\\n' {attributes_word} >> /etc/ecs/ecs.config",
            "",
        ]
    )
    if not extra_user_data:
        return script
    if any(line.startswith(f"--{_BOUNDARY}") for line in extra_user_data.splitlines()):
        raise ValueError("the extra user data contains ecsspot's MIME boundary line")
    return _multipart([script, extra_user_data])


def unrepresentable(ecs_config: Mapping[str, str]) -> str | None:
    """Why these ecs.config lines cannot be written verbatim by a script, or None when they can."""
    for key, value in ecs_config.items():
        if not ECS_KEY.fullmatch(key):
            return f"ecs.config key {key!r} is not upper case letters, digits and underscores"
        if _UNREPRESENTABLE.search(value):
            return f"ecs.config value of {key} holds a line break or control character"
    return None


def _single_quote(text: str) -> str:
    # Inside '…' bash interprets nothing; a ' itself is closed, escaped and reopened.
    return "'" + text.replace("'", "'\\''") + "'"


def encode(text: str) -> str:
    """Base64, as ``LaunchTemplateData.UserData`` requires."""
    return base64.b64encode(text.encode()).decode()


def decode(user_data: str | bytes) -> str:
    """User data text from what a launch template stores (base64) or from plain text."""
    raw = user_data.encode() if isinstance(user_data, str) else bytes(user_data)
    stripped = raw.strip()
    if stripped and not stripped.startswith((b"#", b"Content-Type", b"MIME-Version", b"From ")):
        try:
            decoded = base64.b64decode(stripped, validate=True)
            return decoded.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    return raw.decode("utf-8", errors="replace")


def parse(user_data: str | bytes) -> UserData:
    """Read what any user data (base64 or text, script or MIME multi-part) writes to ecs.config."""
    text = decode(user_data)
    parts = _mime_parts(text) if _is_mime(text) else [text]
    config: dict[str, str] = {}
    lifecycle = False
    extra: list[str] = []
    for part in parts:
        found = _script_config(part)
        if found or LIFECYCLE_ATTRIBUTE in part:
            for key, value in found:
                config.pop(key, None)  # keep file order of the last write
                config[key] = value
            lifecycle = lifecycle or (LIFECYCLE_ATTRIBUTE in part and "instance-life-cycle" in part)
        else:
            extra.append(part)
    return UserData(ecs_config=config, sets_lifecycle_attribute=lifecycle, extra_parts=tuple(extra))


def parse_ecs_config(user_data: str | bytes) -> dict[str, str]:
    """Just the ecs.config keys of :func:`parse` (what the simulated ECS agent reads)."""
    return dict(parse(user_data).ecs_config)


def _script_config(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heredoc = _HEREDOC_START.search(line)
        if heredoc and "/etc/ecs/ecs.config" in line:
            tag = heredoc.group("tag")
            i += 1
            while i < len(lines) and lines[i].strip() != tag:
                kv = _KV_LINE.fullmatch(lines[i].strip())
                if kv:
                    found.append((kv.group("key"), kv.group("value")))
                i += 1
        else:
            echoed = _echoed_line(line)
            if echoed:
                found.append(echoed)
        i += 1
    return found


def _echoed_line(line: str) -> tuple[str, str] | None:
    """The ``KEY=VALUE`` an ``echo …``/``printf …`` line appends to ecs.config, read as bash would
    (quotes removed; ``$VARIABLES`` left as written, since their values are only known at boot)."""
    echo = _ECHO_LINE.fullmatch(line)
    if not echo:
        return None
    try:
        words = shlex.split(echo.group("cmd"))
    except ValueError:
        return None
    if words[0] == "printf" and len(words) > 1:
        fmt, args = words[1], iter(words[2:])
        text = re.sub(r"%[sb]", lambda _: next(args, ""), fmt).replace("\\n", "\n")
    else:
        text = " ".join(w for w in words[1:] if w not in ("-e", "-n"))
    kv = _KV_LINE.fullmatch(text.split("\n")[0])
    return (kv.group("key"), kv.group("value")) if kv else None


def _is_mime(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("content-type: multipart") or head.startswith("mime-version")


def _mime_parts(text: str) -> list[str]:
    message = email.message_from_string(text)
    parts: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        parts.append(payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(part.get_payload()))
    return parts


def _multipart(parts: list[str]) -> str:
    # Written by hand rather than with email.mime: its output carries no fixed boundary, and a
    # changing boundary would make every plan propose a new launch template version.
    out = [
        "Content-Type: multipart/mixed; boundary=\"" + _BOUNDARY + "\"",
        "MIME-Version: 1.0",
        "",
    ]
    for part in parts:
        kind = "text/cloud-config" if part.lstrip().startswith("#cloud-config") else "text/x-shellscript"
        out += [
            f"--{_BOUNDARY}",
            f'Content-Type: {kind}; charset="utf-8"',
            "MIME-Version: 1.0",
            "Content-Transfer-Encoding: 7bit",
            "",
            part.rstrip("\n"),
            "",
        ]
    out.append(f"--{_BOUNDARY}--")
    out.append("")
    return "\n".join(out)
