"""Broker answers are checked before anything of them is booked, and one bad answer stays alone.

The mock venue scripts malformed answers (``corrupt_next_status`` / ``corrupt_next_place``): a
float price as a JSON slip gives, NaN, a negative or zero price, a negative commission, more
filled than ordered. The ``Broker`` facade refuses each with a ``BrokerAnswerError`` naming the
adapter, the hook and the field; the order it was about is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from orderlane import Engine, OrderSnapshot, OrderStatus, Signal
from orderlane.errors import BrokerAnswerError
from orderlane.model import Execution
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)


def _executions(change: Callable[[Execution], Execution]) -> Callable[[OrderSnapshot], Any]:
    def corrupt(snapshot: OrderSnapshot) -> OrderSnapshot:
        return attrs.evolve(snapshot, executions=tuple(change(e) for e in snapshot.executions))

    return corrupt


def float_prices(snapshot: OrderSnapshot) -> OrderSnapshot:
    """What an adapter that parses a JSON number as a float passes on."""
    return attrs.evolve(
        _executions(lambda e: attrs.evolve(e, price=float(e.price)))(snapshot),
        filled_notional=float(snapshot.filled_notional or 0),
    )


BAD_ANSWERS: dict[str, tuple[Callable[[OrderSnapshot], Any], str]] = {
    "float price": (float_prices, "executions[0].price"),
    "NaN price": (_executions(lambda e: attrs.evolve(e, price=Decimal("NaN"))), "price"),
    "negative price": (_executions(lambda e: attrs.evolve(e, price=Decimal(-1))), "price"),
    "zero price": (_executions(lambda e: attrs.evolve(e, price=Decimal(0))), "price"),
    "infinite price": (_executions(lambda e: attrs.evolve(e, price=Decimal("Infinity"))), "price"),
    "negative commission": (lambda s: attrs.evolve(s, commission=Decimal(-100)), "commission"),
    "NaN commission": (lambda s: attrs.evolve(s, commission=Decimal("NaN")), "commission"),
    "execution commission below zero": (
        _executions(lambda e: attrs.evolve(e, commission=Decimal(-1))),
        "executions[0].commission",
    ),
    "float quantity": (lambda s: attrs.evolve(s, filled_quantity=10.0), "filled_quantity"),
    "bool quantity": (lambda s: attrs.evolve(s, filled_quantity=True), "filled_quantity"),
    "negative quantity": (lambda s: attrs.evolve(s, filled_quantity=-4), "filled_quantity"),
    "more filled than ordered": (
        lambda s: attrs.evolve(s, filled_quantity=11, executions=()),
        "filled_quantity",
    ),
    "execution of zero": (_executions(lambda e: attrs.evolve(e, quantity=0)), "quantity"),
    "text status": (lambda s: attrs.evolve(s, status="FILLED"), "status"),
    "naive time": (
        _executions(lambda e: attrs.evolve(e, executed_at=datetime(2026, 1, 5, 9))),
        "executed_at",
    ),
    "another order's id": (lambda s: attrs.evolve(s, broker_order_id="X-1"), "broker_order_id"),
    "not a snapshot": (lambda s: {"status": "FILLED"}, "result"),
}


@pytest.mark.parametrize("bad", sorted(BAD_ANSWERS))
async def test_a_bad_status_answer_is_refused_naming_adapter_hook_and_field_and_books_nothing(
    engine: Engine, venue: MockVenue, bad: str
) -> None:
    venue.hold_next()
    order = await engine.execute(BUY)
    assert order.broker_order_id is not None
    venue.fill(order.broker_order_id)
    change, field = BAD_ANSWERS[bad]
    venue.corrupt_next_status(order.broker_order_id, change)

    with pytest.raises(BrokerAnswerError) as caught:
        await engine.refresh(order.id)

    error = caught.value
    assert (error.adapter, error.operation) == ("mock", "orderlane_order_status")
    assert field in error.field
    assert "'mock'" in str(error)
    assert "orderlane_order_status" in str(error)
    assert field in str(error)
    assert order.id in str(error)
    assert await engine.get_order(order.id) == order  # left as it is, nothing booked
    assert await engine.fills(order.id) == []
    assert await engine.positions() == []
    # The next usable answer settles it.
    after = await engine.refresh(order.id)
    assert (after.status, after.filled_quantity, after.commission) == (
        OrderStatus.FILLED,
        10,
        Decimal(100),
    )


async def test_one_orders_float_price_does_not_stop_another_orders_fill_in_the_same_cycle(
    engine: Engine, venue: MockVenue, caplog: pytest.LogCaptureFixture
) -> None:
    venue.hold_next(2)
    bad = await engine.execute(BUY)
    good = await engine.execute(Signal("000660", "BUY", 5))
    assert bad.broker_order_id is not None
    assert good.broker_order_id is not None
    venue.fill(bad.broker_order_id)
    venue.fill(good.broker_order_id)
    venue.corrupt_next_status(bad.broker_order_id, float_prices)

    with caplog.at_level(logging.ERROR, logger="orderlane"):
        await engine.tracker.poll_once()

    good_after = await engine.get_order(good.id)
    assert good_after is not None
    assert good_after.status is OrderStatus.FILLED
    assert (await engine.position("000660")).quantity == 5
    assert await engine.get_order(bad.id) == bad  # never a guessed state
    assert (await engine.position("005930")).quantity == 0
    logged = [r.getMessage() for r in caplog.records if bad.id in r.getMessage()]
    assert logged
    assert "executions[0].price" in logged[0]
    assert "'mock'" in logged[0]

    await engine.tracker.poll_once()  # the venue answers truly again
    bad_after = await engine.get_order(bad.id)
    assert bad_after is not None
    assert bad_after.status is OrderStatus.FILLED
    assert (await engine.position("005930")).quantity == 10


async def test_a_place_answer_with_a_nan_price_is_not_booked_and_the_lookup_settles_the_order(
    engine: Engine, venue: MockVenue
) -> None:
    venue.corrupt_next_place(_executions(lambda e: attrs.evolve(e, price=Decimal("NaN"))))

    order = await engine.execute(BUY)

    # The answer did not parse: the order was looked up and the venue's true record adopted.
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10)
    assert order.average_fill_price == Decimal(72000)
    assert [f.price for f in await engine.fills(order.id)] == [Decimal(72000)]
    assert len(venue.places) == 1
