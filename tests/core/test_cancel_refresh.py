"""Cancelling open orders and refreshing their status from the broker."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderlane import Engine, OrderStatus, Signal
from orderlane.errors import OrderNotFoundError, UnknownOrderError
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)


async def test_refresh_books_later_fills_and_the_average(engine: Engine, venue: MockVenue) -> None:
    venue.partial_fill_next(4)
    order = await engine.execute(BUY)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert (await engine.position("005930")).quantity == 4

    assert order.broker_order_id is not None
    venue.fill(order.broker_order_id, 6, price=73000)
    order = await engine.refresh(order.id)

    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 10
    assert order.average_fill_price == Decimal(72600)  # (4 x 72000 + 6 x 73000) / 10
    assert (await engine.position("005930")).quantity == 10
    assert len(await engine.fills(order.id)) == 2
    assert await engine.refresh(order.id) == order  # nothing new: nothing written


async def test_cancel_an_open_order(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    assert order.status is OrderStatus.SUBMITTED

    cancelled = await engine.cancel(order.id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert len(venue.requests_of("cancel")) == 1
    assert await engine.cancel(order.id) == cancelled  # terminal: nothing sent
    assert len(venue.requests_of("cancel")) == 1


async def test_cancel_racing_a_fill_ends_filled(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    assert order.broker_order_id is not None
    venue.fill(order.broker_order_id)  # fills while our cancel is on its way

    after = await engine.cancel(order.id)
    assert after.status is OrderStatus.FILLED
    assert (await engine.position("005930")).quantity == 10


async def test_cancel_keeps_partial_fills(engine: Engine, venue: MockVenue) -> None:
    venue.partial_fill_next(3)
    order = await engine.execute(BUY)
    after = await engine.cancel(order.id)
    assert after.status is OrderStatus.CANCELLED
    assert after.filled_quantity == 3
    assert (await engine.position("005930")).quantity == 3


async def test_a_failed_cancel_leaves_the_order_open(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    venue.fail_next("connection", times=3, operation="cancel")
    after = await engine.cancel(order.id)
    assert after.status is OrderStatus.SUBMITTED


async def test_venue_side_cancel_and_late_rejection(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next(2)
    first = await engine.execute(BUY)
    second = await engine.execute(Signal("000660", "BUY", 1))
    assert first.broker_order_id is not None
    assert second.broker_order_id is not None
    venue.cancel_by_venue(first.broker_order_id, "market closed")
    venue.reject_open(second.broker_order_id, "price limit")

    first = await engine.refresh(first.id)
    second = await engine.refresh(second.id)
    assert (first.status, first.reason) == (OrderStatus.CANCELLED, "market closed")
    assert (second.status, second.reason) == (OrderStatus.REJECTED, "price limit")


async def test_status_of_an_order_the_venue_lost(engine: Engine, venue: MockVenue) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    assert order.broker_order_id is not None
    del venue.orders[order.broker_order_id]
    with pytest.raises(OrderNotFoundError):
        await engine.refresh(order.id)
    assert (await engine.get_order(order.id)) == order
    with pytest.raises(UnknownOrderError, match="no order"):
        await engine.refresh("no-such-order")


async def test_a_snapshot_is_reapplied_when_another_process_moved_the_order(
    engine: Engine, venue: MockVenue, sqlite_url: str
) -> None:
    venue.partial_fill_next(4)
    order = await engine.execute(BUY)
    assert order.broker_order_id is not None
    # A second engine (as another process would) books the next fill first.
    venue.fill(order.broker_order_id, 3)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, database_url=sqlite_url
    ) as other:
        await other.refresh(order.id)
    venue.fill(order.broker_order_id, 3)

    # This engine still holds the old version of the order: its write must not be lost.
    snapshot = venue.status(order.broker_order_id)
    after = await engine.blotter.book(order, snapshot)
    assert after.status is OrderStatus.FILLED
    assert after.filled_quantity == 10
    assert len(await engine.fills(order.id)) == 3
    assert (await engine.position("005930")).quantity == 10
