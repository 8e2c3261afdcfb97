"""The tracker: follows every open order at the broker until it ends.

Each poll cycle asks the broker about all open orders at once through the batch status hook (one
request per page of the broker's inquiry, each taking an inquiry permit, so polling yields to
orders and cancels under load), books what changed, cancels orders open past their timeout, and
looks again for UNKNOWN orders the broker could not place yet. Where the adapter pushes updates,
the tracker books them as they come and polls only to close gaps: once at start, after the
stream reports a gap, and at a slow safety interval. Pushed and polled snapshots go through the
same deduplicating fill logic, so a fill seen both ways counts once.

An order whose send ended while the journal refused writes (a full disk) is held here as well,
with the broker's answer when there is one, and each cycle tries to store its outcome: once the
journal accepts writes again it is booked without a restart.

Only open orders are held in memory; an order leaves as soon as it ends, here or in another
engine on the journal (each cycle first reloads the copies that another engine or an operator
wrote). An order that ended with quantity left at the broker (FAILED on timeout, CANCELLED) stays
on a slow watch until the venue's trading day ends (or ``late_fill_window``): it joins the batch
status inquiry every ``late_fill_poll_interval``, so an execution the broker reports late is
still booked.

One order never holds up the others: a status answer is booked for each order on its own, and
the slow work of one order (a timeout's cancel and its retries, a lookup, a resend waiting for
its instrument) runs in a task of that order's, holding its lock only to commit, while the
cycles go on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime, time, timedelta
from typing import Any

from orderlane.blotter import Blotter
from orderlane.booking import TIMEOUT_REASON
from orderlane.broker import Broker
from orderlane.clock import Clock
from orderlane.config import EngineConfig
from orderlane.contract import CancelAccepted, Operation, StreamGap
from orderlane.errors import JournalError
from orderlane.executor import NOT_SENT, Executor, Stranded
from orderlane.journal import Journal, JournalFileLostError
from orderlane.model import Order, OrderSnapshot, OrderStatus

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
#: The tracker's work key of a batch lookup (order ids are uuids: no clash).
_BATCH_LOOKUP = "batch-lookup"
#: How many ended orders' broker ids are remembered (until the venue's day ends), so late
#: pushed fills still land.
_RECENTLY_ENDED = 4096


class OrderTracker:
    """Follows the engine's open orders; see the module docstring."""

    def __init__(
        self,
        blotter: Blotter,
        executor: Executor,
        broker: Broker,
        journal: Journal,
        clock: Clock,
        config: EngineConfig,
    ) -> None:
        self._blotter = blotter
        self._executor = executor
        self._broker = broker
        self._journal = journal
        self._clock = clock
        self._config = config
        blotter.watch(self.observe)
        self._open: dict[str, Order] = {}
        self._by_broker_id: dict[str, str] = {}
        #: Broker id -> (order id, until when): an ended order a pushed update may still be
        #: for, until the end of the venue's trading day it was sent on (a later day's order
        #: may carry the same id at a venue whose numbers repeat across days; the slow watch's
        #: polls still catch an execution reported later).
        self._ended: collections.OrderedDict[str, tuple[str, datetime]] = collections.OrderedDict()
        self._early: dict[str, tuple[float, OrderSnapshot]] = {}
        self._last_lookup: dict[str, float] = {}
        #: Orders that ended with quantity left, watched for late executions until a time.
        self._watch: dict[str, tuple[Order, datetime]] = {}
        self._watch_asked = float("-inf")
        #: The slow work running for an order (timeout, lookup), at most one per order.
        self._work: dict[str, asyncio.Task[object]] = {}
        #: Orders whose status answer waits for their lock, to be booked once it is free.
        self._deferred: set[str] = set()
        #: Orders whose send ended while the journal refused writes, by order id (the
        #: executor notes them; this stores their outcome once the journal takes writes).
        self._stranded: dict[str, Stranded] = executor.stranded
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

    @property
    def stranded(self) -> list[str]:
        """Ids of the orders whose outcome waits for the journal to accept writes again."""
        return list(self._stranded)

    @property
    def watched(self) -> list[Order]:
        """Orders that ended with quantity left, still asked about for late executions."""
        return [order for order, _ in self._watch.values()]

    # ---------------------------------------------------------------- bookkeeping

    def observe(self, order: Order) -> None:
        """Called after every commit of an order: follow it while it is open."""
        if order.is_terminal:
            self._watch_late_fills(order)
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
        broker_id = order.broker_order_id
        if broker_id is not None:
            if self._by_broker_id.get(broker_id) == order.id:
                del self._by_broker_id[broker_id]
            until = self._venue_day_end(order.submitted_at or order.created_at)
            if order.is_terminal and until > self._clock.now():
                self._ended[broker_id] = (order.id, until)
                while len(self._ended) > _RECENTLY_ENDED:
                    self._ended.popitem(last=False)

    def _watch_late_fills(self, order: Order) -> None:
        """Keep an order that ended with quantity left at the broker on the slow watch."""
        watched = self._watch.get(order.id)
        if (
            order.broker_order_id is None
            or order.filled_quantity >= order.quantity
            or order.status not in (OrderStatus.FAILED, OrderStatus.CANCELLED)
        ):
            self._watch.pop(order.id, None)
            return
        if watched is not None:
            self._watch[order.id] = (order, watched[1])
            return
        until = self._late_fill_horizon()
        if until > self._clock.now():
            self._watch[order.id] = (order, until)

    def _late_fill_horizon(self) -> datetime:
        """Until when an order ending now is watched for executions reported late: the end of
        the venue's trading day, or ``late_fill_window`` from now."""
        window = self._config.late_fill_window
        if window is None:
            return self._venue_day_end()
        return self._clock.now() + timedelta(seconds=window)

    def _venue_day_end(self, moment: datetime | None = None) -> datetime:
        """The end of the venue's trading day of ``moment`` (default: now), midnight in its time
        zone."""
        venue = self._blotter.venue_timezone
        local = (moment or self._clock.now()).astimezone(venue)
        return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=venue)

    def _ended_order(self, broker_id: str) -> str | None:
        """The ended order ``broker_id`` names, while a pushed update may still be for it."""
        ended = self._ended.get(broker_id)
        if ended is None:
            return None
        order_id, until = ended
        if until <= self._clock.now():
            del self._ended[broker_id]
            return None
        return order_id

    def _due_watched(self) -> list[Order]:
        """The watched orders to ask about in this cycle (all at once, now and then)."""
        if not self._watch:
            return []
        now = self._clock.now()
        for order_id in [k for k, (_, until) in self._watch.items() if until <= now]:
            del self._watch[order_id]
        moment = self._clock.monotonic()
        if moment - self._watch_asked < self._config.late_fill_poll_interval:
            return []
        self._watch_asked = moment
        return [order for order, _ in self._watch.values()]

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
            order = await self._blotter.get(order_id)
        return order

    async def apply(self, order_id: str, snapshot: OrderSnapshot, *, pushed: bool = False) -> None:
        """Book a broker snapshot for one order, under the order's lock.

        One order's answer that cannot be booked is logged with the order's id and leaves that
        order as it is (the next answer settles it); it never stops the others' booking.
        ``pushed``: the snapshot came from the push stream and is checked against the order here
        (a polled one was checked by the ``Broker`` facade).
        """
        try:
            async with self._blotter.lock(order_id):
                order = await self._current(order_id)
                if order is None:
                    return
                if pushed:
                    self._broker.check(snapshot, "orderlane_order_updates", order)
                await self._blotter.book(order, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error(
                "Order %s: the broker's answer was not booked (%s); left as it is until a "
                "later answer",
                order_id,
                self._broker.describe(error),
            )

    async def _apply_deferred(self, order_id: str, snapshot: OrderSnapshot) -> None:
        try:
            await self.apply(order_id, snapshot)
        finally:
            self._deferred.discard(order_id)

    def _start_work(self, order_id: str, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` for one order in a task of its own, unless work for it is running."""
        if order_id in self._work:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._work[order_id] = task

        def done(finished: asyncio.Task[object]) -> None:
            if self._work.get(order_id) is finished:
                del self._work[order_id]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("Order %s: tracker work failed", order_id, exc_info=finished.exception())

        task.add_done_callback(done)

    # ---------------------------------------------------------------- stranded sends

    async def settle_stranded(self) -> None:
        """Store what is known of each stranded order, now that the journal may take writes;
        those it still refuses stay for the next cycle."""
        await asyncio.gather(*(self._settle_one_stranded(key) for key in list(self._stranded)))

    def _settle_stranded_due(self) -> None:
        # Each in a task of its own: a write held up for a whole statement timeout (a lock on
        # PostgreSQL) never holds up the cycle, and the orders' writes share group commits.
        for order_id in list(self._stranded):
            self._start_work(order_id, self._settle_one_stranded(order_id))

    async def _settle_one_stranded(self, order_id: str) -> None:
        stranded = self._stranded.get(order_id)
        lock = self._blotter.lock(order_id)
        if stranded is None or lock.locked():
            return  # settled meanwhile, or being written (a resolve by hand): looked at again
        try:
            async with lock:
                await self._settle_stranded(order_id, stranded)
        except asyncio.CancelledError:
            raise
        except JournalFileLostError:
            return  # logged once when it was found; it never comes back
        except JournalError as error:
            if not stranded.told:
                stranded.told = True
                log.warning(
                    "Order %s: its outcome still waits for the journal (%s)", order_id, error
                )
            return
        except Exception:
            log.exception("Order %s: storing its outcome failed", order_id)
            return
        self._stranded.pop(order_id, None)

    async def _settle_stranded(self, order_id: str, stranded: Stranded) -> None:
        blotter, executor = self._blotter, self._executor
        stored = await blotter.get(order_id)
        if stored is None:
            return  # its first commit never happened: nothing of it exists
        if stored.status is OrderStatus.CREATED:
            stored = await blotter.move(
                stored, OrderStatus.FAILED, reason=f"{NOT_SENT} (the journal refused the send)"
            )
        elif stranded.answer is not None:
            stored = await executor.book_answer(stored, stranded.answer)
        elif stored.status is OrderStatus.SUBMITTING:
            if stranded.at_broker:
                reason = "outcome unknown: the journal refused to store the send's outcome"
                stored = await blotter.move(stored, OrderStatus.UNKNOWN, reason=reason)
            else:
                status, reason = stranded.ending or (OrderStatus.FAILED, NOT_SENT)
                stored = await blotter.move(stored, status, reason=reason)
        else:
            self.observe(stored)  # moved on meanwhile (by hand, by another engine)
        log.info("Order %s: its outcome is stored now (%s)", order_id, stored.status.value)

    def report_stranded(self) -> None:
        """Say which orders' outcome is not stored (the engine stops): recovery settles them
        with the broker at the next start."""
        for order_id in self._stranded:
            log.error(
                "Order %s: its outcome is not stored (the journal refused writes); the next "
                "start of an engine on this journal, or orderlane recover, settles it with the "
                "broker",
                order_id,
            )
        self._stranded.clear()

    async def settle_work(self) -> None:
        """Wait until the per-order work started so far (timeouts, lookups) is done."""
        while self._work:
            await asyncio.wait(list(self._work.values()))

    # ---------------------------------------------------------------- running

    async def start(self, *, poll: bool = True) -> None:
        """Consume the adapter's push stream, if any, and (``poll``) run the poll loop."""
        self._wake = asyncio.Event()
        stream = self._broker.order_updates()
        if stream is not None:
            self.push_active = True
            self._spawn(self._consume(stream))
        if poll:
            self._spawn(self._run())

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks[:] + list(self._work.values()), []
        self._work.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.push_active = False

    async def _run(self) -> None:
        config = self._config
        clock = self._clock
        assert self._wake is not None
        last_inquiry = float("-inf")
        woken = True
        while True:
            # A wake that comes while this cycle runs (a gap pushed during the poll) is kept
            # for the next cycle, not cleared with this one's.
            woken = woken or self._wake.is_set()
            self._wake.clear()
            # Timeouts and lookups are checked every poll interval; with push, the broker is
            # asked for statuses only after a gap (a wake) or once per safety interval.
            inquire = (
                not self.push_active
                or woken
                or clock.monotonic() - last_inquiry >= config.push_safety_interval
            )
            try:
                await self.poll_once(statuses=inquire, wait=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poll cycle failed; the next one retries")
            if inquire:
                last_inquiry = clock.monotonic()
            interval = config.poll_interval
            sleeper = asyncio.ensure_future(self._clock.sleep(interval))
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
        order_id = self._by_broker_id.get(broker_id) or self._ended_order(broker_id)
        if order_id is not None:
            await self.apply(order_id, snapshot, pushed=True)
            return
        # Not known yet: the place answer may still be on its way. Held until the id is
        # stored (observe); the next poll covers it if that never happens.
        now = self._clock.monotonic()
        self._early[broker_id] = (now, snapshot)
        horizon = now - self._config.early_update_hold
        for stale in [key for key, (at, _) in self._early.items() if at < horizon]:
            del self._early[stale]

    # ---------------------------------------------------------------- one cycle

    async def poll_once(self, *, statuses: bool = True, wait: bool = True) -> None:
        """One cycle: statuses of all open orders (unless ``statuses`` is false: with push they
        are asked only now and then) and of watched ones that are due, then timeouts, then
        lookups of unplaced UNKNOWN orders.

        Timeouts and lookups run as per-order work; ``wait`` waits for it to finish (the loop
        does not: the next cycle comes on time while one order's cancel is retried).
        """
        self.cycles += 1
        self._settle_stranded_due()
        await self._reload_copies()
        polled = [o for o in self._open.values() if o.broker_order_id and o.status in _POLLED]
        watched = self._due_watched() if statuses else []
        if (polled or watched) and statuses:
            try:
                snapshots = await self._broker.order_statuses(polled + watched)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "status inquiry failed: %s; the next cycle asks again",
                    self._broker.describe(error),
                )
                snapshots = {}
            now: list[Coroutine[Any, Any, None]] = []
            for order_id, snapshot in snapshots.items():
                if order_id not in self._open and order_id not in self._watch:
                    continue
                if not self._blotter.lock(order_id).locked():
                    now.append(self.apply(order_id, snapshot))
                elif order_id not in self._deferred:
                    # Someone holds the order (a cancel by hand, a resend): book it once they
                    # are done, not holding up the others meanwhile.
                    self._deferred.add(order_id)
                    self._spawn(self._apply_deferred(order_id, snapshot))
            await asyncio.gather(*now)
        self._time_out_due()
        self._look_up_due()
        if wait:
            await self.settle_work()

    async def _reload_copies(self) -> None:
        """Replace the copies another engine or an operator wrote since; drop the orders that
        ended elsewhere (they are no longer this engine's to follow)."""
        if not self._open:
            return
        stored = {o.id: o for o in await self._journal.open_orders(self._config.account_id)}
        for order_id, copy in list(self._open.items()):
            fresh = stored.get(order_id)
            if fresh is None:
                fresh = await self._blotter.get(order_id)
            if fresh is not None and fresh.version > self._open.get(order_id, copy).version:
                if fresh.is_terminal:
                    log.info("Order %s was ended elsewhere (%s)", order_id, fresh.status.value)
                self._blotter.forget_fills(order_id)
                self.observe(fresh)

    def _time_out_due(self) -> None:
        limit = self._config.order_timeout
        now = self._clock.now()
        for order in list(self._open.values()):
            submitted = order.submitted_at or order.created_at
            if order.status in _TIMES_OUT and (now - submitted).total_seconds() >= limit:
                self._start_work(order.id, self.time_out(order.id))

    async def time_out(self, order_id: str) -> None:
        """Cancel an order open past its timeout; keep its fills; end it FAILED ``timeout``.

        If the broker does not confirm the cancel, the order goes UNKNOWN (reason starting with
        ``timeout``) and the broker's status settles it later; it is never dropped silently.
        The order's lock is held only to commit, never across the broker's requests and the
        waits between their retries.
        """
        blotter, executor = self._blotter, self._executor
        lock = blotter.lock(order_id)
        async with lock:
            order = await self._current(order_id)
            if order is None or order.status not in _TIMES_OUT:
                return
            log.warning(
                "Order %s still open %gs after submission: cancelling",
                order.id,
                self._config.order_timeout,
            )
            if order.status is not OrderStatus.PENDING_CANCEL:
                order = await blotter.move(order, OrderStatus.PENDING_CANCEL)
            if order.status is not OrderStatus.PENDING_CANCEL:
                return  # it moved on elsewhere meanwhile; the next cycle looks again
        pending = order
        try:
            result = await executor.retrying(
                Operation.CANCEL, pending, lambda: self._broker.cancel_order(pending)
            )
            snapshot = result.snapshot if isinstance(result, CancelAccepted) else None
            if snapshot is None or not snapshot.status.is_terminal:
                snapshot = await executor.retrying(
                    Operation.STATUS, pending, lambda: self._broker.order_status(pending)
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = f"{TIMEOUT_REASON}: cancel not confirmed ({self._broker.describe(error)})"
            async with lock:
                current = await self._current(order_id)
                if current is not None and current.status is OrderStatus.PENDING_CANCEL:
                    await blotter.move(current, OrderStatus.UNKNOWN, reason=reason)
            return
        async with lock:
            current = await self._current(order_id)
            if current is None:  # pragma: no cover - orders are never deleted
                return
            after = await blotter.book(current, snapshot, timed_out=True)
            if after.status is OrderStatus.PENDING_CANCEL:
                reason = f"{TIMEOUT_REASON}: cancel not confirmed (the broker still shows it open)"
                await blotter.move(after, OrderStatus.UNKNOWN, reason=reason)

    def _look_up_due(self) -> None:
        now = self._clock.monotonic()
        interval = self._config.lookup_interval
        due = [
            order
            for order in list(self._open.values())
            if order.status is OrderStatus.UNKNOWN
            and order.broker_order_id is None
            and now - self._last_lookup.get(order.id, float("-inf")) >= interval
        ]
        for order in due:
            self._last_lookup[order.id] = now
        if due and self._broker.has_batch_lookup:
            # One pass over the broker's inquiry for all of them, in a task of its own.
            free = [order for order in due if order.id not in self._work]
            if free:
                self._start_work(_BATCH_LOOKUP, self._executor.settle_many_by_lookup(free))
            return
        for order in due:
            self._start_work(order.id, self._look_up(order.id))

    async def _look_up(self, order_id: str) -> None:
        """Look an UNKNOWN order up again (its own task: a resend after Absent may wait for
        its instrument, which holds up no other order)."""
        async with self._blotter.lock(order_id):
            current = await self._current(order_id)
            if (
                current is not None
                and current.status is OrderStatus.UNKNOWN
                and current.broker_order_id is None
            ):
                await self._executor.settle_by_lookup(current)
