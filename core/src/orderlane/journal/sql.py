"""The SQLAlchemy journal: one writer thread, one connection, group commit.

Every database call runs on the journal's own thread with SQLAlchemy Core on a synchronous
driver (the standard library's sqlite3, or psycopg 3 for PostgreSQL). A caller's coroutine hands
its work over and is woken once, after the commit: one thread hop per transition. Transitions
that arrive while a commit is in progress are committed together in the next transaction (group
commit); if that shared transaction fails, each of its transitions is retried in a transaction of
its own so one bad change never takes others down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite

from orderlane.errors import ConfigurationError, JournalError
from orderlane.events import Event, OrderFilled, PositionChanged
from orderlane.journal import (
    Committed,
    ConcurrentUpdateError,
    InstrumentHeldError,
    JournalFileLostError,
    JournalRows,
    PnLSummary,
    SignalTakenError,
    Transition,
)
from orderlane.journal.fastpath import FastPath, execute
from orderlane.journal.migrate import upgrade
from orderlane.journal.rows import (
    event_from_row,
    fill_from_row,
    fill_row,
    order_from_row,
    order_row,
    pnl_summaries,
    position_from_row,
    position_row,
    read_rows,
)
from orderlane.journal.schema import engine_sessions, fills, order_events, orders, positions
from orderlane.journal.stats import CommitStats
from orderlane.model import TERMINAL_STATUSES, Fill, Order, OrderStatus
from orderlane.positions import Position

# The refusal errors live in :mod:`orderlane.journal`; they are importable from here too.
__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConcurrentUpdateError",
    "DatabaseAddress",
    "InstrumentHeldError",
    "SignalTakenError",
    "SqlJournal",
    "cannot_connect",
    "postgres_connect_args",
    "resolve_database_url",
    "safe_url",
]

T = TypeVar("T")
log = logging.getLogger("orderlane.journal")

DEFAULT_DATABASE_URL = "sqlite:///orderlane.db"
#: Seconds to wait for a PostgreSQL server to accept a session (libpq counts whole seconds).
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds one PostgreSQL statement may run (or wait for a lock) before the server cancels it.
DEFAULT_STATEMENT_TIMEOUT = 60.0
#: Most rows one read returns (the databases take a signed 64-bit row limit).
MAX_ROWS = 2**63 - 1
#: Events' payloads as stored (one encoder, not one per event).
_PAYLOAD = json.JSONEncoder(ensure_ascii=False)
_OPEN = [status.value for status in OrderStatus if status not in TERMINAL_STATUSES]


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


@attrs.define
class _JournalFile:
    """The SQLite file a journal opened, known by device and inode, and its write-ahead log."""

    path: str
    main: tuple[int, int] | None
    wal: tuple[int, int] | None = None

    @classmethod
    def opened(cls, path: str) -> _JournalFile:
        return cls(path, _file_id(path), _file_id(f"{path}-wal"))

    def problem(self) -> str | None:
        """What became of the file, if it is no longer the one opened; None while it is."""
        now = _file_id(self.path)
        if now is None:
            return "is gone (deleted or moved, or its directory was)"
        if now != self.main:
            return REPLACED
        wal = _file_id(f"{self.path}-wal")
        if self.wal is None:
            self.wal = wal  # SQLite makes the log at the first write; it stays while we are open
        elif wal != self.wal:
            return "lost its write-ahead log (the -wal file was deleted or replaced)"
        return None

    def set_log_aside(self, suffix: str) -> str | None:
        """Move this journal's write-ahead log away from a path where another file now stands
        (SQLite would apply its pages to that file, corrupting it); returns where it went."""
        wal = f"{self.path}-wal"
        if self.wal is None or _file_id(wal) != self.wal:
            return None
        aside = f"{wal}.{suffix}"
        os.replace(wal, aside)
        return aside


REPLACED = "was replaced by another file"


def resolve_database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``ORDERLANE_DATABASE_URL``, else ``./orderlane.db``.

    PostgreSQL URLs are driven by psycopg 3 from the journal's writer thread, whatever driver
    they name (``postgresql://``, ``postgresql+asyncpg://`` and ``postgresql+psycopg://`` all work).
    A SQLite journal is a file written by the standard library's sqlite3: an in-memory database
    (it would vanish with the process) and drivers that write another file format (an
    encrypting one such as pysqlcipher) are refused rather than quietly replaced.
    """
    chosen = url or os.environ.get("ORDERLANE_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        parsed = sa.engine.make_url(chosen)
    except sa.exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {error}") from None
    except ValueError:  # SQLAlchemy reads the port with int()
        raise ConfigurationError(
            "not a database URL: its port is not a number (postgresql://user@host:5432/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite_url(parsed)
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigurationError(
        f"unsupported database {backend!r}: orderlane's journal runs on SQLite or PostgreSQL"
    )


#: SQLite drivers that write the plain file format the standard library's sqlite3 writes.
_PLAIN_SQLITE_DRIVERS = frozenset({"sqlite", "pysqlite", "aiosqlite"})


def _check_sqlite_url(parsed: sa.engine.URL) -> None:
    driver = parsed.drivername.partition("+")[2] or "sqlite"
    if driver not in _PLAIN_SQLITE_DRIVERS:
        raise ConfigurationError(
            f"the SQLite driver {driver!r} is not supported: orderlane writes its journal as a "
            "plain SQLite file with the standard library's sqlite3, so the file would not be "
            "what that driver promises (an encrypting driver's file would not be encrypted). "
            "Use sqlite:///PATH, and protect the file with file permissions and disk encryption."
        )
    if parsed.host:
        raise ConfigurationError(
            f"{parsed.render_as_string(hide_password=True)!r} names a host, not a file: a SQLite "
            "URL has three slashes before a relative path (sqlite:///orderlane.db) and four "
            "before an absolute one (sqlite:////var/lib/orderlane/orderlane.db)"
        )
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parsed.query.get("mode") == "memory"
    ):
        raise ConfigurationError(
            "an in-memory SQLite database (sqlite:// or :memory:) loses the journal when the "
            "process exits, and with it every order the broker holds: name a file, for example "
            "sqlite:///orderlane.db"
        )


def postgres_connect_args(
    url: sa.engine.URL,
    *,
    connect_timeout: float,
    statement_timeout: float | None,
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """psycopg's connection arguments: the connect and statement timeouts (unless the URL sets
    them itself) and server ``options`` (``-c name=value``) added to the URL's own."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # libpq's unit is whole seconds, at least 2; without it psycopg waits 130 s.
        args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    given = url.query.get("options", "")
    settings = [given] if isinstance(given, str) and given else []
    if statement_timeout and "statement_timeout" not in " ".join(settings):
        settings.append(f"-c statement_timeout={max(1, round(statement_timeout * 1000))}")
    settings.extend(options)
    if settings:
        args["options"] = " ".join(settings)
    return args


def cannot_connect(
    url: str, error: BaseException, connect_timeout: float, *, doing: str = "open"
) -> str:
    """What to say when the database at ``url`` cannot be reached (to ``doing`` it)."""
    text = str(getattr(error, "orig", None) or error).strip()
    if "timeout" in text.lower() and sa.engine.make_url(url).get_backend_name() == "postgresql":
        parsed = sa.engine.make_url(url)
        wait = parsed.query.get("connect_timeout") or max(2, math.ceil(connect_timeout))
        return (
            f"cannot {doing} the journal database {safe_url(url)}: no answer within {wait} s "
            "(connect timeout). Check that a PostgreSQL server listens at that host and port "
            "and answers; to wait longer, add connect_timeout=SECONDS to the URL or set "
            "EngineConfig.database_connect_timeout"
        )
    return f"cannot {doing} the journal database {safe_url(url)}: {text}"


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch a SQLite database to WAL, waiting out other connections that switch it too.

    Two engines opening a fresh database at once both ask for WAL; SQLite answers the loser
    "database is locked" at once, without calling the busy handler, so the wait is done here.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        else:
            return


_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "sslpassword", "secret", "token"})


def safe_url(url: str | sa.engine.URL) -> str:
    """The URL for logs and errors: the password and secret-like query values masked."""
    parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(url)
    query = {
        key: "***" if key.lower() in _SECRET_QUERY_KEYS else value
        for key, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


class DatabaseAddress:
    """A database URL that keeps its password for connecting and never shows it: its repr and
    str are :func:`safe_url`'s, and it has no ``__dict__`` for ``vars()`` to list."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = sa.engine.make_url(url)

    @property
    def sa_url(self) -> sa.engine.URL:
        """The URL to connect with (password included): hand it to SQLAlchemy, never print it."""
        return self._url

    def __repr__(self) -> str:
        return safe_url(self._url)

    __str__ = __repr__


# The position's row, locked until the commit (a fill reads it once per group commit). The
# other statements of the write path run on the driver's cursor (orderlane.journal.fastpath).
_POSITION_KEY = (
    positions.c.account_id == sa.bindparam("k_account"),
    positions.c.symbol == sa.bindparam("k_symbol"),
)
_POSITION_FOR_UPDATE = sa.select(positions).where(*_POSITION_KEY).with_for_update()
#: A flat position unless one is there (built once: compiling it per instrument costs more).
_INSERT_FLAT_POSITION = {
    "postgresql": postgresql.insert(positions).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(positions).on_conflict_do_nothing(),
}


def _instrument_key(account_id: str, symbol: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock on one (account, symbol)."""
    digest = hashlib.blake2b(f"{account_id}\x1f{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@attrs.define
class _Work:
    fn: Callable[[sa.Connection], Any]
    write: bool
    future: asyncio.Future[Any]


class _Refused(Exception):
    """A transition refused before it wrote anything (its ``error`` goes to the caller); the
    rest of its group commit stands."""

    def __init__(self, error: JournalError) -> None:
        super().__init__(str(error))
        self.error = error


@attrs.define
class _Group:
    """What the transitions of one transaction share: the driver's cursor, the positions they
    moved (read once per transaction, the row stays locked until the commit), their events."""

    cursor: Any
    positions: dict[tuple[str, str], Position] = attrs.Factory(dict)
    events: list[tuple[Any, ...]] = attrs.Factory(list)


class SqlJournal:
    """The journal on SQLite (default) or PostgreSQL.

    ``synchronous`` is SQLite's durability: FULL (default) syncs every commit to disk before the
    broker hears of the order; NORMAL is faster but a power cut can lose the last commits.
    ``create``: make the journal (the SQLite file, the schema) if there is none; with False a
    missing journal is an error (commands that only read or settle orders never create one).
    ``connect_timeout`` and ``statement_timeout`` (seconds, PostgreSQL) bound how long opening
    the database and one statement may take, so a server that never answers is an error, not a
    hang; the URL's own ``connect_timeout`` / ``options`` take precedence.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 30_000,
        max_batch: int = 256,
        create: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigurationError("synchronous must be FULL, EXTRA or NORMAL")
        # The address holds the password and never shows it; ``url`` is what may be shown.
        self._address = DatabaseAddress(resolve_database_url(url))
        self._create = create
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._listener: Callable[[Sequence[Event]], None] | None = None
        #: Writer thread only: the statements of the write path, and the transaction's group.
        self._fast_path: FastPath | None = None
        self._group: _Group | None = None
        self.commits = 0  # transactions committed, for stats and tests of group commit
        self.commit_stats = CommitStats()  # their durations and sizes, for metrics
        #: This journal's engine session: every order it writes is marked with it, and its
        #: heartbeat tells other engines on the database that those orders are in good hands.
        self.engine_id = str(uuid.uuid4())
        #: Writer thread only: the SQLite file opened, checked around every write transaction,
        #: and the error every call gets once it is no longer the file at the journal's path.
        self._file: _JournalFile | None = None
        self._lost: JournalFileLostError | None = None

    def __repr__(self) -> str:
        return f"SqlJournal({self.url!r})"

    @property
    def url(self) -> str:
        """The journal's URL fit to show: the password and secret-like query values masked."""
        return repr(self._address)

    @property
    def dialect(self) -> str:
        return self._address.sa_url.get_backend_name()

    def set_listener(self, listener: Callable[[Sequence[Event]], None] | None) -> None:
        """``listener(events)`` runs on the event loop after each commit, in commit order."""
        self._listener = listener

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="orderlane-journal", daemon=True)
        self._thread.start()
        try:
            await self._submit(self._connect, write=False)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)

    async def __aenter__(self) -> SqlJournal:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _connect(self, _: Any) -> None:
        url = self._address.sa_url
        if url.get_backend_name() == "sqlite":
            assert url.database  # resolve_database_url refuses in-memory databases
            path = os.path.abspath(url.database)
            if not self._create and not os.path.isfile(path):
                raise JournalError(
                    f"there is no journal at {path}: check the path (--database-url or "
                    "ORDERLANE_DATABASE_URL); reading or settling orders never creates a journal"
                )
            directory = os.path.dirname(path)
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as error:  # a regular file on the path, /proc, no permission
                raise ConfigurationError(
                    f"cannot create the journal's directory {directory}: {error.strerror or error}"
                ) from None
            engine = sa.create_engine(url, poolclass=sa.pool.StaticPool)
            synchronous, busy = self._synchronous, self._busy_timeout_ms

            @sa_event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
                _enable_wal(cursor, busy / 1000)
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @sa_event.listens_for(engine, "begin")
            def _on_begin(conn: sa.Connection) -> None:
                # A deferred BEGIN that reads then writes fails with SQLITE_BUSY under WAL, so
                # writes take the lock up front; plain reads need no lock at all.
                # Straight to the driver: SQLAlchemy's execute costs more than SQLite's BEGIN.
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute("BEGIN" if conn.info.get("read_only") else "BEGIN IMMEDIATE")

        else:
            connect_args = postgres_connect_args(
                url,
                connect_timeout=self._connect_timeout,
                statement_timeout=self._statement_timeout,
            )
            try:
                engine = sa.create_engine(
                    url,
                    pool_size=1,
                    max_overflow=0,
                    pool_pre_ping=True,
                    connect_args=connect_args,
                )
            except ModuleNotFoundError:
                raise ConfigurationError(
                    "PostgreSQL needs psycopg 3: pip install 'orderlane[postgresql]'"
                ) from None
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as error:
            engine.dispose()
            raise ConfigurationError(
                cannot_connect(self.url, error, self._connect_timeout)
            ) from None
        self._engine, self._conn = engine, conn
        if url.get_backend_name() == "sqlite":
            assert url.database is not None
            self._file = _JournalFile.opened(os.path.abspath(url.database))
        if not self._create:
            with conn.begin():
                current = MigrationContext.configure(conn).get_current_revision()
            if current is None:
                raise JournalError(
                    f"{self.url} holds no orderlane journal: check --database-url "
                    "(or ORDERLANE_DATABASE_URL); reading or settling orders never creates one"
                )
        upgrade(conn)

    def _shutdown(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._engine is not None:
            self._engine.dispose()
        self._conn = self._engine = None

    # ---------------------------------------------------------------- writer thread

    def _submit(self, fn: Callable[[sa.Connection], T], *, write: bool) -> asyncio.Future[T]:
        if self._thread is None or self._loop is None:
            raise JournalError("the journal is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Work(fn, write, future))
        return future

    def _run(self) -> None:
        carry: _Work | None = None
        try:
            while True:
                item = carry if carry is not None else self._queue.get()
                carry = None
                if item is None:
                    return
                if not item.write:
                    self._run_read(item)
                    continue
                batch, stop = [item], False
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is not None and nxt.write:
                        batch.append(nxt)
                        continue
                    stop, carry = nxt is None, nxt
                    break
                self._run_writes(batch)
                if stop:
                    return
        finally:
            self._shutdown()

    def _run_read(self, item: _Work) -> None:
        try:
            if self._lost is not None:
                raise self._lost
            if self._conn is None:
                result = item.fn(None)  # type: ignore[arg-type]
            else:
                self._conn.info["read_only"] = True
                try:
                    with self._conn.begin():
                        result = item.fn(self._conn)
                finally:
                    self._conn.info["read_only"] = False
        except BaseException as error:  # delivered to the caller
            self._deliver([(item, None, error)])
        else:
            self._deliver([(item, result, None)])

    def _run_writes(self, batch: list[_Work]) -> None:
        if self._lost is not None:  # the file is checked after each commit (_durable)
            self._deliver([(item, None, self._lost) for item in batch])
            return
        assert self._conn is not None
        conn = self._conn
        if len(batch) > 1:
            try:
                began = time.perf_counter()
                with conn.begin():
                    group = self._group = _Group(_cursor(conn))
                    grouped = [self._run_in_group(conn, item) for item in batch]
                    self._fast(conn).write_events(group.cursor, group.events)
            except Exception:
                log.debug("group commit of %d changes failed; committing one by one", len(batch))
            else:
                self.commits += 1
                self.commit_stats.record(time.perf_counter() - began, len(batch))
                self._deliver(self._durable(grouped))
                return
            finally:
                self._group = None
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        for item in batch:
            try:
                began = time.perf_counter()
                with conn.begin():
                    group = self._group = _Group(_cursor(conn))
                    result = item.fn(conn)
                    self._fast(conn).write_events(group.cursor, group.events)
            except _Refused as refused:
                outcomes.append((item, None, refused.error))
            except Exception as error:
                outcomes.append((item, None, error))
            else:
                self.commits += 1
                self.commit_stats.record(time.perf_counter() - began, 1)
                outcomes.append((item, result, None))
            finally:
                self._group = None
        self._deliver(self._durable(outcomes))

    def _check_file(self) -> None:
        """Raise :class:`JournalFileLostError` if the SQLite file opened is no longer the one at
        the journal's path (a write to it would reach a file nobody can read any more)."""
        if self._lost is not None:
            raise self._lost
        if self._file is None:
            return
        problem = self._file.problem()
        if problem is None:
            return
        path = self._file.path
        self._lost = JournalFileLostError(
            f"the journal file {path} {problem} while this engine had it open: its writes no "
            "longer reach the journal at that path, so nothing more is sent or booked. Stop "
            f"this engine, restore the journal at {path} (or point --database-url / "
            "ORDERLANE_DATABASE_URL at where it is now) and start again: recovery then settles "
            "the orders it holds. Orders in flight when the file went may be at the broker "
            "without being in any journal: check them at the broker."
        )
        log.critical("%s", self._lost)
        self._abandon(replaced=problem == REPLACED)
        raise self._lost

    def _abandon(self, *, replaced: bool) -> None:
        """Let go of a lost file at once: close the connection (no later call uses it), and if
        another file now stands at the path, move this journal's write-ahead log out of its way
        so that nobody opening that file gets the lost journal's pages applied to it."""
        assert self._file is not None
        self._shutdown()
        if not replaced:
            return  # a moved journal keeps its log beside it, for when it is put back
        try:
            aside = self._file.set_log_aside(f"lost-{self.engine_id[:8]}")
        except OSError as error:  # pragma: no cover - a directory we cannot write to
            log.error("could not move the lost journal's write-ahead log aside: %s", error)
            return
        if aside is not None:
            log.warning(
                "moved the lost journal's write-ahead log to %s, so that it is never applied to "
                "the file now at %s (it holds the lost journal's last commits)",
                aside,
                self._file.path,
            )

    def _durable(
        self, outcomes: list[tuple[_Work, Any, BaseException | None]]
    ) -> list[tuple[_Work, Any, BaseException | None]]:
        """``outcomes`` as they stand once the file is checked again after the commit: a commit
        that reached a file no longer at the journal's path is not durable, and fails."""
        try:
            self._check_file()
        except JournalFileLostError as lost:
            return [(item, None, lost) for item, _result, _error in outcomes]
        return outcomes

    @staticmethod
    def _run_in_group(conn: sa.Connection, item: _Work) -> tuple[_Work, Any, BaseException | None]:
        # A refusal wrote nothing: the group goes on. Any other failure redoes it one by one.
        try:
            return item, item.fn(conn), None
        except _Refused as refused:
            return item, None, refused.error

    def _fast(self, conn: sa.Connection) -> FastPath:
        if self._fast_path is None or self._fast_path.dialect is not conn.dialect:
            self._fast_path = FastPath(conn.dialect)
        return self._fast_path

    def _deliver(self, outcomes: list[tuple[_Work, Any, BaseException | None]]) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._resolve, outcomes)

    def _resolve(self, outcomes: list[tuple[_Work, Any, BaseException | None]]) -> None:
        for item, result, error in outcomes:
            if error is None and isinstance(result, Committed) and self._listener is not None:
                try:
                    self._listener(result.events)
                except Exception:  # pragma: no cover - the bus only queues
                    log.exception("event listener failed")
            if item.future.done():
                continue
            if error is not None:
                item.future.set_exception(_translate(error))
            else:
                item.future.set_result(result)

    # ---------------------------------------------------------------- writes

    async def record(self, transition: Transition) -> Committed:
        """Commit ``transition``; returns once it is durable."""
        return await self._submit(lambda conn: self._apply(conn, transition), write=True)

    def _apply(self, conn: sa.Connection, transition: Transition) -> Committed:
        group = self._group
        assert group is not None
        fast = self._fast(conn)
        cursor = group.cursor
        now_order = transition.order
        stored: Order | None = None
        if now_order is not None:
            if conn.dialect.name == "postgresql" and (
                transition.hold_check or now_order.status is OrderStatus.UNKNOWN
            ):
                # Serialize "may I send?" with "this instrument is now held" across processes:
                # without it two engines could both pass the hold check while the other goes
                # UNKNOWN. (SQLite needs nothing: BEGIN IMMEDIATE already serializes writes.)
                lock = _instrument_key(now_order.account_id, now_order.symbol)
                execute(cursor, fast.lock_instrument, (lock,))
            stored = self._write_order(fast, cursor, transition, now_order)
        events: list[Event] = list(transition.events)
        stored_fills: list[Fill] = []
        moved: list[Position] = []
        for fill in transition.fills:
            key = (fill.account_id, fill.symbol)
            position = group.positions.get(key) or self._position_for_update(conn, *key)
            change = position.apply(fill, stored.symbol_name if stored else "")
            after = attrs.evolve(change.position, version=position.version + 1)
            booked = attrs.evolve(fill, realized_pnl=change.realized_pnl)
            fast.insert_fill(cursor, fill_row(booked))
            if not fast.update_position(cursor, position_row(after), *key, position.version):
                # pragma: no cover - the row is locked since it was read
                raise ConcurrentUpdateError(
                    f"position {fill.account_id}/{fill.symbol} changed since version "
                    f"{position.version}"
                )
            group.positions[key] = after
            stored_fills.append(booked)
            moved.append(after)
            if stored is not None:
                events.append(OrderFilled(order=stored, fill=booked))
            events.append(
                PositionChanged(position=after, fill=booked, realized_pnl=change.realized_pnl)
            )
        if events:
            recorded_at = stored.updated_at if stored is not None else _now()
            group.events.extend(
                fast.event_row(ev.order_id, ev.type, _PAYLOAD.encode(ev.payload()), recorded_at)
                for ev in events
            )
        return Committed(
            order=stored, fills=tuple(stored_fills), positions=tuple(moved), events=tuple(events)
        )

    def _write_order(
        self, fast: FastPath, cursor: Any, transition: Transition, order: Order
    ) -> Order:
        """Insert or update the order: its first write, so a refusal leaves nothing behind."""
        hold = (order.account_id, order.symbol) if transition.hold_check else None
        if transition.new:
            if hold is not None:
                blocker = fast.held_by(cursor, *hold, order.id)
                if blocker is not None:
                    raise _Refused(_held(order, blocker))
            stored = attrs.evolve(order, version=1)
            if not fast.insert_order(cursor, {**order_row(stored), "engine_id": self.engine_id}):
                raise _Refused(SignalTakenError("an order with this signal id is already stored"))
            return stored
        stored = attrs.evolve(order, version=order.version + 1)
        row = {**order_row(stored), "engine_id": self.engine_id}
        if fast.update_order(cursor, row, order.id, order.version, hold):
            return stored
        blocker = None if hold is None else fast.held_by(cursor, *hold, order.id)
        if blocker is not None:
            raise _Refused(_held(order, blocker))
        raise _Refused(
            ConcurrentUpdateError(f"order {order.id} changed since version {order.version}")
        )

    def _position_for_update(self, conn: sa.Connection, account_id: str, symbol: str) -> Position:
        """The position's row, locked until the commit; a flat one is created if there is none.

        Creating it with "insert unless present" before locking it means two processes booking
        the first fills of one instrument at once (PostgreSQL) queue on the row instead of both
        inserting it and one failing with a duplicate key, its whole transition lost.
        """
        keys = {"k_account": account_id, "k_symbol": symbol}
        row = conn.execute(_POSITION_FOR_UPDATE, keys).first()
        if row is None:
            flat = Position(account_id=account_id, symbol=symbol)
            conn.execute(_INSERT_FLAT_POSITION[conn.dialect.name], position_row(flat))
            row = conn.execute(_POSITION_FOR_UPDATE, keys).one()
        return position_from_row(row)

    # ---------------------------------------------------------------- reads

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self._submit(fn, write=False)

    async def get_order(self, order_id: str) -> Order | None:
        def read(conn: sa.Connection) -> Order | None:
            row = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
            return None if row is None else order_from_row(row)

        return await self._read(read)

    async def find_by_signal(self, account_id: str, signal_id: str) -> Order | None:
        def read(conn: sa.Connection) -> Order | None:
            row = conn.execute(
                sa.select(orders).where(
                    orders.c.account_id == account_id, orders.c.signal_id == signal_id
                )
            ).first()
            return None if row is None else order_from_row(row)

        return await self._read(read)

    async def open_orders(self, account_id: str | None = None) -> JournalRows[Order]:
        def read(conn: sa.Connection) -> JournalRows[Order]:
            query = sa.select(orders).where(orders.c.status.in_(_OPEN))
            if account_id is not None:
                query = query.where(orders.c.account_id == account_id)
            return read_rows(conn.execute(query.order_by(orders.c.created_at)), order_from_row)

        return await self._read(read)

    # ---------------------------------------------------------------- engine sessions

    async def start_session(self, account_id: str, now: datetime) -> None:
        """Announce this engine on the database (its orders are marked with ``engine_id``)."""

        def write(conn: sa.Connection) -> None:
            conn.execute(
                engine_sessions.insert(),
                {
                    "engine_id": self.engine_id,
                    "account_id": account_id,
                    "started_at": now,
                    "heartbeat_at": now,
                },
            )

        await self._submit(write, write=True)

    async def heartbeat(self, now: datetime) -> None:
        def write(conn: sa.Connection) -> None:
            conn.execute(
                engine_sessions.update()
                .where(engine_sessions.c.engine_id == self.engine_id)
                .values(heartbeat_at=now)
            )

        await self._submit(write, write=True)

    async def end_session(self) -> None:
        """This engine stops: its orders are no longer anybody's in flight."""

        def write(conn: sa.Connection) -> None:
            conn.execute(
                engine_sessions.delete().where(engine_sessions.c.engine_id == self.engine_id)
            )

        await self._submit(write, write=True)

    async def forget_sessions(self, engine_ids: Sequence[str]) -> None:
        """Remove sessions whose heartbeat lapsed (their engines are gone)."""

        def write(conn: sa.Connection) -> None:
            conn.execute(
                engine_sessions.delete().where(engine_sessions.c.engine_id.in_(engine_ids))
            )

        if engine_ids:
            await self._submit(write, write=True)

    async def other_sessions(self, account_id: str) -> dict[str, datetime]:
        """Other engine sessions on this account: engine id -> last heartbeat."""

        def read(conn: sa.Connection) -> dict[str, datetime]:
            query = sa.select(engine_sessions.c.engine_id, engine_sessions.c.heartbeat_at).where(
                engine_sessions.c.account_id == account_id,
                engine_sessions.c.engine_id != self.engine_id,
            )
            return {row.engine_id: row.heartbeat_at for row in conn.execute(query)}

        return await self._read(read)

    async def order_owners(self, order_ids: Sequence[str]) -> dict[str, str | None]:
        """The engine session that last wrote each order."""

        def read(conn: sa.Connection) -> dict[str, str | None]:
            query = sa.select(orders.c.id, orders.c.engine_id).where(orders.c.id.in_(order_ids))
            return {row.id: row.engine_id for row in conn.execute(query)}

        return await self._read(read) if order_ids else {}

    async def owned_broker_ids(self, account_id: str, symbol: str) -> frozenset[str]:
        """Broker order ids that journal orders for (account, symbol) already own."""

        def read(conn: sa.Connection) -> frozenset[str]:
            query = sa.select(orders.c.broker_order_id).where(
                orders.c.account_id == account_id,
                orders.c.symbol == symbol,
                orders.c.broker_order_id.is_not(None),
            )
            return frozenset(row[0] for row in conn.execute(query))

        return await self._read(read)

    async def unresolved_siblings(self, order: Order) -> list[str]:
        """Ids of the other orders for ``order``'s account and symbol that may hold a broker
        order no journal order names yet: in flight (SUBMITTING) or UNKNOWN without a broker
        id, whichever engine sends them."""

        def read(conn: sa.Connection) -> list[str]:
            query = (
                sa.select(orders.c.id)
                .where(
                    orders.c.account_id == order.account_id,
                    orders.c.symbol == order.symbol,
                    orders.c.id != order.id,
                    orders.c.broker_order_id.is_(None),
                    orders.c.status.in_([OrderStatus.SUBMITTING.value, OrderStatus.UNKNOWN.value]),
                )
                .order_by(orders.c.created_at)
            )
            return [row[0] for row in conn.execute(query)]

        return await self._read(read)

    async def list_orders(self, limit: int = 100) -> JournalRows[Order]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ConfigurationError(f"limit must be a whole number from 1 to {MAX_ROWS:,}")

        def read(conn: sa.Connection) -> JournalRows[Order]:
            query = sa.select(orders).order_by(orders.c.created_at.desc(), orders.c.id).limit(limit)
            return read_rows(conn.execute(query), order_from_row)

        return await self._read(read)

    async def fills(self, order_id: str) -> JournalRows[Fill]:
        def read(conn: sa.Connection) -> JournalRows[Fill]:
            query = (
                sa.select(fills).where(fills.c.order_id == order_id).order_by(fills.c.executed_at)
            )
            return read_rows(conn.execute(query), fill_from_row)

        return await self._read(read)

    async def positions(self, account_id: str | None = None) -> JournalRows[Position]:
        def read(conn: sa.Connection) -> JournalRows[Position]:
            query = sa.select(positions).order_by(positions.c.account_id, positions.c.symbol)
            if account_id is not None:
                query = query.where(positions.c.account_id == account_id)
            return read_rows(conn.execute(query), position_from_row)

        return await self._read(read)

    async def events(self, order_id: str | None = None) -> JournalRows[tuple[str, dict[str, Any]]]:
        def read(conn: sa.Connection) -> JournalRows[tuple[str, dict[str, Any]]]:
            query = sa.select(order_events).order_by(order_events.c.seq)
            if order_id is not None:
                query = query.where(order_events.c.order_id == order_id)
            return read_rows(conn.execute(query), event_from_row)

        return await self._read(read)

    async def realized_pnl(self, by: str = "session") -> JournalRows[PnLSummary]:
        """Realized P&L summed per ``session`` (the closing order's) or per trading ``day``.

        A fill row that cannot be read is left out of the sums and listed in ``unreadable``.
        """
        if by not in {"session", "day"}:
            raise ConfigurationError(f"realized_pnl takes by='session' or by='day', got {by!r}")

        def read(conn: sa.Connection) -> JournalRows[PnLSummary]:
            return pnl_summaries(read_rows(conn.execute(sa.select(fills)), fill_from_row), by)

        return await self._read(read)


def _cursor(conn: sa.Connection) -> Any:
    """The driver's own cursor on ``conn`` (in its current transaction)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.cursor()


def _held(order: Order, blocker: str) -> InstrumentHeldError:
    return InstrumentHeldError(
        f"{order.symbol} is held by UNKNOWN order {blocker}", held_by=blocker
    )


def _now() -> Any:
    from orderlane.model import utc_now

    return utc_now()


def _hint(error: BaseException | None) -> str:
    """What to do about a database failure, where the cause is a known fault."""
    state = getattr(error, "sqlstate", None)
    text = str(error).lower()
    if state == "57014" and "statement timeout" in text:
        return (
            " (a statement ran or waited for a lock longer than the statement timeout: look for "
            "another session holding locks on the journal's tables; to wait longer, set "
            "EngineConfig.database_statement_timeout)"
        )
    if state in ("53100", "53200") or "disk is full" in text or "no space left" in text:
        return (
            " (the disk is full: free space where the journal lives; a running engine books "
            "what it holds once the journal accepts writes again)"
        )
    if state == "25006" or "readonly" in text or "read-only" in text:
        return " (the journal is read-only: give orderlane write access to it)"
    return ""


def _translate(error: BaseException) -> BaseException:
    if isinstance(error, sa.exc.IntegrityError):
        message = str(error.orig).lower()
        if "signal" in message or "uq_orders_account_signal" in message:
            return SignalTakenError("an order with this signal id is already stored")
        return JournalError(f"the journal refused a change: {error.orig}")
    if isinstance(error, sa.exc.DBAPIError):  # operational, programming, data errors alike
        hint = _hint(error.orig)
        return JournalError(f"the journal database failed: {error.orig}{hint}")
    if isinstance(error, sa.exc.StatementError) and isinstance(error.orig, (TypeError, ValueError)):
        # A value the column types refuse (a float as money, a naive datetime): the caller's
        # mistake, reported as itself rather than wrapped in the SQL statement that carried it.
        return error.orig
    return error
