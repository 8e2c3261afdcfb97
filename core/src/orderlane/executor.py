"""The executor: a signal becomes an order, durable before it is sent, and the answer is booked.

Flow of one order (each arrow a commit before the next step)::

    validate -> CREATED -> SUBMITTING -> place (retried) -> SUBMITTED | PARTIALLY_FILLED | FILLED
                                                          | REJECTED | FAILED | UNKNOWN

A place whose outcome is unknown moves the order to UNKNOWN and asks the broker before anything
is sent again: found is adopted, confirmed absent is retried (or fails, after an unexpected
error), and "cannot tell" stays UNKNOWN for recovery to settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import attrs

from orderlane.blotter import Blotter
from orderlane.broker import Broker
from orderlane.clock import Clock
from orderlane.config import EngineConfig
from orderlane.contract import (
    Absent,
    CancelAccepted,
    CannotTell,
    Capability,
    ErrorClass,
    Found,
    LookupResult,
    LookupWindow,
    NothingToCancel,
    Operation,
    RetryConfig,
)
from orderlane.errors import (
    BrokerError,
    DuplicateSignalError,
    JournalError,
    OrderRejectedError,
    OrderRetryExhaustedError,
    OrderVetoedError,
)
from orderlane.events import (
    Event,
    OrderCreated,
    RetryExhausted,
    RetryScheduled,
)
from orderlane.hooks import Hooks
from orderlane.journal import (
    ConcurrentUpdateError,
    InstrumentHeldError,
    Journal,
    JournalFileLostError,
    SignalTakenError,
)
from orderlane.model import (
    TRANSITIONS,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
)
from orderlane.retry import run_with_retry

__all__ = ["NOT_SENT", "Executor", "Stranded", "UnbookedAnswerError"]

log = logging.getLogger("orderlane.executor")
#: What becomes of a looked-up order is logged as recovery's (docs/operations.md).
recovery_log = logging.getLogger("orderlane.recovery")
T = TypeVar("T")
#: The reason of an order ended without having been sent (the broker never had it).
NOT_SENT = "not sent"


class _RetryAfterAbsent(Exception):
    """The broker confirmed it never got an ambiguous send: send again (counts as an attempt)."""

    def __init__(self, original: BaseException, order: Order) -> None:
        super().__init__(str(original))
        self.original = original
        self.order = order


class _Superseded(Exception):
    """Another engine or an operator moved the order before this engine could send it."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"order {order.id} is {order.status.value} elsewhere")
        self.order = order


@attrs.define
class _Send:
    """What one send series learnt, for when the journal refuses to store where it ended."""

    #: An attempt may have reached the broker, and the broker has not said otherwise.
    maybe_sent: bool = False
    #: The broker's answer, until it is stored.
    answer: OrderSnapshot | None = None
    #: The end the series was storing when the broker surely holds nothing (REJECTED...).
    ending: tuple[OrderStatus, str] | None = None


@attrs.define
class Stranded:
    """An order whose send ended while the journal refused writes: what is known of it."""

    #: The broker's answer, not stored yet.
    answer: OrderSnapshot | None
    #: The broker may hold the order.
    at_broker: bool
    #: The end the broker's answer decided, when it surely holds nothing (REJECTED...).
    ending: tuple[OrderStatus, str] | None
    #: The journal's refusal was logged once already.
    told: bool = False


class UnbookedAnswerError(JournalError):
    """The broker answered about an order it holds and the journal refused to store it (nor
    could it mark the order UNKNOWN): the answer rides on this error to whoever books it."""

    def __init__(self, order: Order, snapshot: OrderSnapshot, refused: JournalError) -> None:
        super().__init__(
            f"order {order.id}: the broker's answer ({snapshot.status.value}, broker order "
            f"{snapshot.broker_order_id or '-'}) is not stored: {refused}"
        )
        self.order = order
        self.snapshot = snapshot


class _NotSent(Exception):
    """The send was not made: the order's instrument stayed held past the hold timeout."""


class Executor:
    """Sends orders and books the broker's answers; settles orders whose send is ambiguous.

    It writes orders only through the ``blotter``; it talks to the broker through ``broker`` (the
    adapter's facade), classifies errors and reads retry policies through ``hooks``, and reads
    the journal for what concerns other orders (signal ids, siblings of a lookup).
    """

    def __init__(
        self,
        blotter: Blotter,
        broker: Broker,
        hooks: Hooks,
        journal: Journal,
        clock: Clock,
        config: EngineConfig,
    ) -> None:
        self.blotter = blotter
        self.broker = broker
        self._hooks = hooks
        self._journal = journal
        self._clock = clock
        self._config = config
        self._inflight: dict[tuple[str, str], asyncio.Future[Order | None]] = {}
        #: The settlement (send and answer) running for each order, by order id.
        self._settlements: dict[str, asyncio.Task[Order]] = {}
        #: Sends that ended while the journal refused writes, by order id, until the tracker
        #: stores their outcome (:meth:`OrderTracker.settle_stranded`).
        self.stranded: dict[str, Stranded] = {}

    def strand(
        self,
        order_id: str,
        *,
        answer: OrderSnapshot | None,
        at_broker: bool,
        ending: tuple[OrderStatus, str] | None = None,
    ) -> None:
        """Hold an order whose send ended while the journal refused writes, until its outcome
        is stored: the broker's ``answer``, else UNKNOWN (looked up) if the broker may hold it
        (``at_broker``), else ``ending`` or FAILED "not sent"."""
        self.stranded[order_id] = Stranded(answer, at_broker, ending)

    # ---------------------------------------------------------------- execute

    async def execute(self, signal: Signal) -> Order:
        account = self._config.account_id
        if signal.signal_id is None:
            return await self._execute_new(signal)
        key = (account, signal.signal_id)
        running = self._inflight.get(key)
        if running is not None:
            return await self._join(running, signal)
        stored = await self._journal.find_by_signal(account, signal.signal_id)
        if stored is not None:
            return self._check_same(await self._settled(stored), signal)
        running = self._inflight.get(key)  # another call may have started while we read
        if running is not None:
            return await self._join(running, signal)
        future: asyncio.Future[Order | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            order = await self._execute_new(signal)
        except asyncio.CancelledError:
            # Only this caller was cancelled: callers waiting on the same signal id look in
            # the journal instead (and find the order in whatever state it was left).
            future.set_result(None)
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: the caller gets it through its own raise
            raise
        else:
            future.set_result(order)
            return order
        finally:
            del self._inflight[key]

    async def _join(self, running: asyncio.Future[Order | None], signal: Signal) -> Order:
        """Wait for a concurrent execution of the same signal id and return its order."""
        order = await asyncio.shield(running)
        if order is None:
            return await self.execute(signal)
        return self._check_same(order, signal)

    @staticmethod
    def _check_same(order: Order, signal: Signal) -> Order:
        if not order.matches(signal):
            raise DuplicateSignalError(
                f"signal id {signal.signal_id!r} was already executed as order {order.id} "
                f"({order.side.value} {order.quantity} {order.symbol}); a different signal "
                "needs a new signal id"
            )
        return order

    async def _execute_new(self, signal: Signal) -> Order:
        order = Order.from_signal(signal, account_id=self._config.account_id, now=self._clock.now())
        try:
            await self._hooks.validate(order)
        except Exception as error:
            raise OrderVetoedError(f"order for {signal.symbol} vetoed: {error}") from error
        async with self.blotter.lock(order.id):
            try:
                order = await self.blotter.commit(order, events=[OrderCreated(order)], new=True)
            except SignalTakenError:
                assert signal.signal_id is not None
                stored = await self._journal.find_by_signal(order.account_id, signal.signal_id)
                assert stored is not None
                return self._check_same(await self._settled(stored), signal)
            log.info(
                "Order created: %s (%s %d %s)",
                order.id,
                order.side.value,
                order.quantity,
                order.symbol,
            )
        # The send and the booking of its answer run in a task of the engine's: a caller that
        # cancels its wait (asyncio.wait_for, say) cancels only the wait, never the order's
        # settlement, which would leave it SUBMITTING with the broker holding it.
        settlement = asyncio.get_running_loop().create_task(
            self._settle(order), name=f"orderlane-settle-{order.id}"
        )
        self._settlements[order.id] = settlement
        settlement.add_done_callback(lambda task: self._settled_done(order.id, task))
        return await asyncio.shield(settlement)

    async def _settle(self, order: Order) -> Order:
        async with self.blotter.lock(order.id):
            return await self.submit(order)

    def _settled_done(self, order_id: str, task: asyncio.Task[Order]) -> None:
        self._settlements.pop(order_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("Order %s: settlement failed", order_id, exc_info=task.exception())

    async def _settled(self, order: Order) -> Order:
        """``order`` once the settlement running for it (if any) is done."""
        running = self._settlements.get(order.id)
        if running is None:
            return order
        return await asyncio.shield(running)

    async def stop(self) -> None:
        """Cancel the settlements still running (the engine closes): their orders stay as
        stored, and recovery settles them at the next start."""
        running = list(self._settlements.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---------------------------------------------------------------- submit

    def classify_raw(self, operation: Operation, error: BaseException) -> ErrorClass:
        """What the classify hooks say, before the broker's capabilities are considered."""
        return self._hooks.classify_error(operation, error)

    def classify(
        self, operation: Operation, error: BaseException, raw: ErrorClass | None = None
    ) -> ErrorClass:
        """The class that decides: the hooks' answer (``raw`` when already asked), refined by
        the broker's capabilities."""
        if isinstance(error, _RetryAfterAbsent):
            return ErrorClass.RETRYABLE
        if isinstance(error, (_NotSent, _Superseded, JournalError)):
            return ErrorClass.FINAL  # (a refused write is never a reason to send again)
        result = self.classify_raw(operation, error) if raw is None else raw
        if (
            result is ErrorClass.AMBIGUOUS
            and operation is Operation.PLACE
            and self.broker.supports(Capability.CLIENT_ORDER_ID)
            and _transient(error)
        ):
            # The broker deduplicates by client order id: sending again cannot double the order.
            return ErrorClass.RETRYABLE
        return result

    def retry_config(self, operation: Operation) -> RetryConfig:
        return self._hooks.retry_policy(operation)

    async def submit(self, order: Order) -> Order:
        """Send a committed CREATED (or UNKNOWN, confirmed absent) order; book the answer.

        If the journal refuses a write on the way (a full disk, a lock held too long), what the
        series learnt is handed to the tracker, which stores it once the journal accepts writes
        again: the broker's answer is booked, an order the broker may hold goes UNKNOWN and is
        looked up, one it surely does not hold ends as the broker's answer decided (or FAILED
        "not sent"). An order that may be at the broker is returned as last stored; for one
        that is surely not, the journal's error is raised. A journal whose file is gone
        (:class:`JournalFileLostError`) never comes back: its error is raised as it is.
        """
        send = _Send()
        try:
            return await self._submit(order, send)
        except JournalFileLostError:
            raise
        except JournalError as refused:
            if isinstance(refused, UnbookedAnswerError):
                send.answer = refused.snapshot
            at_broker = send.maybe_sent or send.answer is not None
            self.strand(
                order.id,
                answer=send.answer,
                at_broker=at_broker,
                ending=None if at_broker else send.ending,
            )
            if not at_broker:
                log.error(
                    "Order %s was not sent; the journal refused to store that (%s). It is "
                    "ended once the journal accepts writes again",
                    order.id,
                    self.broker.describe(refused),
                )
                raise
            log.error(
                "Order %s went to the broker, but the journal refused to store what happened "
                "(%s). The engine keeps the broker's answer and books it once the journal "
                "accepts writes again; do not send the order again",
                order.id,
                self.broker.describe(refused),
            )
            return await self._journal.get_order(order.id) or order

    async def _submit(self, order: Order, send: _Send) -> Order:
        """:meth:`submit`'s series; ``send`` notes what the broker may hold and answered.

        Once any attempt of the series may have reached the broker (an ambiguous failure), no
        exit of the series ends the order on a guess: a rejection of a later attempt (a broker
        refusing a resent client order id as a duplicate), a final error, exhausted attempts and
        an instrument hold past its timeout all first look the order up at the broker. Found is
        adopted; Absent takes the exit; "cannot tell" leaves the order UNKNOWN.
        """
        config = self.retry_config(Operation.PLACE)
        current = order

        async def attempt(number: int) -> Order:
            nonlocal current
            if number > 1 or current.status is not OrderStatus.SUBMITTING:
                current = await self._submitting_when_free(current)
                if current.status is not OrderStatus.SUBMITTING:
                    return current  # ended meanwhile by another engine or an operator
            try:
                snapshot = await self.broker.place_order(current)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                raw = self.classify_raw(Operation.PLACE, error)
                if raw is ErrorClass.AMBIGUOUS:
                    send.maybe_sent = True
                kind = self.classify(Operation.PLACE, error, raw)
                if kind is ErrorClass.AMBIGUOUS:
                    try:
                        current = await self.settle_unknown(current, error)
                    except _RetryAfterAbsent as absent:
                        current = absent.order
                        send.maybe_sent = False  # the broker confirmed it holds nothing
                        raise
                    return current
                raise
            send.answer = snapshot
            current = await self.book_answer(current, snapshot)
            send.answer = None
            return current

        async def on_retry(number: int, delay: float, error: BaseException) -> None:
            cause = error.original if isinstance(error, _RetryAfterAbsent) else error
            await self._retry_scheduled(Operation.PLACE, current, config, number, delay, cause)

        async def end(
            status: OrderStatus,
            reason: str,
            also: Callable[[Order], Iterable[Event]] | None = None,
        ) -> Order:
            nonlocal current
            if send.maybe_sent:
                # An attempt may have reached the broker: ask it before any terminal state.
                if current.status is not OrderStatus.UNKNOWN:
                    current = await self.blotter.move(
                        current, OrderStatus.UNKNOWN, reason=f"outcome unknown: {reason}"
                    )
                    if current.status is not OrderStatus.UNKNOWN:
                        return current
                found = await self.look_up(current, wait=True)
                if isinstance(found, Found):
                    return await self.book_answer(current, found.snapshot)
                if isinstance(found, CannotTell):
                    log.warning("Order %s stays UNKNOWN: %s", current.id, found.reason)
                    return current
            else:
                send.ending = (status, reason)
            return await self.blotter.move(current, status, reason=reason, also=also)

        try:
            if current.status is OrderStatus.CREATED:
                current = await self._submitting_when_free(current)
                if current.status is not OrderStatus.SUBMITTING:
                    return current
            return await run_with_retry(
                attempt,
                config=config,
                should_retry=lambda e: self.classify(Operation.PLACE, e) is ErrorClass.RETRYABLE,
                clock=self._clock,
                on_retry=on_retry,
                describe=f"placing order {order.id}",
            )
        except OrderRetryExhaustedError as exhausted:
            cause = exhausted.original_error or exhausted
            if isinstance(cause, _RetryAfterAbsent):
                cause = cause.original
                exhausted.original_error = cause
            log.error(
                "All %d attempts to place order %s failed: %s",
                exhausted.attempts,
                current.id,
                cause,
            )
            attempts, error_text = exhausted.attempts, self.broker.describe(cause)
            return await end(
                OrderStatus.FAILED,
                self.broker.describe(exhausted),
                lambda after: [RetryExhausted(after, Operation.PLACE, attempts, error_text)],
            )
        except _Superseded as superseded:
            return superseded.order
        except _NotSent as held:
            log.error("Order %s failed: %s", current.id, held)
            return await end(OrderStatus.FAILED, str(held))
        except OrderRejectedError as rejected:
            reason = self.broker.describe(rejected)
            log.warning("Order %s rejected: %s", current.id, reason)
            return await end(OrderStatus.REJECTED, reason)
        except asyncio.CancelledError:
            raise
        except JournalError:
            raise  # a write was refused, not the order: submit hands it to the tracker
        except Exception as error:
            log.error("Order %s failed: %s", current.id, self.broker.describe(error))
            return await end(OrderStatus.FAILED, self.broker.describe(error))

    async def _submitting_when_free(self, order: Order) -> Order:
        """Commit the move to SUBMITTING (first send or a retry); a first send waits until no
        UNKNOWN order holds the same instrument.

        While the broker may or may not hold an earlier order for this account and symbol, a new
        one waits, so an inquiry matching by attributes cannot confuse the two. Held past
        ``instrument_hold_timeout``, it raises :class:`_NotSent` (nothing was sent on it); an
        order that another engine moved meanwhile raises :class:`_Superseded`.

        A retry does not wait: its order is in flight already (SUBMITTING, or UNKNOWN without a
        broker id), so every lookup on the instrument counts it as a sibling that may own what
        it finds and waits for its answer; the retry is that answer. Held back instead, it and
        the UNKNOWN order's lookup would each wait for the other until the hold timeout.
        """
        clock, config = self._clock, self._config
        limit = config.instrument_hold_timeout
        first_send = order.status is OrderStatus.CREATED
        warned = False
        while True:
            now = clock.now()
            try:
                moved, ours = await self.blotter.move_ours(
                    order,
                    OrderStatus.SUBMITTING,
                    hold_check=first_send,
                    attempts=order.attempts + 1,
                    submitted_at=order.submitted_at or now,
                    updated_at=now,
                )
            except InstrumentHeldError as held:
                # Measured from the order's stored creation time, so a restart does not reset it.
                if (now - order.created_at).total_seconds() >= limit:
                    raise _NotSent(
                        f"not sent: {order.symbol} held by UNKNOWN order {held.held_by} "
                        f"for more than {config.instrument_hold_timeout:g}s"
                    ) from None
                if not warned:
                    log.warning("Order %s waits: %s", order.id, held)
                    warned = True
                await clock.sleep(config.instrument_hold_poll)
                continue
            if not ours:
                # Another engine (or an operator) moved the order meanwhile: it is not this
                # engine's to send any more.
                raise _Superseded(moved)
            return moved

    async def settle_unknown(self, order: Order, error: BaseException) -> Order:
        """The broker may hold ``order``: mark it UNKNOWN, then ask the broker."""
        log.warning(
            "Order %s: outcome of the send is unknown (%s); looking it up",
            order.id,
            self.broker.describe(error),
        )
        if order.status is not OrderStatus.UNKNOWN:
            order = await self.blotter.move(
                order, OrderStatus.UNKNOWN, reason=f"outcome unknown: {self.broker.describe(error)}"
            )
            if order.status is not OrderStatus.UNKNOWN:
                return order  # settled meanwhile by another engine or an operator
        found = await self.look_up(order, wait=True)
        if isinstance(found, Found):
            return await self.book_answer(order, found.snapshot)
        if isinstance(found, Absent):
            if _transient(error):
                raise _RetryAfterAbsent(error, order)
            return await self.blotter.move(
                order, OrderStatus.FAILED, reason=f"not sent: {self.broker.describe(error)}"
            )
        log.warning(
            "Order %s stays UNKNOWN: %s", order.id, found.reason or "the broker cannot tell"
        )
        return order

    async def look_up(self, order: Order, *, wait: bool = False) -> LookupResult:
        """Ask the broker whether it holds ``order`` (retried per policy); a failed inquiry is
        "cannot tell".

        A candidate is not a unique match while another order of the same account, symbol and
        intent (side, quantity, type, price: what a lookup matches on) is in flight or UNKNOWN
        without a broker id (in this engine or another on the journal):
        that sibling may own it. With ``wait`` (the sender's own lookup) the siblings' answers
        are awaited, up to ``instrument_hold_timeout``, and the broker asked again, when their
        venue orders are owned; otherwise, or past that, the answer is "cannot tell".
        """
        clock, config = self._clock, self._config
        deadline = clock.monotonic() + config.instrument_hold_timeout
        while True:
            # Siblings are read before the owned broker ids (inside _ask): a sibling whose
            # answer is stored in between has its broker id among the owned ones.
            siblings = await self._journal.unresolved_siblings(order)
            found = await self._ask(order)
            if not isinstance(found, Found) or not siblings:
                break
            if not wait or clock.monotonic() >= deadline:
                return CannotTell(
                    f"broker order {found.snapshot.broker_order_id} is not a unique match: "
                    f"order {', '.join(siblings)} for {order.symbol} may own it and its answer "
                    "is not stored yet"
                )
            log.info(
                "Order %s: waiting for the answers of %s before adopting a broker order",
                order.id,
                ", ".join(siblings),
            )
            while siblings and clock.monotonic() < deadline:
                await clock.sleep(config.instrument_hold_poll)
                siblings = await self._journal.unresolved_siblings(order)
        if isinstance(found, Found):
            log.info("Order %s found at the broker as %s", order.id, found.snapshot.broker_order_id)
        return found

    async def _ask(self, order: Order) -> LookupResult:
        window = LookupWindow(start=order.submitted_at or order.created_at, end=self._clock.now())
        try:
            owned, owned_windows = await self._owned([order])
            return await self.retrying(
                Operation.LOOKUP,
                order,
                lambda: self.broker.lookup_order(order, window, owned, owned_windows),
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return CannotTell(f"lookup failed: {self.broker.describe(error)}")

    async def settle_by_lookup(self, order: Order) -> Order:
        """Look an UNKNOWN order without broker id up and act on the answer (lock held).

        Every write goes through the blotter's reload-and-reapply path, so an engine that
        settled the order meanwhile wins and this one takes its result."""
        return await self.act_on_lookup(order, await self.look_up(order))

    async def settle_many_by_lookup(
        self, orders: list[Order]
    ) -> dict[str, tuple[Order | None, Order]]:
        """Look UNKNOWN orders without broker id up in one batch and act on each answer.

        Returns, per order id, the order as stored when its answer was acted on (None when
        another engine had settled it meanwhile: it is left as that engine wrote it) and the
        order as it now stands."""
        results = await self.look_up_many(orders)
        settled: dict[str, tuple[Order | None, Order]] = {}
        for order in orders:
            async with self.blotter.lock(order.id):
                current = await self.blotter.get(order.id)
                if (
                    current is None
                    or current.status is not OrderStatus.UNKNOWN
                    or current.broker_order_id is not None
                ):
                    settled[order.id] = (None, current or order)
                    continue
                settled[order.id] = (current, await self.act_on_lookup(current, results[order.id]))
        return settled

    async def act_on_lookup(self, order: Order, result: LookupResult) -> Order:
        """Adopt what was found, end (or resend) what is absent, keep UNKNOWN otherwise."""
        if isinstance(result, Found):
            return await self.book_answer(order, result.snapshot)
        if isinstance(result, Absent):
            if self._config.resubmit_after_crash:
                # Counted from the order's creation: a send again restarts the timeout, so
                # counting from the last send would let an order be sent again and again.
                age = (self._clock.now() - order.created_at).total_seconds()
                if age < self._config.order_timeout:
                    recovery_log.warning(
                        "order %s was never received by the broker: sending it", order.id
                    )
                    # The broker's answer is authoritative: no earlier send reached it, so the
                    # order's send window (and the day a venue numbers it on) starts again now.
                    return await self.submit(attrs.evolve(order, submitted_at=None))
                recovery_log.warning(
                    "order %s was never received by the broker and is past its timeout "
                    "(%.0f s since it was created): not sent again",
                    order.id,
                    age,
                )
                return await self.blotter.move(
                    order, OrderStatus.FAILED, reason=f"{NOT_SENT}: past its timeout"
                )
            return await self.blotter.move(order, OrderStatus.FAILED, reason=NOT_SENT)
        recovery_log.info("order %s stays UNKNOWN: %s", order.id, getattr(result, "reason", ""))
        return order

    async def _owned(
        self, orders: Sequence[Order]
    ) -> tuple[frozenset[str], dict[str, tuple[LookupWindow, ...]] | None]:
        """The broker ids journal orders of ``orders``' instruments own, and when the orders
        owning each were sent, where the journal can say (``owned_broker_orders``)."""
        windows_of = getattr(self._journal, "owned_broker_orders", None)
        owned: set[str] = set()
        windows: dict[str, list[LookupWindow]] = {}
        for account, symbol in sorted({(o.account_id, o.symbol) for o in orders}):
            owned |= await self._journal.owned_broker_ids(account, symbol)
            if windows_of is not None:
                for broker_id, spans in (await windows_of(account, symbol)).items():
                    windows.setdefault(broker_id, []).extend(spans)
        if windows_of is None:
            return frozenset(owned), None
        return frozenset(owned), {k: tuple(v) for k, v in windows.items() if k in owned}

    async def look_up_many(self, orders: list[Order]) -> dict[str, LookupResult]:
        """Look many orders up in one pass where the adapter offers it (not retried: a failed
        pass is "cannot tell" for each, and the tracker looks again)."""
        if not orders:
            return {}
        now = self._clock.now()
        windows = {
            o.id: LookupWindow(start=o.submitted_at or o.created_at, end=now) for o in orders
        }
        try:
            owned, owned_windows = await self._owned(orders)
            return await self.broker.lookup_orders(orders, windows, owned, owned_windows)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = f"lookup failed: {self.broker.describe(error)}"
            log.warning("batch lookup of %d orders failed: %s", len(orders), reason)
            return {order.id: CannotTell(reason) for order in orders}

    async def book_answer(self, order: Order, snapshot: OrderSnapshot) -> Order:
        """Book what the broker answered about an order it holds (a place answer, a lookup).

        If that fails, the broker still holds the order: it stays UNKNOWN with the broker's id,
        for the tracker to settle by status. It is never marked FAILED on a guess. If the
        journal refuses writes (a full disk), :class:`UnbookedAnswerError` carries the answer
        on to whoever books it later.
        """
        try:
            return await self.blotter.book(order, snapshot)
        except (asyncio.CancelledError, JournalFileLostError):
            raise
        except JournalError as refused:
            if not isinstance(refused, ConcurrentUpdateError):
                raise UnbookedAnswerError(order, snapshot, refused) from refused
            error: Exception = refused
        except Exception as failed:
            error = failed
        log.error(
            "Order %s: the broker's answer could not be booked (%s); UNKNOWN until its "
            "status settles it",
            order.id,
            self.broker.describe(error),
        )
        try:
            stored = await self._journal.get_order(order.id) or order
            if stored.is_terminal or OrderStatus.UNKNOWN not in (
                TRANSITIONS[stored.status] | {stored.status}
            ):
                return stored
            return await self.blotter.move(
                stored,
                OrderStatus.UNKNOWN,
                broker_order_id=stored.broker_order_id or snapshot.broker_order_id,
                reason=f"answer not booked: {self.broker.describe(error)}",
            )
        except JournalFileLostError:
            raise
        except JournalError as refused:
            raise UnbookedAnswerError(order, snapshot, refused) from refused

    async def _retry_scheduled(
        self,
        operation: Operation,
        order: Order,
        config: RetryConfig,
        number: int,
        delay: float,
        error: BaseException,
    ) -> None:
        log.info(
            "Attempt %d/%d to %s order %s failed: %s. Retrying in %.1fs...",
            number,
            config.max_attempts,
            operation.value,
            order.id,
            error,
            delay,
        )
        event = RetryScheduled(order, operation, number, delay, self.broker.describe(error))
        await self.blotter.record_events(event)

    async def retrying(
        self, operation: Operation, order: Order, call: Callable[[], Awaitable[T]]
    ) -> T:
        """Run one broker operation (not a place) for ``order`` under its retry policy.

        Exhaustion is journaled as a retry-exhausted event and re-raised; what it means for the
        order is the caller's decision (errors of cancel, status and lookup never change an
        order's state by themselves).
        """
        config = self.retry_config(operation)

        async def on_retry(number: int, delay: float, error: BaseException) -> None:
            await self._retry_scheduled(operation, order, config, number, delay, error)

        try:
            return await run_with_retry(
                lambda _attempt: call(),
                config=config,
                should_retry=lambda e: self.classify(operation, e) is ErrorClass.RETRYABLE,
                clock=self._clock,
                on_retry=on_retry,
                describe=f"{operation.value} of order {order.id}",
            )
        except OrderRetryExhaustedError as exhausted:
            cause = exhausted.original_error or exhausted
            log.error("%s", self.broker.redact(str(exhausted)))
            event = RetryExhausted(
                order, operation, exhausted.attempts, self.broker.describe(cause)
            )
            await self.blotter.record_events(event)
            raise

    async def status(self, order: Order) -> Order:
        """Ask the broker for ``order``'s status (retried per policy) and book the answer."""
        snapshot = await self.retrying(
            Operation.STATUS, order, lambda: self.broker.order_status(order)
        )
        return await self.blotter.book(order, snapshot)

    # ---------------------------------------------------------------- cancel

    async def cancel(self, order: Order) -> Order:
        """Send a cancel for an open order (the caller holds the order's lock).

        An open order is PENDING_CANCEL while the request is out. An UNKNOWN order (one the
        broker knows by id) stays UNKNOWN, its instrument held, until the broker's answer
        settles it: cancelled, filled, or open after all.
        """
        previous = order.status
        if previous is not OrderStatus.UNKNOWN:
            order = await self.blotter.move(order, OrderStatus.PENDING_CANCEL)
            if order.status is not OrderStatus.PENDING_CANCEL:
                return order  # moved meanwhile elsewhere
        pending = order
        try:
            result = await self.retrying(
                Operation.CANCEL, pending, lambda: self.broker.cancel_order(pending)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("Cancel of order %s failed: %s", order.id, self.broker.describe(error))
            if previous is OrderStatus.UNKNOWN:
                return order
            return await self.blotter.move(order, previous)
        if isinstance(result, CancelAccepted) and result.snapshot is not None:
            return await self.blotter.book(order, result.snapshot, timed_out=False)
        if isinstance(result, NothingToCancel):
            log.info("Order %s: nothing to cancel (%s)", order.id, result.reason)
        try:
            snapshot = await self.broker.order_status(order)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "Order %s: status after cancel unknown: %s", order.id, self.broker.describe(error)
            )
            return order
        after = await self.blotter.book(order, snapshot, timed_out=False)
        if after.status is OrderStatus.PENDING_CANCEL and isinstance(result, NothingToCancel):
            return await self.blotter.move(
                after, previous if after.filled_quantity == 0 else OrderStatus.PARTIALLY_FILLED
            )
        return after


def _transient(error: BaseException) -> bool:
    """Whether an ambiguous failure was a transport problem (retry once the broker says it has
    nothing), rather than an unexpected exception (fail once it says so)."""
    return isinstance(error, BrokerError)
