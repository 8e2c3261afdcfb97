"""What the engine asks of a rate limiter, whichever plugin supplies it.

The engine gets one limiter per broker credential through the ``orderlane_rate_limiter`` hook
(firstresult): the core's default (``trylast``) is the in-process sliding log of
:mod:`orderlane.ratelimit`; a plugin such as ``orderlane-redis`` supplies one whose log is shared
by every process trading the credential. The engine touches a limiter only through
:class:`RateLimiter`, and ``engine.stats()`` shows its :class:`LimiterSnapshot`.

Every limiter gives the same guarantee: no rolling window of a limit's period carries more
requests than the limit, counted where the broker receives them; requests wait in a queue (never
fail because the limiter is busy), cancels first, then orders and token requests, then inquiries
with a guaranteed share; a broker's rate-limit answer slows every request of the credential down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from orderlane.contract import RateLimit, RequestKind

__all__ = ["DEFAULT_LIMITER", "LimiterSnapshot", "RateLimiter"]

#: The name of the core's in-process limiter (``EngineConfig.rate_limiter``).
DEFAULT_LIMITER = "in-process"


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen
class LimiterSnapshot:
    """A limiter's figures at one moment, as ``engine.stats()["rate_limiter"]`` shows them."""

    #: The limits it enforces.
    limits: tuple[RateLimit, ...]
    #: Which limiter this is (``"in-process"``, ``"redis"``...).
    backend: str = DEFAULT_LIMITER
    #: Requests of this process waiting for a permit now, and the most that ever waited.
    queue_depth: int = 0
    max_queue_depth: int = 0
    #: Permits granted to this process, per request kind (``"order"``, ``"inquiry"``...).
    granted: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: Mean and longest wait of the requests that had to wait, in seconds.
    mean_wait_s: float = 0.0
    max_wait_s: float = 0.0
    #: How often a broker's rate-limit answer paused the limiter.
    pauses: int = 0
    #: Why requests cannot get a permit at all right now (None: nothing stops them), for
    #: example "redis unreachable since 12:00:01Z": they wait, nothing is sent unpermitted.
    blocked: str | None = None
    #: What else the backend reports (its own counters).
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain data (limits as text), for ``engine.stats()`` and JSON."""
        return {
            "limits": [str(limit) for limit in self.limits],
            "queue_depth": self.queue_depth,
            "max_queue_depth": self.max_queue_depth,
            "granted": dict(self.granted),
            "mean_wait_s": self.mean_wait_s,
            "max_wait_s": self.max_wait_s,
            "pauses": self.pauses,
            "backend": self.backend,
            "blocked": self.blocked,
            **({"details": dict(self.details)} if self.details else {}),
        }


@runtime_checkable
class RateLimiter(Protocol):
    """The permits of one broker credential.

    ``acquire`` returns when one request of ``kind`` may leave for the broker; it waits as long
    as it must (cancelling the caller ends the wait and takes no permit). ``penalize`` is called
    when the broker answered "too many requests": every grant of the credential pauses for
    ``retry_after`` seconds (or one window when the broker did not say). ``snapshot`` is cheap
    and synchronous; it never does I/O. ``close`` releases what the limiter opened (connections,
    tasks) when the engine closes; a limiter shared by several engines keeps working for the
    others.
    """

    async def acquire(self, kind: RequestKind = RequestKind.ORDER) -> None: ...

    def penalize(self, retry_after: float | None = None) -> None: ...

    def snapshot(self) -> LimiterSnapshot: ...

    async def close(self) -> None: ...
