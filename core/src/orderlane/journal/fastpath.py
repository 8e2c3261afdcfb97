"""The statements every order transition runs, on the driver's own cursor.

SQLAlchemy Core spends tens of microseconds on each execute before the driver sees it (the
compiled-statement cache, parameter processing, result set-up, events): more than SQLite needs
to run the statement. The few statements every order runs are therefore written once per dialect
as plain SQL and run on the DBAPI cursor of the connection, inside the transaction SQLAlchemy
opened; sqlite3 and psycopg keep them prepared by their text. Values are bound through the
column types' own ``process_bind_param`` (exact money, UTC times, the same refusals). SQLAlchemy
keeps the schema, the migrations and every query.

Per transition, at most:

- a new order: one ``INSERT ... ON CONFLICT (account_id, signal_id) DO NOTHING``; no row means
  the signal id is taken.
- a changed order: one ``UPDATE`` of the columns transitions change (never the identity
  columns, whose index entries would be rewritten for nothing), guarded by the version and, for
  a send, by the instrument hold (no UNKNOWN order for the same account and symbol) in the same
  statement; only when it changes no row is the cause looked up.
- per fill: the position (inserted flat first if the instrument has none; read once per group
  commit, its values through the column types' own ``process_result_value``, locked with
  ``FOR UPDATE`` on PostgreSQL), the fill's insert, the position's update.
- events: kept and written with one ``executemany`` per group commit.

A refusal (instrument held, signal id taken, version moved on) is found before the transition
writes anything, so a group commit needs no savepoints: a refused transition leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa

from orderlane.journal.schema import fills, order_events, orders, positions
from orderlane.journal.types import Money, UTCDateTime

__all__ = ["FastPath"]

Binder = Callable[[Any], Any]
#: What reads a stored value of a column (None: the driver's value as it is).
ValueReader = Callable[[Any], Any] | None

_TEMPLATES = {
    "insert_order": "INSERT INTO orders ({columns}) VALUES ({marks}) "
    "ON CONFLICT (account_id, signal_id) DO NOTHING",
    "update_order": "UPDATE orders SET {assignments} WHERE id = ? AND version = ?",
    "insert_fill": "INSERT INTO fills ({columns}) VALUES ({marks})",
    "insert_position": "INSERT INTO positions ({columns}) VALUES ({marks}) "
    "ON CONFLICT (account_id, symbol) DO NOTHING",
    "update_position": "UPDATE positions SET {assignments} "
    "WHERE account_id = ? AND symbol = ? AND version = ?",
}
_SELECT_POSITION = "SELECT {columns} FROM positions WHERE account_id = ? AND symbol = ?"
#: The instrument hold, checked by the update of a send itself.
_HOLD_CLAUSE = (
    " AND NOT EXISTS (SELECT 1 FROM orders AS held WHERE held.status = 'UNKNOWN' "
    "AND held.account_id = ? AND held.symbol = ? AND held.id <> ?)"
)


class _Shape(NamedTuple):
    sql: str
    binders: tuple[Binder | None, ...]


class FastPath:
    """Plain SQL for one dialect, with the binders of every column it writes."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self._mark = "?" if dialect.name == "sqlite" else "%s"
        #: Per column, what turns a value into the driver's (None: the value as it is).
        self._binders: dict[tuple[str, str], Binder | None] = {}
        for table in (orders, fills, positions, order_events):
            for column in table.columns:
                binder: Binder | None = None
                if isinstance(column.type, sa.types.TypeDecorator):
                    binder = _bind_with(column.type, dialect)
                self._binders[table.name, column.name] = binder
        #: Per statement shape: its SQL and the binders of its values, in the row's order.
        self._shapes: dict[tuple[str, tuple[str, ...], bool], _Shape] = {}
        self.insert_events = self._q(
            "INSERT INTO order_events (order_id, type, payload, recorded_at) VALUES (?, ?, ?, ?)"
        )
        bind_recorded_at = self._binders["order_events", "recorded_at"]
        assert bind_recorded_at is not None
        self._bind_recorded_at = bind_recorded_at
        self.holder = self._q(
            "SELECT id FROM orders WHERE status = 'UNKNOWN' AND account_id = ? AND symbol = ? "
            "AND id <> ? LIMIT 1"
        )
        self.lock_instrument = "SELECT pg_advisory_xact_lock(%s)"
        self._position_columns = tuple(column.name for column in positions.columns)
        self._position_readers: tuple[ValueReader, ...] = tuple(
            _read_with(column.type, dialect)
            if isinstance(column.type, sa.types.TypeDecorator)
            else None
            for column in positions.columns
        )
        # SQLite has no FOR UPDATE: its write transaction (BEGIN IMMEDIATE) holds the database.
        lock = " FOR UPDATE" if dialect.name == "postgresql" else ""
        columns = ", ".join(self._position_columns)
        self.select_position = self._q(_SELECT_POSITION.format(columns=columns) + lock)

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._mark)

    def _shape(self, kind: str, table: str, keys: tuple[str, ...], hold: bool = False) -> _Shape:
        """The SQL of ``kind`` for rows with these ``keys``, and their binders (once per shape)."""
        cache_key = (kind, keys, hold)
        shape = self._shapes.get(cache_key)
        if shape is not None:
            return shape
        template = _TEMPLATES[kind] + (_HOLD_CLAUSE if hold else "")
        sql = template.format(  # column names are the journal's own, values go in as parameters
            columns=", ".join(keys),
            marks=", ".join("?" * len(keys)),
            assignments=", ".join(f"{key} = ?" for key in keys),
        )
        binders = tuple(self._binders[table, key] for key in keys)
        shape = self._shapes[cache_key] = _Shape(self._q(sql), binders)
        return shape

    def _bound(self, kind: str, table: str, row: Mapping[str, Any], hold: bool = False) -> Any:
        """(sql, the row's values bound for the driver) for a statement of ``kind``."""
        sql, binders = self._shape(kind, table, tuple(row), hold)
        params = [
            value if bind is None else bind(value)
            for bind, value in zip(binders, row.values(), strict=True)
        ]
        return sql, params

    # ------------------------------------------------------------------ statements

    def insert_order(self, cursor: Any, row: Mapping[str, Any]) -> bool:
        """Insert an order; False (nothing written) if its signal id is taken."""
        sql, params = self._bound("insert_order", "orders", row)
        return execute(cursor, sql, params) == 1

    def update_order(
        self,
        cursor: Any,
        row: Mapping[str, Any],
        order_id: str,
        version: int,
        hold: tuple[str, str] | None = None,
    ) -> bool:
        """Update the order stored at ``version``; with ``hold`` (account, symbol) only while no
        other order for that instrument is UNKNOWN. False (nothing written) otherwise."""
        sql, params = self._bound("update_order", "orders", row, hold is not None)
        params += (order_id, version)
        if hold is not None:
            params += (*hold, order_id)
        return execute(cursor, sql, params) == 1

    def held_by(self, cursor: Any, account_id: str, symbol: str, order_id: str) -> str | None:
        """Another order for the instrument that is UNKNOWN, if any."""
        execute(cursor, self.holder, (account_id, symbol, order_id))
        found = cursor.fetchone()
        return None if found is None else str(found[0])

    def position(self, cursor: Any, account_id: str, symbol: str) -> dict[str, Any] | None:
        """The position's row by column name, its values read as SQLAlchemy would read them,
        locked until the commit; None if there is none."""
        execute(cursor, self.select_position, (account_id, symbol))
        found = cursor.fetchone()
        if found is None:
            return None
        return {
            name: value if read is None or value is None else read(value)
            for name, read, value in zip(
                self._position_columns, self._position_readers, found, strict=True
            )
        }

    def insert_fill(self, cursor: Any, row: Mapping[str, Any]) -> None:
        execute(cursor, *self._bound("insert_fill", "fills", row))

    def insert_position(self, cursor: Any, row: Mapping[str, Any]) -> None:
        """Insert a position unless the instrument has one (then nothing is written)."""
        execute(cursor, *self._bound("insert_position", "positions", row))

    def update_position(
        self, cursor: Any, row: Mapping[str, Any], account_id: str, symbol: str, version: int
    ) -> bool:
        sql, params = self._bound("update_position", "positions", row)
        params += (account_id, symbol, version)
        return execute(cursor, sql, params) == 1

    def event_row(
        self, order_id: str | None, kind: str, payload: str, recorded_at: Any
    ) -> tuple[Any, ...]:
        return (order_id, kind, payload, self._bind_recorded_at(recorded_at))

    def write_events(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            execute(cursor, self.insert_events, rows, many=True)


def _bind_with(column_type: sa.types.TypeDecorator[Any], dialect: sa.Dialect) -> Binder:
    """The column type's ``process_bind_param`` for ``dialect``; on SQLite, the values the
    engine itself makes (a Decimal, a UTC datetime) take a short path to the same text, and
    anything else goes through the type, which refuses what the column cannot hold."""
    process = column_type.process_bind_param

    def bind(value: Any) -> Any:
        return process(value, dialect)

    if dialect.name != "sqlite":
        return bind
    if isinstance(column_type, Money):

        def bind_money(value: Any) -> Any:
            return str(value) if type(value) is Decimal else bind(value)

        return bind_money
    if isinstance(column_type, UTCDateTime):
        # The last time bound and its text, as one pair replaced at once (one transition's
        # times are mostly one and the same datetime).
        last: list[tuple[Any, str]] = [(None, "")]

        def bind_time(value: Any) -> Any:
            seen, text = last[0]
            if value is seen and value is not None:
                return text
            if type(value) is datetime and value.tzinfo is UTC:
                text = value.isoformat(timespec="microseconds")
                last[0] = (value, text)
                return text
            return bind(value)

        return bind_time
    return bind


def _read_with(column_type: sa.types.TypeDecorator[Any], dialect: sa.Dialect) -> ValueReader:
    process = column_type.process_result_value

    def read(value: Any) -> Any:
        return process(value, dialect)

    return read


def execute(cursor: Any, sql: str, params: Any, *, many: bool = False) -> int:
    """Run one statement on the DBAPI cursor: its rowcount. A driver error comes out as
    SQLAlchemy's wrapper of it (IntegrityError, OperationalError...), as from a Core execute."""
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except Exception as error:
        dbapi = _dbapi_error(cursor)
        if dbapi is None or not isinstance(error, dbapi):
            raise
        raise sa.exc.DBAPIError.instance(sql, params, error, dbapi) from error
    return int(cursor.rowcount)


_DBAPI_ERRORS: dict[type, type[Exception] | None] = {}


def _dbapi_error(cursor: Any) -> type[Exception] | None:
    """The driver's base ``Error`` class (sqlite3.Error, psycopg.Error)."""
    kind = type(cursor)
    if kind not in _DBAPI_ERRORS:
        module = __import__(kind.__module__.split(".")[0])
        _DBAPI_ERRORS[kind] = getattr(module, "Error", None)
    return _DBAPI_ERRORS[kind]
