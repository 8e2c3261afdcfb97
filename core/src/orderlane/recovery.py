"""Recovery: on start, every order the journal left open is settled with the broker.

Before an engine accepts a signal it reconciles each non-terminal order of its account:

- CREATED (never sent) ends FAILED "not sent".
- SUBMITTING (the engine stopped while sending) becomes UNKNOWN and is looked up, like UNKNOWN
  orders without a broker id: found is adopted and tracked; absent ends FAILED "not sent" (or is
  sent once more with ``resubmit_after_crash``); "cannot tell" stays UNKNOWN, holding its
  instrument, and the tracker keeps looking.
- Orders the broker knows by id (SUBMITTED, PARTIALLY_FILLED, PENDING_CANCEL, UNKNOWN with a
  broker id) get their fills caught up through the batch status hook and go back to the tracker.

Nothing is lost and nothing is sent twice across a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs

from orderlane.blotter import Blotter
from orderlane.broker import Broker
from orderlane.clock import wall_now
from orderlane.config import EngineConfig
from orderlane.executor import NOT_SENT, Executor
from orderlane.journal import Journal
from orderlane.model import Order, OrderStatus

__all__ = ["Recovery", "RecoveryChange"]

log = logging.getLogger("orderlane.recovery")

#: How many instruments recovery works on at once.
RECOVERY_WIDTH = 64
T = TypeVar("T")


@attrs.frozen
class RecoveryChange:
    """What recovery did to one order."""

    order_id: str
    symbol: str
    before: OrderStatus
    after: OrderStatus
    action: str
    reason: str | None = None


class Recovery:
    """Settles the orders the journal left open, with the broker, before the engine trades."""

    def __init__(
        self,
        blotter: Blotter,
        executor: Executor,
        broker: Broker,
        journal: Journal,
        config: EngineConfig,
    ) -> None:
        self._blotter = blotter
        self._executor = executor
        self._broker = broker
        self._journal = journal
        self._config = config

    async def run(self) -> list[RecoveryChange]:
        """Settle every open order of the engine's account; returns one change per order."""
        open_orders = await self._journal.open_orders(self._config.account_id)
        if not open_orders:
            return []
        log.info("recovering %d open orders", len(open_orders))
        in_flight = [order for order in open_orders if order.broker_order_id is None]
        by_id = [order for order in open_orders if order.broker_order_id is not None]
        running = await self._running_owners(in_flight)
        left: dict[str, RecoveryChange] = {}
        for order in in_flight:
            owner = running.get(order.id)
            if owner is not None:
                # Another engine with a live heartbeat is sending this order: not ours to settle.
                left[order.id] = _change(order, order, f"left to running engine {owner[:8]}")
        unsent = [order for order in in_flight if order.id not in left]

        async def settle_unsent(order: Order) -> RecoveryChange:
            async with self._blotter.lock(order.id):
                after, action = await self._settle_unsent(order)
            self._blotter.notify(after)  # an unsettled order is looked up again by the tracker
            return _change(order, after, action)

        if self._broker.has_batch_lookup:  # one pass over the broker's inquiry for all
            results = await self._settle_all(unsent)
        else:
            results = await by_instrument(unsent, settle_unsent)
        settled = {change.order_id: change for change in results}
        changes = [left.get(order.id) or settled[order.id] for order in in_flight]
        changes.extend(await self._catch_up(by_id))
        for change in changes:
            if change.before is not change.after:
                log.info(
                    "recovered order %s: %s -> %s (%s)",
                    change.order_id,
                    change.before.value,
                    change.after.value,
                    change.action,
                )
        return changes

    async def _running_owners(self, orders: list[Order]) -> dict[str, str]:
        """Order id -> engine id, for the orders another running engine is sending.

        An engine that crashed leaves its session behind; recovery waits (at most one lease) for
        its heartbeat to lapse rather than settle orders a live engine may be sending.
        """
        journal = self._journal
        owners = await journal.order_owners([order.id for order in orders])
        sessions = await journal.other_sessions(self._config.account_id)
        suspects = {owner for owner in owners.values() if owner in sessions}
        if not suspects:
            return {}
        lease = self._config.engine_lease
        newest = max(sessions[owner] for owner in suspects)
        wait = (newest - wall_now()).total_seconds() + lease
        if wait > 0:
            log.info(
                "waiting up to %.1fs: %d open orders belong to engine sessions that may be alive",
                wait,
                sum(owner in suspects for owner in owners.values()),
            )
            await asyncio.sleep(wait)
        sessions = await journal.other_sessions(self._config.account_id)
        now = wall_now()
        alive = {
            s for s in suspects if s in sessions and (now - sessions[s]).total_seconds() < lease
        }
        await journal.forget_sessions(sorted(suspects - alive))
        return {order_id: owner for order_id, owner in owners.items() if owner in alive}

    async def _mark_unknown(self, order: Order) -> tuple[Order, str | None]:
        """Fail a CREATED order, mark a SUBMITTING one UNKNOWN (lock held).

        Returns the order now stored and the recovery's action when nothing is left to look up:
        the order never reached the broker, or another engine (recovering the same crash, or
        the one that was sending it) settled it first and its write stands.
        """
        blotter = self._blotter
        if order.status is OrderStatus.CREATED:
            failed = await blotter.move(order, OrderStatus.FAILED, reason=NOT_SENT)
            if failed.status is not OrderStatus.FAILED:
                return failed, "settled elsewhere"
            return failed, "never sent"
        if order.status is OrderStatus.SUBMITTING:
            order = await blotter.move(
                order,
                OrderStatus.UNKNOWN,
                reason="outcome unknown: the engine stopped while sending",
            )
        if order.status is not OrderStatus.UNKNOWN or order.broker_order_id is not None:
            return order, "settled elsewhere"
        return order, None

    async def _settle_unsent(self, order: Order) -> tuple[Order, str]:
        current, action = await self._mark_unknown(order)
        if action is not None:
            return current, action
        after = await self._executor.settle_by_lookup(current)
        return after, _lookup_action(current, after)

    async def _settle_all(self, orders: list[Order]) -> list[RecoveryChange]:
        """Settle the unsent orders with one batch lookup (pages of the inquiry, not orders)."""
        changes: dict[str, RecoveryChange] = {}
        unknown: list[tuple[Order, Order]] = []
        for order in orders:
            async with self._blotter.lock(order.id):
                current, action = await self._mark_unknown(order)
            if action is not None:
                changes[order.id] = _change(order, current, action)
            else:
                unknown.append((order, current))
        settled = await self._executor.settle_many_by_lookup([current for _, current in unknown])
        for before, current in unknown:
            looked_up, after = settled[current.id]
            # None: settled by another engine while the inquiry was read.
            action = "settled elsewhere" if looked_up is None else _lookup_action(looked_up, after)
            self._blotter.notify(after)
            changes[before.id] = _change(before, after, action)
        return [changes[order.id] for order in orders]

    async def _catch_up(self, orders: list[Order]) -> list[RecoveryChange]:
        if not orders:
            return []
        try:
            snapshots = await self._broker.order_statuses(orders)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "status inquiry during recovery failed: %s; the tracker retries",
                self._broker.describe(error),
            )
            snapshots = {}

        async def catch_up(order: Order) -> RecoveryChange:
            snapshot = snapshots.get(order.id)
            if snapshot is None:
                self._blotter.notify(order)
                return _change(order, order, "tracked; no status yet")
            try:
                async with self._blotter.lock(order.id):
                    after = await self._blotter.book(order, snapshot)
            except Exception as error:  # this order alone waits for a later answer
                log.error(
                    "Order %s: the broker's answer was not booked: %s",
                    order.id,
                    self._broker.describe(error),
                )
                self._blotter.notify(order)
                return _change(order, order, "tracked; answer not booked")
            self._blotter.notify(after)
            return _change(order, after, "caught up")

        return await by_instrument(orders, catch_up)


async def by_instrument(
    orders: Sequence[Order],
    work: Callable[[Order], Awaitable[T]],
    *,
    width: int = RECOVERY_WIDTH,
) -> list[T]:
    """``work(order)`` for every order; the results in the orders' order.

    Instruments are worked side by side (up to ``width`` at once), so their commits share the
    journal's group commits instead of waiting for one fsync each; the orders of one instrument
    are worked one after another, so a lookup that matches by attributes never races another
    order of the same instrument being adopted. The first failure cancels the rest and is raised.
    """
    lanes: dict[tuple[str, str], list[int]] = {}
    for index, order in enumerate(orders):
        lanes.setdefault((order.account_id, order.symbol), []).append(index)
    results: dict[int, T] = {}
    pending = iter(lanes.values())

    async def lane() -> None:
        for indexes in pending:
            for index in indexes:
                results[index] = await work(orders[index])

    tasks = [asyncio.ensure_future(lane()) for _ in range(min(width, len(lanes)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [results[index] for index in range(len(orders))]


def _lookup_action(order: Order, after: Order) -> str:
    action = {
        OrderStatus.UNKNOWN: "looked up: cannot tell yet",
        OrderStatus.FAILED: "looked up: absent",
    }.get(after.status, "looked up: found and adopted")
    if after.status is OrderStatus.SUBMITTING or after.attempts > order.attempts:
        action = "looked up: absent, sent again"
    return action


def _change(before: Order, after: Order, action: str) -> RecoveryChange:
    return RecoveryChange(
        order_id=before.id,
        symbol=before.symbol,
        before=before.status,
        after=after.status,
        action=action,
        reason=after.reason,
    )
