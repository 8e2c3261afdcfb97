"""Commissions as brokers report them: per execution, only as an order's cumulative total, or
later than the executions they belong to. Whatever the form, the books hold what was paid."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderlane import Engine, Signal
from orderlane.model import (
    Execution,
    Fill,
    Order,
    OrderSnapshot,
    OrderStatus,
    Side,
    fills_from_snapshot,
)
from orderlane.positions import Position
from orderlane_mock import MockVenue

NOW = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


def open_order(quantity: int = 10) -> Order:
    return Order(
        id="o-1",
        account_id="acct",
        session_id="default",
        symbol="005930",
        side=Side.BUY,
        quantity=quantity,
        status=OrderStatus.SUBMITTED,
        broker_order_id="B1",
    )


def execution(fill_id: str, quantity: int, commission: int = 0) -> Execution:
    return Execution(fill_id, quantity, Decimal(72000), Decimal(commission), NOW)


async def held_order(engine: Engine, venue: MockVenue) -> tuple[Order, str]:
    """BUY 10 that the venue accepted and holds open, and its broker order id."""
    venue.hold_next()
    order = await engine.execute(Signal("005930", "BUY", 10))
    assert order.broker_order_id is not None
    return order, order.broker_order_id


async def test_cumulative_commission_of_executions_listed_without_one_is_booked(
    engine: Engine, venue: MockVenue
) -> None:
    """The issue's case: a fill reported with executions that carry no commission and a
    cumulative commission of 100 books 100 on the fill, the order and the position."""
    order, venue_id = await held_order(engine, venue)
    venue.report_commission_in_total(venue_id)
    venue.fill(venue_id, commission=100)
    await engine.tracker.poll_once()

    filled = await engine.get_order(order.id)
    assert filled is not None
    assert (filled.status, filled.commission) == (OrderStatus.FILLED, Decimal(100))
    assert [f.commission for f in await engine.fills(order.id)] == [Decimal(100)]
    assert (await engine.position("005930")).fees == Decimal(100)


async def test_commission_that_arrives_in_a_later_snapshot_is_booked_once(
    engine: Engine, venue: MockVenue
) -> None:
    order, venue_id = await held_order(engine, venue)
    venue.fill(venue_id, 4, commission=0)
    await engine.tracker.poll_once()
    venue.charge(venue_id, 30)  # settled later: no new quantity
    await engine.tracker.poll_once()
    await engine.tracker.poll_once()  # the same total again

    stored = await engine.get_order(order.id)
    assert stored is not None
    assert (stored.filled_quantity, stored.commission) == (4, Decimal(30))
    fills = await engine.fills(order.id)
    assert sorted((f.quantity, f.commission) for f in fills) == [(0, Decimal(30)), (4, Decimal(0))]
    assert stored.filled_at is None  # a fee-only fill executes nothing
    assert (await engine.position("005930")).fees == Decimal(30)
    await engine.flush_events()
    kinds = [kind for kind, _ in await engine.journal.events(order.id)]
    assert kinds.count("OrderFilled") == 1  # the fee is no execution


def fee_only(side: Side, commission: int) -> Fill:
    return Fill(
        fill_id=f"B1:fee:{commission}",
        order_id="o-1",
        account_id="acct",
        session_id="default",
        symbol="005930",
        side=side,
        quantity=0,
        price=Decimal(0),
        commission=Decimal(commission),
        executed_at=NOW,
        trading_day=NOW.date(),
    )


def test_a_late_commission_of_a_closing_order_is_realized_at_once() -> None:
    flat = Position(account_id="acct", symbol="005930")  # the sell closed the position
    change = flat.apply(fee_only(Side.SELL, 20))
    assert change.realized_pnl == Decimal(-20)
    assert change.position.fees == Decimal(0)


def test_a_late_commission_of_an_opening_order_is_carried_with_the_fees() -> None:
    long = Position(account_id="acct", symbol="005930", quantity=10, average_price=Decimal(1))
    change = long.apply(fee_only(Side.BUY, 20))
    assert change.realized_pnl == Decimal(0)
    assert change.position.fees == Decimal(20)


@pytest.mark.parametrize(
    ("decimals", "parts"),
    [(0, ["33", "33", "34"]), (2, ["33.33", "33.33", "33.34"])],
)
def test_a_total_commission_spread_over_new_fills_adds_up_to_it(
    decimals: int, parts: list[str]
) -> None:
    snapshot = OrderSnapshot(
        status=OrderStatus.PARTIALLY_FILLED,
        broker_order_id="B1",
        filled_quantity=3,
        filled_notional=Decimal(216000),
        commission=Decimal(100),
        executions=(execution("e1", 1), execution("e2", 1), execution("e3", 1)),
    )
    fills = fills_from_snapshot(
        open_order(), snapshot, known_fill_ids=set(), now=NOW, currency_decimals=decimals
    )
    assert [f.commission for f in fills] == [Decimal(part) for part in parts]
    assert sum(f.commission for f in fills) == Decimal(100)


def test_executions_with_their_own_commission_keep_it() -> None:
    snapshot = OrderSnapshot(
        status=OrderStatus.FILLED,
        broker_order_id="B1",
        filled_quantity=10,
        filled_notional=Decimal(720000),
        commission=Decimal(100),
        executions=(execution("e1", 4, 40), execution("e2", 6, 60)),
    )
    fills = fills_from_snapshot(open_order(), snapshot, known_fill_ids=set(), now=NOW)
    assert [f.commission for f in fills] == [Decimal(40), Decimal(60)]


# ------------------------------------------------------------------ opening fees in the books


async def test_a_round_trip_nets_both_commissions_and_keeps_gross_apart(
    engine: Engine, venue: MockVenue
) -> None:
    """Buy 10 (commission 100), sell 10 (commission 100): gross 0, 200 paid, net -200; the
    closing fill's net carries the opening fee, which leaves the position's fees."""
    await engine.execute(Signal("005930", "BUY", 10))
    sold = await engine.execute(Signal("005930", "SELL", 10))

    [fill] = await engine.fills(sold.id)
    assert (fill.gross_pnl, fill.realized_pnl, fill.net_pnl) == (0, -100, -200)
    [day] = await engine.realized_pnl("day")
    assert (day.gross_pnl, day.commissions, day.net_pnl) == (0, 200, -200)
    position = await engine.position("005930")
    assert (position.quantity, position.fees) == (0, 0)
    assert (position.gross_pnl, position.commissions, position.net_pnl) == (0, 200, -200)


async def test_a_flip_splits_its_commission_in_whole_won_adding_up_to_what_was_paid(
    engine: Engine, venue: MockVenue
) -> None:
    """Long 10 @ 72,000 then sell 15 @ 73,000 with commission 100: 67 closes, 33 opens the
    short (KRW has no minor digits), never 66.666...; the opening fee 100 is released."""
    await engine.execute(Signal("005930", "BUY", 10))
    venue.set_quote("005930", 73000)
    sold = await engine.execute(Signal("005930", "SELL", 15))

    [fill] = await engine.fills(sold.id)
    assert (fill.gross_pnl, fill.realized_pnl, fill.net_pnl) == (10000, 9933, 9833)
    position = await engine.position("005930")
    assert (position.quantity, position.average_price, position.fees) == (-5, 73000, 33)
    assert fill.gross_pnl - fill.realized_pnl + position.fees == fill.commission == 100
    assert (position.commissions, position.net_pnl) == (200, 9833)
