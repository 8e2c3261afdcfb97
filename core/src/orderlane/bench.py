"""Benchmarks that measure orderlane against a baseline in the same run.

``rate_limit``: N requests go through orderlane's limiter into a venue that timestamps every
arrival and refuses a request that would put more than the limit into the rolling window, as a
broker does; then the same N through a naive ``aiolimiter.AsyncLimiter(limit, period)``. Both run on
real time, one after the other, in the same process.

Figures per limiter: the achieved rate is ``N / (last arrival - first arrival + period)``, the
requests divided by the windows the run occupied, so an opening burst is not counted as speed;
fidelity is achieved rate / limit; the worst window is the most arrivals seen in any rolling window
of the period; rejections are requests the venue refused.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import time
from collections.abc import Awaitable, Callable, Sequence

import attrs
from aiolimiter import AsyncLimiter

from orderlane.broker import RateLimit, RequestKind
from orderlane.clock import SystemClock
from orderlane.ratelimit import RateLimiter

__all__ = ["LimiterRun", "RateLimitBench", "RateLimitVenue", "max_in_window", "run_rate_limit"]


def max_in_window(times: Sequence[float], period: float) -> int:
    """The most timestamps that fall in any half-open window ``[t, t + period)``."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        end = bisect.bisect_left(ordered, start + period, lo=i)
        best = max(best, end - i)
    return best


class RateLimitVenue:
    """Counts arrivals per rolling window and refuses what exceeds the limit."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.arrivals: list[float] = []
        self.rejections = 0
        self._accepted: collections.deque[float] = collections.deque()

    def arrive(self) -> bool:
        now = time.monotonic()
        self.arrivals.append(now)
        while self._accepted and self._accepted[0] <= now - self.period:
            self._accepted.popleft()
        if len(self._accepted) >= self.limit:
            self.rejections += 1
            return False
        self._accepted.append(now)
        return True


@attrs.frozen
class LimiterRun:
    name: str
    limit: int
    period: float
    requests: int
    seconds: float
    achieved_rate: float
    fidelity: float
    max_in_window: int
    rejections: int


@attrs.frozen
class RateLimitBench:
    orderlane: LimiterRun
    naive: LimiterRun


async def _drive(
    name: str,
    acquire: Callable[[], Awaitable[object]],
    limit: int,
    period: float,
    requests: int,
) -> LimiterRun:
    venue = RateLimitVenue(limit, period)

    async def one() -> None:
        await acquire()
        venue.arrive()

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    seconds = time.monotonic() - started
    span = venue.arrivals[-1] - venue.arrivals[0] + period if venue.arrivals else period
    achieved = requests / span
    return LimiterRun(
        name=name,
        limit=limit,
        period=period,
        requests=requests,
        seconds=round(seconds, 3),
        achieved_rate=round(achieved, 3),
        fidelity=round(achieved / (limit / period), 4),
        max_in_window=max_in_window(venue.arrivals, period),
        rejections=venue.rejections,
    )


async def run_rate_limit(
    limit: int, requests: int, *, period: float = 1.0, margin: float = 0.02
) -> RateLimitBench:
    """Measure orderlane's limiter and the naive aiolimiter baseline, one after the other."""
    limiter = RateLimiter([RateLimit(limit, period)], SystemClock(), margin=margin, name="bench")
    ours = await _drive(
        "orderlane", lambda: limiter.acquire(RequestKind.ORDER), limit, period, requests
    )
    naive_limiter = AsyncLimiter(limit, period)
    naive = await _drive(
        f"aiolimiter.AsyncLimiter({limit}, {period:g})",
        naive_limiter.acquire,
        limit,
        period,
        requests,
    )
    return RateLimitBench(orderlane=ours, naive=naive)
