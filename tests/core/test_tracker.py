"""The tracker: poll cycles, partial fills, broker-side ends, timeouts, the background loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from orderlane import Engine, EngineConfig, FakeClock, Order, OrderStatus, Signal, hookimpl
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)


class TimeoutRecorder:
    def __init__(self) -> None:
        self.timed_out: list[str] = []

    @hookimpl
    def orderlane_order_timed_out(self, order: Order) -> None:
        self.timed_out.append(order.id)


async def test_partial_then_full_fill_through_polls(engine: Engine, venue: MockVenue) -> None:
    venue.partial_fill_next(4)
    order = await engine.execute(BUY)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert [o.id for o in engine.tracker.orders] == [order.id]

    assert order.broker_order_id is not None
    venue.fill(order.broker_order_id, 6, price=73000)
    await engine.tracker.poll_once()

    stored = await engine.get_order(order.id)
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    assert stored.average_fill_price == Decimal(72600)
    assert (await engine.position("005930")).quantity == 10
    assert len(engine.tracker) == 0  # terminal orders leave the tracker


async def test_one_status_request_per_cycle_not_per_order(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next(30)
    for _ in range(30):
        await engine.execute(BUY)
    before = len(venue.requests_of("status"))
    await engine.tracker.poll_once()
    assert len(venue.requests_of("status")) - before == 1
    assert len(engine.tracker) == 30


async def test_broker_side_cancel_and_reject_end_the_order(
    engine: Engine, venue: MockVenue
) -> None:
    venue.hold_next(2)
    first = await engine.execute(BUY)
    second = await engine.execute(Signal("000660", "BUY", 1))
    assert first.broker_order_id is not None
    assert second.broker_order_id is not None
    venue.cancel_by_venue(first.broker_order_id, "market closed")
    venue.reject_open(second.broker_order_id, "price band")
    await engine.tracker.poll_once()

    first_after = await engine.get_order(first.id)
    second_after = await engine.get_order(second.id)
    assert first_after is not None
    assert second_after is not None
    assert (first_after.status, first_after.reason) == (OrderStatus.CANCELLED, "market closed")
    assert (second_after.status, second_after.reason) == (OrderStatus.REJECTED, "price band")


async def test_timeout_cancels_and_fails_the_order(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    recorder = TimeoutRecorder()
    engine.register(recorder)
    venue.hold_next()
    order = await engine.execute(BUY)

    clock.advance(299)
    await engine.tracker.poll_once()
    assert (await engine.get_order(order.id)).status is OrderStatus.SUBMITTED  # type: ignore[union-attr]
    assert venue.requests_of("cancel") == []

    clock.advance(1)
    await engine.tracker.poll_once()
    await engine.flush_events()
    after = await engine.get_order(order.id)
    assert after is not None
    assert (after.status, after.reason) == (OrderStatus.FAILED, "timeout")
    assert len(venue.requests_of("cancel")) == 1
    assert recorder.timed_out == [order.id]
    assert len(engine.tracker) == 0


async def test_timeout_keeps_partial_fills(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    venue.partial_fill_next(4)
    order = await engine.execute(BUY)
    clock.advance(300)
    await engine.tracker.poll_once()

    after = await engine.get_order(order.id)
    assert after is not None
    assert (after.status, after.reason, after.filled_quantity) == (OrderStatus.FAILED, "timeout", 4)
    assert (await engine.position("005930")).quantity == 4


async def test_a_fill_racing_the_timeout_cancel_wins(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    assert order.broker_order_id is not None
    venue.fill(order.broker_order_id)  # filled at the venue, not yet seen by the engine
    clock.advance(300)
    await engine.tracker.time_out(order.id)

    after = await engine.get_order(order.id)
    assert after is not None
    assert after.status is OrderStatus.FILLED
    assert (await engine.position("005930")).quantity == 10


async def test_an_unconfirmed_timeout_cancel_goes_unknown_then_settles(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    venue.fail_next("connection", times=3, operation="cancel")
    clock.advance(300)
    await engine.tracker.poll_once()

    unknown = await engine.get_order(order.id)
    assert unknown is not None
    assert unknown.status is OrderStatus.UNKNOWN
    assert unknown.reason is not None
    assert unknown.reason.startswith("timeout: cancel not confirmed")
    assert [o.id for o in engine.tracker.orders] == [order.id]  # never dropped

    # The next cycles: the broker still shows it open, the timeout cancels again, it ends.
    await engine.tracker.poll_once()
    await engine.tracker.poll_once()
    final = await engine.get_order(order.id)
    assert final is not None
    assert (final.status, final.reason) == (OrderStatus.FAILED, "timeout")


async def test_the_background_loop_polls_on_real_time(sqlite_url: str) -> None:
    venue = MockVenue()
    filled = asyncio.Event()

    def on_change(order: Order, previous: OrderStatus) -> None:
        if order.status is OrderStatus.FILLED:
            filled.set()

    config = EngineConfig(poll_interval=0.01)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, database_url=sqlite_url, config=config
    ) as engine:
        engine.add_status_handler(on_change)
        venue.hold_next()
        order = await engine.execute(BUY)
        assert order.broker_order_id is not None
        venue.fill(order.broker_order_id)
        await asyncio.wait_for(filled.wait(), timeout=5)
        assert engine.tracker.cycles >= 1


async def test_a_failing_status_inquiry_leaves_orders_as_they_were(
    engine: Engine, venue: MockVenue
) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    venue.fail_next("connection", operation="status")
    await engine.tracker.poll_once()
    assert await engine.get_order(order.id) == order
    assert len(engine.tracker) == 1


@pytest.mark.parametrize("track", [True, False])
async def test_tracking_can_be_switched(sqlite_url: str, track: bool) -> None:
    config = EngineConfig(track=track, poll_interval=0.01)
    async with Engine.open("mock", database_url=sqlite_url, config=config) as engine:
        await asyncio.sleep(0.05)
        assert (engine.tracker.cycles > 0) is track


async def test_a_thousand_open_orders_cost_one_request_per_page(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    venue.page_size = 100
    venue.hold_next(1000)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=sqlite_url
    ) as engine:
        orders = await asyncio.gather(
            *(engine.execute(Signal(f"{i % 50:06d}", "BUY", 1)) for i in range(1000))
        )
        assert {order.status for order in orders} == {OrderStatus.SUBMITTED}
        assert len(engine.tracker) == 1000
        assert engine.broker.info.page_size == 100

        before = len(venue.requests_of("status"))
        await engine.tracker.poll_once()
        assert len(venue.requests_of("status")) - before == 10  # pages, not orders

        for order in orders:
            assert order.broker_order_id is not None
            venue.fill(order.broker_order_id)
        await engine.tracker.poll_once()
        assert len(engine.tracker) == 0  # every order ended and left the tracker
        assert sum(p.quantity for p in await engine.positions()) == 1000


@contextlib.asynccontextmanager
async def pushing_engine(venue: MockVenue, url: str, **config: Any) -> AsyncIterator[Engine]:
    """An engine on ``venue`` with push, polling every 10 ms for timeouts and lookups, its
    safety poll a minute away; ``config``: more EngineConfig fields."""
    settings = EngineConfig(poll_interval=0.01, push_safety_interval=60, **config)
    options = {"venue": venue, "push": True}
    async with Engine.open(
        "mock", adapter_options=options, database_url=url, config=settings
    ) as engine:
        assert engine.tracker.push_active
        yield engine


async def test_with_push_timeouts_still_fire_on_time(sqlite_url: str) -> None:
    venue = MockVenue()
    ended = asyncio.Event()

    def on_change(order: Order, previous: OrderStatus) -> None:
        if order.status is OrderStatus.FAILED:
            ended.set()

    async with pushing_engine(venue, sqlite_url, order_timeout=0.1) as engine:
        engine.add_status_handler(on_change)
        venue.hold_next()
        order = await engine.execute(BUY)
        await asyncio.wait_for(ended.wait(), timeout=5)  # long before the 60 s safety poll
        after = await engine.get_order(order.id)
        assert after is not None
        assert (after.status, after.reason) == (OrderStatus.FAILED, "timeout")


async def test_a_gap_pushed_during_a_poll_is_polled_for_in_the_next_cycle(
    sqlite_url: str,
) -> None:
    """A push stream's gap that arrives while a status poll runs asks for one more poll: it
    is not cleared with the poll it came during (which may have read the venue before the gap),
    so what it may have missed is asked for within a cycle, not at the safety interval."""
    venue = MockVenue()
    inquiries: list[int] = []
    statuses, statuses_page = venue.statuses, venue.statuses_page

    def gap_once() -> None:
        inquiries.append(len(inquiries))
        if len(inquiries) == 2:  # the poll after the start's: a reconnect while it reads
            venue.reconnect_push()

    def counted_statuses(*args: Any, **kwargs: Any) -> Any:
        gap_once()
        return statuses(*args, **kwargs)

    def counted_page(*args: Any, **kwargs: Any) -> Any:
        gap_once()
        return statuses_page(*args, **kwargs)

    venue.statuses = counted_statuses  # type: ignore[method-assign]
    venue.statuses_page = counted_page  # type: ignore[method-assign]
    async with pushing_engine(venue, sqlite_url) as engine:
        venue.hold_next()
        await engine.execute(BUY)
        for _ in range(100):
            if len(inquiries) >= 2:
                break
            venue.reconnect_push()  # until a poll runs with the order open
            await asyncio.sleep(0.02)
        for _ in range(100):  # 2 s at most, against the 60 s safety interval
            if len(inquiries) >= 3:
                break
            await asyncio.sleep(0.02)
    assert len(inquiries) >= 3, "the gap pushed during the second poll was polled for"
