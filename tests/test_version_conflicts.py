"""Writes that meet another engine's: every write reloads the stored order and reapplies.

Two engines (or an operator's ``orderlane recover``) on one journal and one account both write
the same orders. The version column refuses a change computed from an old copy; the writer then
reloads the stored order and decides again, and an order that the other engine ended leaves
this engine's tracker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orderlane import Engine, EngineConfig, FakeClock, OrderStatus, Signal
from orderlane.testing.crash import StallingJournal, abandon
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)
OTHER = Signal("000660", "BUY", 5)


@asynccontextmanager
async def opened(
    venue: MockVenue, clock: FakeClock, url: str, *, key: str = "conflicts"
) -> AsyncIterator[Engine]:
    config = EngineConfig(credential_key=key, load_entry_point_plugins=False)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=url, config=config
    ) as engine:
        yield engine


async def test_timeouts_still_run_after_another_engine_booked_a_fill(
    database_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    async with opened(venue, clock, database_url) as first:
        venue.hold_next(2)
        booked_elsewhere = await first.execute(BUY)
        behind = await first.execute(OTHER)
        assert booked_elsewhere.broker_order_id is not None
        venue.fill(booked_elsewhere.broker_order_id, 4)
        # A second engine on the account starts: its recovery books the partial fill.
        async with opened(venue, clock, database_url) as second:
            caught_up = await second.get_order(booked_elsewhere.id)
            assert caught_up is not None
            assert (caught_up.status, caught_up.filled_quantity) == (
                OrderStatus.PARTIALLY_FILLED,
                4,
            )
        clock.advance(first.config.order_timeout)
        await first.tracker.poll_once()  # raised ConcurrentUpdateError before
        for order, filled in ((booked_elsewhere, 4), (behind, 0)):
            after = await first.get_order(order.id)
            assert after is not None
            assert (after.status, after.reason, after.filled_quantity) == (
                OrderStatus.FAILED,
                "timeout",
                filled,
            )
        assert len(venue.requests_of("cancel")) == 2
        assert (await first.position("005930")).quantity == 4
        assert len(first.tracker) == 0


async def test_an_order_another_engine_ended_leaves_the_tracker(
    database_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    async with opened(venue, clock, database_url) as first:
        venue.hold_next()
        order = await first.execute(BUY)
        async with opened(venue, clock, database_url) as second:
            cancelled = await second.cancel(order.id)
            assert cancelled.status is OrderStatus.CANCELLED
        assert [o.id for o in first.tracker.orders] == [order.id]
        inquiries = len(venue.requests_of("status"))
        await first.tracker.poll_once()
        assert len(first.tracker) == 0
        await first.tracker.poll_once()
        assert len(venue.requests_of("status")) <= inquiries + 1  # no longer polled
        stored = await first.get_order(order.id)
        assert stored is not None
        assert stored.status is OrderStatus.CANCELLED


async def crash_with_orders_sent(url: str, venue: MockVenue, clock: FakeClock, count: int) -> None:
    """An engine dies after the venue took ``count`` orders, before it stored their answers."""
    journal = StallingJournal(url, "before_answer")
    config = EngineConfig(credential_key="crashed", load_entry_point_plugins=False)
    engine = Engine(
        "mock", adapter_options={"venue": venue}, clock=clock, journal=journal, config=config
    )
    await engine.start()
    flows = [
        asyncio.ensure_future(engine.execute(Signal(f"00{n:04d}", "BUY", 10))) for n in range(count)
    ]
    for _ in range(100_000):
        if len(venue.orders) == count:
            break
        await asyncio.sleep(0)
    for flow in flows[1:]:
        flow.cancel()
    await abandon(engine, flows[0])
    await asyncio.wait(flows)


async def test_two_engines_recovering_one_crash_at_once_both_start(
    database_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    await crash_with_orders_sent(database_url, venue, clock, 6)
    config = EngineConfig(credential_key="recovering", load_entry_point_plugins=False)
    engines = [
        Engine(
            "mock",
            adapter_options={"venue": venue},
            clock=clock,
            database_url=database_url,
            config=config,
        )
        for _ in range(2)
    ]
    try:
        await asyncio.gather(*(engine.start() for engine in engines))  # one raised before
        orders = await engines[0].orders()
        assert len(orders) == 6
        assert {o.status for o in orders} == {OrderStatus.FILLED}
        assert len({o.broker_order_id for o in orders}) == 6
        assert len(venue.places) == 6  # nothing sent twice
    finally:
        for engine in engines:
            await engine.close()
