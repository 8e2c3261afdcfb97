"""Time, in one place: wall-clock UTC, a monotonic reading and sleep.

Retry waits, timeouts, the tracker and the rate limiter all read the engine's clock, so tests
swap in :class:`FakeClock` and run on simulated time without sleeping for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from orderlane.idle import LoopWatch

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


@attrs.define(order=True)
class _Sleeper:
    deadline: float
    seq: int
    #: Set when the sleeper may go on; None for a sleeper that counts loop turns instead.
    wake: asyncio.Future[None] | None = attrs.field(order=False, eq=False)


class FakeClock:
    """Simulated time: sleepers wake in order of their wake-up time, without real waiting.

    Simulated time moves only when the event loop has nothing else to do. On asyncio's own
    event loops that is exact: a :class:`~orderlane.idle.LoopWatch` takes the place of the
    loop's selector, and when the loop would wait for I/O (it has no callback ready), the watch
    first asks the selector, without waiting, whether a socket is ready, and checks that no job
    handed to a thread through ``run_in_executor`` (a DNS lookup, ``asyncio.to_thread``) is
    still running. Only then does the earliest sleeper move the clock to its wake-up time and
    go on. Bytes written to a venue on loopback are readable at the other end when the write
    returns, so while a request or its answer is on its way, or a task is ready to handle it,
    simulated time stands still: a request reaches an in-process venue at the simulated time
    its rate-limit permit was granted. Concurrent sleeps overlap as they would on a real clock.

    What the loop cannot see does not hold time back: real-time timers (an HTTP client's own
    timeout, the engine's heartbeat) fire in real time while simulated time moves on, and work
    in a thread the loop did not start or in another process (a venue served from a thread or a
    process of its own) runs while simulated time may move. Such a venue keeps real time (see
    :class:`~orderlane.testing.VenueHarness`). On an event loop without a selector to watch
    (uvloop, Windows' proactor loop) a sleeper instead lets other tasks run for
    :attr:`settle_turns` loop turns before time moves, which cannot tell I/O in flight.

    ``sleeps`` records every requested wait, so a test can check a backoff series exactly.
    """

    #: On a loop without a selector to watch: how many loop turns a sleeper lets other tasks
    #: run before time moves on.
    settle_turns = 8

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []
        # Watch from now on, so that thread jobs started before the first sleep are counted;
        # built outside a loop, the clock puts the watch in place at its first sleep.
        with contextlib.suppress(RuntimeError):
            LoopWatch.install(asyncio.get_running_loop())

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._elapsed:g}, sleepers={len(self._sleepers)})"

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by hand; sleepers it passed wake once the loop idles."""
        self._elapsed += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self._elapsed + max(0.0, seconds)
        loop = asyncio.get_running_loop()
        watch = LoopWatch.install(loop)
        if watch is None:
            await self._sleep_by_turns(deadline)
            return
        sleeper = _Sleeper(deadline, next(self._seq), loop.create_future())
        heapq.heappush(self._sleepers, sleeper)
        watch.add(self)
        try:
            assert sleeper.wake is not None
            await sleeper.wake
        finally:
            if sleeper in self._sleepers:  # cancelled before its turn came
                self._sleepers.remove(sleeper)
                heapq.heapify(self._sleepers)

    def wake_next(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Move the clock to the earliest sleeper's wake-up time and let it go on, if that
        sleeper waits on ``loop``; called by the loop's :class:`~orderlane.idle.LoopWatch` when
        the loop is idle. Returns whether a sleeper woke."""
        while self._sleepers and _cancelled(self._sleepers[0]):
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        first = self._sleepers[0]
        if first.wake is None or first.wake.get_loop() is not loop:
            return False
        heapq.heappop(self._sleepers)
        self._elapsed = max(self._elapsed, first.deadline)
        first.wake.set_result(None)
        return True

    async def _sleep_by_turns(self, deadline: float) -> None:
        sleeper = _Sleeper(deadline, next(self._seq), None)
        heapq.heappush(self._sleepers, sleeper)
        try:
            while True:
                for _ in range(self.settle_turns):
                    await asyncio.sleep(0)
                if self._sleepers[0] is sleeper:
                    break
        finally:
            self._sleepers.remove(sleeper)
            heapq.heapify(self._sleepers)
        self._elapsed = max(self._elapsed, deadline)


def _cancelled(sleeper: _Sleeper) -> bool:
    return sleeper.wake is not None and sleeper.wake.done()
