"""Reading a journal without ever writing to it: ``orderlane watch`` and dashboards.

A :class:`JournalReader` opens the database read-only at the database's own level (SQLite in
``mode=ro``; PostgreSQL sessions with ``default_transaction_read_only``), so it can sit beside
running engines and cannot change what they wrote. It never creates a database (a missing SQLite
file is an error, not an empty journal) and never migrates one: a journal whose schema is not the
one this orderlane writes is refused with a message saying why.

Reads are synchronous SQLAlchemy Core; an async caller runs them in a worker thread. Each
:meth:`JournalReader.view` is one read transaction, so everything read through it is one
consistent picture of the journal, even while engines write.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.request import pathname2url
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event as sa_event

from orderlane.errors import ConfigurationError, JournalError
from orderlane.journal import JournalRows, PnLSummary
from orderlane.journal.migrate import head_revision, known_revisions
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
from orderlane.journal.url import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT,
    DatabaseAddress,
    cannot_connect,
    postgres_connect_args,
    resolve_database_url,
)
from orderlane.model import Fill, Order, OrderStatus
from orderlane.positions import Position

__all__ = ["EngineSession", "JournalEvent", "JournalReader", "JournalView"]


#: How many engine sessions a view reads at most (a display shows the running ones).
MAX_SESSIONS = 50


@attrs.frozen
class JournalEvent:
    """One row of the append-only ``order_events`` table, as committed."""

    seq: int
    order_id: str | None
    type: str
    payload: dict[str, Any]
    recorded_at: datetime


@attrs.frozen
class EngineSession:
    """An engine announced on the journal: since when, its last heartbeat, and its rate
    limiter's figures as of that heartbeat (``LimiterSnapshot.as_dict()``; None before its
    first heartbeat, or from an engine that stored none)."""

    engine_id: str
    account_id: str
    started_at: datetime
    heartbeat_at: datetime
    limiter: dict[str, Any] | None


def _limiter_figures(text: Any) -> dict[str, Any] | None:
    # Figures for a display: what does not read as a JSON object is left out, not an error.
    if not isinstance(text, str):
        return None
    try:
        figures = json.loads(text)
    except ValueError:
        return None
    return figures if isinstance(figures, dict) else None


def _event(row: sa.Row[Any]) -> JournalEvent:
    kind, payload = event_from_row(row)  # checks the payload and the time
    return JournalEvent(row.seq, row.order_id, kind, payload, row.recorded_at)


class PnLCache:
    """P&L sums a reader has read, each under the number of fills it summed: fills are only ever
    added, so the same count means the same fills. Bounded; shared by a reader's views (threads)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._sums: dict[tuple[str, str | None, str, int], PnLSummary] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None, str, int]) -> PnLSummary | None:
        with self._lock:
            return self._sums.get(key)

    def put(self, key: tuple[str, str | None, str, int], summary: PnLSummary) -> None:
        with self._lock:
            if len(self._sums) >= self._size:
                self._sums.clear()
            self._sums[key] = summary


class JournalView:
    """Queries over one read transaction of the journal (from :meth:`JournalReader.view`)."""

    def __init__(self, connection: sa.Connection, sums: PnLCache | None = None) -> None:
        self._conn = connection
        self._sums = sums or PnLCache()

    def orders(
        self,
        *,
        statuses: Sequence[OrderStatus] = (),
        symbol: str | None = None,
        day: date | None = None,
        timezone: tzinfo | None = None,
        account_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> JournalRows[Order]:
        """The newest orders first; ``day`` is the day they were created on, in ``timezone``.

        ``before`` pages on: the orders listed after the order with that id (the last one of the
        previous page); an id that is not in the journal lists nothing.
        """
        query = sa.select(orders)
        if before is not None:
            mark = self._conn.execute(
                sa.select(orders.c.created_at, orders.c.id).where(orders.c.id == before)
            ).first()
            if mark is None:
                return JournalRows()
            query = query.where(
                sa.or_(
                    orders.c.created_at < mark.created_at,
                    sa.and_(orders.c.created_at == mark.created_at, orders.c.id > mark.id),
                )
            )
        if statuses:
            query = query.where(orders.c.status.in_([status.value for status in statuses]))
        if symbol:
            query = query.where(orders.c.symbol == symbol)
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        if day is not None:
            start = datetime.combine(day, time(), timezone or datetime.now().astimezone().tzinfo)
            query = query.where(
                orders.c.created_at >= start, orders.c.created_at < start + timedelta(days=1)
            )
        query = query.order_by(orders.c.created_at.desc(), orders.c.id).limit(limit)
        return read_rows(self._conn.execute(query), order_from_row)

    def open_orders(
        self,
        account_id: str | None = None,
        *,
        statuses: Sequence[OrderStatus] = (),
        limit: int | None = None,
    ) -> JournalRows[Order]:
        """Orders not in a final state (those of ``statuses`` only, if given), oldest first;
        the ``limit`` oldest (a display reads a page, not every open order of a busy journal)."""
        wanted = [status.value for status in statuses or OrderStatus if not status.is_terminal]
        query = sa.select(orders).where(orders.c.status.in_(wanted))
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        query = query.order_by(orders.c.created_at, orders.c.id)
        if limit is not None:
            query = query.limit(limit)
        return read_rows(self._conn.execute(query), order_from_row)

    def order(self, order_id: str) -> Order | None:
        row = self._conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
        return None if row is None else order_from_row(row)

    def fills(
        self, *, order_id: str | None = None, account_id: str | None = None, limit: int = 100
    ) -> JournalRows[Fill]:
        """Fills newest first (one order's: in the order they were executed)."""
        query = sa.select(fills)
        if order_id is not None:
            query = query.where(fills.c.order_id == order_id).order_by(fills.c.executed_at)
        else:
            query = query.order_by(fills.c.executed_at.desc(), fills.c.fill_id)
        if account_id is not None:
            query = query.where(fills.c.account_id == account_id)
        return read_rows(self._conn.execute(query.limit(limit)), fill_from_row)

    def positions(self, account_id: str | None = None) -> JournalRows[Position]:
        """Positions by account and symbol, flat ones too (they carry realized P&L)."""
        query = sa.select(positions).order_by(positions.c.account_id, positions.c.symbol)
        if account_id is not None:
            query = query.where(positions.c.account_id == account_id)
        return read_rows(self._conn.execute(query), position_from_row)

    def realized_pnl(
        self,
        by: str = "day",
        account_id: str | None = None,
        *,
        keys: Sequence[str] | None = None,
        last: int | None = None,
    ) -> JournalRows[PnLSummary]:
        """Realized P&L summed per trading ``day`` or per ``session``, in key order: every key,
        those in ``keys``, or (by day) the ``last`` trading days that have fills.

        The fills of each key are counted first; a key whose count has not changed since this
        reader last summed it is not read again (fills are only ever added), so a display that
        refreshes reads the fills of the day or session that moved, not the whole history.
        """
        if by not in {"session", "day"}:
            raise ValueError("by must be 'session' or 'day'")
        if last is not None and by != "day":
            raise ValueError("last counts trading days: use it with by='day'")
        column = fills.c.session_id if by == "session" else fills.c.trading_day
        counting = sa.select(column, sa.func.count()).group_by(column)
        if account_id is not None:
            counting = counting.where(fills.c.account_id == account_id)
        if keys is not None:
            counting = counting.where(column.in_(list(keys)))
        if last is not None:
            counting = counting.order_by(column.desc()).limit(last)
        counts = {str(key): int(count) for key, count in self._conn.execute(counting)}
        known = {
            key: found
            for key, count in counts.items()
            if (found := self._sums.get((by, account_id, key, count))) is not None
        }
        stale = sorted(set(counts) - set(known))
        result: JournalRows[PnLSummary] = JournalRows()
        for start in range(0, len(stale), 500):  # bounded IN lists
            chunk = stale[start : start + 500]
            query = sa.select(fills).where(column.in_(chunk))
            if account_id is not None:
                query = query.where(fills.c.account_id == account_id)
            summed = pnl_summaries(read_rows(self._conn.execute(query), fill_from_row), by)
            result.unreadable.extend(summed.unreadable)
            for row in summed:
                known[row.key] = row
                if not summed.unreadable:  # a key with an unreadable fill is read every time
                    self._sums.put((by, account_id, row.key, counts[row.key]), row)
        result.extend(known[key] for key in sorted(known))
        return result

    def events(self, order_id: str) -> JournalRows[JournalEvent]:
        """One order's events in commit order: its timeline."""
        query = (
            sa.select(order_events)
            .where(order_events.c.order_id == order_id)
            .order_by(order_events.c.seq)
        )
        return read_rows(self._conn.execute(query), _event)

    def status_counts(self, account_id: str | None = None) -> dict[OrderStatus, int]:
        """How many orders are in each state (every state present, zero included)."""
        query = sa.select(orders.c.status, sa.func.count()).group_by(orders.c.status)
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        counts = dict.fromkeys(OrderStatus, 0)
        for status, count in self._conn.execute(query):
            counts[OrderStatus(status)] = int(count)
        return counts

    def latest_session(self, account_id: str | None = None) -> str | None:
        """The session of the newest order: the one a strategy is running now, most likely."""
        query = sa.select(orders.c.session_id).order_by(orders.c.created_at.desc()).limit(1)
        if account_id is not None:
            query = query.where(orders.c.account_id == account_id)
        return self._conn.execute(query).scalar()

    def engine_sessions(self, account_id: str | None = None) -> list[EngineSession]:
        """The engines announced on the journal (running, or gone without saying so), the most
        recent heartbeat first."""
        query = sa.select(engine_sessions).order_by(engine_sessions.c.heartbeat_at.desc())
        if account_id is not None:
            query = query.where(engine_sessions.c.account_id == account_id)
        return [
            EngineSession(
                engine_id=row.engine_id,
                account_id=row.account_id,
                started_at=row.started_at,
                heartbeat_at=row.heartbeat_at,
                limiter=_limiter_figures(row.limiter),
            )
            for row in self._conn.execute(query.limit(MAX_SESSIONS))
            # a session whose times do not read (changed by hand) is no running engine
            if isinstance(row.started_at, datetime) and isinstance(row.heartbeat_at, datetime)
        ]

    def venue_timezone(self, account_id: str | None = None) -> ZoneInfo | None:
        """The time zone of the venue ``account_id`` trades at, as its engines recorded it (a
        fill's trading day is its date there); without an account, the zone all accounts share.
        None when no engine recorded one, the accounts' zones differ, or the name is no zone."""
        query = sa.select(accounts.c.timezone).distinct().limit(2)
        if account_id is not None:
            query = query.where(accounts.c.account_id == account_id)
        names = list(self._conn.execute(query).scalars())
        if len(names) != 1 or not isinstance(names[0], str):
            return None
        try:
            return ZoneInfo(names[0])
        except (ValueError, KeyError, OSError):  # changed by hand: no zone, not an error here
            return None

    def change_marker(self) -> str:
        """A value that changes whenever an engine commits anything an observer could see."""
        seq = self._conn.execute(sa.select(sa.func.max(order_events.c.seq))).scalar()
        updated = self._conn.execute(sa.select(sa.func.max(orders.c.updated_at))).scalar()
        return f"{seq or 0}:{updated.isoformat() if updated else ''}"


class JournalReader:
    """Read-only access to the journal at ``url`` (default: ``ORDERLANE_DATABASE_URL``, then
    ``./orderlane.db``). :meth:`open` checks that the journal exists and has this orderlane's
    schema; every error is a :class:`JournalError` (or :class:`ConfigurationError` for a URL that
    cannot name a journal) whose message names the database with its password masked."""

    def __init__(self, url: str | None = None) -> None:
        # The address holds the password and never shows it; ``url`` is what may be shown.
        self._address = DatabaseAddress(resolve_database_url(url))
        self._engine: sa.Engine | None = None
        self._sums = PnLCache()

    def __repr__(self) -> str:
        return f"JournalReader({self.display_url!r})"

    @property
    def url(self) -> str:
        """The journal's URL fit to show: the password and secret-like query values masked."""
        return repr(self._address)

    @property
    def display_url(self) -> str:
        """The URL fit to print: the password and secret-like query values masked."""
        return self.url

    def open(self) -> JournalReader:
        if self._engine is not None:
            return self
        engine = self._create_engine()
        try:
            with engine.connect() as conn:
                self._check_schema(conn)
        except sa.exc.DBAPIError as error:
            engine.dispose()
            raise JournalError(
                cannot_connect(self.url, error, DEFAULT_CONNECT_TIMEOUT, doing="read")
            ) from None
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> JournalReader:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def view(self) -> Iterator[JournalView]:
        """One read transaction: what is read through the view is one consistent picture."""
        if self._engine is None:
            raise JournalError("the journal reader is not open")
        try:
            with self._engine.connect() as conn, conn.begin():
                yield JournalView(conn, self._sums)
        except sa.exc.DBAPIError as error:
            raise JournalError(
                f"cannot read the journal database {self.display_url}: {error.orig}"
            ) from None

    # ---------------------------------------------------------------- opening

    def _create_engine(self) -> sa.Engine:
        url = self._address.sa_url
        if url.get_backend_name() != "sqlite":
            # Every transaction of these sessions is read-only: the server refuses any write.
            connect_args = postgres_connect_args(
                url,
                connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                statement_timeout=DEFAULT_STATEMENT_TIMEOUT,
                options=["-c default_transaction_read_only=on"],
            )
            try:
                return sa.create_engine(
                    url,
                    pool_size=2,
                    max_overflow=2,
                    pool_pre_ping=True,
                    isolation_level="REPEATABLE READ",
                    connect_args=connect_args,
                )
            except ModuleNotFoundError:
                raise ConfigurationError(
                    "PostgreSQL needs psycopg 3: pip install 'orderlane[postgresql]'"
                ) from None
        assert url.database  # resolve_database_url refuses in-memory databases
        path = Path(url.database).resolve()
        if not path.is_file():
            raise JournalError(
                f"there is no journal at {path}: nothing has been written there yet "
                "(an engine creates the journal when it first opens it)"
            )
        location = f"file:{pathname2url(str(path))}?mode=ro"

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(location, uri=True, check_same_thread=False)
            connection.isolation_level = None  # transactions are begun below, as reads
            connection.execute("PRAGMA busy_timeout=5000")
            return connection

        engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.QueuePool)

        @sa_event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN")  # one snapshot of the WAL for the whole view

        return engine

    def _check_schema(self, conn: sa.Connection) -> None:
        current = MigrationContext.configure(conn).get_current_revision()
        head = head_revision()
        if current == head:
            return
        if current is None:
            raise JournalError(f"{self.display_url} holds no orderlane journal")
        if current in known_revisions():
            raise JournalError(
                f"the journal {self.display_url} has the older schema {current!r} (this "
                f"orderlane reads {head!r}); the next engine of this orderlane to open it "
                "upgrades it, reading never does"
            )
        raise JournalError(
            f"the journal {self.display_url} has the schema {current!r}, which this orderlane "
            f"(schema {head!r}) does not know: it was written by a newer orderlane. "
            "Upgrade orderlane to read it."
        )
