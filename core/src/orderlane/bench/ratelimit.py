"""``orderlane bench rate-limit``: orderlane's limiter against a naive one, on real time.

N requests go through orderlane's limiter into a venue that timestamps every
arrival and refuses a request that would put more than the limit into the rolling window, as a
broker does; then the same N through a naive ``aiolimiter.AsyncLimiter(limit, period)``. Both run on
real time, one after the other, in the same process.

Figures per limiter: fidelity counts whole windows only. The run is cut into windows of the
period from the first arrival; the windows before the one holding the last arrival are whole (the
limiter had requests waiting all through them), and fidelity is the arrivals in them divided by
what the limit allows in them. The last window is partial (the run ran out of requests, not the
limiter out of capacity), so it is not counted as capacity lost. A run shorter than one window
has no fidelity. The achieved rate is fidelity x limit / period; the worst window is the most
arrivals seen in any rolling window of the period; rejections are requests the venue refused.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
import time
from collections.abc import Awaitable, Callable, Sequence

import attrs
from aiolimiter import AsyncLimiter

from orderlane.bench.report import Figure, Goal, Report, figure
from orderlane.clock import SystemClock
from orderlane.contract import RateLimit, RequestKind
from orderlane.ratelimit import SlidingLogLimiter, max_in_window
from orderlane.serialization import unstructure

__all__ = [
    "LimiterRun",
    "RateLimitBench",
    "RateLimitVenue",
    "max_in_window",
    "rate_limit_report",
    "run_rate_limit",
    "whole_window_fidelity",
]


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


def whole_window_fidelity(times: Sequence[float], limit: int, period: float) -> float | None:
    """Arrivals in the whole windows of the run / what the limit allows in them (see above).

    None when every arrival falls in the first window (no whole window to judge by).
    """
    if not times:
        return None
    ordered = sorted(times)
    first = ordered[0]
    whole = math.floor((ordered[-1] - first) / period)
    if whole == 0:
        return None
    end = first + whole * period
    counted = bisect.bisect_left(ordered, end)
    return counted / (whole * limit)


@attrs.frozen
class LimiterRun:
    name: str
    limit: int
    period: float
    requests: int
    seconds: float
    #: Requests per second over the whole windows (None: the run was shorter than one window).
    achieved_rate: float | None
    fidelity: float | None
    #: Windows counted for the fidelity.
    whole_windows: int
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
    fidelity = whole_window_fidelity(venue.arrivals, limit, period)
    arrivals = venue.arrivals
    return LimiterRun(
        name=name,
        limit=limit,
        period=period,
        requests=requests,
        seconds=round(seconds, 3),
        achieved_rate=None if fidelity is None else round(fidelity * limit / period, 3),
        fidelity=None if fidelity is None else round(fidelity, 4),
        whole_windows=math.floor((arrivals[-1] - arrivals[0]) / period) if arrivals else 0,
        max_in_window=max_in_window(venue.arrivals, period),
        rejections=venue.rejections,
    )


async def run_rate_limit(
    limit: int, requests: int, *, period: float = 1.0, margin: float = 0.02
) -> RateLimitBench:
    """Measure orderlane's limiter and the naive aiolimiter baseline, one after the other."""
    limiter = SlidingLogLimiter(
        [RateLimit(limit, period)], SystemClock(), margin=margin, name="bench"
    )
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


def rate_limit_report(result: RateLimitBench, seconds: float) -> Report:
    """The bench's report: orderlane's figures, the naive limiter's as the baseline."""
    ours, naive = result.orderlane, result.naive
    figures: list[Figure] = []
    if ours.fidelity is not None and naive.fidelity is not None:
        figures.append(
            figure("fidelity", "of limit", ours.fidelity, naive.fidelity, Goal("value", ">=", 0.95))
        )
    figures.append(
        figure(
            "max in a window",
            "requests",
            ours.max_in_window,
            naive.max_in_window,
            Goal("value", "<=", ours.limit),
        )
    )
    figures.append(
        figure(
            "rejected by venue",
            "requests",
            ours.rejections,
            naive.rejections,
            Goal("value", "<=", 0),
        )
    )
    return Report(
        bench="rate-limit",
        subject=f"orderlane's sliding-log limiter, {ours.limit} per {ours.period:g}s",
        baseline=naive.name,
        parameters={"limit": ours.limit, "period": ours.period, "requests": ours.requests},
        figures=tuple(figures),
        raw={"orderlane": unstructure(ours), "baseline": unstructure(naive)},
        seconds=round(seconds, 3),
    )
