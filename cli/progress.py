"""The library's progress reports on stderr, as people expect from awscli, eksctl or terraform.

On a terminal: one live line (rich's status: a spinner, the phase, what it waits for, the time
so far), cleared when the command ends. Otherwise (logs, CI, a pipe): one line each time the phase
changes, so a log shows where a long command was without a line per poll. With ``-q``: nothing.
``NO_COLOR`` (https://no-color.org) turns colour off; rich reads it too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import click

from ecsspot.aws.calls import Report

PROG = "ecsspot"


class Progress:
    """A ``Manager(on_progress=...)`` callback; ``close()`` before the command's own output ends."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        live: bool | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self._stream = stream
        self.live = _is_terminal(stream) if live is None else live
        self._clock = clock
        self._start = clock()
        self._status: Any = None
        self._console: Any = None
        self._phase: str | None = None

    def __call__(self, report: Report) -> None:
        if self.quiet:
            return
        if self.live:
            from rich.console import Console
            from rich.text import Text

            if self._status is None:
                self._console = Console(file=self._stream or sys.stderr, force_terminal=True, no_color=_no_color(), highlight=False)
            # The time first, and the line cut to the width (less the spinner): a wrapped live
            # line leaves copies of itself behind, and the time is what shows it is alive.
            text = Text(f"{report.phase} ({self._clock() - self._start:.0f} s): {report.message}")
            text.truncate(max(self._console.width - 3, 10), overflow="ellipsis")
            if self._status is None:
                self._status = self._console.status(text, spinner="dots")
                self._status.start()
            else:
                self._status.update(text)
        elif report.phase != self._phase:
            click.echo(f"{PROG}: {report.phase}: {report.message}", err=self._stream is None, file=self._stream)
        self._phase = report.phase

    def close(self) -> None:
        """Clear the live line (the command's result or error follows)."""
        if self._status is not None:
            self._status.stop()
            self._status = None


def _is_terminal(stream: IO[str] | None) -> bool:
    # sys.stderr now, not at import: click's test runner swaps it per invocation.
    target = stream or sys.stderr
    try:
        return bool(target.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or odd stream: no live line
        return False


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))
