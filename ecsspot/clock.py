"""Injected time: the workflows never read the wall clock themselves.

``SystemClock`` is real time. ``FakeClock`` advances only when slept on, so a two-minute spot
window runs in microseconds in tests; the simulator's clock is a FakeClock that also moves the
simulated world forward (see ``ecsspot.sim``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None:
        """Block the caller for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds``."""


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


class FakeClock:
    """Virtual time that moves only when someone sleeps or calls ``advance``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
