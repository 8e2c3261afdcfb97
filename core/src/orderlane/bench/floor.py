"""The floor under ``orderlane bench latency``: the journal's own statements for one order, with
nothing of the engine around them.

Per order the engine commits what the raw baseline commits (the order's insert and two updates)
and, in the same transactions, what the journal keeps beside it: the order's events, the fill,
the position it moves. :class:`JournalFloor` runs exactly those statements (the journal's own
SQL and value binding, :class:`~orderlane.journal.fastpath.FastPath`) on the bare ``sqlite3``
driver at the same durability, in the same three commits, with every row and event payload
built before the clock starts. It runs them twice over:

- one thread, as the raw baseline runs: what the statements and their pages cost by themselves;
- one thread hop per commit, as the journal runs them (each commit handed to a thread of its
  own, its end handed back to the event loop): what the journal's threading adds to that.

Neither runs any engine logic, so the engine's p50 can only be above the second figure. Where
the second is already near the latency goal, no trimming of the engine's own Python reaches the
goal; only fewer pages per order or fewer hand-offs per commit would.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy.dialects import sqlite as sqlite_dialect

from orderlane.events import (
    Event,
    OrderCreated,
    OrderFilled,
    OrderStatusChanged,
    OrderSubmitted,
    PositionChanged,
)
from orderlane.journal.fastpath import FastPath
from orderlane.journal.rows import fill_row, order_row, order_state_row, position_row
from orderlane.journal.transitions import payload_texts
from orderlane.model import Fill, Order, OrderStatus, Signal
from orderlane.money import minor_unit
from orderlane.positions import Position

__all__ = ["JournalFloor"]

#: One commit: what runs on the driver's cursor between BEGIN IMMEDIATE and COMMIT.
Commit = Callable[[Any], None]


class JournalFloor:
    """The journal's statements for one order at a time on a bare ``sqlite3`` connection."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], price: Decimal, commission: Decimal
    ) -> None:
        self._conn = connect()
        self._fast = FastPath(sqlite_dialect.dialect())
        self._price = price
        self._commission = commission
        self._engine_id = secrets.token_hex(8)
        self._positions: dict[str, Position] = {}
        self._queue: queue.SimpleQueue[tuple[list[Commit], asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- building (untimed)

    def plan(self, signal: Signal) -> list[Commit]:
        """The three commits of one order, every row and payload built now."""
        fast = self._fast
        now = datetime.now(UTC)
        created = Order.from_signal(signal, account_id="floor", now=now).evolve(version=1)
        submitting = created.evolve(
            OrderStatus.SUBMITTING, attempts=1, submitted_at=now, updated_at=now, version=2
        )
        fill = Fill(
            fill_id=f"FLOOR-{created.id[:8]}",
            order_id=created.id,
            account_id=created.account_id,
            session_id=created.session_id,
            symbol=created.symbol,
            side=created.side,
            quantity=created.quantity,
            price=self._price,
            commission=self._commission,
            executed_at=now,
            trading_day=now.date(),
        )
        filled = submitting.with_fills([fill]).evolve(
            OrderStatus.FILLED, broker_order_id=fill.fill_id, updated_at=now, version=3
        )
        before = self._positions.get(created.symbol) or Position(
            account_id=created.account_id, symbol=created.symbol, version=0
        )
        change = before.apply(fill, created.symbol_name, minor_unit(0))
        after = attrs.evolve(change.position, version=before.version + 1)
        self._positions[created.symbol] = after
        key = (created.account_id, created.symbol)

        def events(order: Order | None, *items: Event) -> list[tuple[Any, ...]]:
            stamp = order.updated_at if order is not None else now
            return [
                fast.event_row(item.order_id, item.type, text, stamp)
                for item, text in zip(items, payload_texts(items), strict=True)
            ]

        first = {**order_row(created), "engine_id": self._engine_id}
        second = {**order_state_row(submitting), "engine_id": self._engine_id}
        third = {**order_state_row(filled), "engine_id": self._engine_id}
        rows = (
            events(created, OrderCreated(created)),
            events(submitting, OrderStatusChanged(submitting, OrderStatus.CREATED)),
            events(
                filled,
                OrderSubmitted(filled),
                OrderStatusChanged(filled, OrderStatus.SUBMITTING),
                OrderFilled(filled, fill),
                PositionChanged(after, fill, change.realized_pnl),
            ),
        )
        flat = {
            **position_row(Position(account_id=created.account_id, symbol=created.symbol)),
            "version": 0,
        }
        booked, moved = fill_row(fill), position_row(after)

        def insert(cursor: Any) -> None:
            fast.insert_order(cursor, first)
            fast.write_events(cursor, rows[0])

        def send(cursor: Any) -> None:
            fast.update_order(cursor, second, created.id, 1, key)
            fast.write_events(cursor, rows[1])

        def book(cursor: Any) -> None:
            fast.update_order(cursor, third, created.id, 2)
            if fast.position(cursor, *key) is None:
                fast.insert_position(cursor, flat)
                fast.position(cursor, *key)
            fast.insert_fill(cursor, booked)
            if not fast.update_position(cursor, moved, *key, before.version):
                raise AssertionError("the floor lost its position row")
            fast.write_events(cursor, rows[2])

        return [insert, send, book]

    # ---------------------------------------------------------------- running (timed)

    def _commit(self, work: Commit) -> None:
        cursor = self._conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            work(cursor)
            cursor.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.rollback()
            raise

    def run(self, commits: list[Commit]) -> None:
        """The order's commits, one after another, on this thread."""
        for work in commits:
            self._commit(work)

    async def run_hopped(self, commits: list[Commit]) -> None:
        """The order's commits, each handed to the floor's thread and awaited, as the journal
        hands its commits to its writer thread."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._serve, name="orderlane-floor")
            self._thread.start()
        assert self._loop is not None
        for work in commits:
            done = self._loop.create_future()
            self._queue.put(([work], done))
            await done

    def _serve(self) -> None:
        assert self._loop is not None
        while (item := self._queue.get()) is not None:
            works, done = item
            try:
                for work in works:
                    self._commit(work)
            except BaseException as error:  # handed to the awaiting side
                self._loop.call_soon_threadsafe(_settle, done, error)
            else:
                self._loop.call_soon_threadsafe(_settle, done, None)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._conn.close()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    """End the awaiting side's wait (unless it gave up meanwhile)."""
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
