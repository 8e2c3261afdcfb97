"""Rows of the journal's tables to domain objects and back, checking every value read.

A row changed outside orderlane (by hand, by a disk fault, by an older bug) may hold what its
column cannot mean: text that is no number, a NaN amount, an unknown status. Reading such a row
raises :class:`CorruptRowError` naming the table, the row and the column; the journal's list reads
leave it out and report it (:class:`~orderlane.journal.JournalRows`), so one bad row never hides
the others.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa

from orderlane.errors import JournalError
from orderlane.journal import JournalRows, PnLSummary, UnreadableRow
from orderlane.journal.types import Unreadable
from orderlane.model import Fill, Order, OrderStatus, OrderType, Side
from orderlane.positions import Position

__all__ = [
    "CorruptRowError",
    "event_from_row",
    "fill_from_row",
    "fill_row",
    "order_from_row",
    "order_row",
    "order_state_row",
    "pnl_summaries",
    "position_from_mapping",
    "position_from_row",
    "position_row",
    "read_rows",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
log = logging.getLogger("orderlane.journal")


class CorruptRowError(JournalError):
    """A stored row holds a value its column cannot mean; ``table`` and ``key`` name the row."""

    def __init__(self, table: str, key: str, problem: str) -> None:
        super().__init__(f"{table} row {key} cannot be read: {problem}")
        self.table = table
        self.key = key
        self.problem = problem


class _Reader:
    """Typed access to one row's columns; the first bad value raises :class:`CorruptRowError`."""

    def __init__(self, data: Mapping[Any, Any], table: str, *key: str) -> None:
        self.data = data
        self.table = table
        self._key = key

    @property
    def key(self) -> str:
        """The row's key columns, as an error names it (built only when one is raised)."""
        return "/".join(str(self.data.get(name)) for name in self._key)

    def fail(self, column: str, problem: str) -> CorruptRowError:
        return CorruptRowError(self.table, self.key, f"{column} {problem}")

    def _get(self, column: str) -> Any:
        value = self.data[column]
        if isinstance(value, Unreadable):
            raise self.fail(column, f"holds {value.raw!r}, which is not a {value.kind}")
        return value

    def text(self, column: str) -> str:
        value = self._get(column)
        if not isinstance(value, str):
            raise self.fail(column, f"holds {value!r}, not text")
        return value

    def optional_text(self, column: str) -> str | None:
        return None if self.data[column] is None else self.text(column)

    def integer(self, column: str) -> int:
        value = self._get(column)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(column, f"holds {value!r}, not a whole number")
        return value

    def money(self, column: str) -> Decimal:
        value = self._get(column)
        if not isinstance(value, Decimal) or not value.is_finite():
            raise self.fail(column, f"holds {value!r}, not a finite amount")
        return value

    def optional_money(self, column: str) -> Decimal | None:
        return None if self.data[column] is None else self.money(column)

    def moment(self, column: str) -> datetime:
        value = self._get(column)
        if not isinstance(value, datetime):
            raise self.fail(column, f"holds {value!r}, not a time")
        return value

    def optional_moment(self, column: str) -> datetime | None:
        return None if self.data[column] is None else self.moment(column)

    def choice(self, column: str, kind: type[E]) -> E:
        value = self._get(column)
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in kind)
            raise self.fail(column, f"holds {value!r}, not one of {choices}") from None

    def day(self, column: str) -> date:
        value = self.text(column)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.fail(column, f"holds {value!r}, not a date") from None


def read_rows(rows: Iterable[sa.Row[Any]], convert: Callable[[sa.Row[Any]], T]) -> JournalRows[T]:
    """``convert`` each row; a row that cannot be read is logged and listed, not returned."""
    result: JournalRows[T] = JournalRows()
    for row in rows:
        try:
            result.append(convert(row))
        except CorruptRowError as error:
            log.error("%s; left out", error)
            result.unreadable.append(UnreadableRow(error.table, error.key, error.problem))
    return result


def order_row(order: Order) -> dict[str, Any]:
    """Every column of ``order``'s row: its identity (:data:`ORDER_IDENTITY`) and its state."""
    return {
        "id": order.id,
        "account_id": order.account_id,
        "session_id": order.session_id,
        "signal_id": order.signal_id,
        "symbol": order.symbol,
        "symbol_name": order.symbol_name,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "created_at": order.created_at,
        **order_state_row(order),
    }


#: The columns an order is known by: written once, by its insert, and never by an update.
ORDER_IDENTITY = frozenset(
    {
        "id",
        "account_id",
        "session_id",
        "signal_id",
        "symbol",
        "symbol_name",
        "side",
        "order_type",
        "quantity",
        "limit_price",
        "created_at",
    }
)


def order_state_row(order: Order) -> dict[str, Any]:
    """The columns of ``order``'s row that its transitions change (everything but
    :data:`ORDER_IDENTITY`): what an update writes. An update that rewrote the identity columns
    too would rewrite the entries of every index on them (the signal id's unique index, the
    broker id's) for values that never change, in the commit of every transition."""
    return {
        "status": order.status.value,
        "broker_order_id": order.broker_order_id,
        "filled_quantity": order.filled_quantity,
        "filled_notional": order.filled_notional,
        "commission": order.commission,
        "reason": order.reason,
        "submitted_at": order.submitted_at,
        "updated_at": order.updated_at,
        "filled_at": order.filled_at,
        "attempts": order.attempts,
        "version": order.version,
    }


def order_from_row(row: sa.Row[Any]) -> Order:
    read = _Reader(row._mapping, "orders", "id")
    return Order(
        id=read.text("id"),
        account_id=read.text("account_id"),
        session_id=read.text("session_id"),
        signal_id=read.optional_text("signal_id"),
        symbol=read.text("symbol"),
        symbol_name=read.text("symbol_name"),
        side=read.choice("side", Side),
        order_type=read.choice("order_type", OrderType),
        quantity=read.integer("quantity"),
        limit_price=read.optional_money("limit_price"),
        status=read.choice("status", OrderStatus),
        broker_order_id=read.optional_text("broker_order_id"),
        filled_quantity=read.integer("filled_quantity"),
        filled_notional=read.money("filled_notional"),
        commission=read.money("commission"),
        reason=read.optional_text("reason"),
        created_at=read.moment("created_at"),
        submitted_at=read.optional_moment("submitted_at"),
        updated_at=read.moment("updated_at"),
        filled_at=read.optional_moment("filled_at"),
        attempts=read.integer("attempts"),
        version=read.integer("version"),
    )


def fill_row(fill: Fill) -> dict[str, Any]:
    return {
        "order_id": fill.order_id,
        "fill_id": fill.fill_id,
        "account_id": fill.account_id,
        "session_id": fill.session_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": fill.commission,
        "realized_pnl": fill.realized_pnl,
        "gross_pnl": fill.gross_pnl,
        "net_pnl": fill.net_pnl,
        "executed_at": fill.executed_at,
        "trading_day": fill.trading_day.isoformat(),
    }


def fill_from_row(row: sa.Row[Any]) -> Fill:
    read = _Reader(row._mapping, "fills", "order_id", "fill_id")
    return Fill(
        fill_id=read.text("fill_id"),
        order_id=read.text("order_id"),
        account_id=read.text("account_id"),
        session_id=read.text("session_id"),
        symbol=read.text("symbol"),
        side=read.choice("side", Side),
        quantity=read.integer("quantity"),
        price=read.money("price"),
        commission=read.money("commission"),
        executed_at=read.moment("executed_at"),
        trading_day=read.day("trading_day"),
        realized_pnl=read.money("realized_pnl"),
        gross_pnl=read.money("gross_pnl"),
        net_pnl=read.money("net_pnl"),
    )


def position_row(position: Position) -> dict[str, Any]:
    return {
        "account_id": position.account_id,
        "symbol": position.symbol,
        "symbol_name": position.symbol_name,
        "quantity": position.quantity,
        "average_price": position.average_price,
        "cost_basis": position.cost_basis,
        "fees": position.fees,
        "realized_pnl": position.realized_pnl,
        "gross_pnl": position.gross_pnl,
        "net_pnl": position.net_pnl,
        "commissions": position.commissions,
        "opened_at": position.opened_at,
        "updated_at": position.updated_at,
        "version": position.version,
    }


def position_from_row(row: sa.Row[Any]) -> Position:
    return position_from_mapping(row._mapping)


def position_from_mapping(data: Mapping[Any, Any]) -> Position:
    """A position from its row's values by column name (read by the column types)."""
    read = _Reader(data, "positions", "account_id", "symbol")
    return Position(
        account_id=read.text("account_id"),
        symbol=read.text("symbol"),
        symbol_name=read.text("symbol_name"),
        quantity=read.integer("quantity"),
        average_price=read.money("average_price"),
        cost_basis=read.money("cost_basis"),
        fees=read.money("fees"),
        realized_pnl=read.money("realized_pnl"),
        gross_pnl=read.money("gross_pnl"),
        net_pnl=read.money("net_pnl"),
        commissions=read.money("commissions"),
        opened_at=read.optional_moment("opened_at"),
        updated_at=read.optional_moment("updated_at"),
        version=read.integer("version"),
    )


def event_from_row(row: sa.Row[Any]) -> tuple[str, dict[str, Any]]:
    read = _Reader(row._mapping, "order_events", "seq")
    payload = read.text("payload")
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise read.fail("payload", f"holds {payload[:40]!r}, not a JSON object")
    read.moment("recorded_at")
    return read.text("type"), data


def pnl_summaries(booked: JournalRows[Fill], by: str) -> JournalRows[PnLSummary]:
    """The fills' P&L summed per ``session`` or trading ``day``, in key order: the seed's
    realized figure, gross, commissions paid (opening fills' too) and net; the fills that could
    not be read stay listed as unreadable."""
    totals: dict[str, PnLSummary] = {}
    for fill in booked:
        key = fill.session_id if by == "session" else fill.trading_day.isoformat()
        total = totals.get(key) or PnLSummary(key, Decimal(0), 0)
        totals[key] = PnLSummary(
            key,
            total.realized_pnl + fill.realized_pnl,
            total.fills + 1,
            gross_pnl=total.gross_pnl + fill.gross_pnl,
            commissions=total.commissions + fill.commission,
            net_pnl=total.net_pnl + fill.net_pnl,
        )
    return JournalRows((totals[key] for key in sorted(totals)), booked.unreadable)
