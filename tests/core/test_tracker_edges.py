"""The tracker at the edges: a cancel by hand of an UNKNOWN order, late executions after an
order ended, and one order's slow troubles that must not hold up the others."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from orderlane import Engine, EngineConfig, FakeClock, Order, OrderStatus, Signal
from orderlane.broker import BrokerContext, CancelResult
from orderlane.errors import BrokerConnectionError
from orderlane.hookspecs import hookimpl
from orderlane_mock import MockAdapter, MockVenue
from orderlane_mock.harness import MockHarness

BUY = Signal("005930", "BUY", 10)
OTHER = Signal("000660", "BUY", 5)


@asynccontextmanager
async def opened(adapter: Any, url: str, clock: FakeClock, **config: Any) -> AsyncIterator[Engine]:
    settings = EngineConfig(load_entry_point_plugins=False, **config)
    async with Engine.open(adapter, database_url=url, clock=clock, config=settings) as engine:
        yield engine


async def held_order(engine: Engine, venue: MockVenue) -> Order:
    """An order the venue accepted and holds open."""
    venue.hold_next()
    return await engine.execute(BUY)


async def stored(engine: Engine, order: Order) -> Order:
    found = await engine.get_order(order.id)
    assert found is not None
    return found


# ------------------------------------------------------------------ cancel an UNKNOWN order


async def test_an_unknown_order_with_a_broker_id_is_cancelled_by_hand_and_frees_its_symbol(
    sqlite_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    async with opened(MockAdapter(venue), sqlite_url, clock, instrument_hold_timeout=1.0) as e:
        order = await held_order(e, venue)
        venue.fail_next("connection", times=3, operation="cancel")  # every timeout cancel
        clock.advance(e.config.order_timeout)
        await e.tracker.poll_once()
        unknown = await stored(e, order)
        assert unknown.status is OrderStatus.UNKNOWN
        assert unknown.broker_order_id == order.broker_order_id
        held = await e.execute(BUY)  # the symbol is held meanwhile
        assert (held.status, held.attempts) == (OrderStatus.FAILED, 0)
        cancelled = await e.cancel(order.id)  # raised InvalidTransitionError before
        assert cancelled.status is OrderStatus.CANCELLED
        assert venue.orders[cancelled.broker_order_id or ""].status is OrderStatus.CANCELLED
        free = await e.execute(BUY)
        assert free.status is OrderStatus.FILLED


async def test_a_failed_cancel_of_an_unknown_order_leaves_it_unknown_and_held(
    sqlite_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    async with opened(MockAdapter(venue), sqlite_url, clock) as engine:
        order = await held_order(engine, venue)
        venue.fail_next("connection", times=6, operation="cancel")
        clock.advance(engine.config.order_timeout)
        await engine.tracker.poll_once()
        after = await engine.cancel(order.id)
        assert after.status is OrderStatus.UNKNOWN
        assert (await stored(engine, order)).status is OrderStatus.UNKNOWN


# ------------------------------------------------------------------ late fills


async def test_a_late_execution_after_a_timeout_lands_without_a_refresh(
    sqlite_url: str, clock: FakeClock
) -> None:
    harness = MockHarness()
    adapter = MockAdapter(harness.venue)
    async with opened(adapter, sqlite_url, clock) as engine:
        harness.hold_next()
        order = await engine.execute(BUY)
        clock.advance(engine.config.order_timeout)
        await engine.tracker.poll_once()
        assert (await stored(engine, order)).reason == "timeout"
        assert [o.id for o in engine.tracker.watched] == [order.id]
        for _ in range(3):  # quiet cycles: the venue has nothing new yet
            clock.advance(engine.config.late_fill_poll_interval)
            await engine.tracker.poll_once()
        harness.report_late_fill(order.broker_order_id or "", 3)
        clock.advance(engine.config.late_fill_poll_interval)
        await engine.tracker.poll_once()
        after = await stored(engine, order)
        assert (after.status, after.reason, after.filled_quantity) == (
            OrderStatus.FAILED,
            "timeout",
            3,
        )
        position = await engine.position("005930")
        assert (position.quantity, position.average_price) == (3, Decimal(72000))


async def test_the_late_fill_watch_ends_with_its_window(
    sqlite_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    async with opened(MockAdapter(venue), sqlite_url, clock, late_fill_window=60.0) as engine:
        order = await held_order(engine, venue)
        cancelled = await engine.cancel(order.id)
        assert cancelled.status is OrderStatus.CANCELLED
        assert [o.id for o in engine.tracker.watched] == [order.id]
        clock.advance(30)
        await engine.tracker.poll_once()
        assert len(engine.tracker.watched) == 1
        clock.advance(31)
        inquiries = len(venue.requests_of("status"))
        await engine.tracker.poll_once()
        assert engine.tracker.watched == []
        assert len(venue.requests_of("status")) == inquiries


async def test_the_late_fill_watch_lasts_until_the_venues_day_ends(
    sqlite_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    # The fake clock starts at midnight UTC, 09:00 in Seoul: the day there ends in 15 hours.
    adapter = MockAdapter(venue, timezone="Asia/Seoul")
    async with opened(adapter, sqlite_url, clock) as engine:
        order = await held_order(engine, venue)
        await engine.cancel(order.id)
        clock.advance(15 * 3600 - 1)
        await engine.tracker.poll_once()
        assert len(engine.tracker.watched) == 1
        clock.advance(1)
        await engine.tracker.poll_once()
        assert engine.tracker.watched == []


# ------------------------------------------------------------------ one order's troubles


class StuckCancels(MockAdapter):
    """Every cancel hangs (a broker that takes its time to answer) until ``answer`` is set;
    the first one runs the ``on_cancel`` steps."""

    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.on_cancel: list[Callable[[], object]] = []
        self.answer = asyncio.Event()

    @hookimpl
    async def orderlane_cancel_order(self, ctx: BrokerContext, order: Order) -> CancelResult:
        while self.on_cancel:
            self.on_cancel.pop(0)()
        await self.answer.wait()
        raise BrokerConnectionError("connection refused")


async def test_a_cancel_that_hangs_delays_no_other_orders_fill(
    sqlite_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    adapter = StuckCancels(venue)
    async with opened(adapter, sqlite_url, clock, track=True, order_timeout=10.0) as engine:
        venue.hold_next(2)
        stuck = await engine.execute(BUY)
        clock.advance(5)
        other = await engine.execute(OTHER)
        booked = asyncio.Event()

        def on_status(order: Order, previous: OrderStatus) -> None:
            if order.id == other.id and order.status is OrderStatus.FILLED:
                booked.set()

        engine.add_status_handler(on_status)
        adapter.on_cancel.append(lambda: venue.fill(other.broker_order_id or ""))
        # The stuck order's cancel is out and unanswered; the other order's fill is booked by
        # the next cycles all the same (before, every cycle waited behind that cancel).
        await asyncio.wait_for(booked.wait(), 10.0)
        assert not adapter.answer.is_set()
        assert (await stored(engine, stuck)).status is OrderStatus.PENDING_CANCEL
        adapter.answer.set()
