"""The journal on a real database: SQLite and PostgreSQL through the same tests.

Migrations, exact round trips, optimistic locking, signal-id uniqueness, fills and positions in
the order's own transaction, group commit, and the read side the engine and CLI rely on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
import sqlalchemy as sa

from conftest import reset_postgres
from orderlane.errors import ConfigurationError, JournalError
from orderlane.events import OrderCreated, OrderStatusChanged
from orderlane.journal import Committed, Transition
from orderlane.journal.migrate import head_revision
from orderlane.journal.sql import (
    DEFAULT_DATABASE_URL,
    ConcurrentUpdateError,
    InstrumentHeldError,
    SignalTakenError,
    SqlJournal,
    resolve_database_url,
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

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
TABLES = {"orders", "fills", "positions", "order_events", "alembic_version"}


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


async def insert(journal: SqlJournal, order: Order) -> Order:
    committed = await journal.record(Transition(order, events=(OrderCreated(order),), new=True))
    assert committed.order is not None
    return committed.order


async def fill_order(
    journal: SqlJournal, order: Order, *fills: Fill, status: OrderStatus = OrderStatus.FILLED
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


def sync_engine(url: str) -> sa.Engine:
    return sa.create_engine(resolve_database_url(url))


def stored_revision(url: str) -> str | None:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sync_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def wipe(url: str) -> None:
    """Make the database empty again (a fresh file or a fresh schema)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    reset_postgres(url)


@pytest.fixture
async def journal(database_url: str) -> AsyncIterator[SqlJournal]:
    async with SqlJournal(database_url) as opened:
        yield opened


# ------------------------------------------------------------------ migrations


async def test_first_use_creates_the_schema_at_head(database_url: str) -> None:
    assert not table_names(database_url) & TABLES
    async with SqlJournal(database_url):
        pass
    assert table_names(database_url) >= TABLES
    assert stored_revision(database_url) == head_revision()


async def test_opening_again_is_a_no_op_and_keeps_the_data(database_url: str) -> None:
    order = new_order()
    journal = SqlJournal(database_url)
    await journal.open()
    await journal.open()  # already open: nothing happens
    await insert(journal, order)
    await journal.close()
    await journal.close()  # already closed: nothing happens

    async with SqlJournal(database_url) as again:
        assert (await again.get_order(order.id)) == attrs.evolve(order, version=1)
    assert stored_revision(database_url) == head_revision()


async def _open_and_use(url: str, account: str) -> None:
    async with SqlJournal(url) as journal:
        await insert(journal, new_order(account=account))


async def test_journals_migrating_one_fresh_database_at_once_all_succeed(
    database_url: str,
) -> None:
    for round_ in range(8):  # the race is narrow: give it several chances
        wipe(database_url)
        await asyncio.gather(*(_open_and_use(database_url, f"{round_}-{n}") for n in range(4)))
        assert stored_revision(database_url) == head_revision()
        async with SqlJournal(database_url) as journal:
            assert len(await journal.list_orders()) == 4


def test_journals_on_two_event_loops_migrating_at_once_both_succeed(database_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run(account: str) -> None:
        start.wait()
        try:
            asyncio.run(_open_and_use(database_url, account))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"acct{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert stored_revision(database_url) == head_revision()


async def test_a_database_from_a_newer_orderlane_is_refused(database_url: str) -> None:
    async with SqlJournal(database_url):
        pass
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()

    journal = SqlJournal(database_url)
    with pytest.raises(JournalError, match="Upgrade orderlane") as refused:
        await journal.open()
    assert "9999_from_the_future" in str(refused.value)
    with pytest.raises(JournalError, match="not open"):
        await journal.get_order("x")
    assert stored_revision(database_url) == "9999_from_the_future"  # left as it was


# ------------------------------------------------------------------ orders


async def test_an_order_round_trips_exactly(journal: SqlJournal) -> None:
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


async def test_the_longest_texts_a_signal_allows_fit_the_journal(journal: SqlJournal) -> None:
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
    assert await journal.find_by_signal(order.account_id, "i" * MAX_ID_LENGTH) == attrs.evolve(
        order, version=1
    )


async def test_every_change_bumps_the_version(journal: SqlJournal) -> None:
    order = await insert(journal, new_order())
    assert order.version == 1
    submitting = order.evolve(OrderStatus.SUBMITTING, attempts=1, submitted_at=T0)
    committed = await journal.record(Transition(submitting))
    assert committed.order is not None
    assert committed.order.version == 2
    assert await journal.get_order(order.id) == committed.order


async def test_a_change_from_a_stale_version_is_refused_and_stores_nothing(
    journal: SqlJournal,
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


async def test_a_signal_id_is_unique_per_account(journal: SqlJournal) -> None:
    first = await insert(journal, new_order(signal_id="sig-1"))
    with pytest.raises(SignalTakenError):
        await insert(journal, new_order(signal_id="sig-1", quantity=3))
    other_account = await insert(journal, new_order(signal_id="sig-1", account="other"))

    assert await journal.find_by_signal("acct", "sig-1") == first
    assert await journal.find_by_signal("other", "sig-1") == other_account
    assert await journal.find_by_signal("acct", "sig-2") is None
    assert len(await journal.list_orders()) == 2


async def test_orders_without_signal_ids_never_collide(journal: SqlJournal) -> None:
    await asyncio.gather(*(insert(journal, new_order()) for _ in range(5)))
    assert len(await journal.list_orders()) == 5


async def test_concurrent_inserts_of_one_signal_id_store_one_order(journal: SqlJournal) -> None:
    outcomes = await asyncio.gather(
        *(insert(journal, new_order(signal_id="same")) for _ in range(10)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if isinstance(o, Order)]
    assert len(stored) == 1
    assert all(isinstance(o, SignalTakenError) for o in outcomes if not isinstance(o, Order))
    assert await journal.find_by_signal("acct", "same") == stored[0]


# ------------------------------------------------------------------ fills and positions


async def test_fills_and_positions_land_with_the_order(journal: SqlJournal) -> None:
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


async def test_a_failing_fill_rolls_back_the_whole_transition(journal: SqlJournal) -> None:
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
    journal: SqlJournal,
) -> None:
    order = await insert(journal, new_order())
    failed = await fill_order(journal, order, status=OrderStatus.FAILED)
    assert failed.order is not None
    late = fill_for(order, 3, 100)
    committed = await journal.record(Transition(failed.order.with_fills([late]), fills=(late,)))
    assert committed.order is not None
    assert committed.order.status is OrderStatus.FAILED
    assert (await journal.positions())[0].quantity == 3


async def test_two_journals_opening_one_position_at_once_both_book(database_url: str) -> None:
    """Two processes booking the first fills of one instrument together: neither is lost."""
    async with SqlJournal(database_url) as one, SqlJournal(database_url) as two:
        for round_ in range(10):
            symbol = f"NEW{round_}"
            a = await insert(one, new_order(symbol=symbol, quantity=3))
            b = await insert(two, new_order(symbol=symbol, quantity=4, side="SELL"))
            await asyncio.gather(
                fill_order(one, a, fill_for(a, 3, 100, 1)),
                fill_order(two, b, fill_for(b, 4, 100, 1)),
            )
        positions = await one.positions()
    assert len(positions) == 10
    for position in positions:
        assert (position.quantity, position.version) == (-1, 2)


async def test_sell_realizes_pnl_stored_per_fill(journal: SqlJournal) -> None:
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


async def test_realized_pnl_adds_up_per_session_and_per_trading_day(journal: SqlJournal) -> None:
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

    by_session = {s.key: (s.realized_pnl, s.fills) for s in await journal.realized_pnl("session")}
    assert by_session == {
        "open": (Decimal(0), 1),
        "s1": (Decimal(-3), 2),
        "s2": (Decimal(17), 1),
    }
    by_day = {s.key: (s.realized_pnl, s.fills) for s in await journal.realized_pnl("day")}
    assert by_day == {"2026-01-05": (Decimal(9), 2), "2026-01-06": (Decimal(5), 2)}
    with pytest.raises(ValueError, match="session"):
        await journal.realized_pnl("week")


# ------------------------------------------------------------------ group commit


async def test_many_concurrent_records_all_land(journal: SqlJournal) -> None:
    orders = [new_order(quantity=n + 1) for n in range(200)]
    before = journal.commits
    committed = await asyncio.gather(*(insert(journal, order) for order in orders))

    assert [c.id for c in committed] == [o.id for o in orders]
    assert len(await journal.list_orders(limit=1000)) == 200
    if journal.dialect == "sqlite":
        assert journal.commits - before < 200  # some of them shared a commit
    for order in orders[::37]:
        assert await journal.get_order(order.id) == attrs.evolve(order, version=1)


async def test_one_bad_change_in_a_group_does_not_take_the_others_down(
    journal: SqlJournal,
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


async def test_a_stale_change_in_a_group_commit_is_refused_alone(journal: SqlJournal) -> None:
    stored = await asyncio.gather(*(insert(journal, new_order()) for _ in range(40)))
    moves = [Transition(o.evolve(OrderStatus.SUBMITTING)) for o in stored]
    moves[5] = Transition(attrs.evolve(stored[5], version=7).evolve(OrderStatus.SUBMITTING))
    before = journal.commits

    outcomes = await asyncio.gather(
        *(journal.record(move) for move in moves), return_exceptions=True
    )

    assert isinstance(outcomes[5], ConcurrentUpdateError)
    assert sum(isinstance(outcome, Committed) for outcome in outcomes) == 39
    # The refusal wrote nothing, so the changes around it kept their shared transactions.
    assert journal.commits - before < len(moves) - 1
    events = await journal.events()
    assert sum(kind == "OrderCreated" for kind, _ in events) == 40
    assert len(events) == 40


async def test_an_event_only_transition_is_journalled(journal: SqlJournal) -> None:
    order = await insert(journal, new_order())
    await journal.record(Transition(None, events=(OrderStatusChanged(order, order.status),)))
    events = await journal.events(order.id)
    assert [kind for kind, _ in events] == ["OrderCreated", "OrderStatusChanged"]
    assert events[-1][1]["order"]["id"] == order.id
    assert len(await journal.events()) == 2


async def test_the_listener_hears_committed_events_in_commit_order(journal: SqlJournal) -> None:
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


async def test_an_unknown_order_holds_its_instrument_for_new_sends(journal: SqlJournal) -> None:
    unknown = await insert(journal, new_order())
    moved = await journal.record(Transition(unknown.evolve(OrderStatus.SUBMITTING)))
    assert moved.order is not None
    held = await journal.record(Transition(moved.order.evolve(OrderStatus.UNKNOWN)))
    assert held.order is not None
    waiting = await insert(journal, new_order())
    other_symbol = await insert(journal, new_order(symbol="000660"))
    other_account = await insert(journal, new_order(account="other"))

    with pytest.raises(InstrumentHeldError) as refused:
        await journal.record(Transition(waiting.evolve(OrderStatus.SUBMITTING), hold_check=True))
    assert refused.value.held_by == unknown.id
    assert (await journal.get_order(waiting.id)) == waiting  # nothing stored
    for free in (other_symbol, other_account):
        await journal.record(Transition(free.evolve(OrderStatus.SUBMITTING), hold_check=True))

    await journal.record(Transition(held.order.evolve(OrderStatus.FAILED, reason="absent")))
    sent = await journal.record(Transition(waiting.evolve(OrderStatus.SUBMITTING), hold_check=True))
    assert sent.order is not None
    assert sent.order.status is OrderStatus.SUBMITTING


async def test_values_the_columns_refuse_are_reported_as_such(journal: SqlJournal) -> None:
    naive = attrs.evolve(new_order(), created_at=datetime(2026, 1, 5, 9, 0))
    with pytest.raises(TypeError, match="timezone-aware"):
        await insert(journal, naive)
    float_money = attrs.evolve(new_order(), commission=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="money must be a Decimal"):
        await insert(journal, float_money)
    assert await journal.list_orders() == []


async def test_an_unreadable_row_is_a_journal_error(journal: SqlJournal, database_url: str) -> None:
    order = await insert(journal, new_order())
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'LOST_IN_SPACE'"))
    engine.dispose()
    with pytest.raises(JournalError, match=f"orders row {order.id} cannot be read: status"):
        await journal.get_order(order.id)


async def test_a_broken_database_is_a_journal_error(journal: SqlJournal, database_url: str) -> None:
    await insert(journal, new_order())
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE order_events"))
    engine.dispose()
    with pytest.raises(JournalError, match="the journal database failed") as failed:
        await insert(journal, new_order())
    assert "order_events" in str(failed.value)


# ------------------------------------------------------------------ reads


async def test_open_orders_are_the_unfinished_ones_oldest_first(journal: SqlJournal) -> None:
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


async def test_owned_broker_ids_are_per_account_and_symbol(journal: SqlJournal) -> None:
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


async def test_list_orders_is_newest_first_and_limited(journal: SqlJournal) -> None:
    orders = [await insert(journal, new_order(at=T0 + timedelta(seconds=n))) for n in range(5)]
    listed = await journal.list_orders()
    assert [o.id for o in listed] == [o.id for o in reversed(orders)]
    assert [o.id for o in await journal.list_orders(limit=2)] == [orders[4].id, orders[3].id]


async def test_fills_are_listed_in_execution_order(journal: SqlJournal) -> None:
    order = await insert(journal, new_order())
    later = fill_for(order, 6, 2, at=T0 + timedelta(seconds=5), fill_id="b")
    earlier = fill_for(order, 4, 1, at=T0, fill_id="a")
    await fill_order(journal, order, later, earlier)
    assert [f.fill_id for f in await journal.fills(order.id)] == ["a", "b"]


async def test_a_closed_journal_refuses_work(database_url: str) -> None:
    journal = SqlJournal(database_url)
    with pytest.raises(JournalError, match="not open"):
        await journal.record(Transition(new_order(), new=True))
    async with journal:
        pass
    with pytest.raises(JournalError, match="not open"):
        await journal.list_orders()


# ------------------------------------------------------------------ SQLite specifics


def _pragma(conn: sa.Connection, name: str) -> Any:
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


async def test_sqlite_runs_in_wal_with_full_sync(sqlite_url: str) -> None:
    async with SqlJournal(sqlite_url) as journal:
        settings = await journal._read(
            lambda conn: {n: _pragma(conn, n) for n in ("synchronous", "busy_timeout")}
        )
    assert settings == {"synchronous": 2, "busy_timeout": 30_000}  # 2 = FULL
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_durability_can_be_relaxed_explicitly(sqlite_url: str) -> None:
    async with SqlJournal(sqlite_url, synchronous="normal", busy_timeout_ms=1234) as journal:
        settings = await journal._read(
            lambda conn: (_pragma(conn, "synchronous"), _pragma(conn, "busy_timeout"))
        )
    assert settings == (1, 1234)  # 1 = NORMAL
    with pytest.raises(ConfigurationError, match="synchronous must be"):
        SqlJournal(sqlite_url, synchronous="OFF")


async def test_sqlite_waits_for_another_writer_before_switching_to_wal(sqlite_url: str) -> None:
    """SQLite refuses a switch to WAL at once while another connection writes; the journal waits.

    (That refusal skips the busy timeout, so without a wait of its own two engines opening a
    fresh database together could fail with "database is locked".)
    """
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other_tool (x)")  # a plain rollback-journal database
    other.execute("BEGIN IMMEDIATE")

    def finish_writing() -> None:
        other.execute("COMMIT")
        other.close()

    release = threading.Timer(0.2, finish_writing)
    release.start()
    try:
        async with SqlJournal(sqlite_url, busy_timeout_ms=10_000) as journal:
            await insert(journal, new_order())
            assert len(await journal.list_orders()) == 1
    finally:
        release.join()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_gives_up_on_a_lock_held_past_the_busy_timeout(sqlite_url: str) -> None:
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE other_tool (x)")
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConfigurationError, match="database is locked"):
            await SqlJournal(sqlite_url, busy_timeout_ms=50).open()
    finally:
        other.execute("COMMIT")
        other.close()


async def test_sqlite_creates_the_database_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'journal.db'}"
    async with SqlJournal(url) as journal:
        await insert(journal, new_order())
    assert (tmp_path / "deep" / "er" / "journal.db").exists()


async def test_sqlite_stores_money_as_exact_text(sqlite_url: str) -> None:
    price = Decimal("0.1000000000000000000000000001")
    async with SqlJournal(sqlite_url) as journal:
        order = attrs.evolve(new_order(), order_type=OrderType.LIMIT, limit_price=price)
        await insert(journal, order)
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT limit_price FROM orders").fetchone() == (str(price),)


async def test_sqlite_times_written_without_an_offset_read_back_as_utc(sqlite_url: str) -> None:
    async with SqlJournal(sqlite_url) as journal:
        order = await insert(journal, new_order())
        engine = sync_engine(sqlite_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET created_at = '2026-01-05 09:00:00'"))
        engine.dispose()
        loaded = await journal.get_order(order.id)
    assert loaded is not None
    assert loaded.created_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC


@pytest.fixture
def no_database_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("ORDERLANE_DATABASE_URL", raising=False)
    return monkeypatch


class TestResolveDatabaseUrl:
    def test_default_is_a_sqlite_file_in_the_working_directory(
        self, no_database_env: pytest.MonkeyPatch
    ) -> None:
        assert resolve_database_url() == DEFAULT_DATABASE_URL == "sqlite:///orderlane.db"

    def test_the_environment_variable_is_used_when_no_url_is_given(
        self, no_database_env: pytest.MonkeyPatch
    ) -> None:
        no_database_env.setenv("ORDERLANE_DATABASE_URL", "sqlite:////var/lib/ol.db")
        assert resolve_database_url() == "sqlite:////var/lib/ol.db"
        assert resolve_database_url("sqlite:///given.db") == "sqlite:///given.db"

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://u:p@127.0.0.1/db",
            "postgresql+asyncpg://u:p@127.0.0.1/db",
            "postgresql+psycopg://u:p@127.0.0.1/db",
            "postgresql+psycopg2://u:p@127.0.0.1/db",
        ],
    )
    def test_postgresql_is_driven_by_psycopg(self, url: str) -> None:
        assert resolve_database_url(url) == "postgresql+psycopg://u:p@127.0.0.1/db"

    def test_sqlite_drivers_become_the_standard_library_driver(self) -> None:
        assert resolve_database_url("sqlite+aiosqlite:///x.db") == "sqlite:///x.db"
        assert resolve_database_url("sqlite+pysqlite:///x.db") == "sqlite:///x.db"

    @pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://u@h/db", "mssql+pyodbc://h/db"])
    def test_other_databases_are_refused(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="unsupported database"):
            resolve_database_url(url)

    def test_garbage_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="not a database URL"):
            resolve_database_url("this is not a url")


def test_passwords_never_appear_in_the_journal_repr() -> None:
    journal = SqlJournal("postgresql+asyncpg://trader:s3cr3t-pw@127.0.0.1:5432/orders")
    assert "s3cr3t-pw" not in repr(journal)
    assert "trader" in repr(journal)
    assert journal.dialect == "postgresql"


async def test_passwords_never_appear_in_connection_errors() -> None:
    journal = SqlJournal("postgresql://trader:s3cr3t-pw@127.0.0.1:1/orders")
    with pytest.raises(ConfigurationError, match="cannot open the journal database") as failed:
        await journal.open()
    assert "s3cr3t-pw" not in str(failed.value)


async def test_a_held_send_in_a_group_commit_leaves_the_group_committed(
    journal: SqlJournal,
) -> None:
    unknown = await insert(journal, new_order())
    moved = await journal.record(Transition(unknown.evolve(OrderStatus.SUBMITTING)))
    assert moved.order is not None
    await journal.record(Transition(moved.order.evolve(OrderStatus.UNKNOWN)))
    waiting = await insert(journal, new_order())
    before = journal.commits

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
    # Shared transactions, not one per change: the refusal undid only itself.
    assert journal.commits - before < len(others)
