"""Column types that keep money exact and times UTC-aware on every database.

Reading never raises: a stored value the type cannot read (text that is no number, a time that
does not parse: a row changed outside orderlane) comes back as :class:`Unreadable`, which the row
readers (:mod:`orderlane.journal.rows`) report with the row's key. A raise here would end the
whole result, hiding every row after the bad one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["Money", "UTCDateTime", "Unreadable"]


@attrs.frozen
class Unreadable:
    """A stored value its column type cannot read: ``raw`` as the database gave it."""

    raw: object
    kind: str


class Money(sa.types.TypeDecorator[Decimal]):
    """Decimal stored exactly: TEXT on SQLite (its NUMERIC is a float), NUMERIC elsewhere."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(64))
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be a Decimal, got {type(value).__name__}")
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or isinstance(value, Decimal):
            return value
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return Unreadable(value, "decimal number")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("datetimes must be timezone-aware")
        if value.tzinfo is not UTC:  # already UTC (the engine's own times): no copy
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        except ValueError:
            moment = None
        if not isinstance(moment, datetime):
            return Unreadable(value, "time")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
