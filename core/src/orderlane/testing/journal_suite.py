"""The journal conformance suite: what every :class:`~orderlane.journal.Journal` must do.

Like SQLAlchemy's dialect suite, a store's tests inherit it and say how to make a journal; every
journal on one store must see the others' writes (a fresh, empty store per test)::

    import pytest
    from orderlane.testing.journal_suite import JournalSuite

    class TestMyJournal(JournalSuite):
        @pytest.fixture
        def journal_factory(self, tmp_path):
            return lambda: MyJournal(tmp_path / "journal")

The suite covers the protocol's contracts: exact round trips, the version check, signal-id
uniqueness, fills and positions in the order's own atomic transition, realized P&L, the hold
check, listener order, refusals that store nothing and leave concurrent changes alone, the reads
the engine and the command line use, and engine sessions. orderlane runs it against SQLite and
PostgreSQL (``tests/core/test_journal_conformance.py``). It needs pytest and pytest-asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
import pytest_asyncio

from orderlane.contract import LookupWindow
from orderlane.errors import ConfigurationError, JournalError
from orderlane.events import OrderCreated, OrderStatusChanged
from orderlane.journal import (
    Committed,
    ConcurrentUpdateError,
    InstrumentHeldError,
    Journal,
    SignalTakenError,
    Transition,
)
from orderlane.model import (
    MAX_ID_LENGTH,
    MAX_SYMBOL_LENGTH,
    MAX_SYMBOL_NAME_LENGTH,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Signal,
)

__all__ = ["T0", "JournalSuite", "fill_for", "fill_order", "insert", "new_order"]

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


# ------------------------------------------------------------------ helpers


def new_order(
    *,
    account: str = "acct",
    symbol: str = "005930",
    side: str = "BUY",
    quantity: int = 10,
    signal_id: str | None = None,
    session: str = "default",
    at: datetime = T0,
) -> Order:
    """A CREATED order, not stored yet."""
    signal = Signal(symbol, side, quantity, session_id=session, signal_id=signal_id)
    return Order.from_signal(signal, account_id=account, now=at)


def fill_for(
    order: Order,
    quantity: int,
    price: int | str,
    commission: int | str = 0,
    *,
    fill_id: str | None = None,
    at: datetime = T0,
    day: date | None = None,
) -> Fill:
    """A fill of ``order``."""
    return Fill(
        fill_id=fill_id or f"{order.id[:8]}:{quantity}:{price}",
        order_id=order.id,
        account_id=order.account_id,
        session_id=order.session_id,
        symbol=order.symbol,
        side=order.side,
        quantity=quantity,
        price=Decimal(price),
        commission=Decimal(commission),
        executed_at=at,
        trading_day=day or at.date(),
    )


async def insert(journal: Journal, order: Order) -> Order:
    """Store a new order; the stored copy (version 1)."""
    committed = await journal.record(Transition(order, events=(OrderCreated(order),), new=True))
    assert committed.order is not None
    return committed.order


async def fill_order(
    journal: Journal, order: Order, *fills: Fill, status: OrderStatus = OrderStatus.FILLED
) -> Committed:
    """Move a stored order through SUBMITTING to ``status`` with ``fills`` in one transition."""
    if order.status is OrderStatus.CREATED:
        submitting = order.evolve(OrderStatus.SUBMITTING)
        moved = await journal.record(
            Transition(submitting, events=(OrderStatusChanged(submitting, order.status),))
        )
        assert moved.order is not None
        order = moved.order
    after = order.with_fills(fills).evolve(status, broker_order_id=f"B-{order.id[:8]}")
    return await journal.record(
        Transition(after, events=(OrderStatusChanged(after, order.status),), fills=fills)
    )


# ------------------------------------------------------------------ the suite


@pytest.mark.asyncio
class JournalSuite:
    """Inherit it in a ``Test...`` class and provide the ``journal_factory`` fixture."""

    @pytest.fixture
    def journal_factory(self) -> Callable[[], Journal]:
        """A callable making a new, unopened journal on the test's (empty) store."""
        raise NotImplementedError("provide the journal_factory fixture")

    @pytest_asyncio.fixture
    async def journal(self, journal_factory: Callable[[], Journal]) -> AsyncIterator[Journal]:
        opened = journal_factory()
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()

    # -------------------------------------------------------------- orders

    async def test_an_order_round_trips_exactly(self, journal: Journal) -> None:
        seoul = ZoneInfo("Asia/Seoul")
        order = attrs.evolve(
            new_order(signal_id="sig-1"),
            order_type=OrderType.LIMIT,
            limit_price=Decimal("72000.123456789012345678"),
            symbol_name="삼성전자",
            status=OrderStatus.CREATED,
            filled_notional=Decimal("0.000000000000000001"),
            commission=Decimal("12345678901234.5678"),
            reason=None,
            created_at=datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=seoul),
            updated_at=datetime(2026, 1, 5, 0, 0, 0, 654321, tzinfo=UTC),
            submitted_at=None,
            filled_at=None,
            attempts=2,
        )
        stored = await insert(journal, order)
        loaded = await journal.get_order(order.id)

        assert stored == loaded == attrs.evolve(order, version=1)
        assert loaded is not None
        assert loaded.limit_price == Decimal("72000.123456789012345678")
        assert str(loaded.filled_notional) == "1E-18"
        for moment in (loaded.created_at, loaded.updated_at):
            assert moment.utcoffset() == timedelta(0)
        assert loaded.created_at == datetime(2026, 1, 5, 0, 0, 0, 123456, tzinfo=UTC)
        assert (loaded.submitted_at, loaded.filled_at, loaded.broker_order_id) == (None, None, None)
        assert await journal.get_order("no-such-order") is None

    async def test_the_longest_texts_a_signal_allows_fit_the_journal(
        self, journal: Journal
    ) -> None:
        signal = Signal(
            "S" * MAX_SYMBOL_LENGTH,
            "BUY",
            1,
            symbol_name="이름" * (MAX_SYMBOL_NAME_LENGTH // 2),
            session_id="s" * MAX_ID_LENGTH,
            signal_id="i" * MAX_ID_LENGTH,
        )
        order = Order.from_signal(signal, account_id="a" * 64, now=T0)
        await insert(journal, order)
        found = await journal.find_by_signal(order.account_id, "i" * MAX_ID_LENGTH)
        assert found == attrs.evolve(order, version=1)

    async def test_every_change_bumps_the_version(self, journal: Journal) -> None:
        order = await insert(journal, new_order())
        assert order.version == 1
        submitting = order.evolve(OrderStatus.SUBMITTING, attempts=1, submitted_at=T0)
        committed = await journal.record(Transition(submitting))
        assert committed.order is not None
        assert committed.order.version == 2
        assert await journal.get_order(order.id) == committed.order

    async def test_a_change_from_a_stale_version_is_refused_and_stores_nothing(
        self, journal: Journal
    ) -> None:
        order = await insert(journal, new_order())
        current = await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
        assert current.order is not None
        stale = order.evolve(OrderStatus.FAILED, reason="from an old copy")
        fill = fill_for(order, 5, 100)

        with pytest.raises(ConcurrentUpdateError, match=f"{order.id} changed since version 1"):
            await journal.record(
                Transition(stale, events=(OrderStatusChanged(stale, order.status),), fills=(fill,))
            )

        assert await journal.get_order(order.id) == current.order
        assert await journal.fills(order.id) == []
        assert await journal.positions() == []
        assert [kind for kind, _ in await journal.events(order.id)] == ["OrderCreated"]

    async def test_a_signal_id_is_unique_per_account(self, journal: Journal) -> None:
        first = await insert(journal, new_order(signal_id="sig-1"))
        with pytest.raises(SignalTakenError):
            await insert(journal, new_order(signal_id="sig-1", quantity=3))
        other_account = await insert(journal, new_order(signal_id="sig-1", account="other"))

        assert await journal.find_by_signal("acct", "sig-1") == first
        assert await journal.find_by_signal("other", "sig-1") == other_account
        assert await journal.find_by_signal("acct", "sig-2") is None
        assert len(await journal.list_orders()) == 2

    async def test_orders_without_signal_ids_never_collide(self, journal: Journal) -> None:
        await asyncio.gather(*(insert(journal, new_order()) for _ in range(5)))
        assert len(await journal.list_orders()) == 5
        for limit in (0, 2**63, True):
            with pytest.raises(ConfigurationError, match="limit"):
                await journal.list_orders(limit)

    async def test_concurrent_inserts_of_one_signal_id_store_one_order(
        self, journal: Journal
    ) -> None:
        outcomes = await asyncio.gather(
            *(insert(journal, new_order(signal_id="same")) for _ in range(10)),
            return_exceptions=True,
        )
        stored = [o for o in outcomes if isinstance(o, Order)]
        assert len(stored) == 1
        assert all(isinstance(o, SignalTakenError) for o in outcomes if not isinstance(o, Order))
        assert await journal.find_by_signal("acct", "same") == stored[0]

    # -------------------------------------------------------------- fills and positions

    async def test_fills_and_positions_land_with_the_order(self, journal: Journal) -> None:
        order = await insert(journal, new_order())
        first, second = fill_for(order, 4, 72000, 40), fill_for(order, 6, 72500, 60)
        committed = await fill_order(journal, order, first, second)

        assert committed.order is not None
        assert committed.order.status is OrderStatus.FILLED
        assert committed.order.filled_quantity == 10
        assert [f.fill_id for f in committed.fills] == [first.fill_id, second.fill_id]
        assert await journal.fills(order.id) == list(committed.fills)
        [position] = await journal.positions()
        assert position == committed.positions[-1]
        assert (position.quantity, position.average_price, position.fees) == (
            10,
            Decimal(72300),
            Decimal(100),
        )
        assert position.version == 2  # one version per fill that moved it
        kinds = [kind for kind, _ in await journal.events(order.id)]
        assert kinds == [
            "OrderCreated",
            "OrderStatusChanged",  # CREATED -> SUBMITTING
            "OrderStatusChanged",  # SUBMITTING -> FILLED
            "OrderFilled",
            "PositionChanged",
            "OrderFilled",
            "PositionChanged",
        ]
        assert [type(e).__name__ for e in committed.events] == kinds[2:]

    async def test_a_failing_fill_rolls_back_the_whole_transition(self, journal: Journal) -> None:
        order = await insert(journal, new_order())
        first = fill_for(order, 4, 100, fill_id="F1")
        partial = await fill_order(journal, order, first, status=OrderStatus.PARTIALLY_FILLED)
        assert partial.order is not None
        again = fill_for(order, 6, 100, fill_id="F1")  # the same fill id once more

        with pytest.raises(JournalError):
            await fill_order(journal, partial.order, again)

        assert await journal.get_order(order.id) == partial.order
        assert [f.fill_id for f in await journal.fills(order.id)] == ["F1"]
        [position] = await journal.positions()
        assert position.quantity == 4
        assert len(await journal.events(order.id)) == 5

    async def test_a_late_fill_on_a_terminal_order_still_moves_the_position(
        self, journal: Journal
    ) -> None:
        order = await insert(journal, new_order())
        failed = await fill_order(journal, order, status=OrderStatus.FAILED)
        assert failed.order is not None
        late = fill_for(order, 3, 100)
        committed = await journal.record(Transition(failed.order.with_fills([late]), fills=(late,)))
        assert committed.order is not None
        assert committed.order.status is OrderStatus.FAILED
        assert (await journal.positions())[0].quantity == 3

    async def test_two_journals_opening_one_position_at_once_both_book(
        self, journal_factory: Callable[[], Journal]
    ) -> None:
        """Two processes booking the first fills of one instrument together: neither is lost."""
        one, two = journal_factory(), journal_factory()
        await one.open()
        await two.open()
        try:
            for round_ in range(10):
                symbol = f"NEW{round_}"
                a = await insert(one, new_order(symbol=symbol, quantity=3))
                b = await insert(two, new_order(symbol=symbol, quantity=4, side="SELL"))
                await asyncio.gather(
                    fill_order(one, a, fill_for(a, 3, 100, 1)),
                    fill_order(two, b, fill_for(b, 4, 100, 1)),
                )
            positions = await one.positions()
        finally:
            await two.close()
            await one.close()
        assert len(positions) == 10
        for position in positions:
            assert (position.quantity, position.version) == (-1, 2)

    async def test_sell_realizes_pnl_stored_per_fill(self, journal: Journal) -> None:
        buy = await insert(journal, new_order())
        await fill_order(journal, buy, fill_for(buy, 10, 72000, 100))
        sell = await insert(journal, new_order(side="SELL", quantity=4, session="s2"))
        committed = await fill_order(journal, sell, fill_for(sell, 4, 73000, 50))

        [booked] = committed.fills
        assert booked.realized_pnl == Decimal(3950)
        assert (await journal.fills(sell.id))[0].realized_pnl == Decimal(3950)
        [position] = await journal.positions("acct")
        assert (position.quantity, position.realized_pnl) == (6, Decimal(3950))
        assert await journal.positions("nobody") == []

    async def test_realized_pnl_adds_up_per_session_and_per_trading_day(
        self, journal: Journal
    ) -> None:
        day1, day2 = date(2026, 1, 5), date(2026, 1, 6)
        buy = await insert(journal, new_order(quantity=30, session="open"))
        await fill_order(journal, buy, fill_for(buy, 30, 100, day=day1))
        sells = [
            ("s1", day1, 110, 1),  # +9
            ("s1", day2, 90, 2),  # -12
            ("s2", day2, 120, 3),  # +17
        ]
        for session, day, price, commission in sells:
            sell = await insert(journal, new_order(side="SELL", quantity=1, session=session))
            await fill_order(journal, sell, fill_for(sell, 1, price, commission, day=day))

        by_session = {
            s.key: (s.realized_pnl, s.fills) for s in await journal.realized_pnl("session")
        }
        assert by_session == {
            "open": (Decimal(0), 1),
            "s1": (Decimal(-3), 2),
            "s2": (Decimal(17), 1),
        }
        by_day = {s.key: (s.realized_pnl, s.fills) for s in await journal.realized_pnl("day")}
        assert by_day == {"2026-01-05": (Decimal(9), 2), "2026-01-06": (Decimal(5), 2)}
        with pytest.raises(ConfigurationError, match="session"):
            await journal.realized_pnl("week")

    # -------------------------------------------------------------- concurrent transitions

    async def test_many_concurrent_records_all_land(self, journal: Journal) -> None:
        orders = [new_order(quantity=n + 1) for n in range(200)]
        committed = await asyncio.gather(*(insert(journal, order) for order in orders))

        assert [c.id for c in committed] == [o.id for o in orders]
        assert len(await journal.list_orders(limit=1000)) == 200
        for order in orders[::37]:
            assert await journal.get_order(order.id) == attrs.evolve(order, version=1)

    async def test_a_refused_change_among_concurrent_ones_is_refused_alone(
        self, journal: Journal
    ) -> None:
        stored = await asyncio.gather(*(insert(journal, new_order()) for _ in range(40)))
        moves: list[Transition] = [Transition(o.evolve(OrderStatus.SUBMITTING)) for o in stored]
        bad_index = 17
        stale = attrs.evolve(stored[bad_index], version=99).evolve(OrderStatus.SUBMITTING)
        moves[bad_index] = Transition(stale)
        taken = new_order(signal_id="dup")
        await insert(journal, taken)
        moves.append(Transition(new_order(signal_id="dup"), new=True))

        outcomes = await asyncio.gather(
            *(journal.record(move) for move in moves), return_exceptions=True
        )

        assert isinstance(outcomes[bad_index], ConcurrentUpdateError)
        assert isinstance(outcomes[-1], SignalTakenError)
        for index, order in enumerate(stored):
            current = await journal.get_order(order.id)
            assert current is not None
            if index == bad_index:
                assert (current.status, current.version) == (OrderStatus.CREATED, 1)
            else:
                assert (current.status, current.version) == (OrderStatus.SUBMITTING, 2)
                assert outcomes[index] == Committed(current, (), (), ())
        events = await journal.events()
        assert sum(kind == "OrderCreated" for kind, _ in events) == 41
        assert len(events) == 41

    async def test_a_held_send_among_concurrent_inserts_is_refused_alone(
        self, journal: Journal
    ) -> None:
        unknown = await insert(journal, new_order())
        moved = await journal.record(Transition(unknown.evolve(OrderStatus.SUBMITTING)))
        assert moved.order is not None
        await journal.record(Transition(moved.order.evolve(OrderStatus.UNKNOWN)))
        waiting = await insert(journal, new_order())

        others = [new_order(symbol=f"{n:06d}") for n in range(1, 51)]
        results = await asyncio.gather(
            journal.record(Transition(waiting.evolve(OrderStatus.SUBMITTING), hold_check=True)),
            *(journal.record(Transition(order, new=True)) for order in others),
            return_exceptions=True,
        )

        assert isinstance(results[0], InstrumentHeldError)
        assert all(isinstance(result, Committed) for result in results[1:])
        assert (await journal.get_order(waiting.id)) == waiting
        assert len(await journal.list_orders(limit=100)) == 52

    async def test_an_event_only_transition_is_journalled(self, journal: Journal) -> None:
        order = await insert(journal, new_order())
        await journal.record(Transition(None, events=(OrderStatusChanged(order, order.status),)))
        events = await journal.events(order.id)
        assert [kind for kind, _ in events] == ["OrderCreated", "OrderStatusChanged"]
        assert events[-1][1]["order"]["id"] == order.id
        assert len(await journal.events()) == 2

    async def test_the_listener_hears_committed_events_in_commit_order(
        self, journal: Journal
    ) -> None:
        heard: list[str] = []
        journal.set_listener(lambda events: heard.extend(e.type for e in events))
        order = await insert(journal, new_order())
        await fill_order(journal, order, fill_for(order, 10, 1))
        assert heard == [
            "OrderCreated",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderFilled",
            "PositionChanged",
        ]
        with pytest.raises(ConcurrentUpdateError):
            await journal.record(Transition(order.evolve(OrderStatus.FAILED)))
        assert len(heard) == 5  # a refused change tells nobody

    async def test_an_unknown_order_holds_its_instrument_for_new_sends(
        self, journal: Journal
    ) -> None:
        unknown = await insert(journal, new_order())
        moved = await journal.record(Transition(unknown.evolve(OrderStatus.SUBMITTING)))
        assert moved.order is not None
        held = await journal.record(Transition(moved.order.evolve(OrderStatus.UNKNOWN)))
        assert held.order is not None
        waiting = await insert(journal, new_order())
        other_symbol = await insert(journal, new_order(symbol="000660"))
        other_account = await insert(journal, new_order(account="other"))

        with pytest.raises(InstrumentHeldError) as refused:
            await journal.record(
                Transition(waiting.evolve(OrderStatus.SUBMITTING), hold_check=True)
            )
        assert refused.value.held_by == unknown.id
        assert (await journal.get_order(waiting.id)) == waiting  # nothing stored
        for free in (other_symbol, other_account):
            await journal.record(Transition(free.evolve(OrderStatus.SUBMITTING), hold_check=True))

        await journal.record(Transition(held.order.evolve(OrderStatus.FAILED, reason="absent")))
        sent = await journal.record(
            Transition(waiting.evolve(OrderStatus.SUBMITTING), hold_check=True)
        )
        assert sent.order is not None
        assert sent.order.status is OrderStatus.SUBMITTING

    # -------------------------------------------------------------- reads

    async def test_open_orders_are_the_unfinished_ones_oldest_first(self, journal: Journal) -> None:
        late = await insert(journal, new_order(at=T0 + timedelta(minutes=2)))
        early = await insert(journal, new_order(at=T0))
        other = await insert(journal, new_order(account="other", at=T0 + timedelta(minutes=1)))
        done = await insert(journal, new_order(at=T0 + timedelta(minutes=3)))
        await fill_order(journal, done, fill_for(done, 10, 1))
        pending = await insert(journal, new_order(at=T0 + timedelta(minutes=4)))
        await fill_order(journal, pending, status=OrderStatus.SUBMITTED)

        mine = await journal.open_orders("acct")
        assert [o.id for o in mine] == [early.id, late.id, pending.id]
        assert [o.id for o in await journal.open_orders()] == [
            early.id,
            other.id,
            late.id,
            pending.id,
        ]
        assert await journal.open_orders("nobody") == []

    async def test_owned_broker_ids_are_per_account_and_symbol(self, journal: Journal) -> None:
        a = await insert(journal, new_order())
        b = await insert(journal, new_order())
        await insert(journal, new_order())  # no broker id yet
        c = await insert(journal, new_order(symbol="000660"))
        d = await insert(journal, new_order(account="other"))
        for order in (a, b, c, d):
            await fill_order(journal, order, status=OrderStatus.SUBMITTED)

        owned = await journal.owned_broker_ids("acct", "005930")
        assert owned == {f"B-{a.id[:8]}", f"B-{b.id[:8]}"}
        assert await journal.owned_broker_ids("acct", "000660") == {f"B-{c.id[:8]}"}
        assert await journal.owned_broker_ids("acct", "035720") == frozenset()

    async def test_owned_broker_orders_say_when_their_owners_were_sent(
        self, journal: Journal
    ) -> None:
        owned_orders = getattr(journal, "owned_broker_orders", None)
        if owned_orders is None:
            pytest.skip("owned_broker_orders is optional, and this journal has none")
        a = await insert(journal, new_order())
        await insert(journal, new_order())  # no broker id yet
        c = await insert(journal, new_order(symbol="000660"))
        for order in (a, c):
            await fill_order(journal, order, status=OrderStatus.SUBMITTED)
        stored = await journal.get_order(a.id)
        assert stored is not None
        sent = stored.submitted_at or stored.created_at

        assert await owned_orders("acct", "005930") == {
            f"B-{a.id[:8]}": (LookupWindow(sent, sent),)
        }
        assert set(await owned_orders("acct", "000660")) == {f"B-{c.id[:8]}"}
        assert await owned_orders("other", "005930") == {}

    async def test_unresolved_siblings_are_the_instruments_orders_of_one_intent_without_a_broker_id(
        self, journal: Journal
    ) -> None:
        order = await insert(journal, new_order(at=T0 + timedelta(minutes=5)))
        in_flight = await insert(journal, new_order(at=T0 + timedelta(minutes=1)))
        moved = await journal.record(Transition(in_flight.evolve(OrderStatus.SUBMITTING)))
        assert moved.order is not None
        lost = await insert(journal, new_order(at=T0))
        lost_moved = await journal.record(Transition(lost.evolve(OrderStatus.SUBMITTING)))
        assert lost_moved.order is not None
        await journal.record(Transition(lost_moved.order.evolve(OrderStatus.UNKNOWN)))
        await insert(journal, new_order())  # CREATED: never sent
        placed = await insert(journal, new_order())
        await fill_order(journal, placed, status=OrderStatus.SUBMITTED)  # has a broker id
        elsewhere = await insert(journal, new_order(symbol="000660"))
        await journal.record(Transition(elsewhere.evolve(OrderStatus.SUBMITTING)))
        for other in (new_order(quantity=11), new_order(side="SELL")):  # another intent
            stored = await insert(journal, other)
            await journal.record(Transition(stored.evolve(OrderStatus.SUBMITTING)))
        priced = Signal("005930", "BUY", 10, "LIMIT", 70_000)
        limit = Order.from_signal(priced, account_id="acct", now=T0)
        stored = await insert(journal, limit)
        await journal.record(Transition(stored.evolve(OrderStatus.SUBMITTING)))

        assert await journal.unresolved_siblings(order) == [lost.id, in_flight.id]
        assert await journal.unresolved_siblings(moved.order) == [lost.id]

    async def test_list_orders_is_newest_first_and_limited(self, journal: Journal) -> None:
        orders = [await insert(journal, new_order(at=T0 + timedelta(seconds=n))) for n in range(5)]
        listed = await journal.list_orders()
        assert [o.id for o in listed] == [o.id for o in reversed(orders)]
        assert [o.id for o in await journal.list_orders(limit=2)] == [orders[4].id, orders[3].id]

    async def test_fills_are_listed_in_execution_order(self, journal: Journal) -> None:
        order = await insert(journal, new_order())
        later = fill_for(order, 6, 2, at=T0 + timedelta(seconds=5), fill_id="b")
        earlier = fill_for(order, 4, 1, at=T0, fill_id="a")
        await fill_order(journal, order, later, earlier)
        assert [f.fill_id for f in await journal.fills(order.id)] == ["a", "b"]

    async def test_a_closed_journal_refuses_work(
        self, journal_factory: Callable[[], Journal]
    ) -> None:
        journal = journal_factory()
        with pytest.raises(JournalError, match="not open"):
            await journal.record(Transition(new_order(), new=True))
        await journal.open()
        await journal.close()
        with pytest.raises(JournalError, match="not open"):
            await journal.list_orders()

    # -------------------------------------------------------------- engine sessions

    async def test_storing_the_limiters_figures_leaves_the_session_as_it_was(
        self, journal: Journal, journal_factory: Callable[[], Journal]
    ) -> None:
        """A store may keep the figures for displays or drop them; either way they change
        nothing another engine's recovery reads."""
        other = journal_factory()
        await other.open()
        try:
            await journal.start_session("acct", T0)
            await other.start_session("acct", T0)
            await journal.store_limiter({"limits": ["2/1s"], "queue_depth": 1, "granted": {}})
            await journal.heartbeat(T0 + timedelta(seconds=5))
            await journal.store_limiter({"limits": ["2/1s"], "queue_depth": 0, "granted": {}})
            assert await other.other_sessions("acct") == {
                journal.engine_id: T0 + timedelta(seconds=5)
            }
        finally:
            await other.close()

    async def test_engine_sessions_say_whose_orders_are_in_good_hands(
        self, journal: Journal, journal_factory: Callable[[], Journal]
    ) -> None:
        other = journal_factory()
        await other.open()
        try:
            assert journal.engine_id != other.engine_id
            await journal.start_session("acct", T0)
            await other.start_session("acct", T0)
            await other.heartbeat(T0 + timedelta(seconds=30))
            mine = await insert(journal, new_order())
            theirs = await insert(other, new_order())

            seen = await journal.other_sessions("acct")
            assert seen == {other.engine_id: T0 + timedelta(seconds=30)}
            assert await other.other_sessions("acct") == {journal.engine_id: T0}
            assert await journal.order_owners([mine.id, theirs.id]) == {
                mine.id: journal.engine_id,
                theirs.id: other.engine_id,
            }
            assert await journal.order_owners([]) == {}

            await journal.forget_sessions([other.engine_id])
            assert await journal.other_sessions("acct") == {}
            await journal.end_session()
            assert await other.other_sessions("acct") == {}
        finally:
            await other.close()

    async def test_a_session_taken_for_dead_is_announced_again_by_its_next_heartbeat(
        self, journal: Journal, journal_factory: Callable[[], Journal]
    ) -> None:
        # An engine stalled past its lease (a paused process, an overloaded machine) is taken
        # for dead and its session forgotten by another engine's recovery. It is alive, so its
        # next heartbeat puts the session back: from then on its orders are in good hands again
        # rather than anybody's to settle.
        other = journal_factory()
        await other.open()
        try:
            await journal.start_session("acct", T0)
            await other.start_session("acct", T0)
            await other.forget_sessions([journal.engine_id])
            assert await other.other_sessions("acct") == {}

            await journal.heartbeat(T0 + timedelta(seconds=40))
            assert await other.other_sessions("acct") == {
                journal.engine_id: T0 + timedelta(seconds=40)
            }
            await journal.heartbeat(T0 + timedelta(seconds=45))
            assert await other.other_sessions("acct") == {
                journal.engine_id: T0 + timedelta(seconds=45)
            }
        finally:
            await other.close()
