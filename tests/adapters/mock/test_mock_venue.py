"""The mock venue's scripting API, driven directly: what each scripted behaviour makes the venue
answer, and what it records, without an engine in between."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orderlane import FakeClock, Order, OrderStatus, Signal
from orderlane.errors import (
    BrokerConnectionError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    InsufficientBalanceError,
    InvalidSymbolError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderValidationError,
)
from orderlane_mock import MockVenue, VenueOrder

CLOCK = FakeClock()
NOW = CLOCK.now()


def make_order(
    quantity: int = 10,
    *,
    symbol: str = "005930",
    side: str = "BUY",
    order_type: str = "MARKET",
    limit_price: Decimal | None = None,
) -> Order:
    signal = Signal(symbol, side, quantity, order_type=order_type, limit_price=limit_price)
    return Order.from_signal(signal, account_id="acct", now=NOW)


def make_venue(**options: Any) -> MockVenue:
    return MockVenue(clock=CLOCK.now, **options)


def held(venue: MockVenue, quantity: int = 10) -> str:
    """The broker order id of an order the venue accepted and holds open, unfilled."""
    venue.hold_next()
    snapshot = venue.place(make_order(quantity))
    assert snapshot.broker_order_id is not None
    return snapshot.broker_order_id


# ------------------------------------------------------------------ placing


def test_an_unscripted_order_fills_at_once_at_the_quote_with_the_commission() -> None:
    venue = make_venue()
    order = make_order()

    snapshot = venue.place(order)

    assert (snapshot.status, snapshot.broker_order_id) == (OrderStatus.FILLED, "M00000001")
    assert (snapshot.filled_quantity, snapshot.filled_notional) == (10, Decimal(720000))
    assert (snapshot.commission, snapshot.broker_time, snapshot.reason) == (Decimal(100), NOW, None)
    [execution] = snapshot.executions
    assert (execution.fill_id, execution.quantity, execution.price) == (
        "M00000001-F1",
        10,
        Decimal(72000),
    )
    [request] = venue.places
    assert (request.client_order_id, request.broker_order_id) == (order.id, "M00000001")
    assert (request.accepted, request.received_at) == (True, NOW)
    assert venue.orders_for(order.id) == [venue.orders["M00000001"]]


def test_quotes_are_per_symbol_and_a_limit_order_fills_at_its_price() -> None:
    venue = make_venue(quote="50000", commission=5, quotes={"000660": Decimal(120000)})
    venue.set_quote("035420", 210000)

    assert venue.quote("005930") == Decimal(50000)
    assert venue.quote("000660") == Decimal(120000)
    assert venue.quote("035420") == Decimal(210000)
    sk_hynix = venue.place(make_order(2, symbol="000660"))
    limit = venue.place(make_order(3, order_type="LIMIT", limit_price=Decimal(49500)))
    assert (sk_hynix.filled_notional, sk_hynix.commission) == (Decimal(240000), Decimal(5))
    assert limit.filled_notional == Decimal(148500)


def test_scripted_place_requests_run_in_the_order_they_were_queued() -> None:
    venue = make_venue()
    venue.fill_next(Decimal(71000), Decimal(70))
    venue.partial_fill_next(3, 71900, 30)
    venue.hold_next(times=2)

    full, partial, held_one, held_two, unscripted = (venue.place(make_order()) for _ in range(5))

    assert (full.status, full.filled_notional, full.commission) == (
        OrderStatus.FILLED,
        Decimal(710000),
        Decimal(70),
    )
    assert (partial.status, partial.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 3)
    assert (partial.filled_notional, partial.commission) == (Decimal(215700), Decimal(30))
    assert (held_one.status, held_one.filled_quantity, held_one.executions) == (
        OrderStatus.SUBMITTED,
        0,
        (),
    )
    assert held_two.status is OrderStatus.SUBMITTED
    assert unscripted.status is OrderStatus.FILLED
    assert [o.is_open for o in venue.orders.values()] == [False, True, True, True, False]


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("insufficient_balance", InsufficientBalanceError),
        ("invalid_symbol", InvalidSymbolError),
        ("validation", OrderValidationError),
        ("other", OrderRejectedError),
    ],
)
def test_a_scripted_refusal_raises_its_error_and_holds_nothing(
    kind: str, error: type[OrderRejectedError]
) -> None:
    venue = make_venue()
    venue.reject_next(kind, "refused here")  # type: ignore[arg-type]

    with pytest.raises(error, match="refused here") as raised:
        venue.place(make_order())

    assert type(raised.value) is error
    assert [request.accepted for request in venue.places] == [False]
    assert venue.orders == {}
    assert venue.place(make_order()).status is OrderStatus.FILLED  # one refusal, then fills


def test_an_unknown_refusal_kind_is_refused_when_scripted() -> None:
    with pytest.raises(ValueError, match="unknown rejection kind 'margin'"):
        make_venue().reject_next("margin", "no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "error", "sent", "held_after"),
    [
        ("connection", BrokerConnectionError, False, False),
        ("timeout_before", BrokerTimeoutError, True, False),
        ("timeout_after", BrokerTimeoutError, True, True),
        ("drop_after_accept", BrokerConnectionError, True, True),
        ("garbled", BrokerError, None, True),
        ("rate_limit", BrokerRateLimitError, None, False),
    ],
)
def test_a_scripted_place_failure_raises_and_may_leave_the_order_at_the_venue(
    kind: str, error: type[BrokerError], sent: bool | None, held_after: bool
) -> None:
    venue = make_venue()
    venue.fail_next(kind, times=2)  # type: ignore[arg-type]
    order = make_order()

    for _ in range(2):
        with pytest.raises(error) as raised:
            venue.place(order)
        assert type(raised.value) is error
        if sent is not None:
            assert isinstance(raised.value, (BrokerConnectionError, BrokerTimeoutError))
            assert raised.value.request_sent is sent

    assert len(venue.places) == 2
    assert len(venue.orders_for(order.id)) == (2 if held_after else 0)
    assert all(request.accepted is held_after for request in venue.places)
    assert venue.place(order).status is OrderStatus.FILLED  # the failures are used up


def test_an_order_taken_before_a_lost_answer_follows_the_scripting_queue() -> None:
    venue = make_venue()
    venue.fail_next("timeout_after")
    venue.partial_fill_next(4)
    order = make_order()

    with pytest.raises(BrokerTimeoutError):
        venue.place(order)

    found = venue.lookup(order.id)
    assert isinstance(found, VenueOrder)
    assert (found.status, found.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)


def test_failures_can_be_scripted_for_other_operations() -> None:
    venue = make_venue()
    broker_order_id = held(venue)
    venue.fail_next("connection", operation="status")
    venue.fail_next("timeout_after", operation="cancel")
    venue.fail_next("rate_limit", operation="lookup")

    with pytest.raises(BrokerConnectionError):
        venue.status(broker_order_id)
    with pytest.raises(BrokerTimeoutError, match="cancel timed out"):
        venue.cancel(broker_order_id)
    with pytest.raises(BrokerRateLimitError):
        venue.lookup("client-1")

    assert venue.orders[broker_order_id].is_open
    assert venue.status(broker_order_id).status is OrderStatus.SUBMITTED


def test_a_venue_that_dedupes_client_ids_answers_a_resend_with_the_first_order() -> None:
    venue = make_venue(dedupe_client_ids=True)
    venue.hold_next()
    order = make_order()

    first = venue.place(order)
    again = venue.place(order)

    assert again == first
    assert list(venue.orders) == ["M00000001"]
    assert [request.broker_order_id for request in venue.places] == ["M00000001"] * 2


# ------------------------------------------------------------------ lookups and inquiries


def test_a_lookup_finds_by_client_id_unless_its_answer_is_scripted() -> None:
    venue = make_venue()
    order = make_order()
    venue.place(order)
    venue.answer_lookup_next("cannot_tell")
    venue.answer_lookup_next("absent", times=2)

    assert venue.lookup(order.id) == "cannot_tell"
    assert venue.lookup(order.id) is None
    assert venue.lookup(order.id) is None
    assert venue.lookup(order.id) is venue.orders["M00000001"]
    assert venue.lookup("never-sent") is None
    assert [r.client_order_id for r in venue.requests_of("lookup")] == [order.id] * 4 + [
        "never-sent"
    ]


def test_statuses_answers_every_known_order_in_one_request() -> None:
    venue = make_venue()
    open_id = held(venue)
    filled = venue.place(make_order())

    answers = venue.statuses([open_id, "M00000002", "M99999999"])

    assert set(answers) == {open_id, "M00000002"}
    assert answers[open_id].status is OrderStatus.SUBMITTED
    assert answers["M00000002"] == filled
    [request] = venue.requests_of("status")
    assert request.broker_order_id is None


def test_status_of_an_order_the_venue_never_took() -> None:
    with pytest.raises(OrderNotFoundError, match="no order M99999999"):
        make_venue().status("M99999999")


# ------------------------------------------------------------------ the venue acting on its own


def test_fill_executes_more_of_an_open_order_until_it_is_filled() -> None:
    venue = make_venue()
    broker_order_id = held(venue)

    first = venue.fill(broker_order_id, 4, 71900, 40)
    assert (first.quantity, first.price, first.commission) == (4, Decimal(71900), Decimal(40))
    assert venue.status(broker_order_id).status is OrderStatus.PARTIALLY_FILLED
    rest = venue.fill(broker_order_id)

    assert (rest.fill_id, rest.quantity, rest.price) == ("M00000001-F2", 6, Decimal(72000))
    snapshot = venue.status(broker_order_id)
    assert (snapshot.status, snapshot.filled_quantity) == (OrderStatus.FILLED, 10)
    assert snapshot.commission == Decimal(140)
    with pytest.raises(ValueError, match="is FILLED, not open"):
        venue.fill(broker_order_id)


@pytest.mark.parametrize("quantity", [0, -1, 11])
def test_fill_refuses_a_quantity_the_order_does_not_have_left(quantity: int) -> None:
    venue = make_venue()
    broker_order_id = held(venue)

    with pytest.raises(ValueError, match="10 left"):
        venue.fill(broker_order_id, quantity)
    with pytest.raises(OrderNotFoundError):
        venue.fill("M99999999")


def test_the_venue_cancels_and_rejects_open_orders_on_its_own() -> None:
    venue = make_venue()
    cancelled, halted, rejected, late = (held(venue) for _ in range(4))

    venue.cancel_by_venue(cancelled)
    venue.cancel_by_venue(halted, "trading halted")
    venue.reject_open(rejected)
    venue.reject_open(late, "short sale not allowed")

    answers = [venue.status(broker_id) for broker_id in (cancelled, halted, rejected, late)]
    assert [(answer.status, answer.reason) for answer in answers] == [
        (OrderStatus.CANCELLED, "cancelled by the venue"),
        (OrderStatus.CANCELLED, "trading halted"),
        (OrderStatus.REJECTED, "rejected after acceptance"),
        (OrderStatus.REJECTED, "short sale not allowed"),
    ]


def test_cancel_on_request_cancels_what_is_left_once() -> None:
    venue = make_venue()
    venue.partial_fill_next(4)
    partial = venue.place(make_order())
    assert partial.broker_order_id is not None

    cancelled = venue.cancel(partial.broker_order_id)
    again = venue.cancel(partial.broker_order_id)

    assert cancelled is not None
    assert (cancelled.status, cancelled.filled_quantity) == (OrderStatus.CANCELLED, 4)
    assert cancelled.reason == "cancelled on request"
    assert again is None
    with pytest.raises(OrderNotFoundError):
        venue.cancel("M99999999")
    assert [r.broker_order_id for r in venue.requests_of("cancel")] == [
        partial.broker_order_id,
        partial.broker_order_id,
        "M99999999",
    ]


def test_a_forgotten_order_is_unknown_to_every_inquiry() -> None:
    venue = make_venue()
    forgotten = held(venue)
    kept = held(venue)
    venue.fill(forgotten, 2)
    venue.repeat_fill_in_next_status(forgotten)

    venue.forget(forgotten)

    with pytest.raises(OrderNotFoundError):
        venue.status(forgotten)
    assert list(venue.statuses([forgotten, kept])) == [kept]
    assert list(venue.orders) == [kept]
    with pytest.raises(OrderNotFoundError):
        venue.forget(forgotten)


# ------------------------------------------------------------------ the next status answers


def test_a_repeated_fill_is_listed_twice_in_the_next_answer_only() -> None:
    venue = make_venue()
    broker_order_id = held(venue)
    venue.fill(broker_order_id, 4)
    venue.fill(broker_order_id, 3)
    venue.repeat_fill_in_next_status(broker_order_id)
    venue.repeat_fill_in_next_status(broker_order_id)

    repeated = venue.status(broker_order_id)
    batch = venue.statuses([broker_order_id])[broker_order_id]
    truth = venue.status(broker_order_id)

    ids = [execution.fill_id for execution in repeated.executions]
    assert ids == ["M00000001-F1", "M00000001-F2", "M00000001-F2"]
    assert (repeated.filled_quantity, repeated.commission) == (7, Decimal(200))
    assert (repeated.status, repeated.filled_notional) == (truth.status, truth.filled_notional)
    assert batch == repeated
    assert [execution.fill_id for execution in truth.executions] == ids[:2]


def test_a_fill_cannot_be_repeated_before_there_is_one() -> None:
    venue = make_venue()
    with pytest.raises(ValueError, match="no execution to repeat"):
        venue.repeat_fill_in_next_status(held(venue))
    with pytest.raises(OrderNotFoundError):
        venue.repeat_fill_in_next_status("M99999999")


def test_a_stale_answer_shows_the_order_after_its_first_executions() -> None:
    venue = make_venue()
    broker_order_id = held(venue)
    venue.fill(broker_order_id, 4)
    venue.fill(broker_order_id)
    for executions in (2, 1, 0):
        venue.stale_next_status(broker_order_id, executions)

    answers = [venue.status(broker_order_id) for _ in range(4)]

    assert [(a.status, a.filled_quantity) for a in answers] == [
        (OrderStatus.FILLED, 10),
        (OrderStatus.PARTIALLY_FILLED, 4),
        (OrderStatus.SUBMITTED, 0),
        (OrderStatus.FILLED, 10),
    ]
    assert answers[1].filled_notional == Decimal(288000)
    assert answers[1].commission == Decimal(100)
    assert (answers[2].executions, answers[2].broker_time) == ((), NOW)


def test_a_stale_answer_drops_what_came_later_the_reason_included() -> None:
    venue = make_venue()
    broker_order_id = held(venue)
    venue.fill(broker_order_id, 4)
    venue.cancel_by_venue(broker_order_id, "trading halted")
    venue.stale_next_status(broker_order_id, 1)

    stale = venue.statuses([broker_order_id])[broker_order_id]

    assert (stale.status, stale.filled_quantity, stale.reason) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
        None,
    )
    now = venue.status(broker_order_id)
    assert (now.status, now.reason) == (OrderStatus.CANCELLED, "trading halted")
    assert venue.orders[broker_order_id].status is OrderStatus.CANCELLED


@pytest.mark.parametrize("executions", [-1, 2])
def test_a_stale_answer_cannot_report_executions_that_never_were(executions: int) -> None:
    venue = make_venue()
    broker_order_id = held(venue)
    venue.fill(broker_order_id, 4)

    with pytest.raises(ValueError, match="has 1 executions"):
        venue.stale_next_status(broker_order_id, executions)


# ------------------------------------------------------------------ the venue's rate limit


def test_an_enforced_limit_refuses_what_would_overfill_the_rolling_window() -> None:
    clock = FakeClock()
    venue = make_venue()
    venue.enforce_rate_limit(2, 1.0, clock.monotonic)

    venue.place(make_order())
    venue.place(make_order())
    with pytest.raises(BrokerRateLimitError):
        venue.place(make_order())
    clock.advance(0.5)
    with pytest.raises(BrokerRateLimitError):
        venue.status("M00000001")
    clock.advance(0.5)
    venue.place(make_order())

    assert venue.rate_limit_rejections == 2
    assert [r.operation for r in venue.requests] == [
        "place",
        "place",
        "place:rate-limited",
        "status:rate-limited",
        "place",
    ]
    assert venue.arrival_times == [0.0, 0.0, 0.0, 0.5, 1.0]
    # Refused arrivals count too: [0, 1) saw four.
    assert venue.max_arrivals_in_window() == 4
    assert venue.max_arrivals_in_window(period=0.25) == 3
    assert len(venue.orders) == 3


def test_a_refused_connection_never_arrives_so_the_limit_does_not_count_it() -> None:
    clock = FakeClock()
    venue = make_venue()
    venue.enforce_rate_limit(1, 1.0, clock.monotonic)
    venue.fail_next("connection")

    with pytest.raises(BrokerConnectionError):
        venue.place(make_order())
    venue.place(make_order())

    assert venue.arrival_times == [0.0]
    assert venue.rate_limit_rejections == 0


def test_without_an_enforced_limit_nothing_is_counted() -> None:
    venue = make_venue()
    for _ in range(3):
        venue.place(make_order())

    assert venue.arrival_times == []
    assert venue.max_arrivals_in_window() == 0
    assert venue.rate_limit_rejections == 0


def test_requests_are_stamped_with_wall_clock_utc_unless_given_a_clock() -> None:
    venue = MockVenue()
    before = datetime.now(UTC)

    venue.place(make_order())

    [request] = venue.places
    assert before <= request.received_at <= datetime.now(UTC)
    assert request.received_at.tzinfo is UTC
