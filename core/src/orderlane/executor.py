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
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from orderlane.broker import (
    Absent,
    Broker,
    CancelAccepted,
    CannotTell,
    Capability,
    Found,
    LookupResult,
    LookupWindow,
    NothingToCancel,
)
from orderlane.errors import (
    DuplicateSignalError,
    OrderRejectedError,
    OrderRetryExhaustedError,
    OrderVetoedError,
)
from orderlane.events import (
    Event,
    OrderCreated,
    OrderStatusChanged,
    OrderSubmitted,
    OrderTimedOut,
    RetryExhausted,
    RetryScheduled,
)
from orderlane.journal import Transition
from orderlane.journal.sql import ConcurrentUpdateError, InstrumentHeldError, SignalTakenError
from orderlane.model import (
    TRANSITIONS,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
    fills_from_snapshot,
)
from orderlane.retry import ErrorClass, Operation, RetryConfig, run_with_retry

if TYPE_CHECKING:
    from orderlane.engine import Engine

__all__ = ["Executor"]

log = logging.getLogger("orderlane.executor")
T = TypeVar("T")
_REAPPLY_ATTEMPTS = 3
#: The reason of an order ended for staying open too long (and of one whose timeout cancel is
#: not confirmed yet, which is UNKNOWN with this prefix until the broker settles it).
TIMEOUT_REASON = "timeout"


class _RetryAfterAbsent(Exception):
    """The broker confirmed it never got an ambiguous send: send again (counts as an attempt)."""

    def __init__(self, original: BaseException, order: Order) -> None:
        super().__init__(str(original))
        self.original = original
        self.order = order


def derive_status(order: Order, snapshot: OrderSnapshot) -> OrderStatus:
    """The status ``order`` (already holding the snapshot's fills) takes from ``snapshot``."""
    if order.filled_quantity >= order.quantity:
        return OrderStatus.FILLED
    reported = snapshot.status
    if reported in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        if reported is OrderStatus.REJECTED and order.filled_quantity:
            return OrderStatus.CANCELLED
        return reported
    if reported is OrderStatus.FAILED:
        return OrderStatus.FAILED
    if order.status is OrderStatus.PENDING_CANCEL or (
        reported is OrderStatus.PENDING_CANCEL
        and OrderStatus.PENDING_CANCEL in TRANSITIONS[order.status]
    ):
        return OrderStatus.PENDING_CANCEL
    if order.filled_quantity:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.SUBMITTED


class Executor:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._inflight: dict[tuple[str, str], asyncio.Future[Order | None]] = {}
        self._tz: Any = None

    @property
    def broker(self) -> Broker:
        return self._engine.broker

    @property
    def venue_timezone(self) -> Any:
        if self._tz is None:
            self._tz = ZoneInfo(self.broker.info.timezone)
        return self._tz

    # ---------------------------------------------------------------- commits

    async def commit(
        self,
        order: Order,
        *,
        events: Iterable[Event] = (),
        fills: Iterable[Any] = (),
        new: bool = False,
        hold_check: bool = False,
    ) -> Order:
        """Commit ``order`` with its events and fills; the tracker hears of it afterwards."""
        committed = await self._engine.journal.record(
            Transition(
                order=order,
                events=tuple(events),
                fills=tuple(fills),
                new=new,
                hold_check=hold_check,
            )
        )
        assert committed.order is not None
        self._engine.tracker.observe(committed.order)
        return committed.order

    async def move(
        self, order: Order, status: OrderStatus, *, hold_check: bool = False, **changes: Any
    ) -> Order:
        """Commit ``order`` in ``status`` with a status-changed event."""
        changes.setdefault("updated_at", self._engine.clock.now())
        after = order.evolve(status, **changes)
        events = [] if status is order.status else [OrderStatusChanged(after, order.status)]
        return await self.commit(after, events=events, hold_check=hold_check)

    # ---------------------------------------------------------------- execute

    async def execute(self, signal: Signal) -> Order:
        account = self._engine.config.account_id
        if signal.signal_id is None:
            return await self._execute_new(signal)
        key = (account, signal.signal_id)
        running = self._inflight.get(key)
        if running is not None:
            return await self._join(running, signal)
        stored = await self._engine.journal.find_by_signal(account, signal.signal_id)
        if stored is not None:
            return self._check_same(stored, signal)
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
        engine = self._engine
        order = Order.from_signal(
            signal, account_id=engine.config.account_id, now=engine.clock.now()
        )
        try:
            await engine.validate(order)
        except Exception as error:
            raise OrderVetoedError(f"order for {signal.symbol} vetoed: {error}") from error
        async with engine.order_lock(order.id):
            try:
                order = await self.commit(order, events=[OrderCreated(order)], new=True)
            except SignalTakenError:
                assert signal.signal_id is not None
                stored = await engine.journal.find_by_signal(order.account_id, signal.signal_id)
                assert stored is not None
                return self._check_same(stored, signal)
            log.info(
                "Order created: %s (%s %d %s)",
                order.id,
                order.side.value,
                order.quantity,
                order.symbol,
            )
            return await self.submit(order)

    # ---------------------------------------------------------------- submit

    def classify_raw(self, operation: Operation, error: BaseException) -> ErrorClass:
        """What the classify hooks say, before the broker's capabilities are considered."""
        return ErrorClass(
            self._engine.pm.hook.orderlane_classify_error(operation=operation, error=error)
        )

    def classify(
        self, operation: Operation, error: BaseException, raw: ErrorClass | None = None
    ) -> ErrorClass:
        """The class that decides: the hooks' answer (``raw`` when already asked), refined by
        the broker's capabilities."""
        if isinstance(error, _RetryAfterAbsent):
            return ErrorClass.RETRYABLE
        result = self.classify_raw(operation, error) if raw is None else raw
        if (
            result is ErrorClass.AMBIGUOUS
            and operation is Operation.PLACE
            and self.broker.supports(Capability.CLIENT_ORDER_ID)
            and self._engine.transient(error)
        ):
            # The broker deduplicates by client order id: sending again cannot double the order.
            return ErrorClass.RETRYABLE
        return result

    def retry_config(self, operation: Operation) -> RetryConfig:
        config = self._engine.pm.hook.orderlane_retry_policy(operation=operation)
        if not isinstance(config, RetryConfig):
            return RetryConfig()
        return config

    async def submit(self, order: Order) -> Order:
        """Send a committed CREATED (or UNKNOWN, confirmed absent) order; book the answer."""
        clock = self._engine.clock
        config = self.retry_config(Operation.PLACE)
        current = order
        # Whether an attempt may have reached the broker (ambiguous, but resent because the broker
        # deduplicates client order ids): then running out of attempts is no proof of absence.
        maybe_sent = False
        if order.status is OrderStatus.CREATED:
            current = await self._submitting_when_free(order)
            if current.status is not OrderStatus.SUBMITTING:
                return current

        async def attempt(number: int) -> Order:
            nonlocal current, maybe_sent
            if number > 1 or current.status is not OrderStatus.SUBMITTING:
                current = await self._submitting_when_free(current)
                if current.status is not OrderStatus.SUBMITTING:
                    return current  # held past the hold timeout: FAILED, nothing sent
            try:
                snapshot = await self.broker.place_order(current)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                raw = self.classify_raw(Operation.PLACE, error)
                if raw is ErrorClass.AMBIGUOUS:
                    maybe_sent = True
                kind = self.classify(Operation.PLACE, error, raw)
                if kind is ErrorClass.AMBIGUOUS:
                    try:
                        current = await self.settle_unknown(current, error)
                    except _RetryAfterAbsent as absent:
                        current = absent.order
                        raise
                    return current
                raise
            current = await self.book_answer(current, snapshot)
            return current

        async def on_retry(number: int, delay: float, error: BaseException) -> None:
            cause = error.original if isinstance(error, _RetryAfterAbsent) else error
            await self._retry_scheduled(Operation.PLACE, current, config, number, delay, cause)

        try:
            return await run_with_retry(
                attempt,
                config=config,
                should_retry=lambda e: self.classify(Operation.PLACE, e) is ErrorClass.RETRYABLE,
                clock=clock,
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
            if maybe_sent:
                # An earlier attempt may have reached the broker: ask before failing the order.
                current = await self.move(
                    current,
                    OrderStatus.UNKNOWN,
                    reason=f"outcome unknown: {describe_error(exhausted)}",
                )
                found = await self.look_up(current)
                if isinstance(found, Found):
                    return await self.book_answer(current, found.snapshot)
                if isinstance(found, CannotTell):
                    log.warning("Order %s stays UNKNOWN: %s", current.id, found.reason)
                    return current
            after = current.evolve(
                OrderStatus.FAILED, reason=describe_error(exhausted), updated_at=clock.now()
            )
            return await self.commit(
                after,
                events=[
                    OrderStatusChanged(after, current.status),
                    RetryExhausted(
                        after, Operation.PLACE, exhausted.attempts, describe_error(cause)
                    ),
                ],
            )
        except OrderRejectedError as rejected:
            reason = describe_error(rejected)
            log.warning("Order %s rejected: %s", current.id, reason)
            return await self.move(current, OrderStatus.REJECTED, reason=reason)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("Order %s failed: %s", current.id, describe_error(error))
            return await self.move(current, OrderStatus.FAILED, reason=describe_error(error))

    async def _submitting_when_free(self, order: Order) -> Order:
        """Commit the move to SUBMITTING (first send or a retry) once no UNKNOWN order holds
        the same instrument.

        While the broker may or may not hold an earlier order for this account and symbol, a new
        one waits in CREATED, so an inquiry matching by attributes cannot confuse the two. Held
        past ``instrument_hold_timeout``, it ends FAILED with nothing sent.
        """
        engine = self._engine
        clock = engine.clock
        limit = engine.config.instrument_hold_timeout
        warned = False
        while True:
            now = clock.now()
            try:
                return await self.move(
                    order,
                    OrderStatus.SUBMITTING,
                    hold_check=True,
                    attempts=order.attempts + 1,
                    submitted_at=order.submitted_at or now,
                    updated_at=now,
                )
            except InstrumentHeldError as held:
                # Measured from the order's stored creation time, so a restart does not reset it.
                if (now - order.created_at).total_seconds() >= limit:
                    reason = (
                        f"not sent: {order.symbol} held by UNKNOWN order {held.held_by} "
                        f"for more than {engine.config.instrument_hold_timeout:g}s"
                    )
                    log.error("Order %s failed: %s", order.id, reason)
                    return await self.move(order, OrderStatus.FAILED, reason=reason)
                if not warned:
                    log.warning("Order %s waits: %s", order.id, held)
                    warned = True
                await clock.sleep(engine.config.instrument_hold_poll)

    async def settle_unknown(self, order: Order, error: BaseException) -> Order:
        """The broker may hold ``order``: mark it UNKNOWN, then ask the broker."""
        log.warning("Order %s: outcome of the send is unknown (%s); looking it up", order.id, error)
        if order.status is not OrderStatus.UNKNOWN:
            order = await self.move(
                order, OrderStatus.UNKNOWN, reason=f"outcome unknown: {describe_error(error)}"
            )
        found = await self.look_up(order)
        if isinstance(found, Found):
            return await self.book_answer(order, found.snapshot)
        if isinstance(found, Absent):
            if self._engine.transient(error):
                raise _RetryAfterAbsent(error, order)
            return await self.move(
                order, OrderStatus.FAILED, reason=f"not sent: {describe_error(error)}"
            )
        log.warning(
            "Order %s stays UNKNOWN: %s", order.id, found.reason or "the broker cannot tell"
        )
        return order

    async def look_up(self, order: Order) -> LookupResult:
        """Ask the broker whether it holds ``order`` (retried per policy); a failed inquiry is
        "cannot tell"."""
        window = LookupWindow(
            start=order.submitted_at or order.created_at, end=self._engine.clock.now()
        )
        try:
            owned = await self._engine.owned_broker_ids(order)
            found = await self.retrying(
                Operation.LOOKUP, order, lambda: self.broker.lookup_order(order, window, owned)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return CannotTell(f"lookup failed: {describe_error(error)}")
        if isinstance(found, Found):
            log.info("Order %s found at the broker as %s", order.id, found.snapshot.broker_order_id)
        return found

    async def book_answer(self, order: Order, snapshot: OrderSnapshot) -> Order:
        """Book what the broker answered about an order it holds (a place answer, a lookup).

        If that fails, the broker still holds the order: it stays UNKNOWN with the broker's id,
        for the tracker to settle by status. It is never marked FAILED on a guess.
        """
        try:
            return await self.apply_snapshot(order, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error(
                "Order %s: the broker's answer could not be booked (%s); UNKNOWN until its "
                "status settles it",
                order.id,
                describe_error(error),
            )
            stored = await self._engine.journal.get_order(order.id) or order
            if stored.is_terminal or OrderStatus.UNKNOWN not in (
                TRANSITIONS[stored.status] | {stored.status}
            ):
                return stored
            return await self.move(
                stored,
                OrderStatus.UNKNOWN,
                broker_order_id=stored.broker_order_id or snapshot.broker_order_id,
                reason=f"answer not booked: {describe_error(error)}",
            )

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
        event = RetryScheduled(order, operation, number, delay, describe_error(error))
        await self._engine.journal.record(Transition(order=None, events=(event,)))

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
                clock=self._engine.clock,
                on_retry=on_retry,
                describe=f"{operation.value} of order {order.id}",
            )
        except OrderRetryExhaustedError as exhausted:
            cause = exhausted.original_error or exhausted
            log.error("%s", exhausted)
            event = RetryExhausted(order, operation, exhausted.attempts, describe_error(cause))
            await self._engine.journal.record(Transition(order=None, events=(event,)))
            raise

    async def status(self, order: Order) -> Order:
        """Ask the broker for ``order``'s status (retried per policy) and book the answer."""
        snapshot = await self.retrying(
            Operation.STATUS, order, lambda: self.broker.order_status(order)
        )
        return await self.apply_snapshot(order, snapshot)

    # ---------------------------------------------------------------- cancel

    async def cancel(self, order: Order) -> Order:
        """Send a cancel for an open order (the caller holds the order's lock)."""
        previous = order.status
        order = await self.move(order, OrderStatus.PENDING_CANCEL)
        try:
            result = await self.retrying(
                Operation.CANCEL, order, lambda: self.broker.cancel_order(order)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error("Cancel of order %s failed: %s", order.id, describe_error(error))
            return await self.move(order, previous)
        if isinstance(result, CancelAccepted) and result.snapshot is not None:
            return await self.apply_snapshot(order, result.snapshot)
        if isinstance(result, NothingToCancel):
            log.info("Order %s: nothing to cancel (%s)", order.id, result.reason)
        try:
            snapshot = await self.broker.order_status(order)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "Order %s: status after cancel unknown: %s", order.id, describe_error(error)
            )
            return order
        after = await self.apply_snapshot(order, snapshot)
        if after.status is OrderStatus.PENDING_CANCEL and isinstance(result, NothingToCancel):
            return await self.move(
                after, previous if after.filled_quantity == 0 else OrderStatus.PARTIALLY_FILLED
            )
        return after

    # ---------------------------------------------------------------- answers

    async def apply_snapshot(
        self, order: Order, snapshot: OrderSnapshot, *, timed_out: bool = False
    ) -> Order:
        """Book what the broker reported: new fills, broker id, status.

        ``timed_out``: the order is being ended for its timeout, so a broker-side end that is not
        a complete fill (cancelled, rejected) makes it FAILED with reason ``timeout`` instead.

        If another process wrote the order meanwhile (its version moved on), the stored order is
        reloaded and the snapshot applied to it again: snapshots are cumulative, so reapplying
        one never counts a fill twice.
        """
        for _ in range(_REAPPLY_ATTEMPTS - 1):
            try:
                return await self._apply_snapshot(order, snapshot, timed_out)
            except ConcurrentUpdateError:
                self._engine.forget_fills(order.id)
                reloaded = await self._engine.journal.get_order(order.id)
                if reloaded is None:  # pragma: no cover - orders are never deleted
                    raise
                order = reloaded
        return await self._apply_snapshot(order, snapshot, timed_out)

    async def _apply_snapshot(
        self, order: Order, snapshot: OrderSnapshot, timed_out: bool
    ) -> Order:
        engine = self._engine
        now = engine.clock.now()
        known = await engine.known_fill_ids(order)
        fills = fills_from_snapshot(
            order, snapshot, known_fill_ids=known, now=now, venue_timezone=self.venue_timezone
        )
        updated = order.with_fills(fills)
        broker_id = order.broker_order_id or snapshot.broker_order_id
        status = order.status if order.is_terminal else derive_status(updated, snapshot)
        reason = order.reason
        if status in (OrderStatus.REJECTED, OrderStatus.CANCELLED) and status is not order.status:
            reason = snapshot.reason or reason
            if status is OrderStatus.REJECTED:
                log.warning("Order %s rejected: %s", order.id, reason)
        elif status is not order.status and order.status is OrderStatus.UNKNOWN:
            reason = None
        timing_out = timed_out or (order.reason or "").startswith(TIMEOUT_REASON)
        ended_by_timeout = (
            timing_out
            and not order.is_terminal
            and status in (OrderStatus.CANCELLED, OrderStatus.REJECTED)
        )
        if ended_by_timeout:
            status, reason = OrderStatus.FAILED, TIMEOUT_REASON
        if not fills and status is order.status and broker_id == order.broker_order_id:
            return order
        after = updated.evolve(status, broker_order_id=broker_id, reason=reason, updated_at=now)
        events: list[Event] = []
        if (
            order.broker_order_id is None
            and broker_id is not None
            and status is not OrderStatus.REJECTED
        ):
            events.append(OrderSubmitted(after))
        if status is not order.status:
            events.append(OrderStatusChanged(after, order.status))
        if ended_by_timeout:
            log.warning("Order %s timed out; cancelled at the broker and FAILED", order.id)
            submitted = order.submitted_at or order.created_at
            events.append(OrderTimedOut(after, submitted))
        committed = await self.commit(after, events=events, fills=fills)
        engine.remember_fills(committed, fills)
        return committed


def describe_error(error: BaseException) -> str:
    """``Type: message`` (or just ``Type``), the form reasons and events use."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name
