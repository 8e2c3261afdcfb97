"""An engine that dies mid-flight, for the recovery scenarios.

A crash is no clean shutdown: the order's flow stops dead between two steps and what the engine
held in memory is gone, while the journal keeps what it had committed and the venue keeps what
it had received. :class:`StallingJournal` stops the flow at a chosen point (its commit there
never returns), and :func:`abandon` then cancels the flow and drops the engine's connections
without the engine's own shutdown (no final poll, no flush of the order). The next engine opened
on the same database is the restart, which must settle what the crash left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from orderlane.engine import Engine
from orderlane.journal import Committed, Transition
from orderlane.journal.sql import SqlJournal
from orderlane.model import Order, OrderStatus

__all__ = ["CrashPoint", "StallingJournal", "abandon"]

CrashPoint = Literal[
    "after_created",  # CREATED is committed; the move to SUBMITTING never is
    "after_submitting",  # SUBMITTING is committed; the place request is never sent
    "before_answer",  # the venue answered the place; the answer (broker id) is never committed
]


class StallingJournal(SqlJournal):
    """A journal whose flow stops dead at a :data:`CrashPoint`; ``reached`` is set there.

    ``points`` gives some orders (by their signal id) a crash point of their own.
    """

    def __init__(
        self, url: str, at: CrashPoint, points: Mapping[str, CrashPoint] | None = None
    ) -> None:
        super().__init__(url)
        self.at = at
        self.points = dict(points or {})
        self.reached = asyncio.Event()
        #: How many flows stopped dead here so far.
        self.stalled = 0

    async def record(self, transition: Transition) -> Committed:
        order = transition.order
        if order is not None and self._at(order) == "before_answer" and order.broker_order_id:
            await self._stall()
        committed = await super().record(transition)
        if order is not None and self._stops_after(order):
            await self._stall()
        return committed

    def _at(self, order: Order) -> CrashPoint:
        return self.points.get(order.signal_id or "", self.at)

    def _stops_after(self, order: Order) -> bool:
        at = self._at(order)
        if at == "after_created":
            return order.status is OrderStatus.CREATED
        return at == "after_submitting" and order.status is OrderStatus.SUBMITTING

    async def _stall(self) -> None:
        self.stalled += 1
        self.reached.set()
        # Never resolved: the flow waits here until it is cancelled, as if the process died.
        await asyncio.get_running_loop().create_future()


async def abandon(engine: Engine, *flows: asyncio.Future[Any]) -> None:
    """Cancel ``flows`` and drop the engine's connections (tracker, adapter, event delivery,
    journal) without a clean shutdown: nothing of the flow is finished or rolled back.

    A flow's own outcome (its result or error, if it ended before the crash) stays on its task
    for the caller to inspect.
    """
    for flow in flows:
        flow.cancel()
    if flows:
        await asyncio.wait(flows)
    await engine.executor.stop()  # the order's settlement dies with the engine
    await engine.tracker.stop()
    await engine.broker.stop()
    await engine.events.stop()
    # A dead engine's heartbeat stops with it and lapses after one lease; the kit ends its
    # session at once instead of making every restart wait for that (and its heartbeat task
    # must not beat on against the closed journal while the next scenarios run on this loop).
    await engine._stop_heartbeat()
    await engine.journal.end_session()
    await engine.journal.close()
