"""The journal: the durable record of orders, fills, positions and events.

The engine, its parts and the command line reach storage only through the :class:`Journal`
protocol, so concurrent orders can share one commit and other stores can drop in.
:class:`SqlJournal` is the SQLAlchemy implementation (SQLite by default, PostgreSQL by URL); the
journal conformance suite (:mod:`orderlane.testing.journal_suite`) is what another one must pass.
A refused change raises one of the refusal errors below, and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs

from orderlane.errors import JournalError
from orderlane.events import Event
from orderlane.model import Fill, Order
from orderlane.positions import Position

__all__ = [
    "Committed",
    "ConcurrentUpdateError",
    "InstrumentHeldError",
    "Journal",
    "JournalFileLostError",
    "JournalRows",
    "PnLSummary",
    "SignalTakenError",
    "SqlJournal",
    "Transition",
    "UnreadableRow",
]

T = TypeVar("T")


# ---------------------------------------------------------------- refusals


class ConcurrentUpdateError(JournalError):
    """The stored order moved on since the change was computed (another process wrote it)."""


class SignalTakenError(JournalError):
    """An order with this (account, signal id) is already stored."""


class InstrumentHeldError(JournalError):
    """Another order for the same account and symbol is UNKNOWN: new sends must wait."""

    def __init__(self, message: str, *, held_by: str) -> None:
        super().__init__(message)
        self.held_by = held_by


class JournalFileLostError(JournalError):
    """The store the journal opened is no longer the one at its address (a SQLite file deleted,
    moved or replaced while open): its writes would reach what nobody can read any more, so
    every call raises this from then on and nothing more is sent."""


# ---------------------------------------------------------------- values


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
    #: The venue's minor currency unit, in which the fills' commissions and released fees are
    #: split (``AdapterInfo.currency_decimals``).
    minor_unit: Decimal = Decimal("0.01")


@attrs.frozen
class Committed:
    """What a committed transition stored: the order at its new version, fills with their P&L."""

    order: Order | None
    fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    events: tuple[Event, ...]


@attrs.frozen
class PnLSummary:
    """Realized P&L of one session or trading day: ``gross_pnl`` before commissions,
    ``commissions`` paid by its fills (opening ones too), ``net_pnl`` after both sides'
    commissions, and ``realized_pnl``, the seed's figure (gross minus closing commissions)."""

    key: str
    realized_pnl: Decimal
    fills: int
    gross_pnl: Decimal = Decimal(0)
    commissions: Decimal = Decimal(0)
    net_pnl: Decimal = Decimal(0)


# ---------------------------------------------------------------- the protocol


class Journal(Protocol):
    """What the engine, its parts and the command line need of a store.

    Every method is a coroutine run on the engine's event loop; calls may overlap (a journal may
    group concurrent transitions into one commit). A method that cannot reach its store raises
    :class:`~orderlane.errors.JournalError`; one called before :meth:`open` or after
    :meth:`close` raises it too, saying the journal is not open.

    Optional, and called only where a store has it: ``store_venue(account_id, venue, timezone,
    now)``, which keeps the venue an account trades at (the adapter's name) and that venue's
    IANA time zone, for displays that read the store and need the venue's trading day
    (:class:`~orderlane.journal.sql.SqlJournal` has it). A store without it works as before.
    Likewise ``owned_broker_orders(account_id, symbol)``: for each broker id stored orders of
    (account, symbol) own, when each order naming it was sent (a tuple of
    :class:`~orderlane.contract.LookupWindow`), for venues whose order numbers may repeat across
    days; without it, lookups take every owned id as owned on every day.
    """

    #: This journal's engine session: the orders it writes are marked with it (see
    #: :meth:`start_session`), so other engines on the store know whose they are.
    engine_id: str

    async def open(self) -> None:
        """Connect and bring the store's schema up to date; a second call does nothing."""
        ...

    async def close(self) -> None:
        """Finish the work already submitted, then disconnect; a second call does nothing."""
        ...

    def set_listener(self, listener: Callable[[Sequence[Event]], None] | None) -> None:
        """Hear every committed transition: ``listener(events)`` runs on the event loop after
        the commit, with the transition's events (the ones it carried, then an ``OrderFilled``
        and a ``PositionChanged`` per fill), once per transition and in commit order, before
        :meth:`record` returns to its caller. A refused transition is never heard of."""
        ...

    async def record(self, transition: Transition) -> Committed:
        """Store ``transition`` atomically: the order, its fills, the positions they move and
        the events, all or nothing, durable when this returns.

        The version check: an update is refused with :class:`ConcurrentUpdateError` unless
        ``transition.order.version`` is the stored version; the stored order gets that version
        plus one (an inserted one, ``new``, gets version 1). An insert whose (account, signal
        id) is taken is refused with :class:`SignalTakenError`. The hold check
        (``hold_check``): refused with :class:`InstrumentHeldError` (``held_by`` naming the
        order) while another order of the same account and symbol is UNKNOWN, checked in the
        same transaction, so that two engines cannot both pass it while one goes UNKNOWN.

        Each fill moves its position (a flat one is created on the first fill) and gets its
        realized P&L; a fill id stored before fails the transition with a
        :class:`~orderlane.errors.JournalError`. A refusal stores nothing and leaves other
        transitions committed with it untouched. ``order`` None records only events.
        """
        ...

    async def get_order(self, order_id: str) -> Order | None:
        """The stored order, or None."""
        ...

    async def find_by_signal(self, account_id: str, signal_id: str) -> Order | None:
        """The order stored for ``(account_id, signal_id)``, or None."""
        ...

    async def open_orders(self, account_id: str | None = None) -> JournalRows[Order]:
        """Orders not in a final state (of one account, or all), oldest first."""
        ...

    async def list_orders(self, limit: int = 100) -> JournalRows[Order]:
        """The newest ``limit`` orders, newest first; a ``limit`` that is no whole number from 1
        to 2**63 - 1 raises :class:`~orderlane.errors.ConfigurationError`."""
        ...

    async def owned_broker_ids(self, account_id: str, symbol: str) -> frozenset[str]:
        """Broker order ids that stored orders of (account, symbol) already own: a lookup must
        never adopt one of them for another order."""
        ...

    async def unresolved_siblings(self, order: Order) -> list[str]:
        """Ids of the other orders of ``order``'s account and symbol that may hold a broker
        order no stored order names yet: in flight (SUBMITTING) or UNKNOWN without a broker id,
        whichever engine sends them; oldest first. Only orders with ``order``'s intent (side,
        quantity, order type, limit price): a lookup matches by client order id or by intent,
        so a broker order found for ``order`` cannot be one of another intent."""
        ...

    async def fills(self, order_id: str) -> JournalRows[Fill]:
        """The order's fills with their realized P&L, in execution order."""
        ...

    async def positions(self, account_id: str | None = None) -> JournalRows[Position]:
        """Positions (flat ones too: they carry realized P&L), by account and symbol."""
        ...

    async def events(self, order_id: str | None = None) -> Sequence[tuple[str, dict[str, Any]]]:
        """Stored events (of one order, or all) as (type, payload), in the order stored."""
        ...

    async def realized_pnl(self, by: str = "session") -> JournalRows[PnLSummary]:
        """Realized P&L summed per ``"session"`` (the closing order's) or per trading
        ``"day"``; any other ``by`` raises :class:`~orderlane.errors.ConfigurationError`."""
        ...

    # Engine sessions: which engine is alive on the store, so recovery settles only the
    # orders of engines that are gone.

    async def start_session(self, account_id: str, now: datetime) -> None:
        """Announce :attr:`engine_id` on the store for ``account_id``, alive at ``now``."""
        ...

    async def heartbeat(self, now: datetime) -> None:
        """This engine is still alive at ``now``. A session another engine forgot (it took the
        engine for dead when its heartbeat lapsed) is announced again."""
        ...

    async def store_limiter(self, figures: Mapping[str, Any]) -> None:
        """Keep this engine's rate limiter's figures (``LimiterSnapshot.as_dict()``) beside its
        session, for displays that read the store (``orderlane watch``). Never part of the
        heartbeat: a store that cannot keep them may do nothing."""
        ...

    async def end_session(self) -> None:
        """This engine stops: its orders are no longer anybody's in flight."""
        ...

    async def other_sessions(self, account_id: str) -> dict[str, datetime]:
        """The other engines' sessions on ``account_id``: engine id -> last heartbeat."""
        ...

    async def forget_sessions(self, engine_ids: Sequence[str]) -> None:
        """Remove those sessions (their heartbeats lapsed: their engines are gone)."""
        ...

    async def order_owners(self, order_ids: Sequence[str]) -> dict[str, str | None]:
        """The engine session that last wrote each of the orders (None: none recorded)."""
        ...


from orderlane.journal.sql import SqlJournal  # noqa: E402
