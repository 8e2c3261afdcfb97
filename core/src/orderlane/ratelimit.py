"""The in-process broker rate limiter: a strict sliding log with priorities, shared per credential.

:class:`SlidingLogLimiter` is the core's default :class:`~orderlane.limiter.RateLimiter`, supplied
through the ``orderlane_rate_limiter`` hook by :class:`~orderlane.defaults.InProcessLimiter`
(``trylast``), so a
plugin can supply another (``orderlane-redis`` shares the log between processes). It counts the
requests of one process only: engines in several processes on one credential need a shared one.

Why not a token bucket: a bucket (or GCRA, or ``aiolimiter.AsyncLimiter(limit, period)``, a leaky
bucket) that allows a burst of N lets about 2N-1 requests through one window after an idle spell:
the burst, then the refill that drips in during the same window. Brokers count requests per rolling
window, so orderlane keeps a log of the last N grant times per limit and grants the next request
only when the oldest of them has left the window. A permit handed to a waiting request is stamped
again when that request resumes, so an event loop that runs late (a busy machine, a long garbage
collection) moves the logged time with the request instead of letting the next window's grants
bunch up behind it. The window is lengthened by a small margin for the rest of the way: what the
broker counts is the arrival, a little after the caller resumes. aiolimiter stays in use as
the baseline ``orderlane bench rate-limit`` compares against.

Waiting requests queue instead of failing, cancels first, new orders next and inquiries last, with
a guaranteed share for inquiries so tracking never starves. A rate-limit answer from the broker
pauses every grant for the time the broker asked for (or one window).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import weakref
from collections.abc import Sequence

import attrs

from orderlane.clock import Clock, SystemClock
from orderlane.contract import RateLimit, RequestKind
from orderlane.errors import ConfigurationError
from orderlane.limiter import DEFAULT_LIMITER, LimiterSnapshot

__all__ = [
    "PRIORITY",
    "LimiterStats",
    "RateLimiter",
    "SlidingLogLimiter",
    "max_in_window",
    "release_limiter",
    "shared_limiter",
]

log = logging.getLogger("orderlane.ratelimit")

PRIORITY: dict[RequestKind, int] = {
    RequestKind.CANCEL: 0,
    RequestKind.AUTH: 1,
    RequestKind.ORDER: 1,
    RequestKind.INQUIRY: 2,
}


@attrs.define
class LimiterStats:
    """What the limiter did so far (``engine.stats()`` shows it)."""

    granted: dict[str, int] = attrs.Factory(dict)
    waiting: int = 0
    max_waiting: int = 0
    total_wait: float = 0.0
    max_wait: float = 0.0
    waited: int = 0
    pauses: int = 0

    @property
    def mean_wait(self) -> float:
        return self.total_wait / self.waited if self.waited else 0.0


class _Permit:
    """One grant's time; a waiter that resumes later moves it to when it resumed."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class _Window:
    """The last ``limit`` permits of one limit."""

    def __init__(self, limit: RateLimit, margin: float) -> None:
        self.limit = limit.limit
        self.span = limit.period * (1.0 + margin)
        self.permits: list[_Permit] = []

    def _oldest(self) -> int:
        permits = self.permits
        return min(range(len(permits)), key=lambda index: permits[index].at)

    def free_at(self, now: float) -> float:
        if len(self.permits) < self.limit:
            return now
        # Stamps move forward when waiters resume, so the oldest is not always the first.
        return max(now, self.permits[self._oldest()].at + self.span)

    def add(self, permit: _Permit) -> None:
        if len(self.permits) >= self.limit:
            del self.permits[self._oldest()]
        self.permits.append(permit)


@attrs.define(order=True)
class _Waiter:
    priority: int
    seq: int
    kind: RequestKind = attrs.field(order=False)
    future: asyncio.Future[_Permit] = attrs.field(order=False)
    since: float = attrs.field(order=False)


class SlidingLogLimiter:
    """Grants permits so that no rolling window carries more than each limit allows.

    ``margin`` lengthens every window by that fraction (default 2%) to absorb the time between
    a grant and the request's arrival at the broker. ``inquiry_share`` is the least fraction of
    grants that go to waiting inquiries while orders also wait.
    """

    def __init__(
        self,
        limits: Sequence[RateLimit],
        clock: Clock,
        *,
        margin: float = 0.02,
        inquiry_share: float = 0.1,
        name: str = "",
    ) -> None:
        if not 0 <= margin < 1:
            raise ConfigurationError("rate-limit margin is a fraction between 0 and 1")
        if not 0 < inquiry_share <= 1:
            raise ConfigurationError("inquiry_share is a fraction in (0, 1]")
        self.limits = tuple(limits)
        self.name = name
        self.clock = clock
        self.margin = margin
        self._clock = clock
        self._windows = [_Window(limit, margin) for limit in self.limits]
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._paused_until = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._inquiry_every = max(1, round(1 / inquiry_share))
        self._since_inquiry = 0
        self.stats = LimiterStats()

    def __repr__(self) -> str:
        limits = ", ".join(map(str, self.limits))
        return f"SlidingLogLimiter({self.name!r}, {limits or 'unlimited'})"

    @property
    def queue_depth(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.future.done())

    def snapshot(self) -> LimiterSnapshot:
        stats = self.stats
        return LimiterSnapshot(
            limits=self.limits,
            backend=DEFAULT_LIMITER,
            queue_depth=self.queue_depth,
            max_queue_depth=stats.max_waiting,
            granted=stats.granted,
            mean_wait_s=stats.mean_wait,
            max_wait_s=stats.max_wait,
            pauses=stats.pauses,
        )

    async def close(self) -> None:
        """One engine that took this shared limiter is done with it (see
        :func:`release_limiter`); the log lives on for the engines still using it."""
        release_limiter(self.name, self)

    def _free_at(self, now: float) -> float:
        free = max(now, self._paused_until)
        for window in self._windows:
            free = max(free, window.free_at(now))
        return free

    def _grant(self, now: float, kind: RequestKind) -> _Permit:
        permit = _Permit(now)
        for window in self._windows:
            window.add(permit)
        self.stats.granted[kind.value] = self.stats.granted.get(kind.value, 0) + 1
        self._since_inquiry = 0 if kind is RequestKind.INQUIRY else self._since_inquiry + 1
        return permit

    async def acquire(self, kind: RequestKind = RequestKind.ORDER) -> None:
        """Wait for a permit for one request of ``kind``."""
        if not self._windows:
            return
        now = self._clock.monotonic()
        if not self._waiters and self._free_at(now) <= now:
            self._grant(now, kind)
            return
        future: asyncio.Future[_Permit] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(PRIORITY[kind], next(self._seq), kind, future, now)
        heapq.heappush(self._waiters, waiter)
        depth = self.queue_depth
        self.stats.waiting = depth
        self.stats.max_waiting = max(self.stats.max_waiting, depth)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"orderlane-limiter-{self.name}"
            )
        permit = await future  # a cancelled waiter is skipped by the dispatcher
        # The request goes out now, not when the dispatcher granted it: log that time. Granted
        # waiters resume before the dispatcher's next wake-up, so its next decision sees this.
        permit.at = max(permit.at, self._clock.monotonic())

    def penalize(self, retry_after: float | None = None) -> None:
        """The broker answered "too many requests": pause every grant for a while."""
        if not self._windows:
            return
        pause = retry_after if retry_after and retry_after > 0 else self._longest_period()
        until = self._clock.monotonic() + pause
        if until > self._paused_until:
            self._paused_until = until
            self.stats.pauses += 1
            log.warning("broker rate limit hit; pausing requests for %.2fs", pause)

    def _longest_period(self) -> float:
        return max((limit.period for limit in self.limits), default=1.0)

    def _pick(self) -> _Waiter | None:
        while self._waiters and self._waiters[0].future.done():
            heapq.heappop(self._waiters)
        if not self._waiters:
            return None
        if self._since_inquiry >= self._inquiry_every and self._waiters[0].kind is not (
            RequestKind.INQUIRY
        ):
            inquiries = [
                w for w in self._waiters if w.kind is RequestKind.INQUIRY and not w.future.done()
            ]
            if inquiries:
                chosen = min(inquiries, key=lambda w: w.seq)
                self._waiters.remove(chosen)
                heapq.heapify(self._waiters)
                return chosen
        return heapq.heappop(self._waiters)

    async def _dispatch(self) -> None:
        while True:
            now = self._clock.monotonic()
            free = self._free_at(now)
            if free > now:
                await self._clock.sleep(free - now)
                continue
            waiter = self._pick()
            if waiter is None:
                self.stats.waiting = 0
                return
            permit = self._grant(now, waiter.kind)
            waited = now - waiter.since
            self.stats.total_wait += waited
            self.stats.max_wait = max(self.stats.max_wait, waited)
            self.stats.waited += 1
            self.stats.waiting = self.queue_depth
            waiter.future.set_result(permit)


#: The name this class had before limiters became pluggable; it still imports.
RateLimiter = SlidingLogLimiter


@attrs.define
class _Shared:
    """A credential's limiter and how many running engines use it."""

    limiter: SlidingLogLimiter
    users: int = 0


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = (
    weakref.WeakKeyDictionary()
)


def shared_limiter(
    key: str, limits: Sequence[RateLimit], clock: Clock, *, margin: float = 0.02
) -> SlidingLogLimiter:
    """The one limiter of a broker credential in this process (per event loop).

    Engines that trade the same credential share it, so together they stay under the limit. Two
    engines that declare different limits for one credential are a configuration error. Engines
    on simulated time (each FakeClock is its own timeline) never share. Each engine that takes
    the limiter gives it back with :func:`release_limiter` when it closes; once no engine uses
    it, the next one may declare other limits.
    """
    loop = asyncio.get_running_loop()
    limiters = _SHARED.setdefault(loop, {})
    shared = limiters.get(key)
    if shared is not None and not _same_timeline(shared.limiter.clock, clock):
        shared = None
    if shared is None:
        shared = limiters[key] = _Shared(SlidingLogLimiter(limits, clock, margin=margin, name=key))
    elif shared.limiter.limits != tuple(limits) or shared.limiter.margin != margin:
        raise ConfigurationError(
            f"broker credential {key!r} is already limited to "
            f"{_describe(shared.limiter.limits, shared.limiter.margin)} by another engine; this "
            f"one asks for {_describe(limits, margin)}. "
            "Engines on one credential must agree (or set EngineConfig.credential_key)."
        )
    shared.users += 1
    return shared.limiter


def release_limiter(key: str, limiter: SlidingLogLimiter) -> None:
    """An engine that took ``limiter`` from :func:`shared_limiter` no longer uses it (it
    closed); the last engine to give it back removes it."""
    limiters = _SHARED.get(asyncio.get_running_loop(), {})
    shared = limiters.get(key)
    if shared is None or shared.limiter is not limiter:
        return  # replaced meanwhile by an engine on another timeline
    shared.users -= 1
    if shared.users <= 0:
        del limiters[key]


def _same_timeline(first: Clock, second: Clock) -> bool:
    return first is second or (type(first) is SystemClock and type(second) is SystemClock)


def _describe(limits: Sequence[RateLimit], margin: float) -> str:
    return f"{', '.join(map(str, limits)) or 'no limit'} (margin {margin:g})"


def max_in_window(times: Sequence[float], period: float) -> int:
    """The most timestamps that fall in any half-open window ``[t, t + period)``: what a broker
    counting arrivals in a rolling window of ``period`` sees at its busiest."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        end = bisect.bisect_left(ordered, start + period, lo=i)
        best = max(best, end - i)
    return best
