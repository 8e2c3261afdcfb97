"""Sends at the edges: a sibling still in flight, a resend after a maybe-sent attempt, a caller
that gives up waiting. The broker may hold the order in each; the engine never guesses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import attrs

from orderlane import Engine, EngineConfig, FakeClock, Order, OrderSnapshot, OrderStatus, Signal
from orderlane.broker import BrokerContext
from orderlane.errors import BrokerAuthError, BrokerTimeoutError
from orderlane.hookspecs import hookimpl
from orderlane.journal import Transition
from orderlane_mock import MockAdapter, MockVenue

BUY = Signal("005930", "BUY", 10)

#: Real seconds a test waits for background work before it gives up.
PATIENCE = 10.0


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(int(PATIENCE / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise TimeoutError("the engine did not get there in time")


def open_engine(
    adapter: object, url: str, clock: FakeClock, **config: object
) -> AbstractAsyncContextManager[Engine]:
    return Engine.open(
        adapter,
        database_url=url,
        clock=clock,
        config=EngineConfig(load_entry_point_plugins=False, **config),  # type: ignore[arg-type]
    )


async def expect_books_match_the_venue(engine: Engine, venue: MockVenue) -> None:
    """Every venue order belongs to exactly one journal order, and what the venue filled is
    what the journal booked."""
    orders = await engine.orders()
    owned = [o.broker_order_id for o in orders if o.broker_order_id is not None]
    assert sorted(owned) == sorted(venue.orders), (owned, list(venue.orders))
    venue_filled = sum(order.filled_quantity for order in venue.orders.values())
    assert sum(o.filled_quantity for o in orders) == venue_filled
    assert (await engine.position("005930")).quantity == venue_filled


# ------------------------------------------------------------------ a sibling in flight


async def test_an_unknown_order_never_adopts_a_sibling_whose_answer_is_still_on_its_way(
    sqlite_url: str, clock: FakeClock
) -> None:
    venue = MockVenue()
    venue.lookup_by = "attributes"  # as a broker without client order ids
    opened = open_engine(MockAdapter(venue), sqlite_url, clock, instrument_hold_timeout=600.0)
    async with opened as engine:
        venue.delay_answer_next()
        slow = asyncio.ensure_future(engine.execute(BUY))  # reaches the venue, answer slow
        await until(lambda: len(venue.orders) == 1)
        venue.fail_next("timeout_before")  # the sibling's send never reaches the venue
        lost = asyncio.ensure_future(engine.execute(BUY))
        unknown: list[Order] = []

        async def watch() -> None:
            while not lost.done():
                unknown.extend(o for o in await engine.open_orders() if o.status.value == "UNKNOWN")
                if unknown:
                    return
                await asyncio.sleep(0.001)

        await asyncio.wait_for(watch(), PATIENCE)
        venue.release_answers()
        first, second = await asyncio.gather(slow, lost)
        assert first.status is OrderStatus.FILLED
        assert first.broker_order_id != second.broker_order_id
        await expect_books_match_the_venue(engine, venue)
        assert (await engine.position("005930")).quantity == 10 * len(venue.orders)


# ------------------------------------------------------------------ a resend after a maybe-sent


class ScriptedPlaces(MockAdapter):
    """The mock adapter on a venue that deduplicates client order ids; each place runs the
    next scripted step (default: the venue's own answer)."""

    def __init__(self, venue: MockVenue, *steps: str) -> None:
        super().__init__(venue)
        self.steps = list(steps)
        #: Runs after a scripted acceptance, before its answer is lost.
        self.after_accept: Callable[[], Awaitable[object]] | None = None

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        step = self.steps.pop(0) if self.steps else "answer"
        if step == "accepted_then_timeout":
            self.venue.place(order)
            if self.after_accept is not None:
                await self.after_accept()
            raise BrokerTimeoutError("no answer in time", request_sent=True)
        if step == "auth":
            raise BrokerAuthError("the access token was refused")
        return self.venue.place(order)


def deduplicating_venue() -> MockVenue:
    return MockVenue(dedupe_client_ids=True)


async def test_a_resend_refused_as_a_duplicate_after_a_maybe_sent_attempt_adopts_the_order(
    sqlite_url: str, clock: FakeClock
) -> None:
    venue = deduplicating_venue()
    venue.refuse_duplicates = 1
    async with open_engine(ScriptedPlaces(venue, "accepted_then_timeout"), sqlite_url, clock) as e:
        order = await e.execute(BUY)
        assert order.status is OrderStatus.FILLED  # was REJECTED with the venue holding a fill
        assert len(venue.places) == 2
        await expect_books_match_the_venue(e, venue)


async def test_a_final_error_after_a_maybe_sent_attempt_looks_the_order_up(
    sqlite_url: str, clock: FakeClock
) -> None:
    venue = deduplicating_venue()
    adapter = ScriptedPlaces(venue, "accepted_then_timeout", "auth")
    async with open_engine(adapter, sqlite_url, clock) as engine:
        order = await engine.execute(BUY)
        assert order.status is OrderStatus.FILLED  # was FAILED "BrokerAuthError"
        await expect_books_match_the_venue(engine, venue)


async def test_a_resend_after_a_maybe_sent_attempt_is_not_held_by_another_unknown_order(
    sqlite_url: str, clock: FakeClock
) -> None:
    venue = deduplicating_venue()
    adapter = ScriptedPlaces(venue, "accepted_then_timeout")
    async with open_engine(adapter, sqlite_url, clock, instrument_hold_timeout=5.0) as engine:
        # Another order for the symbol goes UNKNOWN while this one's first answer is lost. This
        # one is in flight already (every lookup on the symbol waits for its answer), so its
        # resend is not held back: the broker deduplicates it by client order id and answers
        # with the order it took. (It waited out the hold timeout before, then was left
        # UNKNOWN, or earlier still FAILED "not sent" while the venue held its fill.)
        holder = Order.from_signal(BUY, account_id="default", now=clock.now())
        adapter.after_accept = lambda: engine.journal.record(_unknown(holder))
        order = await engine.execute(Signal("005930", "BUY", 7))
        assert order.status is OrderStatus.FILLED
        assert order.broker_order_id == next(iter(venue.orders))
        assert order.filled_quantity == 7
        assert len(venue.orders) == 1
        still = await engine.get_order(holder.id)
        assert still is not None
        assert still.status is OrderStatus.UNKNOWN


def _unknown(order: Order) -> Transition:
    return Transition(order=attrs.evolve(order, status=OrderStatus.UNKNOWN), new=True)


# ------------------------------------------------------------------ a caller that gives up


async def test_a_cancelled_execute_leaves_the_order_to_be_settled_by_the_engine(
    sqlite_url: str, clock: FakeClock
) -> None:
    venue = MockVenue()
    async with open_engine(MockAdapter(venue), sqlite_url, clock) as engine:
        venue.delay_answer_next()
        call = asyncio.ensure_future(engine.execute(BUY))
        await until(lambda: len(venue.orders) == 1)
        call.cancel()  # asyncio.wait_for(engine.execute(s), 0.5) does this
        await asyncio.wait({call})
        assert call.cancelled()
        venue.release_answers()
        (stored,) = await engine.orders()

        async def settled() -> Order:
            while True:
                order = await engine.get_order(stored.id)
                assert order is not None
                if order.status is OrderStatus.FILLED:
                    return order
                await asyncio.sleep(0.001)

        order = await asyncio.wait_for(settled(), PATIENCE)  # stayed SUBMITTING before
        assert order.filled_quantity == 10
        position = await engine.position("005930")
        assert (position.quantity, position.average_price) == (10, Decimal(72000))
        assert len(venue.places) == 1
