"""The orderlane adapter for :class:`~orderlane_mock.venue.MockVenue`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from orderlane import (
    Absent,
    AdapterInfo,
    BrokerContext,
    CancelAccepted,
    CannotTell,
    Capability,
    Found,
    LookupWindow,
    NothingToCancel,
    Order,
    OrderSnapshot,
    RateLimit,
    RequestKind,
    hookimpl,
)
from orderlane.broker import CancelResult, LookupResult
from orderlane.errors import ConfigurationError, OrderNotFoundError
from orderlane_mock.venue import MockVenue

__all__ = ["MockAdapter", "create_adapter"]

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


def _version() -> str:
    try:
        return version("orderlane-mock")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class MockAdapter:
    """Sends orders to a :class:`MockVenue`, taking a rate-limit permit for every request."""

    name = "mock"

    def __init__(
        self,
        venue: MockVenue | None = None,
        *,
        latency: float = 0.0,
        rate_limits: Sequence[RateLimit] = (),
        timezone: str = "UTC",
    ) -> None:
        self.venue = venue or MockVenue()
        self.latency = latency
        self.rate_limits = tuple(rate_limits)
        self.timezone = timezone

    def __repr__(self) -> str:
        return f"MockAdapter(latency={self.latency}, orders={len(self.venue.orders)})"

    async def _request(self, ctx: BrokerContext, kind: RequestKind) -> None:
        await ctx.permit(kind)
        if self.latency:
            await ctx.clock.sleep(self.latency)

    @hookimpl
    def orderlane_adapter_info(self) -> AdapterInfo:
        capabilities = CAPABILITIES
        if self.venue.dedupe_client_ids:
            capabilities = capabilities | {Capability.CLIENT_ORDER_ID}
        return AdapterInfo(
            name="mock",
            version=_version(),
            capabilities=capabilities,
            timezone=self.timezone,
            new_order_lag=timedelta(0),
            description="In-process scriptable venue for tests, demos and strategy development",
        )

    @hookimpl
    def orderlane_rate_limits(self, ctx: BrokerContext) -> Sequence[RateLimit]:
        return self.rate_limits

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        await self._request(ctx, RequestKind.ORDER)
        return self.venue.place(order)

    @hookimpl
    async def orderlane_cancel_order(self, ctx: BrokerContext, order: Order) -> CancelResult:
        if order.broker_order_id is None:
            return NothingToCancel("the order never reached the venue")
        await self._request(ctx, RequestKind.CANCEL)
        try:
            snapshot = self.venue.cancel(order.broker_order_id)
        except OrderNotFoundError:
            return NothingToCancel("the venue has no such order")
        if snapshot is None:
            return NothingToCancel("nothing left to cancel")
        return CancelAccepted(snapshot)

    @hookimpl
    async def orderlane_order_status(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        if order.broker_order_id is None:
            raise OrderNotFoundError(f"order {order.id} has no broker order id")
        await self._request(ctx, RequestKind.INQUIRY)
        return self.venue.status(order.broker_order_id)

    @hookimpl
    async def orderlane_order_statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> Mapping[str, OrderSnapshot]:
        by_broker_id = {o.broker_order_id: o.id for o in orders if o.broker_order_id}
        if not by_broker_id:
            return {}
        await self._request(ctx, RequestKind.INQUIRY)
        snapshots = self.venue.statuses(list(by_broker_id))
        return {by_broker_id[broker_id]: snap for broker_id, snap in snapshots.items()}

    @hookimpl
    async def orderlane_lookup_order(
        self,
        ctx: BrokerContext,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
    ) -> LookupResult:
        await self._request(ctx, RequestKind.INQUIRY)
        found = self.venue.lookup(order.id)
        if found == "cannot_tell":
            return CannotTell("the venue's inquiry did not settle it")
        if found is None:
            return Absent()
        assert not isinstance(found, str)
        if found.broker_order_id in owned_broker_ids:
            return CannotTell("the matching venue order belongs to another journal order")
        return Found(found.snapshot())


def create_adapter(options: Mapping[str, Any]) -> MockAdapter:
    """Entry point ``mock``: options ``venue`` (a MockVenue), or ``quote`` and ``commission``
    to build one; ``latency`` (seconds), ``rate_limit`` (requests per ``rate_period`` seconds,
    default 1), ``timezone``."""
    known = {"venue", "quote", "commission", "latency", "rate_limit", "rate_period", "timezone"}
    unknown = set(options) - known
    if unknown:
        raise ConfigurationError(
            f"unknown mock adapter options {sorted(unknown)}; known: {sorted(known)}"
        )
    venue = options.get("venue")
    if venue is not None and not isinstance(venue, MockVenue):
        raise ConfigurationError("the mock adapter's 'venue' option must be a MockVenue")
    if venue is None:
        try:
            venue = MockVenue(
                quote=Decimal(str(options.get("quote", 72000))),
                commission=Decimal(str(options.get("commission", 100))),
                id_prefix=f"M{secrets.token_hex(3).upper()}-",
            )
        except ArithmeticError:
            raise ConfigurationError(
                "mock 'quote' and 'commission' must be decimal numbers"
            ) from None
    rate_limit = options.get("rate_limit")
    period = float(options.get("rate_period", 1.0))
    limits = (RateLimit(int(rate_limit), period),) if rate_limit else ()
    return MockAdapter(
        venue,
        latency=float(options.get("latency", 0.0)),
        rate_limits=limits,
        timezone=str(options.get("timezone", "UTC")),
    )
