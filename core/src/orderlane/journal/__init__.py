"""The journal: the durable record of orders, fills, positions and events.

The executor and the tracker reach storage only through :class:`Journal`, so concurrent orders can
share one commit and other stores can drop in. :class:`SqlJournal` is the SQLAlchemy implementation
(SQLite by default, PostgreSQL by URL).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol, TypeVar

import attrs

from orderlane.events import Event
from orderlane.model import Fill, Order
from orderlane.positions import Position

__all__ = [
    "Committed",
    "Journal",
    "JournalRows",
    "PnLSummary",
    "SqlJournal",
    "Transition",
    "UnreadableRow",
]

T = TypeVar("T")


@attrs.frozen
class UnreadableRow:
    """A stored row that could not be read (changed outside orderlane): which, and why."""

    table: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table} row {self.key} cannot be read: {self.problem}"


class JournalRows(list[T]):
    """What a list read of the journal returns: the rows that could be read, in order.

    A row that could not be read is left out, logged with its key, and listed in
    :attr:`unreadable`, so one corrupted row never hides the others (nor crashes a report).
    """

    def __init__(self, rows: Iterable[T] = (), unreadable: Iterable[UnreadableRow] = ()) -> None:
        super().__init__(rows)
        self.unreadable: list[UnreadableRow] = list(unreadable)


@attrs.frozen
class Transition:
    """One atomic change to one order: its new state, the fills it gained, the events to tell.

    ``order.version`` is the version the change was computed from; the journal refuses the change
    (and nothing of it is stored) if the stored order moved on since. ``new`` inserts the order.
    The journal applies ``fills`` to positions inside the same transaction and adds the fill and
    position events after ``events``.
    """

    order: Order | None
    events: tuple[Event, ...] = ()
    fills: tuple[Fill, ...] = ()
    new: bool = False
    #: Refuse the change (InstrumentHeldError) while another order for the same account and
    #: symbol is UNKNOWN: per-instrument safe mode, derived from the journal itself.
    hold_check: bool = False


@attrs.frozen
class Committed:
    """What a committed transition stored: the order at its new version, fills with their P&L."""

    order: Order | None
    fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    events: tuple[Event, ...]


@attrs.frozen
class PnLSummary:
    key: str
    realized_pnl: Decimal
    fills: int


class Journal(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, transition: Transition) -> Committed: ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def find_by_signal(self, account_id: str, signal_id: str) -> Order | None: ...

    async def open_orders(self, account_id: str | None = None) -> JournalRows[Order]: ...

    async def owned_broker_ids(self, account_id: str, symbol: str) -> frozenset[str]: ...

    async def unresolved_siblings(self, order: Order) -> list[str]: ...

    async def list_orders(self, limit: int = 100) -> JournalRows[Order]: ...

    async def fills(self, order_id: str) -> JournalRows[Fill]: ...

    async def positions(self, account_id: str | None = None) -> JournalRows[Position]: ...

    async def events(self, order_id: str | None = None) -> list[tuple[str, dict[str, object]]]: ...

    async def realized_pnl(self, by: str = "session") -> JournalRows[PnLSummary]: ...


from orderlane.journal.sql import SqlJournal  # noqa: E402
