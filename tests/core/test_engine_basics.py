"""The executor's main outcomes through the public API, on the mock venue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderlane import Engine, OrderStatus, Signal
from orderlane_mock import MockVenue


async def test_buy_fills_and_opens_a_position(engine: Engine, venue: MockVenue) -> None:
    order = await engine.execute(Signal("005930", "BUY", 10, symbol_name="Samsung"))

    assert order.status is OrderStatus.FILLED
    assert order.broker_order_id == venue.places[0].broker_order_id
    assert order.average_fill_price == Decimal(72000)
    assert order.commission == Decimal(100)
    position = await engine.position("005930")
    assert (position.quantity, position.average_price, position.fees) == (10, 72000, 100)
    assert position.symbol_name == "Samsung"


async def test_sell_realizes_pnl_net_of_commission(engine: Engine, venue: MockVenue) -> None:
    await engine.execute(Signal("005930", "BUY", 10))
    venue.fill_next(price=73000, commission=50)
    await engine.execute(Signal("005930", "SELL", 4))

    position = await engine.position("005930")
    assert (position.quantity, position.average_price) == (6, Decimal(72000))
    [summary] = await engine.realized_pnl()
    assert summary.realized_pnl == Decimal(3950)  # (73000 - 72000) x 4 - 50


async def test_rejection_is_stored_with_the_venue_reason(engine: Engine, venue: MockVenue) -> None:
    venue.reject_next("insufficient_balance", "not enough cash")
    order = await engine.execute(Signal("005930", "BUY", 10))

    assert order.status is OrderStatus.REJECTED
    assert order.reason is not None
    assert "not enough cash" in order.reason
    stored = await engine.get_order(order.id)
    assert stored == order
    assert await engine.positions() == []


@pytest.mark.parametrize("kind", ["insufficient_balance", "invalid_symbol", "validation"])
async def test_final_errors_send_exactly_once(engine: Engine, venue: MockVenue, kind: str) -> None:
    venue.reject_next(kind)  # type: ignore[arg-type]
    order = await engine.execute(Signal("005930", "BUY", 10))
    assert order.status is OrderStatus.REJECTED
    assert len(venue.places) == 1
