"""The converter's written-out functions give what cattrs' own give (orderlane.serialization)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import attrs
import cattrs
import pytest
from cattrs.gen import override

from orderlane.contract import Operation
from orderlane.events import (
    Event,
    OrderCreated,
    OrderFilled,
    OrderStatusChanged,
    OrderSubmitted,
    OrderTimedOut,
    PositionChanged,
    RetryExhausted,
    RetryScheduled,
)
from orderlane.journal.transitions import payload_texts
from orderlane.model import Fill, Order, OrderStatus, Signal
from orderlane.positions import Position
from orderlane.serialization import converter, flat_unstructure_fn, unstructure

NOW = datetime(2026, 11, 29, 9, 0, 0, 123456, tzinfo=UTC)


def _reference() -> cattrs.Converter:
    """The converter as cattrs alone makes it, with orderlane's hooks for values."""
    plain = cattrs.Converter()
    plain.register_unstructure_hook(Decimal, str)
    plain.register_unstructure_hook(datetime, lambda value: value.isoformat())
    plain.register_unstructure_hook(date, lambda value: value.isoformat())
    plain.register_unstructure_hook(timedelta, lambda value: value.total_seconds())
    return plain


def _samples() -> list[Any]:
    order = Order.from_signal(
        Signal("005930", "SELL", 7, "LIMIT", "72000.5", signal_id="s-1"),
        account_id="desk",
        now=NOW,
    )
    filled = order.evolve(
        OrderStatus.SUBMITTING, broker_order_id="B1", submitted_at=NOW, reason="r", attempts=1
    )
    fill = Fill(
        fill_id="f1",
        order_id=order.id,
        account_id="desk",
        session_id="default",
        symbol="005930",
        side="SELL",
        quantity=7,
        price=Decimal("72000.5"),
        commission=Decimal(100),
        executed_at=NOW,
        trading_day=NOW.date(),
    )
    position = Position(account_id="desk", symbol="005930", opened_at=NOW, quantity=3)
    return [
        order,
        filled,
        fill,
        position,
        Position(account_id="desk", symbol="000660"),
        OrderCreated(order),
        OrderSubmitted(filled),
        OrderStatusChanged(filled, OrderStatus.CREATED),
        OrderFilled(filled, fill),
        PositionChanged(position, fill, Decimal("-12.5")),
        RetryScheduled(None, Operation.PLACE, 2, 1.5, "timeout"),
        RetryScheduled(order, Operation.CANCEL, 1, 0.0, "x"),
        RetryExhausted(filled, Operation.PLACE, 3, "gone"),
        OrderTimedOut(filled, NOW),
    ]


@pytest.mark.parametrize("sample", _samples(), ids=lambda sample: type(sample).__name__)
def test_every_event_and_value_unstructures_as_cattrs_would(sample: Any) -> None:
    ours = unstructure(sample)
    assert ours == _reference().unstructure(sample)
    assert json.dumps(ours) == json.dumps(_reference().unstructure(sample))  # the key order too


def test_the_order_path_types_are_written_out() -> None:
    for kind in (Order, Fill, Position, OrderFilled, PositionChanged, OrderStatusChanged):
        assert flat_unstructure_fn(kind) is not None, kind


def test_a_class_with_other_field_types_keeps_cattrs_own_function() -> None:
    @attrs.frozen
    class Mixed:
        names: list[str]
        extra: dict[str, int]
        when: datetime | None = None

    assert flat_unstructure_fn(Mixed) is None
    mixed = Mixed(["a"], {"b": 1}, NOW)
    assert converter.unstructure(mixed) == _reference().unstructure(mixed)


@attrs.frozen
class _Node:
    value: int
    next: _Node | None = None


def test_a_class_that_refers_to_itself_is_left_to_cattrs() -> None:
    chain = _Node(1, _Node(2))
    assert flat_unstructure_fn(_Node) is None
    assert (
        unstructure(chain)
        == _reference().unstructure(chain)
        == {
            "value": 1,
            "next": {"value": 2, "next": None},
        }
    )


def test_fields_that_are_no_init_argument_are_left_out_as_cattrs_leaves_them_out() -> None:
    @attrs.frozen
    class Derived:
        a: int
        b: int = attrs.field(init=False, default=5)

    assert unstructure(Derived(1)) == _reference().unstructure(Derived(1)) == {"a": 1}


def test_an_annotated_override_is_left_to_cattrs() -> None:
    @attrs.frozen
    class Renamed:
        a: Annotated[int, override(rename="alpha")]

    assert flat_unstructure_fn(Renamed) is None
    assert unstructure(Renamed(1)) == {"alpha": 1}


def test_stored_payloads_are_the_events_json_with_shared_values_encoded_once() -> None:
    """The journal writes a transition's event payloads with an order, fill or position they
    share encoded once; the text is the event's own JSON to the character, whatever the event."""
    events = [sample for sample in _samples() if isinstance(sample, Event)]
    expected = [json.dumps(event.payload(), ensure_ascii=False) for event in events]
    assert payload_texts(events) == expected
    assert payload_texts(list(reversed(events))) == list(reversed(expected))
    assert payload_texts([]) == []
    named = OrderStatusChanged(
        attrs.evolve(events[0].order, symbol_name='삼성전자 "우"\n'), OrderStatus.CREATED
    )
    assert payload_texts([named]) == [json.dumps(named.payload(), ensure_ascii=False)]


@attrs.frozen
class _TaggedOrder(Order):
    tag: str = "x"


def test_an_event_carrying_a_subclass_of_an_order_is_stored_as_its_payload_says() -> None:
    order = next(sample for sample in _samples() if type(sample) is Order)
    tagged = _TaggedOrder(**attrs.asdict(order, recurse=False))
    events = [OrderCreated(tagged), OrderStatusChanged(order, OrderStatus.CREATED)]
    texts = payload_texts(events)
    assert texts == [json.dumps(event.payload(), ensure_ascii=False) for event in events]
    assert '"tag"' not in texts[0], "converted as the declared Order"
