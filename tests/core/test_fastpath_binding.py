"""The order path's statements (orderlane.journal.fastpath) bind values as the column types do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from orderlane.journal.fastpath import FastPath
from orderlane.journal.schema import orders
from orderlane.journal.types import Money, UTCDateTime

SEOUL = timezone(timedelta(hours=9))


def _binders(dialect: sa.Dialect) -> tuple[Any, Any]:
    fast = FastPath(dialect)
    return fast._binders["orders", "filled_notional"], fast._binders["orders", "updated_at"]


@pytest.mark.parametrize(
    "dialect",
    [sqlite.dialect(), postgresql.psycopg.dialect()],
    ids=["sqlite", "postgresql"],
)
@pytest.mark.parametrize(
    "value",
    [
        Decimal("72000.50"),
        Decimal("-0"),
        None,
        datetime(2026, 11, 29, 9, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 29, 18, 0, tzinfo=SEOUL),
    ],
)
def test_every_value_binds_as_its_column_type_binds_it(dialect: sa.Dialect, value: Any) -> None:
    money, moment = _binders(dialect)
    if isinstance(value, datetime) or value is None:
        expected = UTCDateTime().process_bind_param(value, dialect)
        assert moment(value) == expected
        assert moment(value) == expected  # the second time from the last-bound cache
    if not isinstance(value, datetime):
        assert money(value) == Money().process_bind_param(value, dialect)


def test_a_time_in_another_zone_is_stored_as_utc_text_on_sqlite() -> None:
    _money, moment = _binders(sqlite.dialect())
    assert moment(datetime(2026, 11, 29, 18, 0, tzinfo=SEOUL)) == "2026-11-29T09:00:00.000000+00:00"


@pytest.mark.parametrize("value", [72000.5, 72000, "72000"])
def test_money_that_is_no_decimal_is_refused(value: Any) -> None:
    money, _moment = _binders(sqlite.dialect())
    with pytest.raises(TypeError, match="money must be a Decimal"):
        money(value)


def test_a_naive_time_is_refused_even_after_an_aware_one() -> None:
    _money, moment = _binders(sqlite.dialect())
    moment(datetime(2026, 11, 29, tzinfo=UTC))
    with pytest.raises(TypeError, match="timezone-aware"):
        moment(datetime(2026, 11, 29))


def test_the_order_table_binds_only_its_typed_columns() -> None:
    fast = FastPath(sqlite.dialect())
    typed = {
        column.name for column in orders.columns if isinstance(column.type, sa.types.TypeDecorator)
    }
    bound = {name for (table, name), bind in fast._binders.items() if table == "orders" and bind}
    assert bound == typed
    assert {"filled_notional", "updated_at"} <= typed
