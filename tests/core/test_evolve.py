"""orderlane.evolve: the written-out attrs.evolve gives what attrs.evolve gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

from orderlane.evolve import evolver
from orderlane.model import Fill, Order, OrderStatus, Signal
from orderlane.positions import Position

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _order() -> Order:
    return Order.from_signal(Signal("005930", "BUY", 3), account_id="desk", now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"version": 2},
        {"status": OrderStatus.SUBMITTING, "attempts": 1, "submitted_at": NOW},
        {"filled_quantity": 3, "filled_notional": Decimal(216000), "reason": None},
    ],
)
def test_an_order_evolves_as_attrs_evolves_it(changes: dict[str, object]) -> None:
    order = _order()
    ours = evolver(Order)(order, **changes)
    assert ours == attrs.evolve(order, **changes)
    assert ours is not order


def test_positions_and_fills_evolve_as_attrs_evolves_them() -> None:
    position = Position(account_id="desk", symbol="005930")
    assert evolver(Position)(position, quantity=3) == attrs.evolve(position, quantity=3)
    fill = Fill(
        fill_id="f1",
        order_id="o1",
        account_id="desk",
        session_id="default",
        symbol="005930",
        side="BUY",
        quantity=3,
        price=Decimal(72000),
        commission=Decimal(100),
        executed_at=NOW,
        trading_day=NOW.date(),
    )
    assert evolver(Fill)(fill, quantity=1) == attrs.evolve(fill, quantity=1)


def test_a_change_that_is_no_field_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"Order has no field.*bogus"):
        evolver(Order)(_order(), version=2, bogus=1)


def test_validators_converters_and_private_fields_run_as_in_attrs() -> None:
    @attrs.frozen
    class Checked:
        amount: int = attrs.field(converter=int, validator=attrs.validators.ge(0))
        _secret: str = "x"
        derived: int = attrs.field(init=False, default=7)

    evolve = evolver(Checked)
    item = Checked("5", secret="s")
    assert evolve(item, amount="6") == attrs.evolve(item, amount="6") == Checked(6, secret="s")
    assert evolve(item, secret="t")._secret == "t"
    with pytest.raises(ValueError, match="amount"):
        evolve(item, amount=-1)
    with pytest.raises(TypeError, match="derived"):
        evolve(item, derived=8)


def test_a_subclass_instance_keeps_its_class_and_fields() -> None:
    @attrs.frozen
    class TaggedOrder(Order):
        tag: str = "desk-7"

    base = _order()
    tagged = TaggedOrder(**{f.alias: getattr(base, f.name) for f in attrs.fields(Order)}, tag="x")
    moved = tagged.evolve(OrderStatus.SUBMITTING)
    assert type(moved) is TaggedOrder
    assert moved == attrs.evolve(tagged, status=OrderStatus.SUBMITTING)
    assert moved.tag == "x"
