"""What fake venues and their conformance harnesses have in common, to build on rather than copy.

- :class:`RollingWindow`: a venue's rate limit as a broker counts it, arrivals per rolling window,
  refused ones included, timed by the clock the harness is handed in
  ``VenueHarness.enforce_rate_limit``.
- :func:`declared_rate_limits`: the options ``rate_limit``/``rate_period`` through which a
  harness has its adapter declare the limit its venue enforces.
- :class:`HarnessBase`: the members of :class:`~orderlane.testing.VenueHarness` that do not
  depend on the venue: ``start``/``stop`` for a venue that lives in the process, the adapter
  options that declare the enforced limit and page size, and push members that say the venue
  has no stream.

``adapters/mock`` and ``contrib/adapter-template`` build on these; so can any adapter's harness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from orderlane.contract import RateLimit
from orderlane.errors import ConfigurationError
from orderlane.ratelimit import max_in_window

__all__ = ["HarnessBase", "RollingWindow", "declared_rate_limits", "max_in_window"]


class RollingWindow:
    """Counts requests into rolling windows of ``period`` seconds and refuses, as a broker does,
    one that would make more than ``limit`` arrivals (refused ones included) in the window
    ending at it."""

    def __init__(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        self.limit = limit
        self.period = period
        self.monotonic = monotonic
        #: When each request arrived, refused ones included.
        self.arrivals: list[float] = []
        #: How many requests the limit refused.
        self.refused = 0

    def __repr__(self) -> str:
        return f"RollingWindow({self.limit} per {self.period:g}s, arrivals={len(self.arrivals)})"

    def arrive(self) -> bool:
        """Count a request arriving now; False when the limit refuses it."""
        now = self.monotonic()
        recent = sum(1 for arrival in self.arrivals if arrival > now - self.period)
        self.arrivals.append(now)
        if recent >= self.limit:
            self.refused += 1
            return False
        return True

    def busiest(self, period: float | None = None) -> int:
        """The most arrivals in any window ``[t, t + period)`` (default: the limit's period)."""
        return max_in_window(self.arrivals, self.period if period is None else period)


def declared_rate_limits(options: Mapping[str, Any]) -> tuple[RateLimit, ...]:
    """The rate limit the options ``rate_limit`` (requests, absent or 0 for none) and
    ``rate_period`` (seconds, default 1) ask an adapter to declare; ConfigurationError for
    values that are not numbers."""
    limit, period = options.get("rate_limit"), options.get("rate_period", 1.0)
    try:
        count, seconds = int(limit or 0), float(period)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"rate_limit must be a whole number and rate_period seconds, got {limit!r} and "
            f"{period!r}"
        ) from None
    return (RateLimit(count, seconds),) if count else ()


_NO_PUSH = "the {name} venue has no push stream, so its harness does not declare push"


class HarnessBase:
    """The venue-independent part of a :class:`~orderlane.testing.VenueHarness`.

    A subclass sets ``adapter_name`` and ``capabilities``, implements :meth:`venue_options`
    (what points the adapter at its venue) and the scripting members, and calls
    :meth:`declare_rate_limit` from its ``enforce_rate_limit`` and :meth:`declare_page_size`
    from its ``set_page_size``. A venue that must be brought up (a server on loopback)
    overrides :meth:`start` and :meth:`stop`.
    """

    adapter_name: ClassVar[str]
    #: Whose time the venue keeps (see :func:`~orderlane.testing.venue_clock`).
    venue_clock = "scenario"

    def __init__(self) -> None:
        self.declared_limit: tuple[int, float] | None = None
        self.declared_page_size: int | None = None

    async def start(self) -> None:
        """Nothing to bring up: the venue lives in this process."""

    async def stop(self) -> None:
        """Nothing to tear down."""

    def venue_options(self) -> dict[str, Any]:
        """The adapter options that point the adapter at this harness's venue."""
        raise NotImplementedError

    def adapter_options(self) -> dict[str, Any]:
        """:meth:`venue_options`, and the limit and page size the adapter is to declare."""
        options = self.venue_options()
        if self.declared_limit is not None:
            options["rate_limit"], options["rate_period"] = self.declared_limit
        if self.declared_page_size is not None:
            options["page_size"] = self.declared_page_size
        return options

    def declare_rate_limit(self, limit: int, period: float) -> None:
        """Have the adapter declare this limit (options ``rate_limit`` and ``rate_period``)."""
        self.declared_limit = (limit, period)

    def declare_page_size(self, size: int) -> None:
        """Have the adapter declare this page size (option ``page_size``)."""
        self.declared_page_size = size

    # ---------------------------------------------------------------- no push stream

    def enable_push(self) -> None:
        raise NotImplementedError(_NO_PUSH.format(name=self.adapter_name))

    def drop_pushes(self, count: int) -> None:
        raise NotImplementedError(_NO_PUSH.format(name=self.adapter_name))

    def reconnect_push(self) -> None:
        raise NotImplementedError(_NO_PUSH.format(name=self.adapter_name))

    def push_before_answer_next(self) -> None:
        raise NotImplementedError(_NO_PUSH.format(name=self.adapter_name))
