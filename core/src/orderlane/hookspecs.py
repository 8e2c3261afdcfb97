"""Every hook orderlane calls, grouped by what it is for: execution, tracking, retry, limiter,
observers.

Adapter hooks (execution and tracking) are implemented by exactly one adapter plugin per engine
and are called on that plugin alone; they may be ``async def`` and get a
:class:`~orderlane.contract.BrokerContext` as ``ctx``. Before every request the broker counts, an
adapter awaits ``ctx.permit(kind)``. Retry hooks are synchronous, may be implemented by any plugin,
and return ``None`` to let the next plugin (and finally the core default) decide. The limiter hook
supplies the rate limiter of a broker credential (the core's default is the in-process sliding
log). Observer hooks
are broadcast to every plugin; they are called after the change they report has been committed,
in commit order, and an exception in one is logged and never breaks execution.

Write an implementation with the marker::

    from orderlane import hookimpl

    class AuditTrail:
        @hookimpl
        def orderlane_order_filled(self, order, fill):
            print(order.id, fill.quantity, fill.price)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from orderlane.clock import Clock
    from orderlane.contract import (
        AdapterInfo,
        BrokerContext,
        CancelResult,
        ErrorClass,
        LookupResult,
        LookupWindow,
        Operation,
        RateLimit,
        RetryConfig,
        StreamGap,
    )
    from orderlane.errors import BrokerError
    from orderlane.limiter import RateLimiter
    from orderlane.model import Fill, Order, OrderSnapshot, OrderStatus
    from orderlane.positions import Position

PROJECT = "orderlane"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "ADAPTER_HOOKS",
    "LIMITER_HOOKS",
    "OBSERVER_HOOKS",
    "RETRY_HOOKS",
    "hookimpl",
    "hookspec",
]

# --------------------------------------------------------------------------------------------
# Execution (adapter)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def orderlane_adapter_info() -> AdapterInfo:
    """Describe the adapter: name, version, capabilities, venue timezone, new-order lag.

    Implemented by: every adapter. Called when an engine is built and by ``orderlane adapters``.
    Returns an :class:`~orderlane.broker.AdapterInfo`; must not touch the network.
    """


@hookspec(firstresult=True)
def orderlane_rate_limits(ctx: BrokerContext) -> Sequence[RateLimit]:
    """Declare the broker's request limits for this credential.

    Implemented by: adapters whose broker limits request rates. Called once when the engine
    starts, before any request. Returns a sequence of :class:`~orderlane.broker.RateLimit` (one per
    scope, e.g. per second and per minute); the engine's configuration may override them. Every
    request taken through ``ctx.permit`` counts against all of them.
    """


@hookspec(firstresult=True)
def orderlane_adapter_start(ctx: BrokerContext) -> None:
    """Prepare to trade: open sessions, load or fetch tokens, connect streams.

    Implemented by: adapters with something to set up. Called once when the engine opens,
    before recovery and before any order. Raise :class:`~orderlane.errors.ConfigurationError` or
    :class:`~orderlane.errors.BrokerAuthError` to refuse to start.
    """


@hookspec(firstresult=True)
def orderlane_adapter_stop(ctx: BrokerContext) -> None:
    """Release what ``orderlane_adapter_start`` opened. Called once when the engine closes."""


@hookspec(firstresult=True)
def orderlane_place_order(ctx: BrokerContext, order: Order) -> OrderSnapshot:
    """Send ``order`` to the broker and return what the broker answered.

    Implemented by: every adapter. Called after the order was committed as SUBMITTING. Use
    ``order.id`` to derive the broker's client order id where the broker takes one.

    Returns an :class:`~orderlane.model.OrderSnapshot` with the broker order id and status
    SUBMITTED (accepted), PARTIALLY_FILLED, FILLED or REJECTED (with ``reason``). Raise
    :class:`~orderlane.errors.OrderRejectedError` (or a subclass) for a refusal,
    :class:`~orderlane.errors.BrokerConnectionError` when nothing was sent,
    :class:`~orderlane.errors.BrokerTimeoutError` with ``request_sent`` telling whether the broker
    may have acted, :class:`~orderlane.errors.BrokerRateLimitError` when the broker throttled.
    Anything else after the request left is treated as ambiguous: the order is looked up before
    it is ever sent again.
    """


@hookspec(firstresult=True)
def orderlane_cancel_order(ctx: BrokerContext, order: Order) -> CancelResult:
    """Ask the broker to cancel what is left of ``order`` (it has a broker order id).

    Implemented by: adapters with the ``cancel`` capability. Returns
    :class:`~orderlane.broker.CancelAccepted` or :class:`~orderlane.broker.NothingToCancel`
    (already filled, cancelled or gone); the order's state changes only from the snapshots that
    follow, never from the cancel call alone.
    """


# --------------------------------------------------------------------------------------------
# Tracking (adapter)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def orderlane_order_status(ctx: BrokerContext, order: Order) -> OrderSnapshot:
    """Return the broker's current, cumulative view of one order.

    Implemented by: every adapter. Called by the tracker and by recovery for orders with a
    broker order id. Raise :class:`~orderlane.errors.OrderNotFoundError` when the broker has no
    such order; the engine never changes an order's state on that alone.
    """


@hookspec(firstresult=True)
def orderlane_order_statuses(
    ctx: BrokerContext, orders: Sequence[Order]
) -> Mapping[str, OrderSnapshot | BrokerError]:
    """Return snapshots of many orders, keyed by ``order.id``, in as few broker calls as possible.

    Implemented by: adapters with the ``batch_status`` capability (one request per page of the
    broker's order inquiry, each page taking a permit). Orders missing from the mapping are left
    as they are this cycle. An order whose record cannot be read may map to the ``BrokerError``
    saying why: that order alone is left as it is (and logged), the others are booked. Without
    this hook the engine calls ``orderlane_order_status`` per order.
    """


@hookspec(firstresult=True)
def orderlane_lookup_order(
    ctx: BrokerContext,
    order: Order,
    window: LookupWindow,
    owned_broker_ids: frozenset[str],
    owned_windows: Mapping[str, tuple[LookupWindow, ...]],
) -> LookupResult:
    """Find out whether the broker holds ``order`` after a send whose outcome is unknown.

    Implemented by: adapters with the ``lookup`` capability. Match by client order id where the
    broker keeps one, otherwise by the order's intent (symbol, side, quantity, price) sent within
    ``window``, ignoring broker orders in ``owned_broker_ids`` (they belong to other journal
    orders). Returns :class:`~orderlane.broker.Found` with the broker's snapshot,
    :class:`~orderlane.broker.Absent` only when the broker's answer is authoritative and past the
    adapter's declared new-order lag, and :class:`~orderlane.broker.CannotTell` otherwise (for
    example when more than one broker order matches). Never returns ``None``.

    ``owned_windows`` (an implementation may leave it out of its arguments, or give it a
    default) gives, for each id of ``owned_broker_ids``, when each journal order owning it was
    sent to get it (a :class:`LookupWindow` per order; an order sent again after the broker
    confirmed it never got it counts from that send); an id it does not name was owned at a
    time the journal cannot say, so on every day. A venue whose order numbers may repeat across
    days ignores an owned number only on the days of its owners' sends.
    """


@hookspec(firstresult=True)
def orderlane_lookup_orders(
    ctx: BrokerContext,
    orders: Sequence[Order],
    windows: Mapping[str, LookupWindow],
    owned_broker_ids: frozenset[str],
    owned_windows: Mapping[str, tuple[LookupWindow, ...]],
) -> Mapping[str, LookupResult]:
    """Look many orders up at once, in one pass over the broker's order inquiry (paged).

    Implemented by: adapters with the ``lookup`` capability whose broker lists the day's orders
    in one inquiry (optional; without it the engine calls ``orderlane_lookup_order`` per order).
    Called by recovery for every order left SUBMITTING or UNKNOWN without a broker id, and by
    the tracker for the UNKNOWN orders due for a lookup. ``windows`` maps each ``order.id`` to
    when it may have been sent; ``owned_broker_ids`` are the broker ids journal orders of the
    account already own, and ``owned_windows`` when their owners were sent (as for
    ``orderlane_lookup_order``). Each page takes a permit. Returns a mapping from ``order.id`` to
    ``Found``, ``Absent`` or ``CannotTell``, each under the rules of ``orderlane_lookup_order``;
    a broker order that several of ``orders`` could own is a unique match for none of them (each
    is ``CannotTell``), and no broker order is ``Found`` for two. An order missing from the
    mapping is ``CannotTell``.
    """


@hookspec(firstresult=True)
def orderlane_order_updates(ctx: BrokerContext) -> AsyncIterator[OrderSnapshot | StreamGap]:
    """Return an async iterator of pushed order snapshots (cumulative, with broker order ids).

    Implemented by: adapters with the ``push`` capability. The tracker consumes it while the
    engine is open. After a reconnect (or a message it could not parse) the adapter yields a
    :class:`~orderlane.broker.StreamGap` and the tracker polls every open order once to close the
    gap; the adapter resynchronises its own running totals. When the iterator ends, the tracker
    falls back to polling.
    """


# --------------------------------------------------------------------------------------------
# Retry (any plugin; synchronous; return None to decline)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def orderlane_classify_error(operation: Operation, error: BaseException) -> ErrorClass | None:
    """Say whether ``error`` raised by ``operation`` is retryable, ambiguous or final.

    Implemented by: adapters that know their broker's codes, and the core's default (``trylast``):
    connection and rate-limit errors retry, rejections are final, timeouts after sending and
    unexpected errors on a place are ambiguous. Return ``None`` to let the next plugin decide.
    """


@hookspec(firstresult=True)
def orderlane_retry_policy(operation: Operation) -> RetryConfig | None:
    """Return the :class:`~orderlane.retry.RetryConfig` for ``operation``, or ``None`` to decline.

    The core default (``trylast``) is the engine configuration's policy: 3 attempts, 1 s then 2 s.
    """


# --------------------------------------------------------------------------------------------
# Limiter (any plugin; firstresult; return None to decline)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def orderlane_rate_limiter(
    name: str,
    key: str,
    limits: Sequence[RateLimit],
    clock: Clock,
    margin: float,
    options: Mapping[str, object],
) -> RateLimiter | None:
    """Supply the rate limiter of the broker credential ``key``.

    Implemented by: limiter plugins (``orderlane-redis``), and the core's default (``trylast``),
    the in-process sliding log, which answers for ``name == "in-process"``. Called once when an
    engine starts, before the adapter starts. ``name`` is ``EngineConfig.rate_limiter`` (a
    plugin answers only for its own name and returns ``None`` otherwise), ``limits`` what the
    adapter declares (or the configuration's override), ``margin`` the fraction each window is
    counted longer, ``options`` ``EngineConfig.rate_limiter_options`` (may hold a password: never
    log it). Returns an object with the :class:`~orderlane.limiter.RateLimiter` methods. The
    engine closes it when the engine closes. Synchronous: connect lazily, on the first acquire.
    """


# --------------------------------------------------------------------------------------------
# Observers (broadcast, after commit)
# --------------------------------------------------------------------------------------------


@hookspec
def orderlane_validate_order(order: Order) -> None:
    """Check an order before anything is stored; raise any exception to veto it.

    Called for every new order, before it is committed. A veto makes ``engine.execute`` raise
    :class:`~orderlane.errors.OrderVetoedError` and nothing is stored or sent.
    """


@hookspec
def orderlane_order_created(order: Order) -> None:
    """An order was committed in state CREATED."""


@hookspec
def orderlane_order_submitted(order: Order) -> None:
    """The broker accepted the order (it now has a broker order id)."""


@hookspec
def orderlane_order_status_changed(order: Order, previous: OrderStatus) -> None:
    """The order's status changed from ``previous`` to ``order.status``."""


@hookspec
def orderlane_order_filled(order: Order, fill: Fill) -> None:
    """A fill was recorded for the order (partial or final; late fills too)."""


@hookspec
def orderlane_position_changed(position: Position, fill: Fill, realized_pnl: Decimal) -> None:
    """A fill moved a position; ``realized_pnl`` is what this fill realized (zero if opening),
    the seed's figure (gross minus its closing commission); ``fill.gross_pnl`` and
    ``fill.net_pnl`` (net of the opening fees released too) carry the other two."""


@hookspec
def orderlane_retry_scheduled(
    order: Order | None, operation: Operation, attempt: int, delay: float, error: str
) -> None:
    """Attempt ``attempt`` of ``operation`` failed retryably; the next comes after ``delay`` s."""


@hookspec
def orderlane_retry_exhausted(
    order: Order | None, operation: Operation, attempts: int, error: str
) -> None:
    """Every attempt of ``operation`` failed; the order (for a place) ends FAILED."""


@hookspec
def orderlane_order_timed_out(order: Order, submitted_at: datetime) -> None:
    """The order stayed open past the timeout; it was cancelled and ended FAILED."""


@hookspec
def orderlane_engine_started(engine: Any) -> None:
    """The :class:`~orderlane.Engine` has started: journal open, recovery done, tracker running,
    before any signal (typed ``Any`` here: hook specifications sit below the engine).

    For observers that read the engine's figures (``engine.stats()``, ``engine.tracker``) off
    the order's path, such as a metrics exporter that samples them. Called once per start, on
    the engine's event loop; may be ``async def``; an exception is logged and the engine runs on.
    """


@hookspec
def orderlane_engine_closing(engine: Any) -> None:
    """The engine is about to close (still open); called once per close, like
    ``orderlane_engine_started``. Stop here what started there."""


def _names(prefix_group: str) -> tuple[str, ...]:
    return tuple(name for name, group in _GROUPS.items() if group == prefix_group)


_GROUPS: dict[str, str] = {
    "orderlane_adapter_info": "adapter",
    "orderlane_rate_limits": "adapter",
    "orderlane_adapter_start": "adapter",
    "orderlane_adapter_stop": "adapter",
    "orderlane_place_order": "adapter",
    "orderlane_cancel_order": "adapter",
    "orderlane_order_status": "adapter",
    "orderlane_order_statuses": "adapter",
    "orderlane_lookup_order": "adapter",
    "orderlane_lookup_orders": "adapter",
    "orderlane_order_updates": "adapter",
    "orderlane_classify_error": "retry",
    "orderlane_retry_policy": "retry",
    "orderlane_rate_limiter": "limiter",
    "orderlane_validate_order": "observer",
    "orderlane_order_created": "observer",
    "orderlane_order_submitted": "observer",
    "orderlane_order_status_changed": "observer",
    "orderlane_order_filled": "observer",
    "orderlane_position_changed": "observer",
    "orderlane_retry_scheduled": "observer",
    "orderlane_retry_exhausted": "observer",
    "orderlane_order_timed_out": "observer",
    "orderlane_engine_started": "observer",
    "orderlane_engine_closing": "observer",
}

ADAPTER_HOOKS = _names("adapter")
RETRY_HOOKS = _names("retry")
LIMITER_HOOKS = _names("limiter")
OBSERVER_HOOKS = _names("observer")
