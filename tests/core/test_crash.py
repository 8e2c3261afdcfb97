"""Persist-before-submit under a crash: the flow is killed between its commits and the broker.

Each test stops ``engine.execute`` at a precise point (an adapter whose place call waits on a
gate, or a journal that waits before a given commit), cancels it there, and then looks at what a
new process would find: the journal read afresh and a new engine on the same database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from orderlane import (
    BrokerContext,
    Engine,
    FakeClock,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
    hookimpl,
)
from orderlane.journal import Committed, Transition
from orderlane.journal.sql import SqlJournal
from orderlane_mock import MockAdapter, MockVenue

SIGNAL = Signal("005930", "BUY", 10, signal_id="crash-1")


class GatedAdapter(MockAdapter):
    """The mock adapter, except that a place waits at a gate before anything leaves."""

    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()
        self.seen_by_place: list[Order] = []

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        self.seen_by_place.append(order)
        self.reached.set()
        await self.gate.wait()
        return await super().orderlane_place_order(ctx, order)


class GatedJournal(SqlJournal):
    """A journal that stops before (or during) the commit of the first matching transition."""

    def __init__(
        self, url: str, stop_at: Callable[[Transition], bool], *, during: bool = False
    ) -> None:
        super().__init__(url)
        self.stop_at = stop_at
        self.during = during
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def record(self, transition: Transition) -> Committed:
        if self.reached.is_set() or not self.stop_at(transition):
            return await super().record(transition)
        if not self.during:
            self.reached.set()
            await self.gate.wait()
            return await super().record(transition)
        # The work is handed to the writer thread; the caller dies while it commits.
        pending = asyncio.ensure_future(super().record(transition))
        await asyncio.sleep(0)
        self.reached.set()
        return await pending


def moving_to(status: OrderStatus) -> Callable[[Transition], bool]:
    return lambda t: t.order is not None and t.order.status is status


def inserting(t: Transition) -> bool:
    return t.new


async def kill_execute(engine: Engine, reached: asyncio.Event) -> None:
    """Run ``execute`` until ``reached`` is set, then cancel it there, then shut the engine."""
    task = asyncio.create_task(engine.execute(SIGNAL))
    waiter = asyncio.create_task(reached.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert waiter in done, f"execute ended before the crash point: {task.result()!r}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.close()


async def stored_orders(url: str) -> tuple[list[Order], list[tuple[str, dict[str, Any]]]]:
    """What the database holds, read by a journal of its own (a new process would see this)."""
    async with SqlJournal(url) as journal:
        orders = await journal.list_orders()
        events = await journal.events(orders[0].id) if orders else []
        return orders, events


@pytest.fixture
def venue() -> MockVenue:
    return MockVenue()


@pytest.fixture
async def restarted(database_url: str, venue: MockVenue) -> AsyncIterator[Callable[[], Any]]:
    """Opens a new engine on the same database and venue after the crash (closed at the end)."""
    engines: list[Engine] = []

    async def restart() -> Engine:
        engine = Engine(
            "mock", adapter_options={"venue": venue}, clock=FakeClock(), database_url=database_url
        )
        await engine.start()
        engines.append(engine)
        return engine

    yield restart
    for engine in engines:
        await engine.close()


def assert_valid_uuid4(value: str) -> None:
    parsed = uuid.UUID(value)
    assert parsed.version == 4
    assert str(parsed) == value


async def assert_nothing_sent_after_restart(
    restart: Callable[[], Any], venue: MockVenue, order: Order, not_sent_from: OrderStatus
) -> None:
    """A new engine sends nothing for the crashed order, even when its signal comes again."""
    engine: Engine = await restart()
    assert venue.places == []
    after = await engine.get_order(order.id)
    assert after is not None
    # Recovery may settle it as "not sent"; it must never have been sent.
    assert after.status in (not_sent_from, OrderStatus.FAILED)
    if after.status is OrderStatus.FAILED:
        assert after.reason is not None
        assert "not sent" in after.reason
    again = await engine.execute(SIGNAL)
    assert again.id == order.id
    assert venue.places == []
    fresh = await engine.execute(Signal("005930", "BUY", 1))
    assert fresh.status is OrderStatus.FILLED
    assert [p.client_order_id for p in venue.places] == [fresh.id]


# ------------------------------------------------------------------ the acceptance test


async def test_killed_after_the_submitting_commit_leaves_submitting_and_sends_nothing(
    database_url: str, venue: MockVenue, restarted: Callable[[], Any]
) -> None:
    adapter = GatedAdapter(venue)
    engine = Engine(adapter, database_url=database_url, clock=FakeClock())
    await engine.start()
    task = asyncio.create_task(engine.execute(SIGNAL))
    await adapter.reached.wait()

    # At the moment the adapter is asked to send, SUBMITTING is already durable.
    on_disk, _ = await stored_orders(database_url)
    assert [o.status for o in on_disk] == [OrderStatus.SUBMITTING]
    assert adapter.seen_by_place[0].id == on_disk[0].id

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.close()

    [order], events = await stored_orders(database_url)
    assert order.status is OrderStatus.SUBMITTING
    assert_valid_uuid4(order.id)
    assert (order.signal_id, order.attempts, order.broker_order_id) == ("crash-1", 1, None)
    assert order.submitted_at is not None
    assert venue.places == []
    assert [kind for kind, _ in events] == ["OrderCreated", "OrderStatusChanged"]
    last = events[-1][1]
    assert (last["previous"], last["order"]["status"]) == ("CREATED", "SUBMITTING")
    assert last["order"]["id"] == order.id

    await assert_nothing_sent_after_restart(restarted, venue, order, OrderStatus.SUBMITTING)


async def test_killed_while_the_submitting_commit_is_in_flight(
    database_url: str, venue: MockVenue, restarted: Callable[[], Any]
) -> None:
    journal = GatedJournal(database_url, moving_to(OrderStatus.SUBMITTING), during=True)
    engine = Engine("mock", adapter_options={"venue": venue}, journal=journal, clock=FakeClock())
    await engine.start()
    await kill_execute(engine, journal.reached)

    [order], events = await stored_orders(database_url)
    assert order.status is OrderStatus.SUBMITTING  # the commit finished without its caller
    assert_valid_uuid4(order.id)
    assert venue.places == []
    assert events[-1][1]["previous"] == "CREATED"
    await assert_nothing_sent_after_restart(restarted, venue, order, OrderStatus.SUBMITTING)


async def test_killed_after_created_before_submitting_leaves_created(
    database_url: str, venue: MockVenue, restarted: Callable[[], Any]
) -> None:
    journal = GatedJournal(database_url, moving_to(OrderStatus.SUBMITTING))
    engine = Engine("mock", adapter_options={"venue": venue}, journal=journal, clock=FakeClock())
    await engine.start()
    await kill_execute(engine, journal.reached)

    [order], events = await stored_orders(database_url)
    assert order.status is OrderStatus.CREATED
    assert_valid_uuid4(order.id)
    assert (order.attempts, order.submitted_at) == (0, None)
    assert [kind for kind, _ in events] == ["OrderCreated"]
    assert venue.places == []
    await assert_nothing_sent_after_restart(restarted, venue, order, OrderStatus.CREATED)


async def test_killed_before_the_created_commit_leaves_nothing(
    database_url: str, venue: MockVenue, restarted: Callable[[], Any]
) -> None:
    journal = GatedJournal(database_url, inserting)
    engine = Engine("mock", adapter_options={"venue": venue}, journal=journal, clock=FakeClock())
    await engine.start()
    await kill_execute(engine, journal.reached)

    orders, _ = await stored_orders(database_url)
    assert orders == []
    assert venue.places == []
    engine = await restarted()
    order = await engine.execute(SIGNAL)  # never stored, so the signal runs now, once
    assert order.status is OrderStatus.FILLED
    assert [p.client_order_id for p in venue.places] == [order.id]


async def test_a_cancelled_caller_does_not_stop_an_answer_from_being_booked(
    database_url: str, venue: MockVenue
) -> None:
    """Cancelled during the commit of the broker's answer: the answer still lands, once."""
    journal = GatedJournal(database_url, moving_to(OrderStatus.FILLED), during=True)
    engine = Engine("mock", adapter_options={"venue": venue}, journal=journal, clock=FakeClock())
    await engine.start()
    await kill_execute(engine, journal.reached)

    [order], _ = await stored_orders(database_url)
    assert order.status is OrderStatus.FILLED
    assert len(venue.places) == 1
    async with SqlJournal(database_url) as reader:
        [position] = await reader.positions()
        assert position.quantity == 10
        assert len(await reader.fills(order.id)) == 1
