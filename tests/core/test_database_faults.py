"""Database faults: a journal that is not there, a server that never answers, a lock held for
too long. Each is an error that says what happened and what to do, and nothing is sent on it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_send_edges import until
from typer.testing import CliRunner

from orderlane import Engine, EngineConfig, FakeClock, OrderStatus, Signal
from orderlane.cli import app
from orderlane.errors import ConfigurationError, JournalError
from orderlane.events import RetryScheduled
from orderlane.journal import JournalFileLostError, Transition
from orderlane.journal.reader import JournalReader
from orderlane.retry import Operation
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)
#: Real seconds a test gives an operation that must end on its own (a hang fails the test).
PATIENCE = 60.0


def open_engine(url: str, venue: MockVenue, **config: object) -> Engine:
    return Engine(
        "mock",
        adapter_options={"venue": venue},
        database_url=url,
        clock=FakeClock(),
        config=EngineConfig(load_entry_point_plugins=False, **config),  # type: ignore[arg-type]
    )


def tables(url: str) -> list[str]:
    engine = sa.create_engine(sa.engine.make_url(url).set(drivername="postgresql+psycopg"))
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


# ------------------------------------------------------------------ a journal that is not there


async def test_an_engine_told_not_to_create_a_journal_refuses_a_missing_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "typo" / "journal.db"
    venue = MockVenue()
    engine = open_engine(f"sqlite:///{path}", venue, create_journal=False)
    with pytest.raises(JournalError, match=f"there is no journal at {path}"):
        await engine.start()
    assert not (tmp_path / "typo").exists()

    # A file that is there but holds no journal is refused too, and stays as it was.
    path.parent.mkdir()
    sqlite_file = sa.create_engine(f"sqlite:///{path}")
    with sqlite_file.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (text TEXT)"))
    sqlite_file.dispose()
    engine = open_engine(f"sqlite:///{path}", venue, create_journal=False)
    with pytest.raises(JournalError, match="holds no orderlane journal"):
        await engine.start()
    with sa.create_engine(f"sqlite:///{path}").connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["notes"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlcipher:///x.db"])
def test_a_journal_that_would_vanish_or_not_be_encrypted_is_refused_by_the_library(
    url: str,
) -> None:
    with pytest.raises(ConfigurationError, match=r"in-memory|pysqlcipher"):
        Engine("mock", database_url=url)
    with pytest.raises(ConfigurationError, match=r"in-memory|pysqlcipher"):
        JournalReader(url)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "command",
    [
        ("recover",),
        ("resolve", "00000000-0000-0000-0000-000000000000", "--absent"),
        ("orders",),
        ("positions",),
    ],
)
def test_settling_or_reading_an_empty_postgresql_database_is_an_error_and_creates_nothing(
    fresh_postgres_url: str, command: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(app, [*command, "--database-url", fresh_postgres_url])
    assert result.exit_code == 1, result.output
    assert "holds no orderlane journal" in " ".join(result.stderr.split())
    assert tables(fresh_postgres_url) == []


# ------------------------------------------------------------------ a server that never answers


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (the kernel completes the handshake)
    and never answers a byte."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


async def test_a_postgresql_server_that_never_answers_fails_the_start_instead_of_hanging() -> None:
    venue = MockVenue()
    with silent_server() as port:
        url = f"postgresql://orderlane:secret@127.0.0.1:{port}/journal"
        engine = open_engine(url, venue, database_connect_timeout=2)
        with pytest.raises(ConfigurationError) as refused:
            await asyncio.wait_for(engine.start(), PATIENCE)
    message = str(refused.value)
    assert f"127.0.0.1:{port}" in message
    assert "no answer within 2 s (connect timeout)" in message
    assert "connect_timeout=SECONDS" in message
    assert "secret" not in message
    assert venue.requests == []


@pytest.mark.parametrize("command", ["recover", "orders"])  # through an engine, the reader
def test_the_cli_on_a_server_that_never_answers_exits_with_a_message(command: str) -> None:
    # (Before connect timeouts, psycopg waited 130 s for each attempt.)
    with silent_server() as port:
        url = f"postgresql://orderlane@127.0.0.1:{port}/journal?connect_timeout=2"
        result = CliRunner().invoke(app, [command, "--database-url", url])
    assert result.exit_code == 1, result.output
    assert "no answer within 2 s" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


@pytest.mark.postgres
async def test_a_write_blocked_by_another_sessions_lock_fails_after_the_statement_timeout(
    fresh_postgres_url: str,
) -> None:
    venue = MockVenue()
    engine = open_engine(fresh_postgres_url, venue, database_statement_timeout=1)
    await engine.start()
    other = sa.create_engine(sa.engine.make_url(fresh_postgres_url))
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(sa.text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(JournalError) as refused:
                await asyncio.wait_for(engine.execute(BUY), PATIENCE)
        message = str(refused.value)
        assert "statement timeout" in message
        assert "EngineConfig.database_statement_timeout" in message
        assert venue.places == []  # nothing was sent on an order that was never stored
        # The lock is gone: the journal takes writes again.
        assert (await engine.execute(BUY)).status.value == "FILLED"
    finally:
        other.dispose()
        await engine.close()


# ------------------------------------------------------------------ the journal file goes


async def make_another_journal(path: Path) -> None:
    engine = open_engine(f"sqlite:///{path}", MockVenue())
    await engine.start()
    try:
        await engine.execute(Signal("000660", "BUY", 1))
    finally:
        await engine.close()


@pytest.mark.parametrize("fault", ["directory deleted", "file moved", "file replaced"])
async def test_a_journal_file_that_goes_mid_run_stops_every_send_loudly(
    tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "journal"
    path = directory / "journal.db"
    venue = MockVenue()
    engine = open_engine(f"sqlite:///{path}", venue)
    await engine.start()
    try:
        assert (await engine.execute(BUY)).status.value == "FILLED"
        if fault == "directory deleted":
            shutil.rmtree(directory)
        elif fault == "file moved":
            path.rename(tmp_path / "elsewhere.db")
        else:
            await make_another_journal(tmp_path / "other.db")
            os.replace(tmp_path / "other.db", path)
        for _ in range(3):  # every later order is refused, not only the first
            with pytest.raises(JournalError, match="while this engine had it open") as lost:
                await engine.execute(BUY)
            message = str(lost.value)
            assert str(path) in message
            assert "nothing more is sent" in message
            assert "check them at the broker" in message
        assert len(venue.places) == 1  # the venue's record: nothing was sent after the fault
        assert isinstance(lost.value, JournalFileLostError)
        with pytest.raises(JournalFileLostError):
            await engine.orders()  # what the lost file says is no journal's any more
        assert any(
            record.levelname == "CRITICAL" and str(path) in record.getMessage()
            for record in caplog.records
        )
    finally:
        await engine.close()
    if fault == "file replaced":
        # The file now at the path is the other journal, untouched by this engine: the lost
        # journal's write-ahead log was moved out of its way (SQLite would apply it to it).
        assert [p.name for p in directory.glob("journal.db-wal.lost-*")] != []
        reopened = open_engine(f"sqlite:///{path}", MockVenue())
        await reopened.start()
        try:
            assert [order.symbol for order in await reopened.orders()] == ["000660"]
        finally:
            await reopened.close()


# ------------------------------------------------------------------ the journal refuses writes


async def _sqlite(engine: Engine, statement: str) -> object:
    """Run a statement on the journal's own SQLite connection (a PRAGMA is per connection)."""
    journal = engine.journal  # (the limit lives on that connection only)
    return await journal._submit(lambda conn: conn.exec_driver_sql(statement).scalar(), write=False)


async def _fill(engine: Engine, size: int) -> JournalError:
    """Record events of ``size`` until the journal refuses one; returns its error."""
    filler = RetryScheduled(None, Operation.STATUS, 1, 0.0, "x" * size)
    for _ in range(10_000):
        try:
            await engine.journal.record(Transition(order=None, events=(filler,)))
        except JournalError as full:
            return full
    raise AssertionError("the journal never filled up")  # pragma: no cover


@contextlib.asynccontextmanager
async def journal_refusing_writes(engine: Engine, url: str) -> AsyncIterator[None]:
    """The journal refuses every change until the block ends, as it does when the disk is full.

    SQLite: the database may not grow (``max_page_count``, SQLITE_FULL: "database or disk is
    full", what a full disk gives) and the room left in its pages is used up by the journal's
    own event rows. PostgreSQL: another session holds a lock that every change needs, and each
    change fails after the statement timeout. Reads go on in both.
    """
    if url.startswith("sqlite"):
        pages = await _sqlite(engine, "PRAGMA page_count")
        await _sqlite(engine, f"PRAGMA max_page_count = {pages}")
        for size in (2000, 200, 20, 0):  # fill what room is left, down to the last bytes
            full = await _fill(engine, size)
            assert "database or disk is full" in str(full)
        try:
            yield
        finally:
            with contextlib.suppress(JournalError):  # (unless the engine closed meanwhile)
                await _sqlite(engine, "PRAGMA max_page_count = 1073741823")
        return
    other = sa.create_engine(sa.engine.make_url(url))
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(sa.text("LOCK TABLE order_events IN EXCLUSIVE MODE"))
            yield
    finally:
        other.dispose()


async def test_orders_filled_while_the_journal_refused_writes_are_booked_once_it_accepts_them(
    database_url: str,
) -> None:
    venue = MockVenue()
    engine = open_engine(database_url, venue, database_statement_timeout=0.5)
    await engine.start()
    try:
        await engine.execute(BUY)
        symbols = ["000660", "035420", "051910"]
        for _ in symbols:
            venue.delay_answer_next()
        sends = [asyncio.ensure_future(engine.execute(Signal(s, "BUY", 3))) for s in symbols]
        await until(lambda: len(venue.places) == 1 + len(symbols))  # all SUBMITTING, all sent
        async with journal_refusing_writes(engine, database_url):
            venue.release_answers()  # the venue filled them all; the answers come back now
            returned = await asyncio.wait_for(asyncio.gather(*sends), PATIENCE)
            # Each caller gets its order as last stored, never an error it might resend on.
            assert [order.status for order in returned] == [OrderStatus.SUBMITTING] * 3
            assert sorted(engine.tracker.stranded) == sorted(order.id for order in returned)
            await engine.tracker.poll_once()  # still refused: nothing changes, nothing is lost
            assert sorted(engine.tracker.stranded) == sorted(order.id for order in returned)
            # A new order cannot be stored, so it is refused and never sent.
            with pytest.raises(JournalError):
                await asyncio.wait_for(engine.execute(Signal("005380", "BUY", 1)), PATIENCE)
            assert len(venue.places) == 4
        await engine.tracker.poll_once()  # the journal takes writes again: no restart needed
        assert engine.tracker.stranded == []
        for order, symbol in zip(returned, symbols, strict=True):
            stored = await engine.get_order(order.id)
            assert stored is not None
            assert (stored.status, stored.filled_quantity) == (OrderStatus.FILLED, 3)
            assert (await engine.position(symbol)).quantity == 3
        assert len(venue.places) == 4  # nothing was sent twice
    finally:
        await engine.close()


async def test_an_engine_closed_before_the_journal_took_writes_again_leaves_them_to_recovery(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    venue = MockVenue()
    engine = open_engine(database_url, venue, database_statement_timeout=0.5)
    await engine.start()
    await engine.execute(BUY)
    venue.delay_answer_next()
    send = asyncio.ensure_future(engine.execute(Signal("000660", "BUY", 3)))
    await until(lambda: len(venue.places) == 2)
    async with journal_refusing_writes(engine, database_url):
        venue.release_answers()
        order = await asyncio.wait_for(send, PATIENCE)
        assert order.status is OrderStatus.SUBMITTING
        await engine.close()  # a last try fails too: the log names the order
    assert any(
        order.id in record.getMessage() and "orderlane recover" in record.getMessage()
        for record in caplog.records
    )
    # The next engine on the journal finds the order at the broker and books it.
    restarted = open_engine(database_url, venue)
    await restarted.start()
    try:
        stored = await restarted.get_order(order.id)
        assert stored is not None
        assert (stored.status, stored.filled_quantity) == (OrderStatus.FILLED, 3)
        assert len(venue.places) == 2
    finally:
        await restarted.close()
