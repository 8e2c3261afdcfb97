"""The orderlane adapter for :class:`~orderlane_mock.venue.MockVenue`.

With the option ``push`` it also streams the venue's order notices (``orderlane_order_updates``)
so an engine tracks orders without polling; its batch status walks the venue's paged inquiry,
taking a permit per page, as an adapter for a real broker must.
"""

from __future__ import annotations

import collections
import math
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal
from zoneinfo import ZoneInfo

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
from orderlane.contract import CancelResult, LookupResult, PushItem
from orderlane.errors import ConfigurationError, OrderNotFoundError
from orderlane.model import check_price
from orderlane.testing.venue import declared_rate_limits
from orderlane_mock.push import OrderUpdateFeed
from orderlane_mock.venue import MockVenue, VenueOrder

__all__ = ["MockAdapter", "create_adapter", "flag"]

#: Decimal places of a limit price the mock venue takes (prices like 72000.5 or 1.2345).
PRICE_PLACES = 4
#: The mock's options hold no secret: their values may appear in error messages.
PUBLIC_OPTIONS = frozenset(
    {"quote", "commission", "latency", "rate_limit", "rate_period", "timezone", "page_size"}
    | {"push", "client_order_id", "lookup"}
)

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
        push: bool = False,
    ) -> None:
        self.venue = venue or MockVenue()
        self.latency = latency
        self.rate_limits = tuple(rate_limits)
        self.timezone = timezone
        #: The venue's notices, queued while the adapter runs; None without the push option.
        self.updates = OrderUpdateFeed(self.venue.notices) if push else None

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
        if self.updates is not None:
            capabilities = capabilities | {Capability.PUSH}
        return AdapterInfo(
            name="mock",
            version=_version(),
            capabilities=capabilities,
            timezone=self.timezone,
            currency_decimals=0,  # KRW
            new_order_lag=timedelta(0),
            page_size=self.venue.page_size,
            description="In-process scriptable venue for tests, demos and strategy development",
            price_places=PRICE_PLACES,
            public_options=PUBLIC_OPTIONS,
        )

    @hookimpl
    def orderlane_rate_limits(self, ctx: BrokerContext) -> Sequence[RateLimit]:
        return self.rate_limits

    @hookimpl
    def orderlane_adapter_start(self, ctx: BrokerContext) -> None:
        if self.updates is not None:
            self.updates.connect()

    @hookimpl
    def orderlane_adapter_stop(self, ctx: BrokerContext) -> None:
        if self.updates is not None:
            self.updates.disconnect()

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        await self._request(ctx, RequestKind.ORDER)
        notices_first = self.venue.notices.take_answer_after_push()
        delay = self.venue.take_answer_delay()
        answer = self.venue.place(order)
        if delay is not None:
            await delay.wait()  # the venue has the order; its answer is slow
        if notices_first and self.updates is not None:
            # The notices are queued already; let the stream's reader act on them first.
            await self.updates.let_readers_run()
        return answer

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
        asked = list(by_broker_id)
        found: dict[str, OrderSnapshot] = {}
        page, more = 0, True
        while more:
            await self._request(ctx, RequestKind.INQUIRY)  # the broker counts every page
            snapshots, more = self.venue.statuses_page(asked, page)
            found.update((by_broker_id[broker_id], snap) for broker_id, snap in snapshots.items())
            page += 1
        return found

    @hookimpl
    def orderlane_order_updates(self, ctx: BrokerContext) -> AsyncIterator[PushItem]:
        if self.updates is None:
            return _no_updates()  # an ended stream: the tracker keeps polling
        return self.updates.stream()

    @hookimpl
    async def orderlane_lookup_order(
        self,
        ctx: BrokerContext,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
    ) -> LookupResult:
        await self._request(ctx, RequestKind.INQUIRY)
        if self.venue.lookup_by == "attributes":
            return _by_attributes(self.venue.lookup_like(order), owned_broker_ids)
        found = self.venue.lookup(order.id)
        if found == "cannot_tell":
            return CannotTell("the venue's inquiry did not settle it")
        if found is None:
            return Absent()
        assert not isinstance(found, str)
        if found.broker_order_id in owned_broker_ids:
            return CannotTell("the matching venue order belongs to another journal order")
        return Found(found.snapshot())

    @hookimpl
    async def orderlane_lookup_orders(
        self,
        ctx: BrokerContext,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned_broker_ids: frozenset[str],
    ) -> Mapping[str, LookupResult]:
        if self.venue.lookup_by == "attributes":
            return await self._lookup_many_by_attributes(ctx, orders, owned_broker_ids)
        asked = [order.id for order in orders]
        found: dict[str, Any] = {}
        page, more = 0, True
        while more:
            await self._request(ctx, RequestKind.INQUIRY)  # the broker counts every page
            answers, more = self.venue.lookup_page(asked, page)
            for client_id, answer in answers.items():
                found.setdefault(client_id, answer)
            page += 1
        results: dict[str, LookupResult] = {}
        for order in orders:
            answer = found.get(order.id)
            if answer == "cannot_tell":
                results[order.id] = CannotTell("the venue's inquiry did not settle it")
            elif answer is None:
                results[order.id] = Absent()
            elif answer.broker_order_id in owned_broker_ids:
                results[order.id] = CannotTell("the matching venue order belongs to another order")
            else:
                results[order.id] = Found(answer.snapshot())
        return results

    async def _lookup_many_by_attributes(
        self, ctx: BrokerContext, orders: Sequence[Order], owned: frozenset[str]
    ) -> dict[str, LookupResult]:
        """One pass over the day's orders, matched by intent; a venue order that two of
        ``orders`` could own settles neither (DESIGN §4)."""
        found: dict[str, list[VenueOrder]] = {order.id: [] for order in orders}
        scripted: dict[str, str] = {}
        page, more = 0, True
        while more:
            await self._request(ctx, RequestKind.INQUIRY)  # the broker counts every page
            answers, more = self.venue.lookup_like_page(orders, page, scripted)
            for order_id, held in answers.items():
                found[order_id] += [h for h in held if h.broker_order_id not in owned]
            page += 1
        claims = collections.Counter(h.broker_order_id for held in found.values() for h in held)
        results: dict[str, LookupResult] = {}
        for order in orders:
            held = found[order.id]
            if scripted.get(order.id) == "cannot_tell":
                results[order.id] = CannotTell("the venue's inquiry did not settle it")
            elif scripted.get(order.id) == "absent" or not held:
                results[order.id] = Absent()
            elif len(held) == 1 and claims[held[0].broker_order_id] == 1:
                results[order.id] = Found(held[0].snapshot())
            else:
                results[order.id] = CannotTell("several venue orders or orders match this intent")
        return results


def _by_attributes(
    found: list[VenueOrder] | Literal["cannot_tell"], owned_broker_ids: frozenset[str]
) -> LookupResult:
    """A lookup by intent: the one candidate no journal order owns is Found; none is Absent;
    several cannot be told apart."""
    if found == "cannot_tell":
        return CannotTell("the venue's inquiry did not settle it")
    candidates = [held for held in found if held.broker_order_id not in owned_broker_ids]
    if not candidates:
        return Absent()
    if len(candidates) > 1:
        return CannotTell(f"{len(candidates)} venue orders match the order's attributes")
    return Found(candidates[0].snapshot())


async def _no_updates() -> AsyncIterator[PushItem]:
    return
    yield  # pragma: no cover - makes this an async generator


def create_adapter(options: Mapping[str, Any]) -> MockAdapter:
    """Entry point ``mock``: options ``venue`` (a MockVenue), or ``quote`` and ``commission``
    to build one; ``latency`` (seconds), ``rate_limit`` (requests per ``rate_period`` seconds,
    default 1), ``timezone``; ``page_size`` (orders per page of the venue's inquiry, applied to
    the venue), ``push`` (stream the venue's order notices; default off), ``client_order_id``
    (the venue deduplicates client order ids and the adapter declares it; default off),
    ``lookup`` (``client_id``, the default, or ``attributes``: look orders up by intent, as
    brokers without client order ids do; applied to the venue)."""
    known = {"venue", "quote", "commission", "latency", "rate_limit", "rate_period", "timezone"}
    known |= {"page_size", "push", "client_order_id", "lookup"}
    unknown = set(options) - known
    if unknown:
        raise ConfigurationError(
            f"unknown mock adapter options {sorted(unknown)}; known: {sorted(known)}"
        )
    venue = options.get("venue")
    if venue is not None and not isinstance(venue, MockVenue):
        raise ConfigurationError("the mock adapter's 'venue' option must be a MockVenue")
    if venue is None:
        venue = MockVenue(
            quote=_money(options.get("quote", 72000), "quote", positive=True),
            commission=_money(options.get("commission", 100), "commission"),
            id_prefix=f"M{secrets.token_hex(3).upper()}-",
        )
    if "client_order_id" in options:
        venue.dedupe_client_ids = flag(options["client_order_id"], "client_order_id")
    if "page_size" in options:
        venue.page_size = _page_size(options["page_size"])
    if "lookup" in options:
        if options["lookup"] not in ("client_id", "attributes"):
            raise ConfigurationError(
                f"mock 'lookup' must be client_id or attributes, got {options['lookup']!r}"
            )
        venue.lookup_by = options["lookup"]
    return MockAdapter(
        venue,
        latency=_latency(options.get("latency", 0.0)),
        rate_limits=declared_rate_limits(options),
        timezone=_timezone(options.get("timezone", "UTC")),
        push=flag(options.get("push", False), "push"),
    )


def _latency(value: Any) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = math.nan
    if isinstance(value, bool) or not 0 <= seconds <= 60:  # NaN fails this too
        raise ConfigurationError(f"mock 'latency' must be seconds from 0 to 60, got {value!r}")
    return seconds


def _money(value: Any, name: str, *, positive: bool = False) -> Decimal:
    text = str(value).strip()
    try:
        amount = Decimal(text) if text.isascii() and "_" not in text else None
    except ArithmeticError:
        amount = None
    if (
        isinstance(value, bool)
        or amount is None
        or check_price(amount) is not None
        or amount < 0
        or (positive and amount == 0)
    ):
        least = "above 0" if positive else "0 or more"
        raise ConfigurationError(
            f"mock {name!r} must be a decimal number {least} (below 1E+20, at most 28 decimal "
            f"places), got {value!r}"
        )
    return amount


def _timezone(value: Any) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ValueError, LookupError, OSError):
        raise ConfigurationError(
            f"mock 'timezone' must be an IANA time zone such as UTC or Asia/Seoul, got {value!r}"
        ) from None
    return name


def _page_size(value: Any) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool) or size < 1 or str(size) != str(value).strip():
        raise ConfigurationError(f"mock 'page_size' must be a whole number above 0, got {value!r}")
    return size


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def flag(value: Any, name: str) -> bool:
    """A yes/no option, as a bool or as the text ``--adapter-option push=true`` passes."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ConfigurationError(f"mock {name!r} must be true or false, got {value!r}")
