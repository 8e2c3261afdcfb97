"""The tracker: follows every open order at the broker until it ends.

Each poll cycle asks the broker about all open orders at once through the batch status hook (one
request per page of the broker's inquiry, each taking an inquiry permit, so polling yields to
orders and cancels under load), books what changed, cancels orders open past their timeout, and
looks again for UNKNOWN orders the broker could not place yet. Where the adapter pushes updates,
the tracker books them as they come and polls only to close gaps: once at start, after the
stream reports a gap, and at a slow safety interval. Pushed and polled snapshots go through the
same deduplicating fill logic, so a fill seen both ways counts once.

Only open orders are held in memory; an order leaves as soon as it ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import TYPE_CHECKING

from orderlane.broker import CancelAccepted, StreamGap
from orderlane.model import Order, OrderSnapshot, OrderStatus
from orderlane.retry import Operation

if TYPE_CHECKING:
    from orderlane.engine import Engine

__all__ = ["OrderTracker"]

log = logging.getLogger("orderlane.tracker")

#: Statuses the tracker follows with status inquiries (UNKNOWN only once it has a broker id).
_POLLED = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.UNKNOWN,
    }
)
_TIMES_OUT = frozenset(
    {OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL}
)
#: How many ended orders' broker ids are remembered, so late pushed fills still land.
_RECENTLY_ENDED = 4096


class OrderTracker:
    """Follows the engine's open orders; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._open: dict[str, Order] = {}
        self._by_broker_id: dict[str, str] = {}
        self._ended: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._early: dict[str, tuple[float, OrderSnapshot]] = {}
        self._last_lookup: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self.push_active = False
        #: Poll cycles run so far.
        self.cycles = 0

    def __len__(self) -> int:
        return len(self._open)

    @property
    def orders(self) -> list[Order]:
        """The open orders being followed, as last committed."""
        return list(self._open.values())

    # ---------------------------------------------------------------- bookkeeping

    def observe(self, order: Order) -> None:
        """Called after every commit of an order: follow it while it is open."""
        if order.is_terminal or order.status in (OrderStatus.CREATED, OrderStatus.SUBMITTING):
            self._forget(order)
            return
        self._open[order.id] = order
        if order.broker_order_id is None:
            return
        self._by_broker_id[order.broker_order_id] = order.id
        early = self._early.pop(order.broker_order_id, None)
        if early is not None:
            # A pushed notice beat the place answer; book it now that the id is known.
            self._spawn(self.apply(order.id, early[1], pushed=True))

    def _forget(self, order: Order) -> None:
        self._open.pop(order.id, None)
        self._last_lookup.pop(order.id, None)
        if order.broker_order_id is not None:
            self._by_broker_id.pop(order.broker_order_id, None)
            if order.is_terminal:
                self._ended[order.broker_order_id] = order.id
                while len(self._ended) > _RECENTLY_ENDED:
                    self._ended.popitem(last=False)

    def _spawn(self, coroutine: collections.abc.Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.append(task)
        task.add_done_callback(self._tasks_done)

    def _tasks_done(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tracker task failed", exc_info=task.exception())

    async def _current(self, order_id: str) -> Order | None:
        order = self._open.get(order_id)
        if order is None:
            order = await self._engine.journal.get_order(order_id)
        return order

    async def apply(self, order_id: str, snapshot: OrderSnapshot, *, pushed: bool = False) -> None:
        """Book a broker snapshot for one order, under the order's lock.

        One order's answer that cannot be booked is logged with the order's id and leaves that
        order as it is (the next answer settles it); it never stops the others' booking.
        ``pushed``: the snapshot came from the push stream and is checked against the order here
        (a polled one was checked by the ``Broker`` facade).
        """
        try:
            async with self._engine.order_lock(order_id):
                order = await self._current(order_id)
                if order is None:
                    return
                if pushed:
                    self._engine.broker.check(snapshot, "orderlane_order_updates", order)
                await self._engine.executor.apply_snapshot(order, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error(
                "Order %s: the broker's answer was not booked (%s: %s); left as it is until a "
                "later answer",
                order_id,
                type(error).__name__,
                error,
            )

    # ---------------------------------------------------------------- running

    async def start(self, *, poll: bool = True) -> None:
        """Consume the adapter's push stream, if any, and (``poll``) run the poll loop."""
        self._wake = asyncio.Event()
        stream = self._engine.broker.order_updates()
        if stream is not None:
            self.push_active = True
            self._spawn(self._consume(stream))
        if poll:
            self._spawn(self._run())

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks[:], []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.push_active = False

    async def _run(self) -> None:
        config = self._engine.config
        clock = self._engine.clock
        assert self._wake is not None
        last_inquiry = float("-inf")
        woken = True
        while True:
            # Timeouts and lookups are checked every poll interval; with push, the broker is
            # asked for statuses only after a gap (a wake) or once per safety interval.
            inquire = (
                not self.push_active
                or woken
                or clock.monotonic() - last_inquiry >= config.push_safety_interval
            )
            try:
                await self.poll_once(statuses=inquire)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll cycle failed; the next one retries")
            if inquire:
                last_inquiry = clock.monotonic()
            interval = config.poll_interval
            self._wake.clear()
            sleeper = asyncio.ensure_future(self._engine.clock.sleep(interval))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
            woken = self._wake.is_set()

    async def _consume(self, stream: collections.abc.AsyncIterator[object]) -> None:
        if self._wake is not None:
            self._wake.set()  # one poll closes whatever happened before the stream was up
        try:
            async for item in stream:
                if isinstance(item, StreamGap):
                    log.info("push stream gap (%s): polling once", item.reason or "reconnect")
                    if self._wake is not None:
                        self._wake.set()
                elif isinstance(item, OrderSnapshot):
                    await self._on_push(item)
                else:
                    log.warning("push stream yielded %s; ignored", type(item).__name__)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("push stream failed; falling back to polling")
        finally:
            self.push_active = False
            if self._wake is not None:
                self._wake.set()

    async def _on_push(self, snapshot: OrderSnapshot) -> None:
        broker_id = snapshot.broker_order_id
        if broker_id is None:
            log.warning("pushed snapshot without a broker order id; ignored")
            return
        order_id = self._by_broker_id.get(broker_id) or self._ended.get(broker_id)
        if order_id is not None:
            await self.apply(order_id, snapshot, pushed=True)
            return
        # Not known yet: the place answer may still be on its way. Held until the id is
        # stored (observe); the next poll covers it if that never happens.
        now = self._engine.clock.monotonic()
        self._early[broker_id] = (now, snapshot)
        horizon = now - self._engine.config.early_update_hold
        for stale in [key for key, (at, _) in self._early.items() if at < horizon]:
            del self._early[stale]

    # ---------------------------------------------------------------- one cycle

    async def poll_once(self, *, statuses: bool = True) -> None:
        """One cycle: statuses of all open orders (unless ``statuses`` is false: with push they
        are asked only now and then), then timeouts, then lookups of unplaced UNKNOWN orders."""
        self.cycles += 1
        engine = self._engine
        polled = [o for o in self._open.values() if o.broker_order_id and o.status in _POLLED]
        if polled and statuses:
            try:
                snapshots = await engine.broker.order_statuses(polled)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("status inquiry failed: %s; the next cycle asks again", error)
                snapshots = {}
            for order_id, snapshot in snapshots.items():
                if order_id in self._open:
                    await self.apply(order_id, snapshot)
        await self._time_out_due()
        await self._look_up_due()

    async def _time_out_due(self) -> None:
        engine = self._engine
        limit = engine.config.order_timeout
        now = engine.clock.now()
        for order in list(self._open.values()):
            submitted = order.submitted_at or order.created_at
            if order.status in _TIMES_OUT and (now - submitted).total_seconds() >= limit:
                await self.time_out(order.id)

    async def time_out(self, order_id: str) -> None:
        """Cancel an order open past its timeout; keep its fills; end it FAILED ``timeout``.

        If the broker does not confirm the cancel, the order goes UNKNOWN (reason starting with
        ``timeout``) and the broker's status settles it later; it is never dropped silently.
        """
        from orderlane.executor import TIMEOUT_REASON, describe_error

        engine = self._engine
        executor = engine.executor
        async with engine.order_lock(order_id):
            order = await self._current(order_id)
            if order is None or order.status not in _TIMES_OUT:
                return
            log.warning(
                "Order %s still open %gs after submission: cancelling",
                order.id,
                engine.config.order_timeout,
            )
            if order.status is not OrderStatus.PENDING_CANCEL:
                order = await executor.move(order, OrderStatus.PENDING_CANCEL)
            pending = order
            try:
                result = await executor.retrying(
                    Operation.CANCEL, pending, lambda: engine.broker.cancel_order(pending)
                )
                snapshot = result.snapshot if isinstance(result, CancelAccepted) else None
                if snapshot is None or not snapshot.status.is_terminal:
                    snapshot = await executor.retrying(
                        Operation.STATUS, pending, lambda: engine.broker.order_status(pending)
                    )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                reason = f"{TIMEOUT_REASON}: cancel not confirmed ({describe_error(error)})"
                await executor.move(order, OrderStatus.UNKNOWN, reason=reason)
                return
            after = await executor.apply_snapshot(order, snapshot, timed_out=True)
            if after.status is OrderStatus.PENDING_CANCEL:
                reason = f"{TIMEOUT_REASON}: cancel not confirmed (the broker still shows it open)"
                await executor.move(after, OrderStatus.UNKNOWN, reason=reason)

    async def _look_up_due(self) -> None:
        engine = self._engine
        now = engine.clock.monotonic()
        interval = engine.config.lookup_interval
        for order in list(self._open.values()):
            if order.status is not OrderStatus.UNKNOWN or order.broker_order_id is not None:
                continue
            if now - self._last_lookup.get(order.id, float("-inf")) < interval:
                continue
            self._last_lookup[order.id] = now
            async with engine.order_lock(order.id):
                current = await self._current(order.id)
                if current is not None and current.status is OrderStatus.UNKNOWN:
                    await engine.recovery.settle(current)
