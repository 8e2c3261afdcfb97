"""The orderlane adapter: hooks that turn the venue's wire format into orderlane's types.

Each hook takes a rate-limit permit before every request the venue counts, calls the venue, and
maps what came back: records become :class:`~orderlane.OrderSnapshot`, transport trouble and
refusal codes become the errors of :mod:`orderlane.errors`, which decide what the engine does
next (retry, look the order up, or give up).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from orderlane import (
    Absent,
    AdapterInfo,
    BrokerContext,
    CancelAccepted,
    CannotTell,
    Capability,
    Execution,
    Found,
    LookupWindow,
    NothingToCancel,
    Order,
    OrderSnapshot,
    OrderStatus,
    RateLimit,
    RequestKind,
    hookimpl,
)
from orderlane.contract import CancelResult, LookupResult
from orderlane.errors import (
    BrokerConnectionError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidSymbolError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderValidationError,
)
from orderlane.testing.venue import declared_rate_limits

from orderlane_adapter_template.venue import PAGE_SIZE, TemplateVenue, VenueError

__all__ = ["CAPABILITIES", "TemplateAdapter", "create_adapter"]

#: What this adapter really does; the conformance suite skips the rows needing anything else.
CAPABILITIES = frozenset(
    {
        Capability.CANCEL,
        Capability.PARTIAL_FILLS,
        Capability.LOOKUP,
        Capability.BATCH_STATUS,
        Capability.MARKET_ORDERS,
        Capability.LIMIT_ORDERS,
    }
)

#: The venue's refusal codes and the rejection each one is (never retried).
_REJECTIONS: dict[str, type[OrderRejectedError]] = {
    "INSUFFICIENT_FUNDS": InsufficientBalanceError,
    "UNKNOWN_SYMBOL": InvalidSymbolError,
    "INVALID_ORDER": OrderValidationError,
}

_STATES = {
    "accepted": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}


class TemplateAdapter:
    """The plugin object: one per engine, built by :func:`create_adapter`."""

    name = "template"

    def __init__(self, venue: TemplateVenue, rate_limits: Sequence[RateLimit] = ()) -> None:
        self.venue = venue
        self.rate_limits = tuple(rate_limits)

    @hookimpl
    def orderlane_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(
            name="template",
            version="0.1.0",
            capabilities=CAPABILITIES,
            timezone="UTC",
            new_order_lag=timedelta(0),  # the venue's inquiry sees a new order at once
            page_size=PAGE_SIZE,
            description="The adapter template: an in-process venue to copy from",
        )

    @hookimpl
    def orderlane_rate_limits(self, ctx: BrokerContext) -> Sequence[RateLimit]:
        return self.rate_limits

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        await ctx.permit(RequestKind.ORDER)
        request = {
            "client_id": order.id,  # lets a lookup find the order after a lost answer
            "symbol": order.symbol,
            "side": order.side.value,
            "qty": order.quantity,
            "type": order.order_type.value,
            "price": None if order.limit_price is None else str(order.limit_price),
        }
        try:
            answer = self.venue.submit(request)
        except ConnectionRefusedError as error:
            raise BrokerConnectionError(str(error)) from error  # nothing was sent: retried
        except TimeoutError as error:
            raise BrokerTimeoutError(str(error), request_sent=True) from error  # looked up
        except ConnectionResetError as error:
            raise BrokerConnectionError(str(error), request_sent=True) from error  # looked up
        except VenueError as error:
            raise _refusal(error) from error
        await self.venue.answer_arrives()
        return parse_record(answer)

    @hookimpl
    async def orderlane_cancel_order(self, ctx: BrokerContext, order: Order) -> CancelResult:
        if order.broker_order_id is None:
            return NothingToCancel("the order never reached the venue")
        await ctx.permit(RequestKind.CANCEL)
        try:
            answer = self.venue.cancel(order.broker_order_id)
        except ConnectionRefusedError as error:
            raise BrokerConnectionError(str(error)) from error  # not confirmed: retried
        except VenueError as error:
            if error.code in ("NOT_OPEN", "NO_SUCH_ORDER"):
                return NothingToCancel(error.message)
            raise _refusal(error) from error
        return CancelAccepted(parse_record(answer))

    @hookimpl
    async def orderlane_order_status(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        if order.broker_order_id is None:
            raise OrderNotFoundError(f"order {order.id} has no broker order id")
        await ctx.permit(RequestKind.INQUIRY)
        try:
            return parse_record(self.venue.order(order.broker_order_id))
        except VenueError as error:
            raise _refusal(error) from error

    @hookimpl
    async def orderlane_order_statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> Mapping[str, OrderSnapshot | BrokerError]:
        ids = {order.broker_order_id: order.id for order in orders if order.broker_order_id}
        numbers = list(ids)
        snapshots: dict[str, OrderSnapshot | BrokerError] = {}
        for start in range(0, len(numbers), PAGE_SIZE):
            await ctx.permit(RequestKind.INQUIRY)  # one permit per page: the venue counts pages
            try:
                page = self.venue.orders(numbers[start : start + PAGE_SIZE])
            except VenueError as error:
                raise _refusal(error) from error
            for record in page:
                number = record.get("order_no")
                order_id = ids.get(number) if isinstance(number, str) else None
                if order_id is None:
                    continue  # not one of the orders asked about
                try:
                    snapshots[order_id] = parse_record(record)
                except BrokerError as error:
                    # One record that does not parse is that order's problem alone: the engine
                    # leaves it as it is and books the others.
                    snapshots[order_id] = error
        return snapshots

    @hookimpl
    async def orderlane_lookup_order(
        self,
        ctx: BrokerContext,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
    ) -> LookupResult:
        await ctx.permit(RequestKind.INQUIRY)
        # A request that fails raises, as in every hook: the engine retries the lookup (and
        # the limiter slows down on a rate-limit answer); one that still fails is "cannot tell".
        try:
            answer = self.venue.find(order.id)
        except TimeoutError as error:
            raise BrokerTimeoutError(str(error)) from error
        except ConnectionError as error:
            raise BrokerConnectionError(str(error)) from error
        except VenueError as error:
            raise _refusal(error) from error
        if not answer["complete"]:  # an answer that does not settle it
            return CannotTell("the venue's inquiry answered incomplete")
        return _judge(answer["orders"], owned_broker_ids)

    @hookimpl
    async def orderlane_lookup_orders(
        self,
        ctx: BrokerContext,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned_broker_ids: frozenset[str],
    ) -> Mapping[str, LookupResult]:
        # Recovery and the tracker look many orders up at once: one pass over the day's
        # orders costs pages, where one lookup per order would cost a request each.
        records: list[dict[str, Any]] = []
        page, more = 0, True
        while more:
            await ctx.permit(RequestKind.INQUIRY)  # one permit per page
            try:
                chunk, more = self.venue.day_orders(page)
            except (TimeoutError, ConnectionError, VenueError) as error:
                failed = CannotTell(f"the venue's inquiry failed: {error}")
                return {order.id: failed for order in orders}
            records.extend(chunk)
            page += 1
        return {
            order.id: _judge([r for r in records if r["client_id"] == order.id], owned_broker_ids)
            for order in orders
        }


def _judge(records: list[dict[str, Any]], owned: frozenset[str]) -> LookupResult:
    """The venue's records under ``order``'s client id, as a lookup's answer."""
    candidates = [r for r in records if r["order_no"] not in owned]
    if not candidates:
        return Absent()  # the inquiry is authoritative and the venue has no lag
    if len(candidates) > 1:
        return CannotTell(f"{len(candidates)} venue orders carry this client id")
    return Found(parse_record(candidates[0]))


def parse_record(answer: object) -> OrderSnapshot:
    """The venue's order record as a cumulative snapshot; BrokerError if it does not parse
    (after a place, the engine then looks the order up instead of guessing)."""
    if not isinstance(answer, dict):
        raise BrokerError(f"the venue's answer does not parse: {str(answer)[:80]!r}")
    try:
        executions = tuple(
            Execution(
                fill_id=e["exec_id"],
                quantity=int(e["qty"]),
                price=Decimal(e["price"]),
                commission=Decimal(e["fee"]),
                executed_at=datetime.fromisoformat(e["time"]),
            )
            for e in answer["executions"]
        )
        last = executions[-1].executed_at if executions else None
        return OrderSnapshot(
            status=_STATES[answer["state"]],
            broker_order_id=answer["order_no"],
            filled_quantity=int(answer["filled_qty"]),  # cumulative, never a delta
            filled_notional=Decimal(answer["filled_amount"]),
            commission=Decimal(answer["fees"]),
            broker_time=last or datetime.fromisoformat(answer["time"]),
            executions=executions,
            reason=answer["message"],
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise BrokerError(f"the venue's answer does not parse: {error!r}") from error


def _refusal(error: VenueError) -> BrokerError:
    """The orderlane error for a refusal code of the venue."""
    if error.code in _REJECTIONS:
        return _REJECTIONS[error.code](error.message)
    if error.code == "RATE_LIMITED":
        return BrokerRateLimitError(error.message)
    if error.code == "NO_SUCH_ORDER":
        return OrderNotFoundError(error.message)
    return BrokerError(str(error))  # an unknown code: after a place, the order is looked up


def create_adapter(options: Mapping[str, Any]) -> TemplateAdapter:
    """Entry point ``template`` of ``orderlane.adapters``. Options: ``venue`` (a TemplateVenue;
    default a fresh one), ``rate_limit`` (requests per ``rate_period`` seconds, default 1)."""
    unknown = set(options) - {"venue", "rate_limit", "rate_period"}
    if unknown:
        raise ConfigurationError(f"unknown template adapter options: {sorted(unknown)}")
    venue = options.get("venue")
    if venue is None:
        venue = TemplateVenue(id_prefix=f"T{secrets.token_hex(3).upper()}-")
    if not isinstance(venue, TemplateVenue):
        raise ConfigurationError("the template adapter's 'venue' option must be a TemplateVenue")
    return TemplateAdapter(venue, declared_rate_limits(options))
