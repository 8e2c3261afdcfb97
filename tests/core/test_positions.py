"""Positions and realized P&L from fills: opening, adding, reducing, closing and flipping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from orderlane.model import Fill, Side
from orderlane.positions import Position

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def fill(
    side: Side | str,
    quantity: int,
    price: int | str,
    commission: int | str = 0,
    *,
    minute: int = 0,
) -> Fill:
    at = T0 + timedelta(minutes=minute)
    return Fill(
        fill_id=f"F{minute}",
        order_id="o",
        account_id="acct",
        session_id="default",
        symbol="005930",
        side=Side(side),
        quantity=quantity,
        price=Decimal(price),
        commission=Decimal(commission),
        executed_at=at,
        trading_day=at.date(),
    )


def flat() -> Position:
    return Position(account_id="acct", symbol="005930")


def replay(*fills: Fill) -> tuple[Position, list[Decimal]]:
    position, realized = flat(), []
    for each in fills:
        change = position.apply(each)
        position = change.position
        realized.append(change.realized_pnl)
    return position, realized


class TestOpenAndAdd:
    def test_a_flat_position_has_no_side(self) -> None:
        position = flat()
        assert position.is_flat
        assert position.side is None
        assert (position.quantity, position.average_price, position.fees) == (
            0,
            Decimal(0),
            Decimal(0),
        )

    def test_a_buy_opens_a_long_and_its_commission_goes_to_fees(self) -> None:
        change = flat().apply(fill("BUY", 10, 72000, 100, minute=1), symbol_name="Samsung")
        position = change.position
        assert change.realized_pnl == Decimal(0)
        assert (position.quantity, position.average_price) == (10, Decimal(72000))
        assert position.fees == Decimal(100)  # never in the average price
        assert position.realized_pnl == Decimal(0)
        assert position.side is Side.BUY
        assert position.opened_at == position.updated_at == T0 + timedelta(minutes=1)
        assert position.symbol_name == "Samsung"

    def test_adding_averages_the_entry_price_by_quantity(self) -> None:
        position, realized = replay(
            fill("BUY", 10, 72000, 100, minute=1), fill("BUY", 30, 76000, 50, minute=2)
        )
        assert position.quantity == 40
        assert position.average_price == Decimal(75000)  # (10 x 72000 + 30 x 76000) / 40
        assert position.fees == Decimal(150)
        assert position.opened_at == T0 + timedelta(minutes=1)  # when it opened, not last add
        assert position.updated_at == T0 + timedelta(minutes=2)
        assert realized == [Decimal(0), Decimal(0)]

    def test_a_sell_opens_a_short(self) -> None:
        position, realized = replay(fill("SELL", 5, 100, 3))
        assert (position.quantity, position.average_price, position.fees) == (
            -5,
            Decimal(100),
            Decimal(3),
        )
        assert position.side is Side.SELL
        assert realized == [Decimal(0)]

    def test_symbol_name_is_kept_when_a_later_fill_gives_none(self) -> None:
        position = flat().apply(fill("BUY", 1, 10), symbol_name="Samsung").position
        assert position.apply(fill("BUY", 1, 10)).position.symbol_name == "Samsung"


class TestReduceAndClose:
    def test_a_partial_close_realizes_on_the_closed_part_net_of_its_commission(self) -> None:
        position, realized = replay(fill("BUY", 10, 72000, 100), fill("SELL", 4, 73000, 50))
        assert realized[-1] == Decimal(3950)  # (73000 - 72000) x 4 - 50
        assert (position.quantity, position.average_price) == (6, Decimal(72000))
        # 4 of 10 closed: 40 of the opening fees is released into the net, 60 stays carried
        assert position.fees == Decimal(60)
        assert position.realized_pnl == Decimal(3950)
        assert (position.gross_pnl, position.net_pnl) == (Decimal(4000), Decimal(3910))

    def test_a_losing_close_realizes_a_loss(self) -> None:
        _, realized = replay(fill("BUY", 10, 100), fill("SELL", 10, 90, 5))
        assert realized[-1] == Decimal(-105)

    def test_a_full_close_leaves_a_flat_position_with_the_pnl(self) -> None:
        position, realized = replay(
            fill("BUY", 10, 100, 7, minute=1),
            fill("SELL", 4, 110, 1, minute=2),
            fill("SELL", 6, 120, 2, minute=3),
        )
        assert realized[1:] == [Decimal(39), Decimal(118)]
        assert position.is_flat
        assert (position.average_price, position.fees, position.opened_at) == (
            Decimal(0),
            Decimal(0),
            None,
        )
        assert position.realized_pnl == Decimal(157)
        assert position.updated_at == T0 + timedelta(minutes=3)

    def test_reopening_after_flat_starts_a_fresh_average(self) -> None:
        position, _ = replay(
            fill("BUY", 10, 100), fill("SELL", 10, 100), fill("BUY", 2, 300, minute=5)
        )
        assert (position.quantity, position.average_price) == (2, Decimal(300))
        assert position.opened_at == T0 + timedelta(minutes=5)

    def test_a_short_is_mirrored(self) -> None:
        position, realized = replay(
            fill("SELL", 10, 100, 10), fill("SELL", 10, 80), fill("BUY", 5, 70, 3)
        )
        assert position.average_price == Decimal(90)
        assert realized[-1] == Decimal(97)  # (90 - 70) x 5 - 3 on a short
        assert (position.quantity, position.fees) == (-15, Decimal("7.50"))  # 5/20 released
        _, realized = replay(fill("SELL", 10, 100), fill("BUY", 10, 110, 1))
        assert realized[-1] == Decimal(-101)

    def test_realized_pnl_adds_up_across_fills(self) -> None:
        position, realized = replay(
            fill("BUY", 10, 100),
            fill("SELL", 3, 110, 1),
            fill("SELL", 3, 90, 1),
            fill("BUY", 4, 95),
        )
        assert position.realized_pnl == sum(realized)
        assert position.quantity == 8


class TestFlipThroughZero:
    def test_a_fill_beyond_zero_closes_and_opens_the_other_side(self) -> None:
        position, realized = replay(
            fill("BUY", 10, 100, 10, minute=1), fill("SELL", 15, 120, 30, minute=2)
        )
        # 10 of 15 close: commission split 20 / 10 by quantity
        assert realized[-1] == Decimal(180)  # (120 - 100) x 10 - 20
        assert (position.quantity, position.average_price) == (-5, Decimal(120))
        assert position.fees == Decimal(10)  # only the opening part's share, the old fees gone
        assert position.opened_at == T0 + timedelta(minutes=2)
        assert position.realized_pnl == Decimal(180)

    def test_a_short_flips_to_a_long(self) -> None:
        position, realized = replay(fill("SELL", 4, 50), fill("BUY", 6, 40, 6))
        assert realized[-1] == Decimal(36)  # (50 - 40) x 4 - 4
        assert (position.quantity, position.average_price, position.fees) == (
            2,
            Decimal(40),
            Decimal(2),
        )

    def test_the_commission_split_adds_back_to_the_whole(self) -> None:
        before = replay(fill("BUY", 1, 100))[0]
        change = before.apply(fill("SELL", 3, 100, 10))
        closing_share = -change.realized_pnl  # price unchanged: realized is only commission
        assert closing_share + change.position.fees == Decimal(10)
        assert change.position.quantity == -2


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_decimal_prices_stay_exact(side: str) -> None:
    position, _ = replay(fill(side, 3, "0.1"), fill(side, 1, "0.3"))
    assert position.average_price == Decimal("0.15")


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_a_round_trip_realizes_its_exact_result(side: str) -> None:
    other = "SELL" if side == "BUY" else "BUY"
    sign = 1 if side == "BUY" else -1
    position = flat()
    for n, (quantity, price) in enumerate([(1, 100), (2, 101)]):
        position = position.apply(fill(side, quantity, price, minute=n)).position
    assert position.cost_basis == Decimal(302)
    total = Decimal(0)
    for n, quantity in enumerate([1, 1, 1]):  # closes a third at a time: inexact thirds
        change = position.apply(fill(other, quantity, 102, minute=10 + n))
        position, total = change.position, total + change.realized_pnl
    assert position.is_flat
    assert position.cost_basis == 0
    assert total == Decimal(4) * sign  # 3 x 102 - 302, not 3.99999...
    assert position.realized_pnl == total
