"""Booking a broker snapshot as a pure function (orderlane.booking), without journal or broker.

Properties over generated orders and cumulative snapshots: fills never exceed the order nor the
snapshot, booking the same snapshot again adds no fill, statuses move only along the transition
table (a terminal order keeps its status), booking a later snapshot directly books the same
quantity as booking an earlier one first, and the events say what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from orderlane.booking import TIMEOUT_REASON, Change, book_snapshot, derive_status
from orderlane.events import OrderStatusChanged, OrderSubmitted, OrderTimedOut
from orderlane.model import (
    TRANSITIONS,
    Execution,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
)

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SEOUL = ZoneInfo("Asia/Seoul")
REPORTED = [
    OrderStatus.SUBMITTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.REJECTED,
    OrderStatus.PENDING_CANCEL,
    OrderStatus.FAILED,
]
#: Statuses an order is in when the broker's answer about it may come (it is or may be there).
AT_BROKER = [
    OrderStatus.SUBMITTING,
    OrderStatus.SUBMITTED,
    OrderStatus.PENDING_CANCEL,
    OrderStatus.UNKNOWN,
]
settings.register_profile("booking", max_examples=200, deadline=None)


def _order(quantity: int, status: OrderStatus, broker_id: str | None, reason: str | None) -> Order:
    order = Order.from_signal(Signal("005930", "BUY", quantity), account_id="acct", now=NOW)
    return attrs.evolve(order, status=status, broker_order_id=broker_id, reason=reason)


fresh_orders = st.builds(
    _order,
    quantity=st.integers(1, 50),
    status=st.sampled_from(AT_BROKER),
    broker_id=st.sampled_from([None, "B1"]),
    reason=st.sampled_from([None, "outcome unknown", f"{TIMEOUT_REASON}: cancel not confirmed"]),
)
prices = st.integers(1, 100_000).map(Decimal)


@st.composite
def snapshots(draw: st.DrawFn, quantity: int) -> OrderSnapshot:
    """A cumulative snapshot, with named executions or totals only."""
    status = draw(st.sampled_from(REPORTED))
    if draw(st.booleans()):
        sizes = draw(st.lists(st.integers(1, quantity), max_size=4))
        executions = tuple(
            Execution(f"E{index}", size, draw(prices), Decimal(draw(st.integers(0, 50))))
            for index, size in enumerate(sizes)
        )
        filled = sum(sizes)
        return OrderSnapshot(
            status, broker_order_id="B1", filled_quantity=filled, executions=executions
        )
    filled = draw(st.integers(0, quantity + 5))
    price = draw(prices)
    return OrderSnapshot(
        status,
        broker_order_id="B1",
        filled_quantity=filled,
        average_price=price if filled else None,
        commission=Decimal(draw(st.integers(0, 100))),
    )


@st.composite
def booked_orders(draw: st.DrawFn) -> tuple[Order, set[str]]:
    """An order as booking leaves it: fresh, or after an earlier snapshot (partly filled,
    filled, ended...), with the ids of the fills booked so far."""
    order = draw(fresh_orders)
    if draw(st.booleans()):
        return order, set()
    earlier = draw(snapshots(order.quantity))
    return _apply(order, set(), _book(order, earlier, set()))


@attrs.frozen
class Case:
    """An order as booked so far, the snapshot to book, and whether it is ended by timeout."""

    order: Order
    known: set[str]
    snapshot: OrderSnapshot
    timed_out: bool | None

    def book(self, order: Order | None = None, known: set[str] | None = None) -> Change | None:
        """Book the snapshot on ``order`` (default: the case's) knowing ``known`` fill ids."""
        return _book(
            order or self.order,
            self.snapshot,
            self.known if known is None else known,
            timed_out=self.timed_out,
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    order, known = draw(booked_orders())
    snapshot = draw(snapshots(order.quantity))
    return Case(order, known, snapshot, draw(st.sampled_from([None, True, False])))


def booking_property(test: Callable[[Case], None]) -> Callable[[], None]:
    """A property of booking, checked over generated cases."""
    checked: Callable[[], None] = settings(settings.get_profile("booking"))(given(cases())(test))
    return checked


def _book(
    order: Order, snapshot: OrderSnapshot, known: set[str], *, timed_out: bool | None = None
) -> Change | None:
    return book_snapshot(
        order, snapshot, known_fill_ids=known, now=NOW, venue_timezone=SEOUL, timed_out=timed_out
    )


def _apply(order: Order, known: set[str], change: Change | None) -> tuple[Order, set[str]]:
    if change is None:
        return order, known
    return change.order, known | {fill.fill_id for fill in change.fills}


@booking_property
def test_fills_stay_within_the_order_and_the_snapshot(case: Case) -> None:
    order, snapshot = case.order, case.snapshot
    change = case.book()
    if change is None:
        return
    after = change.order
    added = sum(fill.quantity for fill in change.fills)
    assert after.filled_quantity == order.filled_quantity + added
    assert after.filled_quantity <= order.quantity
    # Quantity 0 only for a fee-only fill: a commission the snapshot's total holds above what
    # is booked, with no new quantity to carry it.
    assert all(
        (fill.quantity > 0 or (fill.commission > 0 and ":fee:" in fill.fill_id))
        and fill.order_id == order.id
        for fill in change.fills
    )
    assert len({fill.fill_id for fill in change.fills}) == len(change.fills)
    assert after.broker_order_id == (order.broker_order_id or snapshot.broker_order_id)
    assert after.updated_at == NOW
    assert after.version == order.version  # the journal moves the version on commit


@booking_property
def test_booking_the_same_snapshot_again_adds_nothing(case: Case) -> None:
    after, known = _apply(case.order, case.known, case.book())
    again = case.book(after, known)
    # No fill counts twice. A status may take one more step: a PENDING_CANCEL reported on the
    # place answer is taken once the order is SUBMITTED (the table's way there).
    assert again is None or not again.fills
    settled, known = _apply(after, known, again)
    assert case.book(settled, known) is None


@booking_property
def test_status_moves_along_the_transition_table(case: Case) -> None:
    order = case.order
    change = case.book()
    if change is None:
        return
    after = change.order
    if order.is_terminal:
        assert after.status is order.status
    elif after.status is not order.status:
        assert after.status in TRANSITIONS[order.status]
    if after.filled_quantity == order.quantity and not order.is_terminal:
        assert after.status is OrderStatus.FILLED


@booking_property
def test_events_say_what_changed(case: Case) -> None:
    order = case.order
    change = case.book()
    if change is None:
        return
    after = change.order
    changed = [e for e in change.events if isinstance(e, OrderStatusChanged)]
    assert len(changed) == (after.status is not order.status)
    if changed:
        assert changed[0].previous is order.status
        assert changed[0].order == after
    submitted = [e for e in change.events if isinstance(e, OrderSubmitted)]
    assert len(submitted) == (
        order.broker_order_id is None and after.status is not OrderStatus.REJECTED
    )
    timed = [e for e in change.events if isinstance(e, OrderTimedOut)]
    if timed:
        assert after.status is OrderStatus.FAILED
        assert after.reason == TIMEOUT_REASON
        assert not order.is_terminal


@settings(settings.get_profile("booking"))
@given(st.data())
def test_a_later_snapshot_books_the_same_quantity_with_or_without_an_earlier_one(
    data: st.DataObject,
) -> None:
    order = data.draw(fresh_orders)
    first = data.draw(st.integers(0, order.quantity))
    later = data.draw(st.integers(first, order.quantity))
    price = data.draw(prices)

    def totals(filled: int) -> OrderSnapshot:
        return OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.SUBMITTED,
            broker_order_id="B1",
            filled_quantity=filled,
            average_price=price if filled else None,
        )

    direct, _ = _apply(order, set(), _book(order, totals(later), set()))
    stepped, known = _apply(order, set(), _book(order, totals(first), set()))
    stepped, _ = _apply(stepped, known, _book(stepped, totals(later), known))
    assert stepped.filled_quantity == direct.filled_quantity == later
    assert stepped.filled_notional == direct.filled_notional == price * later
    assert stepped.status is direct.status


def test_a_fill_is_dated_by_the_venues_trading_day() -> None:
    order = _order(10, OrderStatus.SUBMITTED, "B1", None)
    late = NOW.replace(hour=20)  # 05:00 the next day in Seoul
    snapshot = OrderSnapshot(
        OrderStatus.FILLED,
        broker_order_id="B1",
        filled_quantity=10,
        executions=(Execution("E1", 10, Decimal(100), executed_at=late),),
    )
    change = _book(order, snapshot, set())
    assert change is not None
    assert [fill.trading_day for fill in change.fills] == [(late + timedelta(hours=9)).date()]


def test_a_cancel_of_a_timed_out_order_ends_it_failed_timeout() -> None:
    order = _order(10, OrderStatus.PENDING_CANCEL, "B1", None)
    cancelled = OrderSnapshot(OrderStatus.CANCELLED, broker_order_id="B1")
    by_timeout = _book(order, cancelled, set(), timed_out=True)
    by_hand = _book(order, cancelled, set(), timed_out=False)
    assert by_timeout is not None
    assert by_hand is not None
    assert (by_timeout.order.status, by_timeout.order.reason) == (OrderStatus.FAILED, "timeout")
    assert by_hand.order.status is OrderStatus.CANCELLED
    assert derive_status(order, cancelled) is OrderStatus.CANCELLED
