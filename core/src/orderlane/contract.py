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
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
    "describe_error",
    "redact",
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
    #: Digits of the venue's currency after the point (KRW: 0, USD: 2): commissions split
    #: across fills and fees released pro rata are allocated in that minor unit.
    currency_decimals: int = 2
    description: str = ""
    #: Decimal places a limit price may have at this venue (KIS: 0, whole won). A signal whose
    #: limit price has more is refused before anything is stored. None: up to the 28 places
    #: the journal holds.
    price_places: int | None = None
    #: Adapter options whose values may appear in error messages (a timezone, a latency).
    #: Every other option's value is treated as a secret: masked wherever orderlane shows or
    #: stores a message (the CLI, logs, an order's reason).
    public_options: frozenset[str] = frozenset()

    def supports(self, capability: Capability | str) -> bool:
        return Capability(capability) in self.capabilities


#: Bounds of a rate limit: a window from 1 ms to a day, up to a million requests in it.
MIN_PERIOD, MAX_PERIOD, MAX_COUNT = 0.001, 86_400.0, 1_000_000


@attrs.frozen
class RateLimit:
    """At most ``limit`` requests in any rolling window of ``period`` seconds."""

    limit: int
    period: float = 1.0
    scope: str = "requests"

    def __attrs_post_init__(self) -> None:
        limit, period = self.limit, self.period
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_COUNT:
            raise ConfigurationError(
                f"a rate limit's limit is a whole number of requests from 1 to {MAX_COUNT:,}, "
                f"got {limit!r}"
            )
        if (
            isinstance(period, bool)
            or not isinstance(period, (int, float))
            or not MIN_PERIOD <= period <= MAX_PERIOD
        ):
            raise ConfigurationError(
                f"a rate limit's period is a number of seconds from {MIN_PERIOD:g} to "
                f"{MAX_PERIOD:g}, got {period!r}"
            )

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
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
            raise ConfigurationError(
                f"RetryConfig.max_attempts must be a whole number from 1 to 100, got {attempts!r}"
            )
        for name, least, most in (
            ("initial_delay", 0.0, 86_400.0),
            ("max_delay", 0.0, 86_400.0),
            ("backoff_multiplier", 1.0, 100.0),
            ("jitter", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not least <= value <= most  # NaN fails this too
            ):
                raise ConfigurationError(
                    f"RetryConfig.{name} must be a number from {least:g} to {most:g}, got {value!r}"
                )

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


#: Option values shorter than this are left in messages: masking "1" or "on" everywhere would
#: garble every message, and no credential is that short.
_SHORTEST_SECRET = 4


def redact(text: str, options: Mapping[str, Any], public: Iterable[str] = ()) -> str:
    """``text`` with the value of every option not in ``public`` replaced by ``***``.

    Adapter options hold credentials; an adapter marks the ones that do not
    (:attr:`AdapterInfo.public_options`). Whatever orderlane shows or stores of a message that
    may quote an option (an error, an order's reason) passes through here first.
    """
    shown = set(public)
    secrets = sorted(
        {
            str(value)
            for key, value in options.items()
            if key not in shown and value is not None and len(str(value)) >= _SHORTEST_SECRET
        },
        key=len,
        reverse=True,  # a longer value first: one that contains a shorter one is masked whole
    )
    for secret in secrets:
        text = text.replace(secret, "***")
        escaped = repr(secret)[1:-1]  # as it appears inside a repr()
        if escaped != secret:
            text = text.replace(escaped, "***")
    return text


def describe_error(error: BaseException) -> str:
    """``Type: message`` (or just ``Type``), the form reasons and events use."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name
