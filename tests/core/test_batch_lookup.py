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
