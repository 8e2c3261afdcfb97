"""Knowing when an asyncio event loop is idle, so simulated time can move without outrunning I/O.

A :class:`~orderlane.clock.FakeClock` must not move while a request to a venue on loopback is on
its way, yet nothing in asyncio's public API says whether the loop still has work. The loop
itself knows: each turn it hands its selector a timeout, 0 when callbacks are ready and longer
when it has nothing to do but wait. :class:`LoopWatch` takes the selector's place and, when the
loop is about to wait, polls the real selector without waiting. A socket that is readable or
writable is I/O in flight (bytes written on loopback are readable at the other end once the
write returns), and so is a job the loop handed to a thread with ``run_in_executor`` (asyncio's
DNS lookup, ``asyncio.to_thread``), which the watch counts until its result is back on the
loop. When none is left, the loop is idle, and the watch lets the fake clocks that have
sleepers on this loop wake their earliest one instead of waiting.

Real-time timers do not count as work: the engine's heartbeat or an HTTP client's timeout is
seconds away in real time, and simulated time must not wait for it.
"""

from __future__ import annotations

import asyncio
import selectors
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

__all__ = ["LoopWatch", "Sleepers"]

T = TypeVar("T")

_FileObject = int | Any


class Sleepers(Protocol):
    """A simulated clock with sleepers (a :class:`~orderlane.clock.FakeClock`), as seen here."""

    def wake_next(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wake the earliest sleeper waiting on ``loop``; whether one woke."""
        ...


class LoopWatch(selectors.BaseSelector):
    """The selector of one event loop, standing in for the loop's own and forwarding to it;
    it wakes fake-clock sleepers when the loop would otherwise wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop, selector: selectors.BaseSelector) -> None:
        self.loop = loop
        self.selector = selector
        #: Jobs handed to threads with ``loop.run_in_executor`` whose results are not back yet.
        self.thread_jobs = 0
        self._clocks: weakref.WeakSet[Sleepers] = weakref.WeakSet()

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> LoopWatch | None:
        """The watch of ``loop``, put in place on first use; None for a loop without a selector
        (uvloop, the proactor loop), where idleness cannot be seen."""
        selector = getattr(loop, "_selector", None)
        if isinstance(selector, LoopWatch):
            return selector
        if not isinstance(selector, selectors.BaseSelector) or not isinstance(
            loop, asyncio.BaseEventLoop
        ):
            return None
        watch = cls(loop, selector)
        loop._selector = watch  # type: ignore[attr-defined]
        run_in_executor = loop.run_in_executor

        def counted(executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
            future = run_in_executor(executor, func, *args)
            watch.thread_jobs += 1
            future.add_done_callback(watch._thread_job_done)
            return future

        loop.run_in_executor = counted  # type: ignore[method-assign,assignment]
        return watch

    def add(self, clock: Sleepers) -> None:
        """``clock`` has sleepers on this loop: wake them when it idles."""
        self._clocks.add(clock)

    def _thread_job_done(self, _: object) -> None:
        self.thread_jobs -= 1

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self.selector.select(timeout)  # callbacks are ready: the loop is busy
        ready = self.selector.select(0)
        if ready or self.thread_jobs:
            return ready or self.selector.select(timeout)
        woke = [clock.wake_next(self.loop) for clock in list(self._clocks)]
        if any(woke):
            return []  # a sleeper's task is ready now: the loop runs it at once
        return self.selector.select(timeout)

    # ---------------------------------------------------------------- the rest forwards

    def register(
        self, fileobj: _FileObject, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self.selector.register(fileobj, events, data)

    def unregister(self, fileobj: _FileObject) -> selectors.SelectorKey:
        return self.selector.unregister(fileobj)

    def modify(self, fileobj: _FileObject, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.selector.modify(fileobj, events, data)

    def get_key(self, fileobj: _FileObject) -> selectors.SelectorKey:
        return self.selector.get_key(fileobj)

    def get_map(self) -> Mapping[_FileObject, selectors.SelectorKey]:
        return self.selector.get_map()

    def close(self) -> None:
        self.selector.close()
