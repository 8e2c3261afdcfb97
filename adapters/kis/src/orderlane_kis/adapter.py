"""The KIS adapters: ``kis-paper`` and ``kis-live``, one plugin class, two factories.

The plugin holds the settings, the REST client, the inquiry and the notice stream; each hook is a
few lines that hand over to the module of its role (:mod:`~orderlane_kis.execution`,
:mod:`~orderlane_kis.inquiry`, :mod:`~orderlane_kis.notices`). The factories do no I/O and need
no credentials, so ``orderlane adapters`` lists and describes both without any; the credentials,
and for ``kis-live`` the explicit opt-in, are checked when the engine starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from orderlane import (
    AdapterInfo,
    BrokerContext,
    Capability,
    LookupWindow,
    NothingToCancel,
    Order,
    OrderSnapshot,
    RateLimit,
    hookimpl,
)
from orderlane.contract import CancelResult, LookupResult, PushItem
from orderlane.errors import ConfigurationError, OrderNotFoundError
from orderlane_kis.config import PUBLIC_OPTIONS, KisSettings, Mode, load_settings
from orderlane_kis.daily import DayMap, TradingDay
from orderlane_kis.execution import cancel_order, place_order
from orderlane_kis.http import KisHttp
from orderlane_kis.inquiry import DailyOrders, Owned, order_day
from orderlane_kis.notices import NoticeStream, RunningTotals

__all__ = ["CAPABILITIES", "KisAdapter", "create_live_adapter", "create_paper_adapter"]

log = logging.getLogger("orderlane.kis")

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
        return version("orderlane-kis")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class KisAdapter:
    """KIS Open API, domestic stocks, for one account (paper or live)."""

    def __init__(
        self, settings: KisSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.http = KisHttp(settings, transport)
        #: Today in Korea by the engine's clock: what the adapter remembers per order is kept
        #: for its trading day (yesterday's is dropped as the day turns).
        self.today = TradingDay()
        #: KIS order number -> the branch (``KRX_FWDG_ORD_ORGNO``) a cancel must name.
        self.branches: DayMap[str, str] = DayMap(self.today)
        self.inquiry = DailyOrders(self.http, self.branches)
        self.totals = RunningTotals(self.today)
        self.notices = NoticeStream(self.http, self.totals)
        #: When each order was last sent from this process (lookups wait out KIS's lag).
        self._sent: DayMap[str, datetime] = DayMap(self.today)

    @property
    def name(self) -> str:
        return f"kis-{self.settings.mode}"

    def __repr__(self) -> str:
        return f"KisAdapter({self.name}, account={self.settings.masked_account!r})"

    # ---------------------------------------------------------------- execution

    @hookimpl
    def orderlane_adapter_info(self) -> AdapterInfo:
        capabilities = CAPABILITIES
        if self.settings.notices:
            capabilities = capabilities | {Capability.PUSH}
        live = self.settings.mode == "live"
        return AdapterInfo(
            name=self.name,
            version=_version(),
            capabilities=capabilities,
            timezone="Asia/Seoul",
            currency_decimals=0,  # KRW
            new_order_lag=timedelta(seconds=self.settings.new_order_lag),
            page_size=self.settings.page_size,
            # KRW has no minor unit: a limit price is a whole number of won on KRX's tick grid.
            price_places=0,
            public_options=PUBLIC_OPTIONS,
            description=(
                "KIS Open API, domestic stocks, LIVE trading (real money; refused unless enabled)"
                if live
                else "KIS Open API, domestic stocks, paper trading (모의투자)"
            ),
        )

    @hookimpl
    def orderlane_rate_limits(self, ctx: BrokerContext) -> Sequence[RateLimit]:
        settings = self.settings
        return [RateLimit(settings.rate_limit, settings.rate_period, f"KIS {settings.mode}")]

    @hookimpl
    async def orderlane_adapter_start(self, ctx: BrokerContext) -> None:
        self.settings.require()
        self.today.clock = ctx.clock
        log.info(
            "%s for account %s at %s",
            self.name,
            self.settings.masked_account,
            self.settings.rest_url,
        )
        await self.http.tokens.token(ctx)
        if self.settings.notices:
            self.notices.start(ctx)
            subscribed = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.timeout):
                    subscribed = await self.notices.first_attempt()
            if not subscribed:
                log.warning(
                    "KIS notices are not subscribed yet; the engine starts anyway and polls "
                    "once the stream is up, so no execution is missed"
                )

    @hookimpl
    async def orderlane_adapter_stop(self, ctx: BrokerContext) -> None:
        await self.notices.stop()
        await self.http.aclose()

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        self._sent[order.id] = ctx.clock.now()
        return await place_order(self.http, ctx, order, self.branches)

    @hookimpl
    async def orderlane_cancel_order(self, ctx: BrokerContext, order: Order) -> CancelResult:
        broker_id = order.broker_order_id
        if broker_id is None:
            return NothingToCancel("the order never reached KIS")
        sent_on = order_day(order)
        if sent_on != self.today():
            # A cancel names its order by number alone, and a number may name another order
            # today: KIS's orders last their trading day, so this one is over anyway.
            return NothingToCancel(
                f"KIS order {broker_id} was sent on {sent_on.isoformat()}, an earlier trading "
                "day: it is over, and a cancel by its number could reach today's order of that "
                "number"
            )
        branch = self.branches.get(broker_id)
        if branch is None:
            await self.inquiry.statuses(ctx, [order])  # learns the branch from the order's row
            branch = self.branches.get(broker_id)
            if branch is None:
                return NothingToCancel(f"KIS's daily inquiry has no order {broker_id}")
        return await cancel_order(self.http, ctx, order, branch)

    # ---------------------------------------------------------------- tracking

    @hookimpl
    async def orderlane_order_status(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        snapshot = (await self.inquiry.statuses(ctx, [order])).get(order.id)
        if snapshot is None:
            raise OrderNotFoundError(f"KIS's daily inquiry has no order {order.broker_order_id}")
        return snapshot

    @hookimpl
    async def orderlane_order_statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> Mapping[str, OrderSnapshot]:
        snapshots = await self.inquiry.statuses(ctx, orders)
        answered_at = ctx.clock.now()  # the figures count nothing executed after this
        # The running totals are today's: an order sent on an earlier day (recovery the next
        # morning) must not start a total under a number a later day's order may carry.
        today = self.today()
        self.totals.resync(
            [snapshots[o.id] for o in orders if o.id in snapshots and order_day(o) == today],
            answered_at,
        )
        return snapshots

    @hookimpl
    async def orderlane_lookup_order(
        self,
        ctx: BrokerContext,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
        owned_windows: Mapping[str, tuple[LookupWindow, ...]],
    ) -> LookupResult:
        results = await self.orderlane_lookup_orders(
            ctx=ctx,
            orders=[order],
            windows={order.id: window},
            owned_broker_ids=owned_broker_ids,
            owned_windows=owned_windows,
        )
        return results[order.id]

    @hookimpl
    async def orderlane_lookup_orders(
        self,
        ctx: BrokerContext,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned_broker_ids: frozenset[str],
        owned_windows: Mapping[str, tuple[LookupWindow, ...]],
    ) -> Mapping[str, LookupResult]:
        return await self.inquiry.lookup(
            ctx,
            orders,
            windows,
            Owned(owned_broker_ids, owned_windows),
            timedelta(seconds=self.settings.new_order_lag),
            self._sent,
        )

    @hookimpl
    def orderlane_order_updates(self, ctx: BrokerContext) -> AsyncIterator[PushItem]:
        return self.notices.updates(ctx)


def _create(mode: Mode, options: Mapping[str, Any]) -> KisAdapter:
    settings = dict(options)
    transport = settings.pop("transport", None)
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise ConfigurationError("kis option 'transport' must be an httpx.AsyncBaseTransport")
    return KisAdapter(load_settings(mode, settings), transport)


def create_paper_adapter(options: Mapping[str, Any]) -> KisAdapter:
    """Entry point ``kis-paper``: KIS paper trading (settings in :mod:`orderlane_kis.config`;
    the option ``transport``, an httpx transport, carries the requests in tests)."""
    return _create("paper", options)


def create_live_adapter(options: Mapping[str, Any]) -> KisAdapter:
    """Entry point ``kis-live``: real money; starts only with ``live_trading`` naming the
    account (:meth:`~orderlane_kis.config.KisSettings.require`)."""
    return _create("live", options)
