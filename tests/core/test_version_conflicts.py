"""Writes that meet another engine's: every write reloads the stored order and reapplies.

Two engines (or an operator's ``orderlane recover``) on one journal and one account both write
the same orders. The version column refuses a change computed from an old copy; the writer then
reloads the stored order and decides again, and an order that the other engine ended leaves
this engine's tracker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from orderlane import Engine, EngineConfig, FakeClock, Order, OrderSnapshot, OrderStatus, Signal
from orderlane.broker import BrokerContext
from orderlane.hookspecs import hookimpl
from orderlane.journal.sql import SqlJournal
from orderlane.testing.crash import StallingJournal, abandon
from orderlane_mock import MockAdapter, MockVenue

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


async def venue_has(venue: MockVenue, count: int, *, within: float = 60.0) -> None:
    """Wait (real time, never idling the loop, so fake time stands still) until the venue took
    ``count`` orders. Bounded by time, not by turns of the loop: on a busy machine the journal's
    writer thread gets the GIL rarely while the loop spins, and a count of turns ran out before
    the orders were sent, leaving a crash with fewer orders at the venue than the test says."""
    deadline = time.monotonic() + within
    while len(venue.orders) < count:
        assert time.monotonic() < deadline, f"the venue took {len(venue.orders)} of {count} orders"
        await asyncio.sleep(0)


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
    await venue_has(venue, count)
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


class PausedOwners(SqlJournal):
    """A journal whose recovery pauses between reading the open orders and asking who owns
    them, as a process starting while another finishes its order may."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def order_owners(self, order_ids: Sequence[str]) -> dict[str, str | None]:
        self.reached.set()
        await self.go_on.wait()
        return await super().order_owners(order_ids)


class SlowAnswers(MockAdapter):
    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.answer = asyncio.Event()

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        snapshot = self.venue.place(order)
        await self.answer.wait()
        return snapshot


async def test_an_engine_starting_while_another_finishes_its_order_starts(
    database_url: str, venue: MockVenue, clock: FakeClock
) -> None:
    """Several CLI processes starting on one journal: one died with "order ... changed since
    version 2" when the order it was recovering was another process's, finished meanwhile."""
    adapter = SlowAnswers(venue)
    config = EngineConfig(credential_key="first", load_entry_point_plugins=False)
    first = Engine(adapter, database_url=database_url, clock=clock, config=config)
    await first.start()
    sending = asyncio.ensure_future(first.execute(BUY))
    await venue_has(venue, 1)
    journal = PausedOwners(database_url)
    second = Engine(
        MockAdapter(venue),
        journal=journal,
        clock=clock,
        config=EngineConfig(credential_key="second", load_entry_point_plugins=False),
    )
    starting = asyncio.ensure_future(second.start())
    await journal.reached.wait()  # it read the first engine's SUBMITTING order
    adapter.answer.set()
    order = await sending
    await first.close()  # its session ends: the order looks like nobody's
    journal.go_on.set()
    try:
        await starting  # raised ConcurrentUpdateError before
        stored = await second.get_order(order.id)
        assert stored is not None
        assert stored.status is OrderStatus.FILLED
        assert [c.action for c in second.last_recovery] == ["settled elsewhere"]
        assert len(venue.places) == 1
    finally:
        await second.close()
