"""The values orderlane and its plugins exchange through the hooks: the adapter contract's types
(what an adapter says about itself, what a lookup or a cancel answered, a push stream's gap, the
context every adapter hook gets) and the retry hooks' (the operation, the error's class, a retry
configuration).

A leaf of the package: it imports only the domain (:mod:`orderlane.model`,
:mod:`orderlane.errors`), so the hook specifications, the broker facade, the rate limiter, the
retry loop and every adapter can import it without importing each other. The names are also
importable from their older homes, :mod:`orderlane.broker` and :mod:`orderlane.retry`.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from orderlane.errors import ConfigurationError
from orderlane.model import OrderSnapshot

if TYPE_CHECKING:
    from orderlane.clock import Clock

__all__ = [
    "Absent",
    "AdapterInfo",
    "BrokerContext",
    "CancelAccepted",
    "CancelResult",
    "CannotTell",
    "Capability",
    "ErrorClass",
    "Found",
    "LookupResult",
    "LookupWindow",
    "NothingToCancel",
    "Operation",
    "Permit",
    "PushItem",
    "RateLimit",
    "RequestKind",
    "RetryConfig",
    "StreamGap",
]


class Capability(enum.StrEnum):
    """What an adapter can do; conformance scenarios that need a missing one are skipped."""

    CANCEL = "cancel"
    PARTIAL_FILLS = "partial_fills"
    LOOKUP = "lookup"
    PUSH = "push"
    BATCH_STATUS = "batch_status"
    CLIENT_ORDER_ID = "client_order_id"
    MARKET_ORDERS = "market_orders"
    LIMIT_ORDERS = "limit_orders"


class RequestKind(enum.StrEnum):
    """What a broker request is for: the limiter serves cancels, then orders, then inquiries."""

    CANCEL = "cancel"
    ORDER = "order"
    INQUIRY = "inquiry"
    AUTH = "auth"


@attrs.frozen
class AdapterInfo:
    """An adapter's self-description (returned by ``orderlane_adapter_info``)."""

    name: str
    version: str
    capabilities: frozenset[Capability] = frozenset()
    #: The venue's timezone (IANA name): a fill's trading day is its date there.
    timezone: str = "UTC"
    #: How long after a place request a new order may take to show in the broker's inquiry.
    new_order_lag: timedelta = timedelta(0)
    #: How many orders one page of the broker's order inquiry holds (batch status).
    page_size: int | None = None
    description: str = ""

    def supports(self, capability: Capability | str) -> bool:
        return Capability(capability) in self.capabilities


@attrs.frozen
class RateLimit:
    """At most ``limit`` requests in any rolling window of ``period`` seconds."""

    limit: int
    period: float = 1.0
    scope: str = "requests"

    def __attrs_post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ConfigurationError(f"invalid rate limit {self.limit}/{self.period}s")

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


@attrs.frozen
class Found:
    """The broker holds the order: adopt this snapshot (it carries the broker order id)."""

    snapshot: OrderSnapshot


@attrs.frozen
class Absent:
    """The broker's authoritative answer, past its new-order lag: it never got the order."""


@attrs.frozen
class CannotTell:
    """The broker's answer does not settle it (lag, several candidates, inquiry failed)."""

    reason: str = ""


LookupResult = Found | Absent | CannotTell


@attrs.frozen
class CancelAccepted:
    """The broker took the cancel request (the order may still fill before it lands)."""

    snapshot: OrderSnapshot | None = None


@attrs.frozen
class NothingToCancel:
    """The broker has nothing left to cancel: the order is already filled, cancelled or gone."""

    reason: str = ""


CancelResult = CancelAccepted | NothingToCancel


@attrs.frozen
class StreamGap:
    """Yielded by a push stream when updates may have been missed (a reconnect, a frame that
    did not parse): the tracker then polls every open order once to close the gap."""

    reason: str = ""


PushItem = OrderSnapshot | StreamGap


@attrs.frozen
class LookupWindow:
    """When an order may have been sent: from its first submission to now."""

    start: datetime
    end: datetime


Permit = Callable[[RequestKind], Awaitable[None]]


async def _no_limit(kind: RequestKind) -> None:
    return None


@attrs.define
class BrokerContext:
    """Handed to every adapter hook: the adapter's options, the clock and the rate-limit permit.

    An adapter awaits ``ctx.permit(kind)`` before each request the broker counts (each page of
    an inquiry, a token refresh, a repeat after an expired token) so the engine's limiter counts
    what the broker counts.
    """

    account_id: str
    #: Adapter settings: credentials live here, so they are kept out of the repr.
    options: Mapping[str, Any] = attrs.field(repr=False)
    clock: Clock
    _permit: Permit = _no_limit
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("orderlane.adapter"))

    async def permit(self, kind: RequestKind | str = RequestKind.ORDER) -> None:
        await self._permit(RequestKind(kind))

    def use_limiter(self, permit: Permit) -> None:
        """Route every permit through ``permit`` (the engine's rate limiter)."""
        self._permit = permit


# --------------------------------------------------------------------------------------------
# Retry hooks
# --------------------------------------------------------------------------------------------


class Operation(enum.StrEnum):
    PLACE = "place"
    CANCEL = "cancel"
    STATUS = "status"
    LOOKUP = "lookup"


class ErrorClass(enum.StrEnum):
    RETRYABLE = "retryable"  # nothing happened at the broker: try again after a wait
    AMBIGUOUS = "ambiguous"  # the broker may have acted: look it up before any new send
    FINAL = "final"  # give up at once


@attrs.frozen
class RetryConfig:
    """How one operation is retried."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff_multiplier: float = 2.0
    max_delay: float = 30.0
    #: Up to this fraction of each wait is added at random (0 = exact waits).
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("retry max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.backoff_multiplier < 1:
            raise ConfigurationError("retry delays must be >= 0 and backoff_multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("retry jitter is a fraction between 0 and 1")

    def delay(self, failed_attempt: int, error: BaseException | None = None) -> float:
        """The wait after attempt number ``failed_attempt`` (1-based) failed with ``error``."""
        backoff = min(
            self.initial_delay * self.backoff_multiplier ** (failed_attempt - 1), self.max_delay
        )
        if self.jitter:
            backoff += backoff * self.jitter * random.random()  # noqa: S311 - not security
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > backoff:
            return float(retry_after)
        return backoff
