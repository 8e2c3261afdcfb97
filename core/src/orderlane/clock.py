"""Time, in one place: wall-clock UTC, a monotonic reading and sleep.

Retry waits, timeouts, the tracker and the rate limiter all read the engine's clock, so tests
swap in :class:`FakeClock` and run on simulated time without sleeping for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "wall_now"]


def wall_now() -> datetime:
    """Real UTC time, whatever an engine's clock: engine sessions are compared across
    processes, so their heartbeats use the one clock those processes share."""
    return datetime.now(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC wall-clock time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Simulated time: sleepers wake in order of their wake-up time, without real waiting.

    A sleeper first lets every task that is ready run at the current simulated time; then the
    earliest sleeper moves the clock to its wake-up time and returns. Concurrent sleeps therefore
    overlap as they would on a real clock. ``sleeps`` records every requested wait, so a test can
    check a backoff series exactly.
    """

    #: How many event-loop turns a sleeper lets other tasks run before time moves on.
    settle_turns = 8

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by hand."""
        self._elapsed += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        entry = (self._elapsed + max(0.0, seconds), next(self._seq))
        heapq.heappush(self._sleepers, entry)
        try:
            while True:
                for _ in range(self.settle_turns):
                    await asyncio.sleep(0)
                if self._sleepers[0] == entry:
                    break
        finally:
            self._sleepers.remove(entry)
            heapq.heapify(self._sleepers)
        self._elapsed = max(self._elapsed, entry[0])
