"""Batch lookups: the tracker and recovery settle many unplaced orders in one inquiry pass."""

from __future__ import annotations

from typing import Any

import pytest

from orderlane import (
    Absent,
    CannotTell,
    Engine,
    FakeClock,
    Found,
    LookupWindow,
    Order,
    OrderStatus,
    Signal,
    hookimpl,
)
from orderlane.errors import BrokerError
from orderlane.journal.sql import SqlJournal
from orderlane_mock import MockAdapter, MockVenue


async def _unknown_orders(engine: Engine, venue: MockVenue, count: int) -> list[Order]:
    """``count`` orders the venue took whose answers were lost and whose lookups could not tell."""
    orders = []
    for index in range(count):
        venue.hold_next()
        venue.fail_next("drop_after_accept")
        venue.answer_lookup_next("cannot_tell")
        order = await engine.execute(Signal(f"00{index:04d}", "BUY", 10))
        assert order.status is OrderStatus.UNKNOWN
        orders.append(order)
    return orders


async def test_the_tracker_looks_every_due_order_up_in_one_pass(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    orders = await _unknown_orders(engine, venue, 5)
    before = len(venue.requests_of("lookup"))
    clock.advance(engine.config.lookup_interval)
    await engine.tracker.poll_once()
    assert len(venue.requests_of("lookup")) - before == 1  # one page holds the day's orders
    settled = [await engine.get_order(order.id) for order in orders]
    assert [o.status for o in settled if o is not None] == [OrderStatus.SUBMITTED] * 5
    assert len({o.broker_order_id for o in settled if o is not None}) == 5


async def test_a_batch_lookup_that_fails_leaves_every_order_unknown(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    orders = await _unknown_orders(engine, venue, 2)
    venue.fail_next("connection", operation="lookup")
    clock.advance(engine.config.lookup_interval)
    await engine.tracker.poll_once()
    for order in orders:
        stored = await engine.get_order(order.id)
        assert stored is not None
        assert stored.status is OrderStatus.UNKNOWN
    clock.advance(engine.config.lookup_interval)
    await engine.tracker.poll_once()  # the next due lookup settles them
    for order in orders:
        stored = await engine.get_order(order.id)
        assert stored is not None
        assert stored.status is OrderStatus.SUBMITTED


def _window(order: Order) -> dict[str, LookupWindow]:
    return {order.id: LookupWindow(order.created_at, order.updated_at)}


class _Answers(MockAdapter):
    """A mock whose batch lookup answers what a test says."""

    def __init__(self, answer: Any) -> None:
        super().__init__(MockVenue())
        self.answer = answer

    @hookimpl
    async def orderlane_lookup_orders(
        self, ctx: Any, orders: Any, windows: Any, owned_broker_ids: Any
    ) -> Any:
        return self.answer(orders)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda orders: {}, CannotTell),
        (lambda orders: {o.id: Absent() for o in orders}, Absent),
    ],
)
async def test_the_facade_reads_batch_answers(sqlite_url: str, answer: Any, expected: type) -> None:
    async with Engine.open(_Answers(answer), database_url=sqlite_url, clock=FakeClock()) as engine:
        order = await engine.execute(Signal("005930", "BUY", 10))
        results = await engine.broker.lookup_orders([order], _window(order), frozenset())
        assert isinstance(results[order.id], expected)


@pytest.mark.parametrize("answer", [lambda orders: [], lambda orders: {o.id: None for o in orders}])
async def test_the_facade_refuses_malformed_batch_answers(sqlite_url: str, answer: Any) -> None:
    async with Engine.open(_Answers(answer), database_url=sqlite_url, clock=FakeClock()) as engine:
        order = await engine.execute(Signal("005930", "BUY", 10))
        with pytest.raises(BrokerError, match="orderlane_lookup_orders"):
            await engine.broker.lookup_orders([order], _window(order), frozenset())


async def test_without_the_batch_hook_the_facade_asks_per_order(
    sqlite_url: str, venue: MockVenue
) -> None:
    class Single(MockAdapter):
        orderlane_lookup_orders = None  # type: ignore[assignment]

    async with Engine.open(Single(venue), database_url=sqlite_url, clock=FakeClock()) as single:
        assert not single.broker.has_batch_lookup
        order = await single.execute(Signal("005930", "BUY", 10))
        results = await single.broker.lookup_orders([order], _window(order), frozenset())
        assert isinstance(results[order.id], Found)


class _Recording(MockAdapter):
    """A mock that keeps what its batch lookups were told of the orders journal orders own."""

    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.told: list[tuple[frozenset[str], dict[str, Any]]] = []

    @hookimpl
    async def orderlane_lookup_orders(
        self, ctx: Any, orders: Any, windows: Any, owned_broker_ids: Any, owned_windows: Any
    ) -> Any:
        self.told.append((owned_broker_ids, dict(owned_windows)))
        return await super().orderlane_lookup_orders(
            ctx=ctx, orders=orders, windows=windows, owned_broker_ids=owned_broker_ids
        )


class _OlderJournal(SqlJournal):
    """A store written before ``owned_broker_orders`` (an optional journal method)."""

    owned_broker_orders = None  # type: ignore[assignment]

    async def owned_broker_ids(self, account_id: str, symbol: str) -> frozenset[str]:
        return frozenset(await SqlJournal.owned_broker_orders(self, account_id, symbol))


async def _lookup_of_a_lost_order(adapter: MockAdapter, journal: SqlJournal) -> Order:
    venue = adapter.venue
    async with Engine.open(adapter, journal=journal, clock=FakeClock()) as engine:
        owner = await engine.execute(Signal("005930", "BUY", 1))
        venue.hold_next()
        venue.fail_next("drop_after_accept")
        venue.answer_lookup_next("cannot_tell")
        lost = await engine.execute(Signal("005930", "BUY", 10))
        assert lost.status is OrderStatus.UNKNOWN
        engine.clock.advance(engine.config.lookup_interval)  # type: ignore[attr-defined]
        await engine.tracker.poll_once()
    return owner


@pytest.mark.parametrize("older", [False, True], ids=["journal", "older-journal"])
async def test_a_lookup_that_asks_is_told_when_owned_orders_were_sent(
    sqlite_url: str, venue: MockVenue, older: bool
) -> None:
    """An adapter taking ``owned_windows`` learns, for each owned broker id, when its journal
    orders were sent (a venue whose numbers repeat across days needs it); from a journal that
    cannot say, it gets the ids alone."""
    adapter = _Recording(venue)
    journal = (_OlderJournal if older else SqlJournal)(sqlite_url)
    owner = await _lookup_of_a_lost_order(adapter, journal)
    assert owner.broker_order_id is not None
    assert owner.submitted_at is not None
    owned, sent_at = adapter.told[-1]
    assert owned == {owner.broker_order_id}
    sent = LookupWindow(owner.submitted_at, owner.submitted_at)
    assert sent_at == ({} if older else {owner.broker_order_id: (sent,)})
    settled = [o for o in venue.orders.values() if o.quantity == 10]
    assert len(settled) == 1, "the lost order was found, not sent again"


class _DefaultArgument(MockAdapter):
    """A lookup taking ``owned_windows`` with a default (pluggy counts it apart)."""

    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.told: list[Any] = []

    @hookimpl
    async def orderlane_lookup_orders(
        self,
        ctx: Any,
        orders: Any,
        windows: Any,
        owned_broker_ids: Any,
        owned_windows: Any = None,
    ) -> Any:
        self.told.append(owned_windows)
        return await super().orderlane_lookup_orders(
            ctx=ctx, orders=orders, windows=windows, owned_broker_ids=owned_broker_ids
        )


class _ByHandJournal(SqlJournal):
    """A store that also counts a broker order placed by hand (kept elsewhere) as owned."""

    async def owned_broker_ids(self, account_id: str, symbol: str) -> frozenset[str]:
        return await super().owned_broker_ids(account_id, symbol) | {"BY-HAND-1"}


async def test_owned_windows_reach_an_implementation_that_gives_them_a_default(
    sqlite_url: str, venue: MockVenue
) -> None:
    adapter = _DefaultArgument(venue)
    owner = await _lookup_of_a_lost_order(adapter, SqlJournal(sqlite_url))
    assert owner.submitted_at is not None
    sent = LookupWindow(owner.submitted_at, owner.submitted_at)
    assert adapter.told[-1] == {owner.broker_order_id: (sent,)}


async def test_lookups_are_told_the_ids_a_journal_says_it_owns(
    sqlite_url: str, venue: MockVenue
) -> None:
    """A journal's own ``owned_broker_ids`` decides the ids; ``owned_broker_orders`` only
    says when they were sent (an id it does not name is owned on every day)."""
    adapter = _Recording(venue)
    owner = await _lookup_of_a_lost_order(adapter, _ByHandJournal(sqlite_url))
    owned, windows = adapter.told[-1]
    assert owned == {owner.broker_order_id, "BY-HAND-1"}
    assert set(windows) == {owner.broker_order_id}
