"""Random order lives against an independent ledger.

A hypothesis state machine plays a broker that executes orders bit by bit and reports them as
cumulative snapshots that arrive duplicated, out of order and late, with and without fill ids.
Each snapshot is booked the way the engine books it (``fills_from_snapshot`` ->
``Order.with_fills`` -> ``derive_status`` -> ``Position.apply``) and after every step the books are
checked against a reference written separately, on exact fractions.

A second, smaller property drives a real engine on the mock venue with random orders and checks the
journal's positions and P&L against the same reference.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Literal

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from orderlane import Engine, EngineConfig, FakeClock, OrderStatus, Side, Signal
from orderlane.booking import derive_status
from orderlane.model import (
    Execution,
    Fill,
    Order,
    OrderSnapshot,
    fills_from_snapshot,
)
from orderlane.positions import Position
from orderlane_mock import MockVenue

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
Reporting = Literal["ids", "totals", "both"]
TOLERANCE = Fraction(1, 10**12)  # Decimal keeps 28 digits; the reference is exact

prices = st.integers(min_value=90, max_value=110).map(Decimal)
commissions = st.integers(min_value=0, max_value=5).map(Decimal)


# ------------------------------------------------------------------ the reference ledger


class ReferenceBook:
    """Weighted-average position and realized P&L, kept on exact fractions.

    Written from the rules, not from :mod:`orderlane.positions`: it holds the signed quantity,
    the cost of what is held and its opening fees, and splits a fill that crosses zero into a
    closing and an opening part. A split commission and the opening fees released pro rata are
    rounded to the venue's minor ``unit`` (half to even), the last part taking the rest.
    """

    def __init__(self, unit: Fraction = Fraction(1, 100)) -> None:
        self.unit = unit
        self.quantity = 0
        self.cost = Fraction(0)  # signed: average entry x quantity
        self.fees = Fraction(0)
        self.realized = Fraction(0)
        self.net = Fraction(0)

    def share(self, amount: Fraction, part: int, whole: int) -> Fraction:
        """``part`` of ``whole`` of ``amount``, in whole units (all of it for the whole)."""
        return amount if part == whole else round(amount * part / whole / self.unit) * self.unit

    def book(self, side: Side, quantity: int, price: Decimal, commission: Decimal) -> Fraction:
        signed = quantity if side is Side.BUY else -quantity
        px, fee = Fraction(price), Fraction(commission)
        if not quantity:  # a fee-only fill: carried by a position its side opened
            if self.quantity * side.sign > 0:
                self.fees += fee
                return Fraction(0)
            self.realized -= fee
            self.net -= fee
            return -fee
        same_way = self.quantity == 0 or (self.quantity > 0) == (signed > 0)
        if same_way:
            self.quantity += signed
            self.cost += px * signed
            self.fees += fee
            return Fraction(0)
        held = abs(self.quantity)
        closing = min(held, quantity)
        opening = quantity - closing
        average = self.cost / self.quantity
        closing_fee = self.share(fee, closing, quantity)
        released = self.share(self.fees, closing, held)
        long = 1 if self.quantity > 0 else -1
        pnl = (px - average) * closing * long - closing_fee
        self.realized += pnl
        self.net += pnl - released
        self.fees -= released
        self.quantity += closing * (1 if signed > 0 else -1)
        self.cost = average * self.quantity
        if self.quantity == 0:
            self.cost = Fraction(0)
        if opening:
            self.quantity = opening if signed > 0 else -opening
            self.cost = px * self.quantity
            self.fees = fee - closing_fee
        return pnl


def close_enough(actual: Decimal, expected: Fraction) -> bool:
    return abs(Fraction(actual) - expected) <= TOLERANCE


# ------------------------------------------------------------------ the domain machine


@dataclass
class VenueSide:
    """The broker's own truth about one order, and every snapshot it has sent so far."""

    quantity: int
    #: How the broker names executions: always by id, never (totals only), or either way per
    #: report (ids pushed, totals polled).
    reporting: Reporting
    executions: list[Execution] = field(default_factory=list)
    status: OrderStatus = OrderStatus.SUBMITTED
    sent: list[OrderSnapshot] = field(default_factory=list)

    @property
    def filled(self) -> int:
        return sum(e.quantity for e in self.executions)

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


@dataclass
class Tracked:
    order: Order
    venue: VenueSide
    terminal_as: OrderStatus | None = None
    fill_ids: set[str] = field(default_factory=set)


class OrderLives(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tracked: list[Tracked] = []
        self.position = Position(account_id="acct", symbol="005930")
        self.reference = ReferenceBook()
        self.booked: list[Fill] = []
        self.booked_ids: set[tuple[str, str]] = set()
        self.realized_by_fill: list[tuple[Decimal, Fraction]] = []
        self.steps = 0

    def now(self) -> datetime:
        self.steps += 1
        return T0 + timedelta(seconds=self.steps)

    # ---------------------------------------------------------------- the broker acting

    @rule(
        side=st.sampled_from([Side.BUY, Side.SELL]),
        quantity=st.integers(min_value=1, max_value=20),
        reporting=st.sampled_from(["ids", "totals", "both"]),
    )
    def new_order(self, side: Side, quantity: int, reporting: Reporting) -> None:
        signal = Signal("005930", side, quantity, session_id=f"s{len(self.tracked) % 3}")
        order = Order.from_signal(signal, account_id="acct", now=self.now())
        order = order.evolve(OrderStatus.SUBMITTING, attempts=1, submitted_at=order.created_at)
        self.tracked.append(Tracked(order, VenueSide(quantity, reporting)))
        # The place answer is itself a snapshot: accepted, nothing filled yet.
        self.report(len(self.tracked) - 1)

    def _open_index(self, data: st.DataObject) -> int:
        candidates = [i for i, t in enumerate(self.tracked) if t.venue.is_open]
        return data.draw(st.sampled_from(candidates))

    @precondition(lambda self: any(t.venue.is_open for t in self.tracked))
    @rule(data=st.data(), price=prices, commission=commissions)
    def venue_executes(self, data: st.DataObject, price: Decimal, commission: Decimal) -> None:
        index = self._open_index(data)
        venue = self.tracked[index].venue
        size = data.draw(st.integers(min_value=1, max_value=venue.quantity - venue.filled))
        venue.executions.append(
            Execution(f"X{index}-{len(venue.executions)}", size, price, commission, self.now())
        )
        full = venue.filled == venue.quantity
        venue.status = OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED
        if data.draw(st.booleans()):
            self.report(index, data)  # reported at once; otherwise a later report carries it

    @precondition(lambda self: any(t.venue.is_open for t in self.tracked))
    @rule(data=st.data(), extra=st.integers(min_value=1, max_value=5), price=prices)
    def venue_overfills(self, data: st.DataObject, extra: int, price: Decimal) -> None:
        """A broker bug: it reports more executed than was ordered. Booking stops at the order."""
        index = self._open_index(data)
        venue = self.tracked[index].venue
        size = venue.quantity - venue.filled + extra
        venue.executions.append(
            Execution(f"X{index}-{len(venue.executions)}", size, price, Decimal(1), self.now())
        )
        venue.status = OrderStatus.FILLED
        self.report(index, data)

    @precondition(lambda self: any(t.venue.is_open for t in self.tracked))
    @rule(data=st.data(), reject=st.booleans())
    def venue_ends_the_order(self, data: st.DataObject, reject: bool) -> None:
        index = self._open_index(data)
        venue = self.tracked[index].venue
        venue.status = (
            OrderStatus.REJECTED if reject and not venue.executions else OrderStatus.CANCELLED
        )
        self.report(index, data)

    @precondition(lambda self: bool(self.tracked))
    @rule(data=st.data())
    def venue_reports_now(self, data: st.DataObject) -> None:
        self.report(data.draw(st.integers(min_value=0, max_value=len(self.tracked) - 1)), data)

    @precondition(lambda self: any(t.venue.sent for t in self.tracked))
    @rule(data=st.data())
    def an_old_report_arrives_again(self, data: st.DataObject) -> None:
        """Duplicates and reordering: any snapshot sent before, delivered once more now."""
        index = data.draw(st.sampled_from([i for i, t in enumerate(self.tracked) if t.venue.sent]))
        snapshot = data.draw(st.sampled_from(self.tracked[index].venue.sent))
        self.deliver(index, snapshot)

    @precondition(
        lambda self: any(
            t.order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
            for t in self.tracked
        )
    )
    @rule(data=st.data())
    def the_engine_gives_up(self, data: st.DataObject) -> None:
        """A timeout ends the order FAILED locally while the venue may still execute it."""
        index = data.draw(
            st.sampled_from(
                [
                    i
                    for i, t in enumerate(self.tracked)
                    if t.order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
                ]
            )
        )
        tracked = self.tracked[index]
        tracked.order = tracked.order.evolve(OrderStatus.FAILED, reason="timeout")
        tracked.terminal_as = OrderStatus.FAILED

    # ---------------------------------------------------------------- booking, as the engine does

    def report(self, index: int, data: st.DataObject | None = None) -> None:
        venue = self.tracked[index].venue
        with_ids = venue.reporting == "ids"
        if venue.reporting == "both" and data is not None:
            with_ids = data.draw(st.booleans(), label="with execution ids")
        broker_id = f"B{index}"
        notional = sum((e.price * e.quantity for e in venue.executions), Decimal(0))
        commission = sum((e.commission for e in venue.executions), Decimal(0))
        snapshot = OrderSnapshot(
            status=venue.status,
            broker_order_id=broker_id,
            filled_quantity=venue.filled,
            filled_notional=notional,
            commission=commission,
            broker_time=venue.executions[-1].executed_at if venue.executions else T0,
            executions=tuple(venue.executions) if with_ids else (),
        )
        venue.sent.append(snapshot)
        self.deliver(index, snapshot)

    def deliver(self, index: int, snapshot: OrderSnapshot) -> None:
        tracked = self.tracked[index]
        order = tracked.order
        fills = fills_from_snapshot(
            order, snapshot, known_fill_ids=frozenset(tracked.fill_ids), now=self.now()
        )
        updated = order.with_fills(fills)
        status = order.status if order.is_terminal else derive_status(updated, snapshot)
        broker_id = order.broker_order_id or snapshot.broker_order_id
        tracked.order = updated.evolve(status, broker_order_id=broker_id)
        for each in fills:
            key = (each.order_id, each.fill_id)
            assert key not in self.booked_ids, f"fill {key} booked twice"
            self.booked_ids.add(key)
            tracked.fill_ids.add(each.fill_id)
            change = self.position.apply(each)
            self.position = change.position
            expected = self.reference.book(each.side, each.quantity, each.price, each.commission)
            self.realized_by_fill.append((change.realized_pnl, expected))
            self.booked.append(
                attrs.evolve(each, realized_pnl=change.realized_pnl, net_pnl=change.net_pnl)
            )
        if tracked.terminal_as is None and tracked.order.is_terminal:
            tracked.terminal_as = tracked.order.status

    # ---------------------------------------------------------------- invariants

    @invariant()
    def filled_never_exceeds_the_order_or_the_venue(self) -> None:
        for tracked in self.tracked:
            order = tracked.order
            assert 0 <= order.filled_quantity <= order.quantity
            assert order.filled_quantity <= tracked.venue.filled  # nothing counted twice
            if tracked.venue.filled > order.quantity:  # an overfill is reported at once
                assert order.filled_quantity == order.quantity

    @invariant()
    def terminal_states_never_change(self) -> None:
        for tracked in self.tracked:
            if tracked.terminal_as is not None:
                assert tracked.order.status is tracked.terminal_as

    @invariant()
    def status_agrees_with_the_fills(self) -> None:
        for tracked in self.tracked:
            order = tracked.order
            if order.status is OrderStatus.PARTIALLY_FILLED:
                assert 0 < order.filled_quantity < order.quantity
            if order.status is OrderStatus.SUBMITTED:
                assert order.filled_quantity == 0
            if order.filled_quantity == order.quantity and tracked.terminal_as is None:
                raise AssertionError(f"{order.id} fully filled but {order.status}")

    @invariant()
    def orders_add_up_their_own_fills(self) -> None:
        for tracked in self.tracked:
            mine = [f for f in self.booked if f.order_id == tracked.order.id]
            order = tracked.order
            assert order.filled_quantity == sum(f.quantity for f in mine)
            assert order.commission == sum((f.commission for f in mine), Decimal(0))
            assert close_enough(
                order.filled_notional,
                sum((Fraction(f.price) * f.quantity for f in mine), start=Fraction(0)),
            )

    @invariant()
    def the_latest_report_is_fully_booked(self) -> None:
        """Once the venue's latest snapshot has been seen, nothing it executed is missing."""
        for tracked in self.tracked:
            venue = tracked.venue
            if not venue.sent or venue.sent[-1].filled_quantity != venue.filled:
                continue
            latest = venue.sent[-1]
            assert tracked.order.commission == latest.commission
            if latest.filled_quantity > venue.quantity:
                continue  # an overfill: booked up to the order quantity, checked above
            assert tracked.order.filled_quantity == latest.filled_quantity
            assert latest.filled_notional is not None
            assert close_enough(tracked.order.filled_notional, Fraction(latest.filled_notional))

    @invariant()
    def position_is_the_net_of_all_booked_fills(self) -> None:
        net = sum(f.quantity * f.side.sign for f in self.booked)
        assert self.position.quantity == net == self.reference.quantity
        if net:
            average = self.reference.cost / self.reference.quantity
            assert close_enough(self.position.average_price, average)
            assert close_enough(self.position.fees, self.reference.fees)
        else:
            assert self.position.average_price == 0

    @invariant()
    def realized_pnl_matches_the_reference(self) -> None:
        for actual, expected in self.realized_by_fill:
            assert close_enough(actual, expected)
        assert close_enough(self.position.realized_pnl, self.reference.realized)
        assert self.position.realized_pnl == sum((f.realized_pnl for f in self.booked), Decimal(0))
        assert close_enough(self.position.net_pnl, self.reference.net)
        assert self.position.net_pnl == sum((f.net_pnl for f in self.booked), Decimal(0))


OrderLives.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLives = OrderLives.TestCase


# ------------------------------------------------------------------ a real engine, randomly

Kind = Literal["fill", "partial", "hold", "reject", "refuse_once", "more", "cancel"]
Step = tuple[Kind, Side, int, int]

steps = st.lists(
    st.tuples(
        st.sampled_from(["fill", "partial", "hold", "reject", "refuse_once", "more", "cancel"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=12),
        st.integers(min_value=95, max_value=105),
    ),
    min_size=1,
    max_size=15,
)

NEW_ORDER_OUTCOME = {
    "fill": OrderStatus.FILLED,
    "refuse_once": OrderStatus.FILLED,
    "reject": OrderStatus.REJECTED,
    "hold": OrderStatus.SUBMITTED,
    "partial": OrderStatus.PARTIALLY_FILLED,
}


class EngineRun:
    """Plays steps against an engine on the mock venue, keeping the reference book alongside."""

    def __init__(self, engine: Engine, venue: MockVenue) -> None:
        self.engine, self.venue = engine, venue
        self.reference = ReferenceBook(unit=Fraction(1))  # the mock's won has no minor digits
        self.booked: set[tuple[str, str]] = set()
        self.orders: list[Order] = []

    async def book_new_fills(self, order: Order) -> None:
        for each in await self.engine.fills(order.id):
            if (each.order_id, each.fill_id) not in self.booked:
                self.booked.add((each.order_id, each.fill_id))
                self.reference.book(each.side, each.quantity, each.price, each.commission)

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders if not o.is_terminal]

    async def new_order(self, kind: Kind, side: Side, quantity: int, price: int) -> None:
        venue = self.venue
        if kind == "fill":
            venue.fill_next(price=price)
        elif kind == "partial":
            quantity = max(quantity, 2)
            venue.partial_fill_next(quantity // 2, price=price)
        elif kind == "hold":
            venue.hold_next()
        elif kind == "reject":
            venue.reject_next("insufficient_balance")
        else:
            venue.fail_next("connection")
            venue.fill_next(price=price)
        order = await self.engine.execute(Signal("005930", side, quantity))
        assert order.status is NEW_ORDER_OUTCOME[kind]
        self.orders.append(order)
        await self.book_new_fills(order)

    async def more(self, pick: int, price: int) -> None:
        """The venue executes more of an open order; the engine hears it twice."""
        candidates = [o for o in self.open_orders() if o.remaining_quantity]
        if not candidates:
            return
        order = candidates[pick % len(candidates)]
        assert order.broker_order_id is not None
        size = pick % order.remaining_quantity + 1
        self.venue.fill(order.broker_order_id, size, price=price)
        after = await self.engine.refresh(order.id)
        assert await self.engine.refresh(order.id) == after  # a repeated report adds nothing
        assert after.filled_quantity == order.filled_quantity + size
        done = after.filled_quantity == after.quantity
        assert after.status is (OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
        self.orders[self.orders.index(order)] = after
        await self.book_new_fills(after)

    async def cancel(self, pick: int) -> None:
        candidates = self.open_orders()
        if not candidates:
            return
        order = candidates[pick % len(candidates)]
        after = await self.engine.cancel(order.id)
        assert after.status is OrderStatus.CANCELLED
        assert after.filled_quantity == order.filled_quantity  # fills are kept
        self.orders[self.orders.index(order)] = after

    async def check(self) -> None:
        engine = self.engine
        stored = await engine.orders(limit=1000)
        assert {o.id: o for o in stored} == {o.id: o for o in self.orders}
        every_fill = [f for o in stored for f in await engine.fills(o.id)]
        ids = [(f.order_id, f.fill_id) for f in every_fill]
        assert len(ids) == len(set(ids)) == len(self.booked)
        for order in stored:
            mine = [f for f in every_fill if f.order_id == order.id]
            assert order.filled_quantity == sum(f.quantity for f in mine) <= order.quantity
            if order.broker_order_id is not None:
                assert (
                    order.filled_quantity
                    == self.venue.orders[order.broker_order_id].filled_quantity
                )
        position = await engine.position("005930")
        assert position.quantity == self.reference.quantity
        assert position.quantity == sum(f.quantity * f.side.sign for f in every_fill)
        assert close_enough(position.realized_pnl, self.reference.realized)
        total = sum((s.realized_pnl for s in await engine.realized_pnl()), Decimal(0))
        assert close_enough(total, self.reference.realized)
        assert len([r for r in self.venue.places if r.accepted]) == sum(
            1 for o in stored if o.broker_order_id is not None
        )


async def _run_on_engine(path: Path, plan: list[Step]) -> None:
    venue = MockVenue(commission=Decimal(3))
    config = EngineConfig(
        database_url=f"sqlite:///{path}",
        sqlite_synchronous="NORMAL",  # durability is not what this property is about
        load_entry_point_plugins=False,
    )
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=FakeClock(), config=config
    ) as engine:
        run = EngineRun(engine, venue)
        for kind, side, quantity, price in plan:
            if kind == "more":
                await run.more(quantity, price)
            elif kind == "cancel":
                await run.cancel(quantity)
            else:
                await run.new_order(kind, side, quantity, price)
            await run.check()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_random_orders_through_a_real_engine_keep_the_books(plan: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_run_on_engine(Path(directory) / "journal.db", plan))
