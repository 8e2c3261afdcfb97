"""The SQLAlchemy journal (SQLite or PostgreSQL): opening the database, and the reads.

The journal is made of three parts: :mod:`orderlane.journal.writer` runs every database call on
one thread with one connection and commits writes in groups; :mod:`orderlane.journal.transitions`
maps a transition onto its rows; :mod:`orderlane.journal.url` resolves, checks and masks the
database URL. The names of those modules that users import are importable from here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite

from orderlane.contract import LookupWindow
from orderlane.errors import ConfigurationError, JournalError
from orderlane.events import Event
from orderlane.journal import (
    Committed,
    ConcurrentUpdateError,
    InstrumentHeldError,
    JournalRows,
    PnLSummary,
    SignalTakenError,
    Transition,
)
from orderlane.journal.migrate import upgrade
from orderlane.journal.rows import (
    event_from_row,
    fill_from_row,
    order_from_row,
    pnl_summaries,
    position_from_row,
    read_rows,
)
from orderlane.journal.schema import (
    accounts,
    engine_sessions,
    fills,
    order_events,
    orders,
    positions,
)
from orderlane.journal.stats import CommitStats
from orderlane.journal.transitions import apply_transition
from orderlane.journal.url import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DATABASE_URL,
    DEFAULT_STATEMENT_TIMEOUT,
    DatabaseAddress,
    cannot_connect,
    postgres_connect_args,
    resolve_database_url,
    safe_url,
)
from orderlane.journal.writer import Connected, JournalFile, Writer
from orderlane.model import TERMINAL_STATUSES, Fill, Order, OrderStatus, printable
from orderlane.positions import Position

# The refusal errors live in :mod:`orderlane.journal`; they are importable from here too.
__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_STATEMENT_TIMEOUT",
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

#: Most rows one read returns (the databases take a signed 64-bit row limit).
MAX_ROWS = 2**63 - 1
_OPEN = [status.value for status in OrderStatus if status not in TERMINAL_STATUSES]


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
        #: This journal's engine session: every order it writes is marked with it, and its
        #: heartbeat tells other engines on the database that those orders are in good hands.
        self.engine_id = str(uuid.uuid4())
        self._writer = Writer(max_batch=max_batch, aside_suffix=f"lost-{self.engine_id[:8]}")
        #: The account of this engine's session, once started (its heartbeat may re-announce it).
        self._session_account: str | None = None

    def __repr__(self) -> str:
        return f"SqlJournal({self.url!r})"

    @property
    def url(self) -> str:
        """The journal's URL fit to show: the password and secret-like query values masked."""
        return repr(self._address)

    @property
    def dialect(self) -> str:
        return self._address.sa_url.get_backend_name()

    @property
    def commits(self) -> int:
        """Transactions committed (a group commit counts once), for stats."""
        return self._writer.commits

    @property
    def commit_stats(self) -> CommitStats:
        """The commits' durations and sizes, for metrics."""
        return self._writer.commit_stats

    def set_listener(self, listener: Callable[[Sequence[Event]], None] | None) -> None:
        """``listener(events)`` runs on the event loop after each commit, in commit order."""
        self._writer.listener = listener

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        await self._writer.open(self._connect, self._prepare)

    async def close(self) -> None:
        await self._writer.close()

    async def __aenter__(self) -> SqlJournal:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _connect(self) -> Connected:
        """Open the database (on the writer thread)."""
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
        if url.get_backend_name() != "sqlite":
            return Connected(engine, conn)
        assert url.database is not None
        return Connected(engine, conn, JournalFile.opened(os.path.abspath(url.database)))

    def _prepare(self, conn: sa.Connection) -> None:
        """Check that there is a journal (unless it may be created) and migrate it."""
        if not self._create:
            with conn.begin():
                current = MigrationContext.configure(conn).get_current_revision()
            if current is None:
                raise JournalError(
                    f"{self.url} holds no orderlane journal: check --database-url "
                    "(or ORDERLANE_DATABASE_URL); reading or settling orders never creates one"
                )
        upgrade(conn)

    # ---------------------------------------------------------------- writes

    def _submit(self, fn: Callable[[sa.Connection], T], *, write: bool) -> asyncio.Future[T]:
        return self._writer.submit(fn, write=write)

    async def record(self, transition: Transition) -> Committed:
        """Commit ``transition``; returns once it is durable."""
        writer, engine_id = self._writer, self.engine_id

        def write(conn: sa.Connection) -> Committed:
            assert writer.group is not None
            return apply_transition(conn, writer.group, transition, engine_id)

        return await self._writer.submit(write, write=True, driver_only=True)

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
        self._session_account = account_id

    async def store_venue(self, account_id: str, venue: str, timezone: str, now: datetime) -> None:
        """Keep ``venue`` (the adapter's name) and ``timezone`` (its IANA zone) as the venue of
        ``account_id``, replacing what an engine that started earlier kept."""

        def write(conn: sa.Connection) -> None:
            _record_venue(conn, account_id, venue, timezone, now)

        await self._submit(write, write=True)

    async def heartbeat(self, now: datetime) -> None:
        """This engine is alive at ``now``; a session another engine's recovery forgot (this
        engine's heartbeat had lapsed) is announced again, and the log says so."""
        account_id = self._session_account

        def write(conn: sa.Connection) -> bool:
            updated = conn.execute(
                engine_sessions.update()
                .where(engine_sessions.c.engine_id == self.engine_id)
                .values(heartbeat_at=now)
            )
            if updated.rowcount or account_id is None:
                return False
            conn.execute(
                engine_sessions.insert(),
                {
                    "engine_id": self.engine_id,
                    "account_id": account_id,
                    "started_at": now,
                    "heartbeat_at": now,
                },
            )
            return True

        if await self._submit(write, write=True):
            log.warning(
                "this engine was taken for dead by another engine on the journal (its heartbeat "
                "lapsed for longer than EngineConfig.engine_lease), which may have settled "
                "orders this engine was sending; its session is announced again. If the "
                "machine is that busy, raise engine_lease"
            )

    async def store_limiter(self, figures: Mapping[str, Any]) -> None:
        """Store the limiter's figures with this engine's session (JSON), for displays."""
        text = json.dumps(dict(figures), ensure_ascii=False, default=str, sort_keys=True)

        def write(conn: sa.Connection) -> None:
            conn.execute(
                engine_sessions.update()
                .where(engine_sessions.c.engine_id == self.engine_id)
                .values(limiter=text)
            )

        await self._submit(write, write=True)

    async def end_session(self) -> None:
        """This engine stops: its orders are no longer anybody's in flight."""

        self._session_account = None

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

    async def owned_broker_orders(
        self, account_id: str, symbol: str
    ) -> dict[str, tuple[LookupWindow, ...]]:
        """The broker order ids journal orders for (account, symbol) own, each with when each
        order naming it was sent (``submitted_at``, else ``created_at``: an order sent again
        after the broker confirmed it never got it counts from that send). An id with an order
        whose stored times do not read as times is left out (owned at a time nobody can say,
        so on every day), and logged."""

        def read(conn: sa.Connection) -> dict[str, tuple[LookupWindow, ...]]:
            query = sa.select(
                orders.c.id, orders.c.broker_order_id, orders.c.submitted_at, orders.c.created_at
            ).where(
                orders.c.account_id == account_id,
                orders.c.symbol == symbol,
                orders.c.broker_order_id.is_not(None),
            )
            owned: dict[str, list[LookupWindow]] = {}
            unknown: set[str] = set()
            for order_id, broker_id, submitted_at, created_at in conn.execute(query):
                sent = submitted_at or created_at
                if not isinstance(sent, datetime):
                    log.error(
                        "order %s: its stored times do not read as times, so when it got broker "
                        "order %s is unknown; lookups take that id as owned on every day",
                        order_id,
                        broker_id,
                    )
                    unknown.add(broker_id)
                    continue
                owned.setdefault(broker_id, []).append(LookupWindow(sent, sent))
            return {k: tuple(v) for k, v in owned.items() if k not in unknown}

        return await self._read(read)

    async def unresolved_siblings(self, order: Order) -> list[str]:
        """Ids of the other orders for ``order``'s account and symbol, with its intent (side,
        quantity, type, limit price), that may hold a broker order no journal order names yet:
        in flight (SUBMITTING) or UNKNOWN without a broker id, whichever engine sends them."""
        price = orders.c.limit_price
        same_price = price.is_(None) if order.limit_price is None else price == order.limit_price

        def read(conn: sa.Connection) -> list[str]:
            query = (
                sa.select(orders.c.id)
                .where(
                    orders.c.account_id == order.account_id,
                    orders.c.symbol == order.symbol,
                    orders.c.side == order.side.value,
                    orders.c.quantity == order.quantity,
                    orders.c.order_type == order.order_type.value,
                    same_price,
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


#: The length of the accounts table's venue and zone columns.
_NAME_LENGTH = 64


def _record_venue(
    conn: sa.Connection, account_id: str, venue: str, timezone: str, now: datetime
) -> None:
    """The account's venue and its time zone, replacing what an earlier engine recorded.

    An upsert (both of the journal's databases have one), so engines starting together on one
    account do not collide on the insert, and an engine that started earlier but commits later
    does not replace a later start's. The venue's name is a label, made printable (no control
    character, no NUL, which PostgreSQL refuses) and cut to the column's 64 characters. A zone
    name that is no text or longer than that is no IANA zone: nothing is recorded for it."""
    if not isinstance(timezone, str) or len(timezone) > _NAME_LENGTH:
        return
    venue = printable(str(venue))[:_NAME_LENGTH]
    values = {"account_id": account_id, "venue": venue, "timezone": timezone, "updated_at": now}
    changed = {"venue": venue, "timezone": timezone, "updated_at": now}
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    upsert = dialect.insert(accounts).values(values)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=["account_id"],
            set_=changed,
            where=accounts.c.updated_at <= upsert.excluded.updated_at,
        )
    )
