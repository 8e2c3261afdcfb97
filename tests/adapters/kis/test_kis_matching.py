"""Lookup by attributes: KIS keeps no client order id, so orders are matched by intent and time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from orderlane import Absent, CannotTell, Found, LookupWindow, Order, OrderStatus, Signal
from orderlane.model import Side
from orderlane_kis.inquiry import Owned, Pass, Unparsed, answer_for, match_orders
from orderlane_kis.parsing import InquiryRow

T0 = datetime(2026, 1, 5, 0, 0, 10, tzinfo=UTC)  # 09:00:10 KST


def _order(quantity: int = 10, price: str | None = None, at: datetime = T0) -> Order:
    signal = Signal(
        "005930",
        "BUY",
        quantity,
        order_type="LIMIT" if price else "MARKET",
        limit_price=Decimal(price) if price else None,
    )
    return Order.from_signal(signal, account_id="acct", now=at - timedelta(seconds=1))


def _row(
    odno: str, quantity: int = 10, price: str = "0", at: datetime = T0, **extra: object
) -> InquiryRow:
    fields: dict[str, object] = dict(
        broker_order_id=odno,
        original_order_id="",
        branch="00950",
        symbol="005930",
        side=Side.BUY,
        quantity=quantity,
        price=Decimal(price),
        ordered_at=at,
        filled_quantity=0,
        filled_amount=Decimal(0),
        average_price=Decimal(0),
        cancelled=False,
        remaining=quantity,
        rejected=0,
        cancel_confirmed=0,
    )
    fields.update(extra)
    return InquiryRow(**fields)  # type: ignore[arg-type]


def _window(start: datetime = T0, seconds: float = 5) -> LookupWindow:
    return LookupWindow(start - timedelta(seconds=1), start + timedelta(seconds=seconds))


def _windows(*orders: Order) -> dict[str, LookupWindow]:
    return {order.id: _window() for order in orders}


def test_one_match_is_found_with_its_state() -> None:
    order = _order()
    filled = _row("0000000001", filled_quantity=10, filled_amount=Decimal(720000), remaining=0)
    result = match_orders([order], _windows(order), [filled], frozenset())[order.id]
    assert isinstance(result, Found)
    assert (result.snapshot.broker_order_id, result.snapshot.status) == (
        "0000000001",
        OrderStatus.FILLED,
    )


def test_no_match_is_absent_and_other_intents_do_not_match() -> None:
    order = _order(10)
    rows = [
        _row("1", quantity=11),
        _row("2", price="72000"),
        _row("3", side=Side.SELL),
        _row("4", symbol="000660"),
        _row("5", at=T0 + timedelta(minutes=5)),  # sent long after the window
    ]
    assert isinstance(match_orders([order], _windows(order), rows, frozenset())[order.id], Absent)


def test_limit_orders_match_by_price() -> None:
    order = _order(price="72000")
    rows = [_row("1", price="72100"), _row("2", price="72000")]
    result = match_orders([order], _windows(order), rows, frozenset())[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.broker_order_id == "2"


def test_owned_orders_and_cancel_rows_are_never_candidates() -> None:
    order = _order()
    rows = [_row("1"), _row("2", original_order_id="7", cancelled=True), _row("3")]
    result = match_orders([order], _windows(order), rows, frozenset({"1"}))[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.broker_order_id == "3"


def test_two_candidates_cannot_tell() -> None:
    order = _order()
    result = match_orders([order], _windows(order), [_row("1"), _row("2")], frozenset())
    assert isinstance(result[order.id], CannotTell)
    assert "2 KIS orders match" in result[order.id].reason  # type: ignore[union-attr]


def test_a_kis_order_two_unresolved_siblings_could_own_settles_neither() -> None:
    first, second = _order(), _order()
    results = match_orders([first, second], _windows(first, second), [_row("1")], frozenset())
    assert all(isinstance(result, CannotTell) for result in results.values())
    assert "2 unresolved orders" in results[first.id].reason  # type: ignore[union-attr]


def test_a_row_without_a_readable_time_is_never_ruled_out() -> None:
    order = _order()
    result = match_orders([order], _windows(order), [_row("1", at=None)], frozenset())
    assert isinstance(result[order.id], Found)


def test_a_same_intent_order_just_outside_the_window_is_no_proof_of_absence() -> None:
    """KIS stamps the order time with its own clock: a machine whose clock is a few seconds
    off KIS's sees its own order just outside the send window. Calling that absent would send
    the order again (a duplicate), so it cannot tell; far outside, it is another order."""
    order = _order()
    window = _window()
    for kis_time in (window.start - timedelta(seconds=6), window.end + timedelta(seconds=6)):
        result = match_orders([order], {order.id: window}, [_row("1", at=kis_time)], frozenset())
        assert isinstance(result[order.id], CannotTell), kis_time
        assert "clock" in result[order.id].reason  # type: ignore[union-attr]
    far = window.start - timedelta(minutes=5)
    result = match_orders([order], {order.id: window}, [_row("1", at=far)], frozenset())
    assert isinstance(result[order.id], Absent)
    # An owned order near the window is someone else's: still absent.
    near = _row("1", at=window.start - timedelta(seconds=6))
    result = match_orders([order], {order.id: window}, [near], frozenset({"1"}))
    assert isinstance(result[order.id], Absent)


def test_an_order_another_order_of_the_batch_matches_is_no_near_miss() -> None:
    """Two orders of one intent sent ten seconds apart, only the first at KIS: the first is
    found, and its KIS order (in the first one's window) does not hold the second one back."""
    first, second = _order(), _order()
    windows = {first.id: _window(), second.id: _window(T0 + timedelta(seconds=10))}
    results = match_orders([first, second], windows, [_row("1")], frozenset())
    assert isinstance(results[first.id], Found)
    assert isinstance(results[second.id], Absent)


def test_a_cancel_of_another_days_order_of_that_number_is_not_this_orders() -> None:
    """An order number need not name one order across days: yesterday's cancel row naming
    number 5 cancelled yesterday's order 5, not the order found today under that number."""
    order = _order()
    rows = [
        _row(
            "0000000009",
            original_order_id="0000000005",
            cancel_confirmed=10,
            at=T0 - timedelta(days=1),
        ),
        _row("0000000005"),
    ]
    result = match_orders([order], _windows(order), rows, frozenset())[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.status is OrderStatus.SUBMITTED, "nothing of today's order cancelled"


def test_a_cancel_of_this_days_order_still_counts() -> None:
    order = _order()
    rows = [
        _row("0000000009", original_order_id="0000000005", cancel_confirmed=10),
        _row("0000000005", at=T0 - timedelta(days=1)),
        _row("0000000005"),
    ]
    result = match_orders([order], _windows(order), rows, frozenset())[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.status is OrderStatus.CANCELLED


def _owned(number: str, *days_ago: int) -> Owned:
    sent = (T0 - timedelta(days=d) for d in days_ago)
    return Owned(frozenset({number}), {number: tuple(LookupWindow(at, at) for at in sent)})


def test_a_number_owned_on_another_day_is_still_a_candidate_today() -> None:
    order = _order()
    result = match_orders([order], _windows(order), [_row("5")], _owned("5", 7, 1))[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.broker_order_id == "5"


def test_a_number_owned_today_is_no_candidate() -> None:
    order = _order()
    rows = [_row("5"), _row("6")]
    result = match_orders([order], _windows(order), rows, _owned("5", 1, 0))[order.id]
    assert isinstance(result, Found)
    assert result.snapshot.broker_order_id == "6"


def test_a_number_owned_at_a_time_nobody_knows_is_owned_every_day() -> None:
    order = _order()
    owned = Owned(frozenset({"5"}), {})
    assert isinstance(match_orders([order], _windows(order), [_row("5")], owned)[order.id], Absent)


def test_a_row_naming_no_day_in_an_inquiry_of_two_days_is_owned_on_every_day() -> None:
    """An owned number's row without a day (no ``ord_dt``), in an inquiry of Monday and
    Tuesday, may be Monday's order its owner got: it is no candidate."""
    order = _order(at=T0 + timedelta(days=1))
    windows = {order.id: _window(T0 + timedelta(days=1))}
    rows = [_row("0000031005", quantity=3, at=T0 + timedelta(days=1)), _row("5", at=None)]
    span = (date(2026, 1, 5), date(2026, 1, 6))
    result = match_orders([order], windows, rows, _owned("5", 0), span)[order.id]
    assert isinstance(result, Absent)


def test_an_owner_sent_more_than_once_owns_its_number_on_every_day_between() -> None:
    order = _order(at=T0 + timedelta(days=2))
    windows = {order.id: _window(T0 + timedelta(days=2))}
    resent = LookupWindow(T0, T0 + timedelta(days=3))  # first sent Monday, last changed Thursday
    owned = Owned(frozenset({"5"}), {"5": (resent,)})
    row = _row("5", at=T0 + timedelta(days=2))
    assert isinstance(match_orders([order], windows, [row], owned)[order.id], Absent)


def test_a_pass_that_could_not_read_everything_says_what_may_hide_an_order() -> None:
    order = _order()
    day = date(2026, 1, 5)
    seen = Pass()
    assert seen.could_hide(order, day, day) == []
    seen.unparsed.append(Unparsed("0000000007", "avg_prvs='NaN'", "000660", day))  # another stock
    seen.unparsed.append(Unparsed("0000000008", "bad", "005930", date(2026, 1, 2)))  # another day
    assert seen.could_hide(order, day, day) == []
    seen.unparsed.append(Unparsed("", "a row is a str, not an object", None, None))
    seen.pages_unread, seen.cut_short = 1, True
    assert seen.could_hide(order, day, day) == [
        "the inquiry's pages ended before its last",
        "1 page(s) of the inquiry held no rows to read",
        "the row of KIS order (no number) does not parse (a row is a str, not an object)",
    ]


def test_one_days_number_answers_for_one_order_of_its_intent_only() -> None:
    order = _order(price="72000")
    mine, other = _row("5", price="72000"), _row("5", price="71000")
    answered = answer_for([order], [other, mine], [])
    assert answered is not None
    assert answered.broker_order_id == "5"
    assert answer_for([order], [other, _row("5", price="71500")], []) is None, "none of its intent"
    assert answer_for([order, _order(price="72000")], [mine], []) is None, "two orders name it"
    assert answer_for([order], [], []) is None


def test_every_row_that_does_not_parse_is_kept_even_under_one_number() -> None:
    """Newest first, an older row of the same number (another stock, another day) comes after
    the order's own unreadable row: both are kept, and the order's still hides it."""
    order = _order()
    monday, tuesday = date(2026, 1, 5), date(2026, 1, 6)
    seen = Pass()
    seen.unparsed.append(Unparsed("5", "bad amount", "005930", tuesday))
    seen.unparsed.append(Unparsed("5", "bad amount", "000660", monday))
    assert seen.could_hide(order, tuesday, tuesday) == [
        "the row of KIS order 5 does not parse (bad amount)"
    ]
