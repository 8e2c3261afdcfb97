"""The SQL journal on a real database: SQLite and PostgreSQL through the same tests.

What every journal must do is the journal conformance suite
(tests/core/test_journal_conformance.py); here is what is the SQL journal's own: migrations,
group commit, what the columns refuse, rows changed outside orderlane, SQLite's durability and
locking, database URLs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from conftest import reset_postgres
from orderlane import Engine, EngineConfig, Signal
from orderlane.errors import ConfigurationError, JournalError
from orderlane.journal import Committed, ConcurrentUpdateError, InstrumentHeldError, Transition
from orderlane.journal.migrate import head_revision
from orderlane.journal.reader import JournalReader
from orderlane.journal.schema import accounts
from orderlane.journal.sql import (
    DEFAULT_DATABASE_URL,
    SqlJournal,
    resolve_database_url,
)
from orderlane.model import (
    OrderStatus,
    OrderType,
)
from orderlane.testing.journal_suite import fill_for, fill_order, insert, new_order

TABLES = {"orders", "fills", "positions", "order_events", "alembic_version"}


# ------------------------------------------------------------------ helpers


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


# ------------------------------------------------------------------ group commit


async def test_concurrent_records_share_commits(journal: SqlJournal) -> None:
    orders = [new_order(quantity=n + 1) for n in range(200)]
    before = journal.commits
    committed = await asyncio.gather(*(insert(journal, order) for order in orders))

    assert [c.id for c in committed] == [o.id for o in orders]
    assert len(await journal.list_orders(limit=1000)) == 200
    if journal.dialect == "sqlite":
        assert journal.commits - before < 200  # some of them shared a commit
    for order in orders[::37]:
        assert await journal.get_order(order.id) == attrs.evolve(order, version=1)


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


async def test_a_fill_on_a_held_position_runs_every_statement_on_the_drivers_cursor(
    journal: SqlJournal,
) -> None:
    """The order path's statements, the position's read among them, skip SQLAlchemy Core's
    per-execute work; what the fill books is the same as reading the position through it."""
    first = await insert(journal, new_order(quantity=4))
    await fill_order(journal, first, fill_for(first, 4, "72000.5", 40))
    second = await insert(journal, new_order(quantity=6))
    moved = await journal.record(Transition(second.evolve(OrderStatus.SUBMITTING)))
    assert moved.order is not None
    fill = fill_for(second, 6, 72500, 60)
    after = moved.order.with_fills([fill]).evolve(OrderStatus.FILLED)
    through_core: list[str] = []
    engine = journal._writer._engine
    assert engine is not None

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        through_core.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        committed = await journal.record(Transition(after, fills=(fill,)))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)

    assert through_core == []
    [position] = await journal.positions()
    assert position == committed.positions[-1]
    assert (position.quantity, position.average_price, position.fees, position.version) == (
        10,
        Decimal("72300.2"),
        Decimal(100),
        2,  # one version per fill that moved it
    )


async def test_an_update_writes_the_orders_state_never_its_identity(sqlite_url: str) -> None:
    """A transition's UPDATE sets the columns transitions change: rewriting the identity
    columns would rewrite their index entries (the signal id's, the broker id's) in every
    commit for values that never change. What is stored is the whole order all the same."""
    async with SqlJournal(sqlite_url) as journal:
        order = await insert(journal, new_order(signal_id="sig-1"))
        driver = journal._writer._conn.connection.driver_connection  # type: ignore[union-attr]
        statements: list[str] = []
        driver.set_trace_callback(statements.append)
        try:
            moved = await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
        finally:
            driver.set_trace_callback(None)
        [update] = [s for s in statements if s.lstrip().upper().startswith("UPDATE ORDERS")]
        assigned = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
        columns = {part.split("=")[0].strip() for part in assigned.split(",")}
        assert columns.isdisjoint(
            {"id", "account_id", "session_id", "signal_id", "symbol", "side", "quantity"}
        ), columns
        assert {"status", "version", "updated_at", "engine_id"} <= columns
        assert moved.order is not None
        assert await journal.get_order(order.id) == moved.order


async def test_a_transition_on_sqlite_commits_in_the_drivers_own_transaction(
    sqlite_url: str,
) -> None:
    """SQLAlchemy's begin and commit cost the writer more than SQLite's commit of a small
    change: a transition runs BEGIN IMMEDIATE and COMMIT on the driver, nothing through
    SQLAlchemy; a write that goes through SQLAlchemy still gets SQLAlchemy's transaction."""
    async with SqlJournal(sqlite_url) as journal:
        order = await insert(journal, new_order())
        engine = journal._writer._engine
        assert engine is not None
        driver = journal._writer._conn.connection.driver_connection  # type: ignore[union-attr]
        through_core: list[str] = []
        statements: list[str] = []

        def begun(_conn: Any) -> None:
            through_core.append("begin")

        def committed(_conn: Any) -> None:
            through_core.append("commit")

        sa.event.listen(engine, "begin", begun)
        sa.event.listen(engine, "commit", committed)
        driver.set_trace_callback(statements.append)
        try:
            moved = await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
            assert moved.order is not None
            fill = fill_for(moved.order, order.quantity, 72000, 10)
            after = moved.order.with_fills([fill]).evolve(OrderStatus.FILLED)
            await journal.record(Transition(after, fills=(fill,)))
            assert through_core == []
            await journal.heartbeat(datetime.now(UTC))  # a write through SQLAlchemy
            assert through_core == ["begin", "commit"]
        finally:
            sa.event.remove(engine, "begin", begun)
            sa.event.remove(engine, "commit", committed)
            driver.set_trace_callback(None)
        assert statements.count("BEGIN IMMEDIATE") == 3
        [position] = await journal.positions()
        assert position.quantity == order.quantity


async def test_a_failed_commit_in_the_drivers_transaction_rolls_back_and_the_journal_goes_on(
    sqlite_url: str,
) -> None:
    """A COMMIT SQLite refuses (here: a deferred foreign key the transaction broke) leaves no
    transaction open behind it: the caller gets a journal error, nothing of the change is
    stored, and the next transition commits."""
    async with SqlJournal(sqlite_url) as journal:
        order = await insert(journal, new_order())
        writer = journal._writer

        def orphan_fill(_conn: Any) -> None:
            assert writer.group is not None
            cursor = writer.group.cursor
            cursor.execute("PRAGMA defer_foreign_keys=ON")  # checked at COMMIT, not before
            cursor.execute(
                "UPDATE orders SET status = 'SUBMITTING', version = version + 1 WHERE id = ?",
                (order.id,),
            )
            cursor.execute(
                "INSERT INTO fills (order_id, fill_id, account_id, session_id, symbol, side, "
                "quantity, price, commission, realized_pnl, gross_pnl, net_pnl, executed_at, "
                "trading_day) VALUES ('no-such-order', 'f', 'a', 's', 'x', 'BUY', 1, '1', '0', "
                "'0', '0', '0', '2026-01-02T00:00:00.000000+00:00', '2026-01-02')"
            )

        with pytest.raises(JournalError, match="FOREIGN KEY"):
            await writer.submit(orphan_fill, write=True, driver_only=True)
        driver = writer._conn.connection.driver_connection  # type: ignore[union-attr]
        assert not driver.in_transaction
        assert await journal.get_order(order.id) == order
        assert await journal.fills(order.id) == []
        committed = await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
        assert committed.order is not None
        assert committed.order.version == order.version + 1


async def test_the_limiters_figures_are_stored_beside_the_session_for_displays(
    database_url: str,
) -> None:
    """The figures are read back as they were; figures changed by hand into something that is
    no JSON object read as none, never as an error."""
    figures = {"limits": ["18/1s"], "backend": "in-process", "queue_depth": 2, "granted": {}}
    async with SqlJournal(database_url) as journal:
        await journal.start_session("acct", datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        with JournalReader(database_url) as reader, reader.view() as view:
            [before] = view.engine_sessions("acct")
        await journal.heartbeat(datetime(2026, 11, 2, 9, 0, 5, tzinfo=UTC))
        await journal.store_limiter(figures)
        with JournalReader(database_url) as reader, reader.view() as view:
            [after] = view.engine_sessions("acct")
            assert view.engine_sessions("other") == []
        assert before.limiter is None
        assert after.engine_id == journal.engine_id
        assert after.limiter == figures
        assert after.heartbeat_at == datetime(2026, 11, 2, 9, 0, 5, tzinfo=UTC)
        with sync_engine(database_url).begin() as conn:
            conn.execute(sa.text("UPDATE engine_sessions SET limiter = '[1, 2'"))
        with JournalReader(database_url) as reader, reader.view() as view:
            [garbled] = view.engine_sessions("acct")
        assert garbled.limiter is None


async def _writer_held(journal: SqlJournal, seconds: float) -> asyncio.Future[None]:
    """A write that keeps the writer thread busy for ``seconds``, so that what is submitted
    meanwhile is committed together in its next transaction."""
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    def slow(_conn: Any) -> None:
        loop.call_soon_threadsafe(started.set)
        threading.Event().wait(seconds)

    held = journal._writer.submit(slow, write=True)
    await started.wait()
    return held


async def test_a_group_mixing_transitions_and_core_writes_that_fails_midway_is_redone_alone(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Transitions and a heartbeat (a write through SQLAlchemy) share one transaction. When a
    transition's fill is refused after its order's UPDATE ran, the group is rolled back and each
    change committed alone; nothing of the refused one is stored and no transaction is left
    open on the driver."""
    async with SqlJournal(database_url) as journal:
        await journal.start_session("acct", datetime.now(UTC))
        first = await insert(journal, new_order(signal_id="a"))
        second = await insert(journal, new_order(signal_id="b"))
        held = await _writer_held(journal, 0.2)
        together = [
            asyncio.ensure_future(journal.heartbeat(datetime.now(UTC))),
            asyncio.ensure_future(journal.record(Transition(first.evolve(OrderStatus.CREATED)))),
        ]
        commits = journal.commits
        await held
        _beat, unchanged = await asyncio.gather(*together)
        assert journal.commits == commits + 1 + 1  # the slow write, then the group
        assert unchanged.order is not None
        first = unchanged.order
        fill_a, fill_b = fill_for(first, 1, 100), fill_for(second, 2, 100, fill_id="b-1")
        booked = await journal.record(
            Transition(second.with_fills([fill_b]).evolve(OrderStatus.SUBMITTING), fills=(fill_b,))
        )
        assert booked.order is not None
        again = booked.order.with_fills([fill_for(second, 1, 100, fill_id="b-1")])
        held = await _writer_held(journal, 0.2)
        changes = [
            journal.record(
                Transition(
                    first.with_fills([fill_a]).evolve(OrderStatus.SUBMITTING), fills=(fill_a,)
                )
            ),
            journal.heartbeat(datetime.now(UTC)),
            journal.record(  # the fill id is stored already: refused at the fill's INSERT
                Transition(
                    again.evolve(OrderStatus.SUBMITTED),
                    fills=(fill_for(second, 1, 100, fill_id="b-1"),),
                )
            ),
        ]
        pending = [asyncio.ensure_future(change) for change in changes]
        commits = journal.commits
        caplog.set_level("DEBUG", logger="orderlane.journal")
        await held
        moved, beat, refused = await asyncio.gather(*pending, return_exceptions=True)
        assert isinstance(refused, JournalError), refused
        assert "the journal refused a change" in str(refused)
        assert isinstance(moved, Committed)
        assert beat is None
        assert journal.commits == commits + 1 + 2  # the slow write, then the two alone
        assert "group commit of 3 changes failed" in caplog.text
        if journal.dialect == "sqlite":
            driver = journal._writer._conn.connection.driver_connection  # type: ignore[union-attr]
            assert not driver.in_transaction
        assert await journal.get_order(second.id) == booked.order
        assert [fill.fill_id for fill in await journal.fills(second.id)] == ["b-1"]
        [position] = await journal.positions()
        assert position.quantity == 3
        assert await journal.get_order(first.id) == moved.order


async def test_a_transition_whose_begin_finds_the_database_locked_fails_and_the_next_commits(
    sqlite_url: str,
) -> None:
    """Another process holding SQLite's write lock past the busy timeout fails the driver's
    BEGIN IMMEDIATE: a journal error, no transaction left open, and once the lock is gone the
    same change, a write through SQLAlchemy and reads all go through."""
    async with SqlJournal(sqlite_url, busy_timeout_ms=100) as journal:
        order = await insert(journal, new_order())
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(JournalError, match="locked"):
                await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
            other.execute("ROLLBACK")
        finally:
            other.close()
        driver = journal._writer._conn.connection.driver_connection  # type: ignore[union-attr]
        assert not driver.in_transaction
        moved = await journal.record(Transition(order.evolve(OrderStatus.SUBMITTING)))
        assert moved.order is not None
        assert moved.order.version == order.version + 1
        await journal.heartbeat(datetime.now(UTC))
        assert await journal.get_order(order.id) == moved.order


async def test_engines_starting_together_on_one_account_record_its_venue_once(
    database_url: str,
) -> None:
    """Each engine keeps its account's venue and time zone as it starts; engines starting at
    once on one account do not collide on it, the latest start's venue is kept whichever
    commits last, and a label no column can hold is made one."""
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    later = t0 + timedelta(hours=1)
    async with SqlJournal(database_url) as journal:
        await asyncio.gather(
            *(journal.store_venue("acct", "mock", "Asia/Seoul", t0) for _ in range(8)),
            journal.store_venue("other", "mock", "UTC", t0),
        )
        await journal.store_venue("acct", "kis-paper", "Asia/Seoul", later)
        await journal.store_venue("acct", "started-earlier", "UTC", t0)  # commits later
        await journal.store_venue("long", "v" * 300, "Z" * 65, t0)
        await journal.store_venue("wide", "v" * 300, "UTC", later)
        await journal.store_venue("odd", "mo\x00ck\x1b[2J", "UTC", later)
        await journal.store_venue("number", 42, "UTC", later)  # type: ignore[arg-type]
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(accounts.c.account_id, accounts.c.venue, accounts.c.timezone)
            ).all()
    finally:
        engine.dispose()
    assert sorted((row.account_id, row.venue, row.timezone) for row in rows) == [
        ("acct", "kis-paper", "Asia/Seoul"),
        ("number", "42", "UTC"),
        ("odd", "mo\\x00ck\\x1b[2J", "UTC"),
        ("other", "mock", "UTC"),
        ("wide", "v" * 64, "UTC"),
    ], "a zone name longer than any zone is not kept"


async def test_a_journal_without_store_venue_still_runs_an_engine(sqlite_url: str) -> None:
    """``store_venue`` is optional in the Journal protocol: a store written before it has
    none (and its ``start_session`` takes two arguments), and the engine starts on it."""

    class OlderJournal(SqlJournal):
        store_venue = None  # type: ignore[assignment]

        async def start_session(self, account_id: str, now: datetime) -> None:
            await super().start_session(account_id, now)

    async with Engine.open(
        "mock",
        journal=OlderJournal(sqlite_url),
        config=EngineConfig(account_id="acct", track=False, recover_on_start=False),
    ) as engine:
        order = await engine.execute(Signal("005930", "BUY", 1))
    assert order.status is OrderStatus.FILLED
    with JournalReader(sqlite_url) as reader, reader.view() as view:
        assert view.venue_timezone("acct") is None
