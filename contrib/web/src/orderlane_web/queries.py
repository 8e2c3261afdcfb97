"""What the pages and the JSON API read, in one place: filters parsed, rows shaped as JSON.

Every function here runs in a worker thread on one read transaction of the journal (a
:class:`~orderlane.journal.reader.JournalView`). Money is an exact decimal string in JSON, times
ISO 8601 in UTC, as everywhere in orderlane's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import attrs

from orderlane.journal import PnLSummary
from orderlane.journal.reader import JournalEvent, JournalView
from orderlane.model import Fill, Order, OrderStatus
from orderlane.positions import Position
from orderlane.serialization import unstructure

__all__ = [
    "MAX_LIMIT",
    "MAX_UNKNOWN",
    "BadRequest",
    "OrderFilter",
    "OrderPage",
    "event_data",
    "fill_data",
    "order_data",
    "order_detail",
    "pnl_data",
    "position_data",
    "summary",
]

MAX_LIMIT = 1000
#: The most UNKNOWN orders a page lists (the summary counts them all).
MAX_UNKNOWN = 100


class BadRequest(ValueError):
    """A query parameter the API cannot use; answered 400 with this message."""


@attrs.frozen
class OrderFilter:
    """Which orders to list: any of ``statuses``, one ``symbol``, one ``day``, one account."""

    statuses: tuple[OrderStatus, ...] = ()
    symbol: str | None = None
    day: date | None = None
    account_id: str | None = None
    limit: int = 100
    before: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, list[str]]) -> OrderFilter:
        """Read the filter from query parameters (``status`` may repeat; blanks mean "any")."""
        statuses = []
        for value in params.get("status", []):
            for name in filter(None, (part.strip().upper() for part in value.split(","))):
                try:
                    statuses.append(OrderStatus(name))
                except ValueError:
                    known = ", ".join(status.value for status in OrderStatus)
                    raise BadRequest(f"unknown status {name!r}; use one of {known}") from None
        day = _one(params, "day")
        try:
            parsed_day = date.fromisoformat(day) if day else None
        except ValueError:
            raise BadRequest(f"day must be a date like 2026-01-05, got {day!r}") from None
        limit = _one(params, "limit") or "100"
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
        return cls(
            statuses=tuple(dict.fromkeys(statuses)),
            symbol=_one(params, "symbol") or None,
            day=parsed_day,
            account_id=_one(params, "account") or None,
            limit=int(limit),
            before=_one(params, "before") or None,
        )

    @property
    def filtering(self) -> bool:
        """Whether any filter narrows the list (paging does not)."""
        return bool(self.statuses or self.symbol or self.day or self.account_id)

    def orders(self, view: JournalView, zone: tzinfo) -> OrderPage:
        """One page of the orders, newest first, and the id to page on from (None: the last
        page). An unknown ``before`` id is a page of nothing."""
        found = view.orders(
            statuses=self.statuses,
            symbol=self.symbol,
            day=self.day,
            timezone=zone,
            account_id=self.account_id,
            limit=self.limit + 1,  # one more says whether there is a next page
            before=self.before,
        )
        page = list(found[: self.limit])
        return OrderPage(page, page[-1].id if len(found) > self.limit else None)

    def query(self, **changes: str | None) -> str:
        """This filter as a query string, with ``changes`` (None drops a parameter)."""
        params: dict[str, Any] = {
            "status": [status.value for status in self.statuses],
            "symbol": self.symbol,
            "day": self.day.isoformat() if self.day else None,
            "account": self.account_id,
            "limit": None if self.limit == 100 else str(self.limit),
            "before": self.before,
            **changes,
        }
        kept = {key: value for key, value in params.items() if value}
        return "?" + urlencode(kept, doseq=True) if kept else ""


@attrs.frozen
class OrderPage:
    """A page of orders, newest first; ``next`` is the ``before`` of the following page."""

    orders: list[Order]
    next: str | None


def _one(params: Mapping[str, list[str]], name: str) -> str:
    values = params.get(name) or [""]
    return values[-1].strip()


def order_data(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(order)
    average = order.average_fill_price
    data["average_fill_price"] = None if average is None else str(average)
    return data


def fill_data(fill: Fill) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(fill)
    return data


def position_data(position: Position) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(position)
    return data


def event_data(event: JournalEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "recorded_at": event.recorded_at.isoformat(),
        "payload": event.payload,
    }


def pnl_row(row: PnLSummary) -> dict[str, Any]:
    """One session's or day's P&L: the seed's figure (``realized_pnl``, gross minus closing
    commissions), gross, commissions paid and net of both sides' commissions."""
    return {
        "key": row.key,
        "realized_pnl": str(row.realized_pnl),
        "gross_pnl": str(row.gross_pnl),
        "commissions": str(row.commissions),
        "net_pnl": str(row.net_pnl),
        "fills": row.fills,
    }


def pnl_data(rows: list[PnLSummary], by: str) -> dict[str, Any]:
    def total(figure: str) -> str:
        return str(sum((getattr(row, figure) for row in rows), Decimal(0)))

    return {
        "by": by,
        "rows": [pnl_row(row) for row in rows],
        "total": total("realized_pnl"),
        "totals": {figure: total(figure) for figure in ("gross_pnl", "commissions", "net_pnl")},
    }


def order_detail(view: JournalView, order_id: str) -> dict[str, Any] | None:
    """One order with its fills and its event timeline; None when there is no such order."""
    order = view.order(order_id)
    if order is None:
        return None
    return {
        "order": order_data(order),
        "fills": [fill_data(fill) for fill in view.fills(order_id=order_id, limit=MAX_LIMIT)],
        "events": [event_data(event) for event in view.events(order_id)],
    }


def summary(view: JournalView, account_id: str | None = None) -> dict[str, Any]:
    """Counts per state, open orders, the newest trading day's P&L, and the change marker."""
    counts = view.status_counts(account_id)
    days = view.realized_pnl("day", account_id, last=1)
    latest = days[-1] if days else None
    return {
        "counts": {status.value: count for status, count in counts.items()},
        "orders": sum(counts.values()),
        "open": sum(count for status, count in counts.items() if not status.is_terminal),
        "unknown": counts[OrderStatus.UNKNOWN],
        "latest_day": None if latest is None else pnl_row(latest),
        "marker": view.change_marker(),
    }
