"""The blotter: the state of one engine's orders, shared by the executor, the tracker and recovery.

Every write to a stored order goes through here:

- a lock per order (:meth:`Blotter.lock`) serializes the writes to it within this process;
- the ids of the fills already booked are kept for open orders, so a cumulative snapshot's
  fills count once without reading them back;
- a commit is told to the watchers (the tracker) after it is durable, with the order as stored;
- a change is planned from the order as last seen; if another engine or an operator wrote the
  order meanwhile (its version moved on), the stored order is reloaded, the watchers hear of it
  and the plan decides again from it (:meth:`Blotter.write`, :meth:`Blotter.move`,
  :meth:`Blotter.book`).

What booking a snapshot makes of an order is :func:`orderlane.booking.book_snapshot`, a pure
function; the blotter gathers its inputs and commits its result.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from orderlane.booking import Change, book_snapshot
from orderlane.clock import Clock
from orderlane.contract import AdapterInfo
from orderlane.errors import UnknownOrderError
from orderlane.events import Event, OrderStatusChanged, OrderTimedOut
from orderlane.journal import ConcurrentUpdateError, Journal, Transition
from orderlane.model import Fill, Order, OrderSnapshot, OrderStatus, printable
from orderlane.money import minor_unit

__all__ = ["Blotter", "Change", "Planner", "Watcher"]

#: The records of booking keep the logger name docs/operations.md gives them (the executor's).
log = logging.getLogger("orderlane.executor")

#: How many times a change is planned again after version conflicts before the conflict is raised.
REAPPLY_ATTEMPTS = 5

Planner = Callable[[Order], Awaitable[Change | None]]
#: Told of an order after each commit or reload of it, with the order as stored.
Watcher = Callable[[Order], None]


class Blotter:
    """The order-state service: locks, booked fill ids, commit-then-notify, reload-and-reapply.

    ``venue`` is the adapter's description: its time zone dates fills by the venue's trading day.
    """

    def __init__(self, journal: Journal, clock: Clock, venue: AdapterInfo) -> None:
        self._journal = journal
        self._clock = clock
        self._venue = venue
        self._tz: ZoneInfo | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._fill_ids: dict[str, set[str]] = {}
        self._watchers: list[Watcher] = []

    @property
    def venue_timezone(self) -> ZoneInfo:
        if self._tz is None:
            self._tz = ZoneInfo(self._venue.timezone)
        return self._tz

    # ---------------------------------------------------------------- locks and watchers

    def lock(self, order_id: str) -> asyncio.Lock:
        """The lock that serializes every write to one order within this process."""
        lock = self._locks.get(order_id)
        if lock is None:
            lock = self._locks[order_id] = asyncio.Lock()
        return lock

    def watch(self, watcher: Watcher) -> None:
        """Tell ``watcher`` of every order committed or reloaded from now on."""
        self._watchers.append(watcher)

    def notify(self, order: Order) -> None:
        """Tell the watchers of ``order`` as stored (recovery hands over an order it left)."""
        for watcher in self._watchers:
            watcher(order)

    # ---------------------------------------------------------------- reads

    async def get(self, order_id: str) -> Order | None:
        """The stored order, or None."""
        return await self._journal.get_order(order_id)

    async def reload(self, order_id: str) -> Order:
        """The stored order, which the watchers then hear of (an order ended elsewhere leaves
        the tracker); its booked fill ids are read again when needed."""
        self.forget_fills(order_id)
        stored = await self._journal.get_order(order_id)
        if stored is None:  # pragma: no cover - orders are never deleted
            raise UnknownOrderError(f"order {order_id} is no longer in the journal")
        self.notify(stored)
        return stored

    async def known_fill_ids(self, order: Order) -> set[str]:
        """The ids of the fills booked for ``order`` (read once, then kept while it is open)."""
        cached = self._fill_ids.get(order.id)
        if cached is not None:
            return cached
        if order.filled_quantity == 0:
            return set()
        ids = {fill.fill_id for fill in await self._journal.fills(order.id)}
        self._fill_ids[order.id] = ids
        return ids

    def forget_fills(self, order_id: str) -> None:
        """Drop the kept fill ids of an order (another engine may have booked more)."""
        self._fill_ids.pop(order_id, None)

    def _remember_fills(self, committed: Order, fills: Iterable[Fill]) -> None:
        if committed.is_terminal:
            self._fill_ids.pop(committed.id, None)
            return
        ids = self._fill_ids.setdefault(committed.id, set())
        ids.update(fill.fill_id for fill in fills)

    # ---------------------------------------------------------------- writes

    async def commit(
        self,
        order: Order,
        *,
        events: Iterable[Event] = (),
        fills: Iterable[Fill] = (),
        new: bool = False,
        hold_check: bool = False,
    ) -> Order:
        """Commit ``order`` with its events and fills; the watchers hear of it afterwards.

        A change to a stored order goes through :meth:`write` (which reapplies it on a version
        conflict); only a new order's first commit calls this directly.
        """
        fills = tuple(fills)
        committed = await self._journal.record(
            Transition(
                order=order,
                events=tuple(events),
                fills=fills,
                new=new,
                hold_check=hold_check,
                minor_unit=minor_unit(self._venue.currency_decimals),
            )
        )
        assert committed.order is not None
        self.notify(committed.order)
        if fills:
            self._remember_fills(committed.order, fills)
        return committed.order

    async def record_events(self, *events: Event) -> None:
        """Commit events that change no order (a retry scheduled, retries exhausted)."""
        await self._journal.record(Transition(order=None, events=events))

    async def write(self, order: Order, plan: Planner) -> Order:
        """Commit what ``plan`` makes of ``order``: the one write path for stored orders.

        ``plan`` gets the order as last seen and returns the change (or None: nothing to do,
        the order is returned as it stands). If another engine or an operator wrote the order
        meanwhile (its version moved on), the stored order is reloaded, the watchers hear of it
        (an order ended elsewhere leaves the tracker) and ``plan`` decides again from it.
        """
        return (await self.write_ours(order, plan))[0]

    async def write_ours(self, order: Order, plan: Planner) -> tuple[Order, bool]:
        """:meth:`write`, also telling whether a change of this call's was committed."""
        current = order
        for attempt in range(1, REAPPLY_ATTEMPTS + 1):
            change = await plan(current)
            if change is None:
                return current, False
            try:
                committed = await self.commit(
                    change.order,
                    events=change.events,
                    fills=change.fills,
                    hold_check=change.hold_check,
                )
            except ConcurrentUpdateError:
                if attempt == REAPPLY_ATTEMPTS:
                    raise
                log.info("Order %s was written elsewhere meanwhile: reloading", order.id)
                current = await self.reload(order.id)
            else:
                return committed, True
        raise AssertionError("unreachable")  # pragma: no cover

    async def move(
        self,
        order: Order,
        status: OrderStatus,
        *,
        hold_check: bool = False,
        also: Callable[[Order], Iterable[Event]] | None = None,
        **changes: Any,
    ) -> Order:
        """Commit ``order`` in ``status`` with a status-changed event (and the events ``also``
        makes of the new order).

        The move was decided on ``order``'s status: if the stored order has left that status
        meanwhile (another engine moved it), the decision no longer holds and the stored order
        is returned unchanged; callers check the status they got.
        """
        return (await self.move_ours(order, status, hold_check=hold_check, also=also, **changes))[0]

    async def move_ours(
        self,
        order: Order,
        status: OrderStatus,
        *,
        hold_check: bool = False,
        also: Callable[[Order], Iterable[Event]] | None = None,
        **changes: Any,
    ) -> tuple[Order, bool]:
        """:meth:`move`, also telling whether this call's move was committed."""
        changes.setdefault("updated_at", self._clock.now())
        decided_on = order.status

        async def plan(current: Order) -> Change | None:
            if current.status is not decided_on:
                return None
            after = current.evolve(status, **changes)
            events: list[Event] = []
            if status is not current.status:
                events.append(OrderStatusChanged(after, current.status))
            if also is not None:
                events.extend(also(after))
            return Change(after, tuple(events), hold_check=hold_check)

        return await self.write_ours(order, plan)

    async def book(
        self, order: Order, snapshot: OrderSnapshot, *, timed_out: bool | None = None
    ) -> Order:
        """Book what the broker reported: new fills, broker id, status
        (:func:`~orderlane.booking.book_snapshot`, whose ``timed_out`` this passes on).

        If another process wrote the order meanwhile, the snapshot is booked on the stored order
        again (snapshots are cumulative, so booking one again never counts a fill twice).
        """

        async def plan(current: Order) -> Change | None:
            change = book_snapshot(
                current,
                snapshot,
                known_fill_ids=await self.known_fill_ids(current),
                now=self._clock.now(),
                venue_timezone=self.venue_timezone,
                currency_decimals=self._venue.currency_decimals,
                timed_out=timed_out,
            )
            if change is not None:
                _log_booking(current, change)
            return change

        return await self.write(order, plan)


def _log_booking(before: Order, change: Change) -> None:
    after = change.order
    if after.status is before.status:
        return
    if after.status is OrderStatus.REJECTED:
        log.warning("Order %s rejected: %s", before.id, printable(after.reason or ""))
    elif any(isinstance(event, OrderTimedOut) for event in change.events):
        log.warning("Order %s timed out; cancelled at the broker and FAILED", before.id)
