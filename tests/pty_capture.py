"""Run a command with its stderr on a pseudo-terminal, as a user's terminal would be."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def stderr_on_a_terminal(command: Sequence[str], *, env: Mapping[str, str], timeout: float, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """The finished process (stdout piped) and everything it wrote to the terminal on stderr."""
    import pty

    master, slave = pty.openpty()
    try:
        done = subprocess.run(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=dict(env), timeout=timeout, cwd=cwd, check=False)
    finally:
        os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child's side is closed and all was read
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return done, seen.decode("utf-8", "replace")
