"""Helpers shared by the benchmarks: call counting, round counting, injected latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from ecsspot.aws.driver import Driver


class Counter:
    """botocore ``before-call`` handler: one entry per HTTP request (pages included)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: Any = None, **kwargs: Any) -> None:
        self.calls.append(model.name)

    def by_operation(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.calls:
            out[c] = out.get(c, 0) + 1
        return dict(sorted(out.items()))


class Latency:
    """botocore ``before-send`` handler adding a fixed delay per request (simulated network)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, **kwargs: Any) -> None:
        time.sleep(self.seconds)


class AsyncLatency:
    """The async driver's :class:`Latency`: aiobotocore awaits a ``before-send`` handler's result
    when it is a coroutine, so the delay is a sleep that lets the other calls of a round go on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, **kwargs: Any) -> Coroutine[Any, Any, None]:
        return asyncio.sleep(self.seconds)


class RoundCountingDriver(Driver):
    """Counts what a workflow yields: each yield is one sequential round trip (a batch counts once),
    and records the round in which each operation was first called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rounds = 0
        self.first_round: dict[str, int] = {}

    def _handle(self, request: Any) -> Any:
        from ecsspot.aws.calls import Call

        if isinstance(request, (Call, tuple)):
            self.rounds += 1
            for c in request if isinstance(request, tuple) else (request,):
                self.first_round.setdefault(c.operation, self.rounds)
        return super()._handle(request)


#: The line prefix by which ``python -m benchmarks`` finds a benchmark's rows in its output.
ROWS_PREFIX = "BENCHMARK-ROWS "


def emit_rows(rows: list[dict[str, str]]) -> None:
    """Hand this benchmark's figures to ``python -m benchmarks``, which prints every module's in
    one table. Each row: ``goal`` (which figure, e.g. "1. drain N=20, wall at 40 ms/call"),
    ``ecsspot`` (ours, with its unit), ``peer`` (the naive approach, or the floor/goal it is held
    against, same run) and optionally ``note``. Printed as one JSON line, after the module's own
    human-readable output."""
    import json

    for row in rows:
        if not {"goal", "ecsspot", "peer"} <= row.keys():
            raise ValueError(f"benchmark row lacks goal/ecsspot/peer: {row}")
    print(ROWS_PREFIX + json.dumps(rows), flush=True)
