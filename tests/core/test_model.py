"""The trading domain without I/O: signal validation, the transition table, snapshots to fills."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from orderlane.errors import InvalidSignalError, InvalidTransitionError
from orderlane.model import (
    MAX_ID_LENGTH,
    MAX_SYMBOL_LENGTH,
    MAX_SYMBOL_NAME_LENGTH,
    TERMINAL_STATUSES,
    TRANSITIONS,
    Execution,
    Fill,
    Order,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    fills_from_snapshot,
)

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
ALL_STATUSES = list(OrderStatus)


def make_order(status: OrderStatus = OrderStatus.SUBMITTED, **changes: Any) -> Order:
    order = Order.from_signal(Signal("005930", "BUY", 10), account_id="acct", now=NOW)
    return attrs.evolve(order, status=status, broker_order_id="B1", **changes)


def make_fill(quantity: int, price: int | str = 72000, commission: int | str = 0) -> Fill:
    return Fill(
        fill_id=f"F{quantity}-{price}",
        order_id="o",
        account_id="acct",
        session_id="default",
        symbol="005930",
        side=Side.BUY,
        quantity=quantity,
        price=Decimal(price),
        commission=Decimal(commission),
        executed_at=NOW,
        trading_day=NOW.date(),
    )


def fills_for(
    order: Order, snapshot: OrderSnapshot, known: set[str] | None = None, **kwargs: Any
) -> list[Fill]:
    return fills_from_snapshot(order, snapshot, known_fill_ids=known or set(), now=NOW, **kwargs)


# ------------------------------------------------------------------ Signal


class TestSignalValidation:
    def test_defaults_make_a_market_order_in_the_default_session(self) -> None:
        signal = Signal("005930", Side.BUY, 10)
        assert signal.order_type is OrderType.MARKET
        assert signal.limit_price is None
        assert (signal.session_id, signal.signal_id, signal.symbol_name) == ("default", None, "")

    def test_lowercase_strings_are_accepted_for_side_and_order_type(self) -> None:
        signal = Signal("005930", "buy", 10, order_type="limit", limit_price="72000.5")
        assert signal.direction is Side.BUY
        assert signal.order_type is OrderType.LIMIT
        assert signal.limit_price == Decimal("72000.5")
        assert Signal("005930", "sell", 1).direction is Side.SELL

    def test_integer_and_decimal_limit_prices_become_decimal(self) -> None:
        assert Signal("A", "BUY", 1, "LIMIT", 100).limit_price == Decimal(100)
        assert Signal("A", "BUY", 1, "LIMIT", Decimal("1.25")).limit_price == Decimal("1.25")

    def test_symbol_is_stripped(self) -> None:
        assert Signal("  005930 ", "BUY", 1).symbol == "005930"

    @pytest.mark.parametrize("symbol", ["", "   ", None, 5930])
    def test_empty_or_non_string_symbol_is_refused(self, symbol: Any) -> None:
        with pytest.raises(InvalidSignalError, match="symbol"):
            Signal(symbol, "BUY", 10)

    @pytest.mark.parametrize("quantity", [True, False, 1.0, 10.5, "10", Decimal(10), None])
    def test_quantity_must_be_a_true_int(self, quantity: Any) -> None:
        with pytest.raises(InvalidSignalError, match="quantity must be an int"):
            Signal("005930", "BUY", quantity)

    @pytest.mark.parametrize("quantity", [0, -1, -100])
    def test_quantity_must_be_positive(self, quantity: int) -> None:
        with pytest.raises(InvalidSignalError, match="positive"):
            Signal("005930", "BUY", quantity)

    @pytest.mark.parametrize("price", [72000.0, 0.1, float("nan")])
    def test_float_limit_price_is_refused(self, price: float) -> None:
        with pytest.raises(InvalidSignalError, match="never float"):
            Signal("005930", "BUY", 10, "LIMIT", price)  # type: ignore[arg-type]

    @pytest.mark.parametrize("price", ["abc", "NaN", "Infinity", "", "1,000"])
    def test_unparseable_or_infinite_limit_price_is_refused(self, price: str) -> None:
        with pytest.raises(InvalidSignalError, match="limit_price"):
            Signal("005930", "BUY", 10, "LIMIT", price)

    @pytest.mark.parametrize("price", [0, -1, Decimal("-0.01"), "0"])
    def test_limit_price_must_be_positive(self, price: Any) -> None:
        with pytest.raises(InvalidSignalError, match="positive"):
            Signal("005930", "BUY", 10, "LIMIT", price)

    def test_limit_without_price_is_refused(self) -> None:
        with pytest.raises(InvalidSignalError, match="LIMIT signal needs a limit_price"):
            Signal("005930", "BUY", 10, OrderType.LIMIT)

    def test_market_with_price_is_refused(self) -> None:
        with pytest.raises(InvalidSignalError, match="MARKET signal takes no limit_price"):
            Signal("005930", "BUY", 10, "MARKET", Decimal(72000))

    @pytest.mark.parametrize("side", ["HOLD", "long", "", 1, None, OrderType.MARKET])
    def test_unknown_side_is_refused(self, side: Any) -> None:
        with pytest.raises(InvalidSignalError, match="direction must be one of BUY, SELL"):
            Signal("005930", side, 10)

    @pytest.mark.parametrize("order_type", ["STOP", "", None, 3, Side.BUY])
    def test_unknown_order_type_is_refused(self, order_type: Any) -> None:
        with pytest.raises(InvalidSignalError, match="order_type must be one of MARKET, LIMIT"):
            Signal("005930", "BUY", 10, order_type)

    @pytest.mark.parametrize("session_id", ["", None])
    def test_session_id_must_be_a_non_empty_string(self, session_id: Any) -> None:
        with pytest.raises(InvalidSignalError, match="session_id"):
            Signal("005930", "BUY", 10, session_id=session_id)

    @pytest.mark.parametrize("signal_id", ["", 7])
    def test_signal_id_must_be_a_non_empty_string_or_none(self, signal_id: Any) -> None:
        with pytest.raises(InvalidSignalError, match="signal_id"):
            Signal("005930", "BUY", 10, signal_id=signal_id)

    @pytest.mark.parametrize("symbol_name", [None, 5, b"Samsung"])
    def test_symbol_name_must_be_a_string(self, symbol_name: Any) -> None:
        with pytest.raises(InvalidSignalError, match="symbol_name must be a string"):
            Signal("005930", "BUY", 10, symbol_name=symbol_name)

    @pytest.mark.parametrize(
        ("field", "limit"),
        [
            ("symbol", MAX_SYMBOL_LENGTH),
            ("symbol_name", MAX_SYMBOL_NAME_LENGTH),
            ("session_id", MAX_ID_LENGTH),
            ("signal_id", MAX_ID_LENGTH),
        ],
    )
    def test_texts_longer_than_the_journal_holds_are_refused(self, field: str, limit: int) -> None:
        kwargs: dict[str, Any] = {"symbol": "005930", "direction": "BUY", "quantity": 1}
        kwargs[field] = "x" * limit
        assert getattr(Signal(**kwargs), field) == "x" * limit
        with pytest.raises(InvalidSignalError, match=f"{field} is longer than {limit}"):
            Signal(**(kwargs | {field: "x" * (limit + 1)}))

    def test_invalid_signal_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="quantity"):
            Signal("005930", "BUY", 0)

    def test_signals_are_immutable(self) -> None:
        signal = Signal("005930", "BUY", 10)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            signal.quantity = 20  # type: ignore[misc]


# ------------------------------------------------------------------ Order


class TestOrderFromSignal:
    def test_copies_the_signal_and_gets_a_uuid4_id(self) -> None:
        signal = Signal(
            "005930",
            "SELL",
            7,
            "LIMIT",
            "71000",
            symbol_name="Samsung",
            session_id="s1",
            signal_id="sig-1",
        )
        order = Order.from_signal(signal, account_id="acct", now=NOW)

        assert uuid.UUID(order.id).version == 4
        assert (order.account_id, order.session_id, order.signal_id) == ("acct", "s1", "sig-1")
        assert (order.symbol, order.symbol_name, order.side) == ("005930", "Samsung", Side.SELL)
        assert (order.quantity, order.order_type, order.limit_price) == (
            7,
            OrderType.LIMIT,
            Decimal(71000),
        )
        assert order.status is OrderStatus.CREATED
        assert (order.filled_quantity, order.filled_notional, order.commission) == (
            0,
            Decimal(0),
            Decimal(0),
        )
        assert order.created_at == order.updated_at == NOW
        assert (order.version, order.attempts, order.broker_order_id) == (0, 0, None)
        assert order.matches(signal)

    def test_every_order_gets_its_own_id(self) -> None:
        signal = Signal("005930", "BUY", 1)
        ids = {Order.from_signal(signal, account_id="a", now=NOW).id for _ in range(50)}
        assert len(ids) == 50

    @pytest.mark.parametrize(
        "other",
        [
            Signal("000660", "BUY", 10, signal_id="x"),
            Signal("005930", "SELL", 10, signal_id="x"),
            Signal("005930", "BUY", 11, signal_id="x"),
            Signal("005930", "BUY", 10, "LIMIT", 1, signal_id="x"),
            Signal("005930", "BUY", 10, session_id="other", signal_id="x"),
        ],
    )
    def test_matches_only_the_same_request(self, other: Signal) -> None:
        order = Order.from_signal(
            Signal("005930", "BUY", 10, signal_id="x"), account_id="a", now=NOW
        )
        assert not order.matches(other)


ALLOWED = [(src, dst) for src in ALL_STATUSES for dst in sorted(TRANSITIONS[src])]
FORBIDDEN = [
    (src, dst)
    for src in ALL_STATUSES
    for dst in ALL_STATUSES
    if dst is not src and dst not in TRANSITIONS[src]
]


class TestTransitions:
    def test_the_table_covers_every_status_and_terminal_ones_go_nowhere(self) -> None:
        assert set(TRANSITIONS) == set(OrderStatus)
        assert {
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,
        } == TERMINAL_STATUSES
        for status in TERMINAL_STATUSES:
            assert TRANSITIONS[status] == frozenset()
            assert status.is_terminal
        for status in set(OrderStatus) - TERMINAL_STATUSES:
            assert not status.is_terminal
            assert TRANSITIONS[status], f"{status} must lead somewhere"

    def test_nothing_returns_to_created(self) -> None:
        assert all(OrderStatus.CREATED not in targets for targets in TRANSITIONS.values())

    def test_every_non_terminal_status_can_fail(self) -> None:
        for status in set(OrderStatus) - TERMINAL_STATUSES:
            assert OrderStatus.FAILED in TRANSITIONS[status]

    @pytest.mark.parametrize(("src", "dst"), ALLOWED)
    def test_allowed_moves_work(self, src: OrderStatus, dst: OrderStatus) -> None:
        order = make_order(src)
        moved = order.evolve(dst, reason="why")
        assert moved.status is dst
        assert moved.reason == "why"
        assert order.status is src  # the original never changes
        assert moved.id == order.id

    @pytest.mark.parametrize(("src", "dst"), FORBIDDEN)
    def test_forbidden_moves_raise_and_change_nothing(
        self, src: OrderStatus, dst: OrderStatus
    ) -> None:
        order = make_order(src)
        before = attrs.asdict(order)
        with pytest.raises(InvalidTransitionError, match=f"{src.value} cannot become {dst.value}"):
            order.evolve(dst, reason="nope")
        assert attrs.asdict(order) == before

    @pytest.mark.parametrize("status", ALL_STATUSES)
    def test_staying_in_the_same_status_is_allowed(self, status: OrderStatus) -> None:
        order = make_order(status)
        assert order.evolve(attempts=3).status is status
        assert order.evolve(status, attempts=3).attempts == 3

    @pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
    def test_terminal_states_never_change_status(self, terminal: OrderStatus) -> None:
        order = make_order(terminal)
        for other in ALL_STATUSES:
            if other is terminal:
                continue
            with pytest.raises(InvalidTransitionError):
                order.evolve(other)
        assert order.status is terminal
        assert order.is_terminal

    def test_error_names_the_order(self) -> None:
        order = make_order(OrderStatus.FILLED)
        with pytest.raises(InvalidTransitionError, match=order.id):
            order.evolve(OrderStatus.SUBMITTED)


class TestFillsOnOrders:
    def test_with_fills_adds_quantity_notional_and_commission(self) -> None:
        order = make_order()
        after = order.with_fills([make_fill(4, 72000, 40), make_fill(3, 73000, 30)])

        assert after.filled_quantity == 7
        assert after.filled_notional == Decimal(4 * 72000 + 3 * 73000)
        assert after.commission == Decimal(70)
        assert after.remaining_quantity == 3
        assert after.filled_at is None  # not complete yet
        assert after.status is order.status
        assert order.filled_quantity == 0  # the original never changes

    def test_filled_at_is_set_by_the_fill_that_completes_the_order(self) -> None:
        order = make_order()
        last = attrs.evolve(make_fill(6), executed_at=NOW + timedelta(seconds=5))
        after = order.with_fills([make_fill(4)]).with_fills([last])
        assert after.filled_quantity == 10
        assert after.filled_at == NOW + timedelta(seconds=5)

    def test_no_fills_change_nothing(self) -> None:
        order = make_order()
        assert order.with_fills([]) == order

    def test_fills_beyond_the_order_quantity_raise(self) -> None:
        order = make_order().with_fills([make_fill(8)])
        with pytest.raises(InvalidTransitionError, match="exceed the order quantity 10"):
            order.with_fills([make_fill(3)])
        assert order.filled_quantity == 8

    def test_average_fill_price_is_weighted_and_none_before_any_fill(self) -> None:
        order = make_order()
        assert order.average_fill_price is None
        after = order.with_fills([make_fill(1, 100), make_fill(3, 200)])
        assert after.average_fill_price == Decimal(175)  # (100 + 600) / 4

    def test_average_fill_price_keeps_decimal_precision(self) -> None:
        after = make_order().with_fills([make_fill(3, "100.01")])
        assert after.average_fill_price == Decimal("100.01")


# ------------------------------------------------------------------ snapshots -> fills


def execution(fill_id: str, quantity: int, price: int = 72000, commission: int = 10) -> Execution:
    return Execution(fill_id, quantity, Decimal(price), Decimal(commission), NOW)


class TestFillsFromSnapshotWithIds:
    def test_each_execution_becomes_one_fill_with_its_id(self) -> None:
        order = make_order()
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            filled_quantity=6,
            executions=(execution("E1", 4, 72000, 40), execution("E2", 2, 72100, 20)),
        )
        fills = fills_for(order, snapshot)

        assert [(f.fill_id, f.quantity, f.price, f.commission) for f in fills] == [
            ("E1", 4, Decimal(72000), Decimal(40)),
            ("E2", 2, Decimal(72100), Decimal(20)),
        ]
        first = fills[0]
        assert (first.order_id, first.account_id, first.session_id) == (order.id, "acct", "default")
        assert (first.symbol, first.side, first.realized_pnl) == ("005930", Side.BUY, Decimal(0))

    def test_known_ids_are_skipped(self) -> None:
        order = make_order().with_fills([make_fill(4)])
        snapshot = OrderSnapshot(
            OrderStatus.FILLED,
            "B1",
            filled_quantity=10,
            executions=(execution("E1", 4), execution("E2", 6)),
        )
        fills = fills_for(order, snapshot, known={"E1"})
        assert [(f.fill_id, f.quantity) for f in fills] == [("E2", 6)]

    def test_the_same_snapshot_twice_adds_nothing_the_second_time(self) -> None:
        order = make_order()
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, executions=(execution("E1", 4),)
        )
        first = fills_for(order, snapshot)
        after = order.with_fills(first)
        assert fills_for(after, snapshot, known={f.fill_id for f in first}) == []

    def test_an_id_repeated_inside_one_snapshot_counts_once(self) -> None:
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            8,
            executions=(execution("E1", 4), execution("E1", 4)),
        )
        assert [f.quantity for f in fills_for(make_order(), snapshot)] == [4]

    def test_executions_beyond_the_order_quantity_are_capped(self) -> None:
        order = make_order().with_fills([make_fill(7)])
        snapshot = OrderSnapshot(
            OrderStatus.FILLED,
            "B1",
            15,
            executions=(execution("E2", 5), execution("E3", 3)),
        )
        fills = fills_for(order, snapshot, known={"E1"})
        assert [(f.fill_id, f.quantity) for f in fills] == [("E2", 3)]
        assert order.with_fills(fills).filled_quantity == 10

    def test_empty_executions_are_ignored(self) -> None:
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 2, executions=(execution("E0", 0),)
        )
        assert fills_for(make_order(), snapshot) == []

    def test_execution_time_falls_back_to_broker_time_then_now(self) -> None:
        broker_time = NOW - timedelta(minutes=1)
        timeless = Execution("E1", 1, Decimal(1))
        with_time = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 1, broker_time=broker_time)
        with_time = attrs.evolve(with_time, executions=(timeless,))
        without = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 1, executions=(timeless,))
        assert fills_for(make_order(), with_time)[0].executed_at == broker_time
        assert fills_for(make_order(), without)[0].executed_at == NOW


class TestFillsFromCumulativeSnapshots:
    def test_without_ids_the_fill_is_named_after_the_cumulative_quantity(self) -> None:
        order = make_order()
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, filled_notional=Decimal(288000)
        )
        [fill] = fills_for(order, snapshot)
        assert (fill.fill_id, fill.quantity, fill.price) == ("B1:4", 4, Decimal(72000))

    def test_the_next_snapshot_books_only_the_increase_at_its_own_price(self) -> None:
        order = make_order()
        first = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 4, filled_notional=Decimal(400))
        order = order.with_fills(fills_for(order, first))
        second = OrderSnapshot(OrderStatus.FILLED, "B1", 10, average_price=Decimal(160))
        [fill] = fills_for(order, second, known={"B1:4"})
        # cumulative notional 1600 = 400 already booked + 6 x 200
        assert (fill.fill_id, fill.quantity, fill.price) == ("B1:10", 6, Decimal(200))
        assert order.with_fills([fill]).filled_notional == Decimal(1600)

    @pytest.mark.parametrize("cumulative", [0, 3, 4])
    def test_a_stale_or_equal_snapshot_adds_nothing(self, cumulative: int) -> None:
        order = make_order()
        order = order.with_fills(
            fills_for(order, OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 4, Decimal(400)))
        )
        stale = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", cumulative, Decimal(100))
        assert fills_for(order, stale, known={"B1:4"}) == []

    def test_overfill_is_capped_at_the_order_quantity(self) -> None:
        order = make_order()
        snapshot = OrderSnapshot(OrderStatus.FILLED, "B1", 12, filled_notional=Decimal(1200))
        [fill] = fills_for(order, snapshot)
        assert (fill.fill_id, fill.quantity, fill.price) == ("B1:10", 10, Decimal(100))
        assert order.with_fills([fill]).filled_quantity == 10

    def test_commission_is_booked_as_the_increase_of_the_cumulative(self) -> None:
        order = make_order()
        first = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, Decimal(400), commission=Decimal(40)
        )
        [one] = fills_for(order, first)
        order = order.with_fills([one])
        second = OrderSnapshot(OrderStatus.FILLED, "B1", 10, Decimal(1000), commission=Decimal(100))
        [two] = fills_for(order, second, known={one.fill_id})
        assert (one.commission, two.commission) == (Decimal(40), Decimal(60))
        assert order.with_fills([two]).commission == Decimal(100)

    def test_unknown_or_shrinking_commission_books_zero(self) -> None:
        order = attrs.evolve(make_order(), commission=Decimal(50))
        lower = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 2, Decimal(2), commission=Decimal(10)
        )
        missing = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 2, Decimal(2))
        assert fills_for(order, lower)[0].commission == Decimal(0)
        assert fills_for(order, missing)[0].commission == Decimal(0)

    def test_a_snapshot_without_any_price_waits_for_the_next_one(self) -> None:
        snapshot = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 4)
        assert fills_for(make_order(), snapshot) == []

    def test_a_known_cumulative_id_is_not_booked_again(self) -> None:
        snapshot = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 4, Decimal(400))
        assert fills_for(make_order(), snapshot, known={"B1:4"}) == []

    def test_the_order_broker_id_names_the_fill_when_the_snapshot_has_none(self) -> None:
        snapshot = OrderSnapshot(OrderStatus.PARTIALLY_FILLED, None, 4, Decimal(400))
        assert fills_for(make_order(), snapshot)[0].fill_id == "B1:4"
        unsent = attrs.evolve(make_order(), broker_order_id=None)
        assert fills_for(unsent, snapshot)[0].fill_id == f"{unsent.id}:4"

    def test_fill_time_is_the_broker_time_when_given(self) -> None:
        at = NOW - timedelta(seconds=30)
        snapshot = OrderSnapshot(OrderStatus.FILLED, "B1", 10, Decimal(10), broker_time=at)
        assert fills_for(make_order(), snapshot)[0].executed_at == at


class TestOneOrderReportedBothWays:
    """Executions pushed with ids and totals polled without: each fill counts once."""

    def test_totals_first_then_executions_books_only_the_increase(self) -> None:
        order = make_order()
        polled = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, Decimal(400), commission=Decimal(40)
        )
        [first] = fills_for(order, polled)
        order = order.with_fills([first])
        pushed = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            6,
            executions=(execution("E1", 4, 100, 40), execution("E2", 2, 130, 15)),
        )
        [second] = fills_for(order, pushed, known={first.fill_id})
        assert (second.fill_id, second.quantity, second.price, second.commission) == (
            "B1:6",
            2,
            Decimal(130),
            Decimal(15),
        )
        order = order.with_fills([second])
        assert fills_for(order, pushed, known={first.fill_id, second.fill_id}) == []

    def test_executions_first_then_totals_books_only_the_increase(self) -> None:
        order = make_order()
        pushed = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, executions=(execution("E1", 4, 100, 40),)
        )
        [first] = fills_for(order, pushed)
        order = order.with_fills([first])
        same = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, Decimal(400), commission=Decimal(40)
        )
        assert fills_for(order, same, known={"E1"}) == []
        more = OrderSnapshot(OrderStatus.FILLED, "B1", 10, Decimal(1000), commission=Decimal(100))
        [second] = fills_for(order, more, known={"E1"})
        assert (second.fill_id, second.quantity, second.price, second.commission) == (
            "B1:10",
            6,
            Decimal(100),
            Decimal(60),
        )

    def test_an_execution_renamed_between_reports_is_not_counted_twice(self) -> None:
        order = make_order().with_fills([make_fill(4, commission=10)])
        renamed = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED, "B1", 4, executions=(execution("other-id-1", 4),)
        )
        assert fills_for(order, renamed, known={"E1"}) == []

    def test_a_gap_in_the_listed_executions_still_books_new_ones_by_id(self) -> None:
        order = make_order().with_fills([make_fill(4), make_fill(2)])
        snapshot = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            9,
            executions=(execution("E1", 4), execution("E3", 3, 72500)),
        )
        [fill] = fills_for(order, snapshot, known={"E1", "E2"})
        assert (fill.fill_id, fill.quantity, fill.price) == ("E3", 3, Decimal(72500))

    def test_a_resent_execution_counts_once_in_the_totals(self) -> None:
        order = make_order()
        order = order.with_fills(
            fills_for(order, OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 2, Decimal(200)))
        )
        resent = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            executions=(execution("E1", 2, 100), execution("E2", 3, 110), execution("E2", 3, 110)),
        )
        [fill] = fills_for(order, resent, known={"B1:2"})
        assert (fill.fill_id, fill.quantity, fill.price) == ("B1:5", 3, Decimal(110))

    def test_totals_come_from_the_executions_when_the_snapshot_has_none(self) -> None:
        order = make_order()
        order = order.with_fills(
            fills_for(order, OrderSnapshot(OrderStatus.PARTIALLY_FILLED, "B1", 2, Decimal(200)))
        )
        listed_only = OrderSnapshot(
            OrderStatus.PARTIALLY_FILLED,
            "B1",
            executions=(execution("E1", 2, 100, 0), execution("E2", 3, 110, 7)),
        )
        [fill] = fills_for(order, listed_only, known={"B1:2"})
        assert (fill.fill_id, fill.quantity, fill.price, fill.commission) == (
            "B1:5",
            3,
            Decimal(110),
            Decimal(7),
        )


class TestTradingDay:
    def test_the_trading_day_is_the_execution_date_in_the_venue_timezone(self) -> None:
        at = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # 01:00 on the 6th in Seoul
        snapshot = OrderSnapshot(
            OrderStatus.FILLED,
            "B1",
            10,
            executions=(Execution("E1", 10, Decimal(1), executed_at=at),),
        )
        [seoul] = fills_for(make_order(), snapshot, venue_timezone=ZoneInfo("Asia/Seoul"))
        [utc] = fills_for(make_order(), snapshot)
        assert seoul.trading_day == date(2026, 1, 6)
        assert utc.trading_day == date(2026, 1, 5)
        assert seoul.executed_at == at  # the time itself stays UTC

    def test_cumulative_fills_use_the_venue_timezone_too(self) -> None:
        at = datetime(2026, 1, 5, 14, 59, tzinfo=UTC)  # 23:59 in Seoul, still the 5th
        snapshot = OrderSnapshot(OrderStatus.FILLED, "B1", 10, Decimal(10), broker_time=at)
        [fill] = fills_for(make_order(), snapshot, venue_timezone=ZoneInfo("Asia/Seoul"))
        assert fill.trading_day == date(2026, 1, 5)

    def test_a_west_of_utc_venue_can_be_a_day_behind(self) -> None:
        at = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)  # 22:00 on the 5th in New York
        snapshot = OrderSnapshot(OrderStatus.FILLED, "B1", 10, Decimal(10), broker_time=at)
        [fill] = fills_for(make_order(), snapshot, venue_timezone=ZoneInfo("America/New_York"))
        assert fill.trading_day == date(2026, 1, 5)


class TestSnapshot:
    def test_cumulative_notional_prefers_the_notional_then_the_average(self) -> None:
        both = OrderSnapshot(OrderStatus.FILLED, "B", 4, Decimal(10), average_price=Decimal(99))
        average = OrderSnapshot(OrderStatus.FILLED, "B", 4, average_price=Decimal("2.5"))
        assert both.cumulative_notional == Decimal(10)
        assert average.cumulative_notional == Decimal(10)
        assert OrderSnapshot(OrderStatus.FILLED, "B", 4).cumulative_notional is None


def test_a_total_beyond_the_listed_executions_is_booked_from_the_totals() -> None:
    from datetime import UTC, datetime

    from orderlane.model import Execution, Order, OrderSnapshot, Side, fills_from_snapshot

    now = datetime(2026, 1, 5, tzinfo=UTC)
    order = Order(
        id="o1",
        account_id="a",
        session_id="s",
        symbol="X",
        side=Side.BUY,
        quantity=10,
        status=OrderStatus.PARTIALLY_FILLED,
        broker_order_id="B1",
        filled_quantity=4,
        filled_notional=Decimal(288000),
        commission=Decimal(40),
    )
    snapshot = OrderSnapshot(
        OrderStatus.FILLED,
        "B1",
        10,
        Decimal(726000),
        None,
        Decimal(100),
        now,
        (Execution("E1", 4, Decimal(72000), Decimal(40)),),
    )
    [rest] = fills_from_snapshot(order, snapshot, known_fill_ids={"E1"}, now=now)
    assert (rest.fill_id, rest.quantity, rest.price, rest.commission) == (
        "B1:10",
        6,
        Decimal(73000),
        Decimal(60),
    )
    assert (
        fills_from_snapshot(
            order.with_fills([rest]), snapshot, known_fill_ids={"E1", "B1:10"}, now=now
        )
        == []
    )
