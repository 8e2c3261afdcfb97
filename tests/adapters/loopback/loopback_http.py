"""A small orderlane adapter for a broker reached over HTTP, with httpx's async client.

It is what a third party writes for its own broker: JSON requests, the broker's order records
mapped to ``OrderSnapshot``, and httpx's exceptions mapped to orderlane's error tree by whether
the request may have reached the broker. Its broker here is a fake one on loopback
(``loopback_venue``); the conformance suite runs it through a harness, as the guide describes.

Options (all optional, so the adapter can be listed and described without them):
``base_url`` (required to trade: checked when the engine starts), ``timeout`` (seconds an answer
may take, real time), ``rate_limit``/``rate_period``, ``page_size`` (orders per inquiry page),
``client_order_id`` (the broker deduplicates client order ids) and ``transport`` (an httpx
transport, for tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

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
    RequestKind,
    hookimpl,
)
from orderlane.broker import CancelResult, LookupResult
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
#: The broker's refusal codes and the rejection each one is.
REJECTIONS: dict[str, type[OrderRejectedError]] = {
    "INSUFFICIENT_FUNDS": InsufficientBalanceError,
    "UNKNOWN_SYMBOL": InvalidSymbolError,
    "INVALID_ORDER": OrderValidationError,
    "REJECTED": OrderRejectedError,
}
STATES = {
    "accepted": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}
OPTIONS = {"base_url", "timeout", "rate_limit", "rate_period", "page_size", "client_order_id"}


class LoopbackAdapter:
    name = "loopback-http"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        self.page_size = int(options.get("page_size", 100))
        self.client: httpx.AsyncClient | None = None

    @hookimpl
    def orderlane_adapter_info(self) -> AdapterInfo:
        capabilities = CAPABILITIES
        if self.options.get("client_order_id"):
            capabilities |= {Capability.CLIENT_ORDER_ID}
        return AdapterInfo(
            name=self.name,
            version="0.1.0",
            capabilities=capabilities,
            timezone="Asia/Seoul",
            new_order_lag=timedelta(0),
            page_size=self.page_size,
            description="A broker reached over HTTP (httpx)",
        )

    @hookimpl
    def orderlane_rate_limits(self, ctx: BrokerContext) -> Sequence[Any]:
        return declared_rate_limits(self.options)

    @hookimpl
    async def orderlane_adapter_start(self, ctx: BrokerContext) -> None:
        if not self.options.get("base_url"):
            raise ConfigurationError("the loopback-http adapter needs the option base_url")
        timeout = float(self.options.get("timeout", 5.0))
        self.client = httpx.AsyncClient(
            base_url=str(self.options["base_url"]),
            timeout=httpx.Timeout(timeout),
            transport=self.options.get("transport"),
        )

    @hookimpl
    async def orderlane_adapter_stop(self, ctx: BrokerContext) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def call(
        self, ctx: BrokerContext, kind: RequestKind, method: str, path: str, **request: Any
    ) -> Any:
        """One request the broker counts: a permit, the request, its answer as JSON."""
        assert self.client is not None, "the engine starts the adapter before any request"
        await ctx.permit(kind)
        try:
            answer = await self.client.request(method, path, **request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise BrokerConnectionError(f"not sent: {error!r}") from error  # nothing left
        except httpx.TimeoutException as error:
            raise BrokerTimeoutError(f"no answer: {error!r}", request_sent=True) from error
        except httpx.TransportError as error:
            raise BrokerConnectionError(f"dropped: {error!r}", request_sent=True) from error
        try:
            body = answer.json()
        except ValueError as error:
            raise BrokerError(f"the answer does not parse: {answer.text[:60]!r}") from error
        if answer.status_code == 429:
            raise BrokerRateLimitError(body.get("message", "too many requests"))
        if answer.status_code == 404:
            raise OrderNotFoundError(body.get("message", "no such order"))
        if answer.status_code in (409, 422):
            code = body.get("code", "REJECTED")
            raise REJECTIONS.get(code, OrderRejectedError)(body.get("message", code))
        if answer.status_code >= 400:
            raise BrokerError(f"HTTP {answer.status_code}: {body}")
        return body

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        request = {
            "client_id": order.id,
            "symbol": order.symbol,
            "side": order.side.value,
            "qty": order.quantity,
            "type": order.order_type.value,
            "price": None if order.limit_price is None else str(order.limit_price),
        }
        answer = await self.call(ctx, RequestKind.ORDER, "POST", "/orders", json=request)
        return parse_record(answer)

    @hookimpl
    async def orderlane_cancel_order(self, ctx: BrokerContext, order: Order) -> CancelResult:
        if order.broker_order_id is None:
            return NothingToCancel("the order never reached the broker")
        path = f"/orders/{order.broker_order_id}/cancel"
        try:
            answer = await self.call(ctx, RequestKind.CANCEL, "POST", path)
        except (OrderNotFoundError, OrderRejectedError) as error:
            return NothingToCancel(str(error))
        return CancelAccepted(parse_record(answer))

    @hookimpl
    async def orderlane_order_status(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        if order.broker_order_id is None:
            raise OrderNotFoundError(f"order {order.id} has no broker order id")
        path = f"/orders/{order.broker_order_id}"
        return parse_record(await self.call(ctx, RequestKind.INQUIRY, "GET", path))

    @hookimpl
    async def orderlane_order_statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> Mapping[str, OrderSnapshot | BrokerError]:
        ids = {order.broker_order_id: order.id for order in orders if order.broker_order_id}
        found: dict[str, OrderSnapshot | BrokerError] = {}
        page, more = 0, bool(ids)
        while more:  # one request, and one permit, per page
            query = {"order_nos": list(ids), "page": page}
            answer = await self.call(ctx, RequestKind.INQUIRY, "POST", "/orders/query", json=query)
            for record in answer["orders"]:
                try:
                    found[ids[record["order_no"]]] = parse_record(record)
                except BrokerError as error:  # that order's problem alone: the others go on
                    found[ids[record["order_no"]]] = error
            page, more = page + 1, bool(answer["more"])
        return found

    @hookimpl
    async def orderlane_lookup_order(
        self,
        ctx: BrokerContext,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
    ) -> LookupResult:
        # A request that fails raises like any other: the engine retries the lookup and, if it
        # still fails, counts it as "cannot tell". An answer that does not settle it says so.
        params = {"client_id": order.id}
        answer = await self.call(ctx, RequestKind.INQUIRY, "GET", "/orders", params=params)
        if not answer["complete"]:
            return CannotTell("the broker's inquiry answered incomplete")
        records = [r for r in answer["orders"] if r["order_no"] not in owned_broker_ids]
        if not records:
            return Absent()
        if len(records) > 1:
            return CannotTell(f"{len(records)} broker orders carry this client id")
        return Found(parse_record(records[0]))

    @hookimpl
    async def orderlane_lookup_orders(
        self,
        ctx: BrokerContext,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned_broker_ids: frozenset[str],
    ) -> Mapping[str, LookupResult]:
        asked = [order.id for order in orders]
        found: dict[str, Any] = {}
        unsettled: set[str] = set()
        page, more = 0, bool(asked)
        while more:  # one request, and one permit, per page of the day's orders
            query = {"client_ids": asked, "page": page}
            answer = await self.call(ctx, RequestKind.INQUIRY, "POST", "/orders/lookup", json=query)
            for client_id, record in answer["orders"].items():
                found.setdefault(client_id, record)
            unsettled.update(answer["unsettled"])
            page, more = page + 1, bool(answer["more"])
        results: dict[str, LookupResult] = {}
        for client_id in asked:
            record = found.get(client_id)
            if client_id in unsettled:
                results[client_id] = CannotTell("the broker's inquiry did not settle it")
            elif record is None:
                results[client_id] = Absent()
            elif record["order_no"] in owned_broker_ids:
                results[client_id] = CannotTell("the matching broker order belongs to another")
            else:
                results[client_id] = Found(parse_record(record))
        return results


def money(text: Any) -> Decimal:
    """An amount from the broker's decimal text; never from a float."""
    if not isinstance(text, str):
        raise TypeError(f"an amount must be decimal text, got {text!r}")
    return Decimal(text)


def parse_record(record: Any) -> OrderSnapshot:
    """The broker's order record as a cumulative snapshot; BrokerError if it does not parse."""
    try:
        return OrderSnapshot(
            status=STATES[record["state"]],
            broker_order_id=record["order_no"],
            filled_quantity=int(record["filled_qty"]),
            filled_notional=money(record["filled_amount"]),
            commission=money(record["fees"]),
            broker_time=datetime.fromisoformat(record["time"]),
            executions=tuple(
                Execution(
                    fill_id=e["exec_id"],
                    quantity=int(e["qty"]),
                    price=money(e["price"]),
                    commission=money(e["fee"]),
                    executed_at=datetime.fromisoformat(e["time"]),
                )
                for e in record["executions"]
            ),
            reason=record["message"],
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise BrokerError(f"the broker's order record does not parse: {error!r}") from error


def create_adapter(options: Mapping[str, Any]) -> LoopbackAdapter:
    """Entry point ``loopback-http``. Takes empty options (the adapter is then described, not
    started); checks the ones it is given."""
    unknown = set(options) - OPTIONS - {"transport"}
    if unknown:
        raise ConfigurationError(f"unknown loopback-http adapter options: {sorted(unknown)}")
    declared_rate_limits(options)  # a malformed limit fails here, not at start
    return LoopbackAdapter(options)
