"""What an adapter supplies so the conformance suite can drive its venue, and what a scenario gets.

A :class:`VenueHarness` stands between the suite and one adapter's venue: the mock venue in
process, or a fake broker server on loopback. The suite never talks to a venue any other way, so
every scenario is written once and runs against every adapter. A harness serves one scenario
(the suite builds a fresh one per scenario), and its venue starts out in the catalogue's
defaults: it quotes :data:`QUOTE` for every symbol, charges :data:`COMMISSION` per execution and
fills every order at once, in full, unless told otherwise.

A harness is published under the entry-point group ``orderlane.harnesses`` with the adapter's
name; the entry point names a factory that takes an options mapping (empty from the suite) and
returns the harness. Test-only code thus never loads with the adapter. The harnesses of
``adapters/mock`` and ``contrib/adapter-template`` are complete ones to copy; the template's
venue speaks a wire format of its own, as a broker's API does.

Time. Scenarios run the engine on a :class:`~orderlane.clock.FakeClock`, which moves only when
the event loop is idle, so a venue served from the test's own event loop (in process, or a
server on loopback started in :meth:`VenueHarness.start`) sees requests at the simulated time
their permits were granted, and times its rate-limit window with the ``monotonic`` that
:meth:`VenueHarness.enforce_rate_limit` hands it. A venue the loop cannot see (served from a
thread or another process) keeps real time instead: its harness says so with the optional
attribute ``venue_clock = "real"`` (see :func:`venue_clock`), and the rows whose venue measures
time (``Scenario.venue_time``: the rate-limit rows) then run the engine on the real clock, with
its limiter's windows counted :data:`REAL_TIME_MARGIN` longer for the real time a request takes
to reach such a venue, while every other row stays on fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, cast, runtime_checkable

import attrs

from orderlane.clock import Clock, FakeClock, SystemClock
from orderlane.contract import Capability, Operation
from orderlane.engine import Engine, EngineConfig
from orderlane.errors import ConfigurationError
from orderlane.hookspecs import hookimpl
from orderlane.journal.sql import SqlJournal
from orderlane.model import Fill, Order, OrderStatus, Signal
from orderlane.positions import Position
from orderlane.testing.crash import CrashPoint, StallingJournal, abandon

__all__ = [
    "COMMISSION",
    "QUOTE",
    "REAL_TIME_MARGIN",
    "SYMBOL",
    "CrashPoint",
    "EventRecorder",
    "FailKind",
    "LookupAnswer",
    "RecordedEvent",
    "RejectKind",
    "ScenarioRun",
    "VenueClock",
    "VenueHarness",
    "VenueOperation",
    "venue_clock",
]

#: The instrument every scenario trades unless a row says otherwise.
SYMBOL = "005930"
#: The price a fresh venue fills at.
QUOTE = Decimal(72000)
#: The commission a fresh venue charges per execution.
COMMISSION = Decimal(100)
#: Real seconds :meth:`ScenarioRun.crash_many` waits for every flow to reach its crash point.
CRASH_WAIT_LIMIT = 60.0

RejectKind = Literal["insufficient_balance", "invalid_symbol", "validation"]
FailKind = Literal[
    "connection",  # refused: nothing reached the venue (BrokerConnectionError)
    "timeout_before",  # the request left, the venue never took it, no answer came
    "timeout_after",  # the venue took the order, the answer never came
    "drop_after_accept",  # the venue took the order, the connection dropped before the answer
    "garbled",  # the venue took the order and answered with something that does not parse
    "rate_limit",  # the venue refused the request for exceeding its rate
]
LookupAnswer = Literal["cannot_tell", "absent"]
VenueOperation = Literal["place", "cancel", "status", "lookup"]
_REAL_CLOCK = SystemClock()
#: Whose time a venue keeps: the scenario's (the ``monotonic`` it is handed) or its own, real.
VenueClock = Literal["scenario", "real"]
#: On real time, the engine's limiter counts each window this fraction longer
#: (``EngineConfig.rate_limit_margin``, 2% by default): a request reaches a venue in a thread or
#: a process of its own some real time after its permit (tens of milliseconds, a tenth of a
#: second on a loaded machine), and the venue counts arrivals, not permits. On fake time a
#: request arrives at the very time of its permit, so the default holds there.
REAL_TIME_MARGIN = 0.5


def venue_clock(harness: object) -> VenueClock:
    """Whose time ``harness``'s venue keeps: its optional ``venue_clock`` attribute, by default
    ``"scenario"`` (the venue lives in the test's event loop and reads the clock it is given).
    A venue in a thread or a process of its own says ``"real"``."""
    value = getattr(harness, "venue_clock", "scenario")
    if value not in ("scenario", "real"):
        raise ConfigurationError(
            f"{type(harness).__name__}.venue_clock must be 'scenario' or 'real', got {value!r}"
        )
    return cast(VenueClock, value)


@runtime_checkable
class VenueHarness(Protocol):
    """Drives one adapter's venue for the conformance suite.

    Scripting methods (``*_next``) queue what the venue does with the next place requests, in
    the order they were queued; an unscripted place fills at once. ``fill_next``,
    ``partial_fill_next``, ``hold_next`` and ``reject_next`` share one queue; ``fail_next`` has
    its own, applied first: a failure that takes the order takes it with the next entry of the
    first queue, one that does not (``connection``, ``timeout_before``, ``rate_limit``) leaves
    that entry for the next request. ``*_next_status`` methods
    queue what the venue's next status answers for one order say; an unscripted answer tells
    the truth. Venue actions act on orders the venue already holds. Observations report what
    reached the venue, refused requests included, so a scenario can count sends independently
    of what the engine believes.

    Optional attribute: ``venue_clock`` (see :func:`venue_clock`), ``"real"`` for a venue that
    keeps real time because it runs outside the test's event loop.

    Optional members for venues of real brokers: ``use_clock(clock)``, called with the clock the
    scenario's engine runs on before :meth:`start`, so the venue's dates and order times agree
    with the engine's; ``place_answer = "ack"`` for a broker whose place answer only acknowledges
    the order (its fills come from the next status inquiry or the push stream: scenarios then
    take them from one poll cycle); ``reports_commission = False`` for a broker whose answers
    carry no commission (scenarios then expect none booked); ``reports_reasons = False`` for a
    broker whose order inquiry gives no reason for a cancel or refusal of its own.

    Optional members for the ``cumulative-commission`` row (a harness without them skips it,
    saying so): ``report_commission_in_total(broker_order_id)``, from then on the venue's
    answers for the order list its executions without a commission of their own and give the
    commission only as the order's cumulative total; ``charge(broker_order_id, commission)``,
    the venue charges the order ``commission`` more with no execution of its own (a fee settled
    after the fill), so its cumulative commission rises while its quantity does not.
    """

    @property
    def adapter_name(self) -> str:
        """The adapter's entry-point name (``orderlane.adapters``) the engine is built with."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this venue and adapter can show; scenarios needing anything else are skipped."""

    async def start(self) -> None:
        """Bring the venue up (a fake server binds to loopback here); called before the engine."""

    async def stop(self) -> None:
        """Tear the venue down; called after the engine closed, also when the scenario failed."""

    def adapter_options(self) -> dict[str, Any]:
        """The adapter options that make the adapter talk to this venue (and nowhere else)."""

    # ---------------------------------------------------------------- the next place requests

    def fill_next(self, price: Decimal | None = None, commission: Decimal | None = None) -> None:
        """The next order fills in full at once, at ``price`` (default: the quote) and with
        ``commission`` (default: :data:`COMMISSION`)."""

    def partial_fill_next(
        self, quantity: int, price: Decimal | None = None, commission: Decimal | None = None
    ) -> None:
        """The next order fills ``quantity`` at once and stays open for the rest."""

    def hold_next(self) -> None:
        """The next order is accepted and stays open, unfilled, until the scenario acts on it."""

    def reject_next(self, kind: RejectKind, message: str) -> None:
        """The next order is refused: the adapter raises the rejection error of ``kind``
        (``InsufficientBalanceError``, ``InvalidSymbolError``, ``OrderValidationError``) and the
        order's recorded reason carries ``message``."""

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        """The next ``times`` place requests fail as ``kind`` says (see :data:`FailKind`).
        After ``timeout_after``, ``drop_after_accept`` and ``garbled`` the venue holds the order
        (filled per the scripting queue, like any place) and a lookup finds it."""

    def answer_lookup_next(self, answer: LookupAnswer, times: int = 1) -> None:
        """The next ``times`` lookups give this answer whatever the venue holds: the adapter
        returns ``CannotTell`` or ``Absent``."""

    # ---------------------------------------------------------------- the venue acting on its own

    def fill(
        self,
        broker_order_id: str,
        quantity: int | None = None,
        price: Decimal | None = None,
        commission: Decimal | None = None,
    ) -> None:
        """Execute ``quantity`` (default: all that is left) of an open order at the venue, at
        ``price`` (default: the quote) with ``commission`` (default: :data:`COMMISSION`)."""

    def cancel_by_venue(self, broker_order_id: str, reason: str) -> None:
        """The venue cancels an open order on its own, giving ``reason``."""

    def reject_open(self, broker_order_id: str, reason: str) -> None:
        """The venue rejects an order it had accepted, giving ``reason``."""

    def forget_order(self, broker_order_id: str) -> None:
        """The venue drops an order from its books: its status inquiry then answers that no
        such order exists (the adapter raises ``OrderNotFoundError``), as a broker does for an
        order of another day or account."""

    # ---------------------------------------------------------------- the next status answers

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        """The venue's next status answer for the order reports its latest execution twice, as
        a venue resending an execution report does, with its cumulative quantity, amount and
        commission unchanged. A venue whose answers carry only cumulative figures answers them
        unchanged, so the engine sees the same fill reported once more."""

    def stale_next_status(self, broker_order_id: str, executions: int) -> None:
        """The venue's next status answer for the order is an older cumulative snapshot, as a
        lagging replica gives: the order as it stood after its first ``executions`` executions
        (quantity, amount, commission and status of that moment; SUBMITTED for 0)."""

    def malform_next_status(self, broker_order_id: str) -> None:
        """The venue's next status answer for the order (alone in the inquiry, also a batch one)
        carries a malformed value where a price belongs, as a broker's slip or an adapter's
        parsing slip gives (a float, NaN or a negative number, whatever the venue's format makes
        of it); its other answers stay true. The engine must book nothing of that answer and go
        on with the other orders."""

    # ---------------------------------------------------------------- the venue's rate limit

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        """From now on the venue refuses, with its rate-limit answer, every request that would
        put more than ``limit`` arrivals into one rolling window of ``period`` seconds, timed by
        ``monotonic`` (the clock the scenario's engine runs on); and :meth:`adapter_options`
        makes the adapter declare that limit, so the engine's limiter paces requests to it.
        Called before the engine opens. A venue that keeps real time (``venue_clock = "real"``)
        times the window with its own monotonic clock; the row then runs on real time too."""

    # ---------------------------------------------------------------- the batch status inquiry

    def set_page_size(self, size: int) -> None:
        """The venue's batch status inquiry answers at most ``size`` orders per page, one request
        per page, and the adapter declares that size (``AdapterInfo.page_size``). Called before
        the engine opens. A venue whose API fixes its page size keeps its own: scenarios count
        pages with the size the adapter declares, never with ``size``."""

    # ---------------------------------------------------------------- late reports

    def report_late_fill(self, broker_order_id: str, quantity: int) -> None:
        """The venue reports an execution of ``quantity`` it made just before a cancel it has
        already confirmed (a late execution report): the order stays cancelled at the venue,
        and its status answers (and pushed notices) from now on carry the execution, at the
        quote and with :data:`COMMISSION`, in the order's cumulative figures."""

    # ---------------------------------------------------------------- the push stream

    def enable_push(self) -> None:
        """Turn the venue's stream of order notices on: the adapter then declares
        ``Capability.PUSH`` and streams every change of an order's state through
        ``orderlane_order_updates``. Called before the engine opens, and only by the push
        scenarios, which run only for a harness whose :attr:`capabilities` hold ``push``; every
        other scenario sees an adapter that is polled. A harness that cannot push raises
        ``NotImplementedError`` saying so, here and in the other push members."""

    def drop_pushes(self, count: int) -> None:
        """The next ``count`` notices are lost on the way, as they are while a stream
        reconnects; the orders at the venue change all the same."""

    def reconnect_push(self) -> None:
        """The stream reconnects: the adapter's stream yields a ``StreamGap``, which tells the
        engine that notices may have been missed."""

    def push_before_answer_next(self) -> None:
        """The next place request answers only after the engine has had the order's notices
        from the stream, as when a broker's execution notice overtakes its place answer."""

    # ---------------------------------------------------------------- slow answers and refusals

    def delay_answer_next(self) -> None:
        """The venue takes the next place request as scripted (filled, held ...), but its
        answer is held back, as a slow broker's is, until :meth:`release_answers`; the adapter
        waits for it meanwhile."""

    def release_answers(self) -> None:
        """Send every answer that :meth:`delay_answer_next` held back."""

    def fail_next_cancel(self, times: int = 1) -> None:
        """The next ``times`` cancel requests are refused before they reach the venue (the
        adapter raises ``BrokerConnectionError``): the cancel is not confirmed."""

    def refuse_duplicate_next(self) -> None:
        """The next place request that repeats a client order id the venue holds is refused as
        a duplicate (the adapter raises ``OrderRejectedError``) instead of being answered with
        the order the venue holds. Used only by scenarios that need ``client_order_id``; a
        harness whose broker does not deduplicate raises ``NotImplementedError``."""

    # ---------------------------------------------------------------- observation

    def request_count(self, operation: VenueOperation | None = None) -> int:
        """How many requests of ``operation`` (default: any) reached the venue, refused,
        rate-limited and unanswered ones included; a connection refused counts too."""

    def venue_order_ids(self) -> list[str]:
        """The broker order ids of every order the venue holds, in the order it took them."""

    def max_arrivals_in_window(self) -> int:
        """The most requests (refused ones included) that arrived within one window
        ``[t, t + period)`` of the enforced rate limit; 0 when none is enforced."""

    def rate_limit_answers(self) -> int:
        """How many requests the enforced rate limit refused (refusals scripted with
        ``fail_next("rate_limit")`` are not counted)."""


@attrs.frozen
class RecordedEvent:
    """One observer call: the hook's name without ``orderlane_`` and its arguments."""

    name: str
    args: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


class EventRecorder:
    """An observer plugin that keeps every event it hears, in delivery (= commit) order."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def names(self, only: Iterable[str] | None = None) -> list[str]:
        """The names of the events heard, optionally only those named in ``only``."""
        wanted = None if only is None else set(only)
        return [e.name for e in self.events if wanted is None or e.name in wanted]

    def of(self, name: str) -> list[RecordedEvent]:
        return [event for event in self.events if event.name == name]

    def _add(self, name: str, **args: Any) -> None:
        self.events.append(RecordedEvent(name, args))

    @hookimpl
    def orderlane_order_created(self, order: Order) -> None:
        self._add("order_created", order=order)

    @hookimpl
    def orderlane_order_submitted(self, order: Order) -> None:
        self._add("order_submitted", order=order)

    @hookimpl
    def orderlane_order_status_changed(self, order: Order, previous: OrderStatus) -> None:
        self._add("order_status_changed", order=order, previous=previous)

    @hookimpl
    def orderlane_order_filled(self, order: Order, fill: Fill) -> None:
        self._add("order_filled", order=order, fill=fill)

    @hookimpl
    def orderlane_position_changed(
        self, position: Position, fill: Fill, realized_pnl: Decimal
    ) -> None:
        self._add("position_changed", position=position, fill=fill, realized_pnl=realized_pnl)

    @hookimpl
    def orderlane_retry_scheduled(
        self, order: Order | None, operation: Operation, attempt: int, delay: float, error: str
    ) -> None:
        self._add(
            "retry_scheduled",
            order=order,
            operation=operation,
            attempt=attempt,
            delay=delay,
            error=error,
        )

    @hookimpl
    def orderlane_retry_exhausted(
        self, order: Order | None, operation: Operation, attempts: int, error: str
    ) -> None:
        self._add(
            "retry_exhausted", order=order, operation=operation, attempts=attempts, error=error
        )

    @hookimpl
    def orderlane_order_timed_out(self, order: Order, submitted_at: datetime) -> None:
        self._add("order_timed_out", order=order, submitted_at=submitted_at)


@attrs.define
class ScenarioRun:
    """What one scenario works with: the harness, fake time, a fresh journal and the events."""

    harness: VenueHarness
    database_url: str
    #: The variant of a parametrized scenario (for example a rejection kind), else None.
    variant: str | None = None
    clock: FakeClock = attrs.Factory(FakeClock)
    #: The engine runs on real time instead of :attr:`clock`: a row whose venue measures time,
    #: against a venue that keeps real time.
    real_time: bool = False
    events: EventRecorder = attrs.Factory(EventRecorder)
    logs: list[logging.LogRecord] = attrs.Factory(list)
    #: The rate-limiter key of this run's engines. Engines on one key share a limiter (per event
    #: loop), clock included, so every run has its own: a scenario never inherits another's
    #: grants, pauses or fake clock when several run on one loop.
    credential_key: str = attrs.Factory(lambda: f"conformance:{uuid.uuid4().hex}")

    @property
    def time(self) -> Clock:
        """The clock the run's engines run on: :attr:`clock`, or the real one for
        :attr:`real_time`. Hand its ``monotonic`` to the venue's rate limit."""
        return _REAL_CLOCK if self.real_time else self.clock

    @property
    def client_order_ids(self) -> bool:
        """Whether the harness declares ``client_order_id``: its broker deduplicates client order
        ids, so the engine sends an ambiguous order again instead of looking it up."""
        return Capability.CLIENT_ORDER_ID in self.harness.capabilities

    def build_engine(self, *, journal: SqlJournal | None = None) -> Engine:
        """An engine on the harness's venue and this run's database, not started yet.

        ``journal`` replaces the engine's own journal on the same database (a
        :class:`~orderlane.testing.crash.StallingJournal`, say). The engine runs on
        :attr:`time` (on real time with its limiter's windows counted :data:`REAL_TIME_MARGIN`
        longer), and its tracker never polls by itself: a scenario runs a poll cycle with
        ``await engine.tracker.poll_once()`` and consumes a push stream with
        ``await engine.tracker.start(poll=False)``.
        """
        config = EngineConfig(
            # Installed observer plugins stay out: the scenario sees the adapter and the core.
            load_entry_point_plugins=False,
            credential_key=self.credential_key,
            track=False,
        )
        if self.real_time:
            config = attrs.evolve(config, rate_limit_margin=REAL_TIME_MARGIN)
        return Engine(
            self.harness.adapter_name,
            adapter_options=self.harness.adapter_options(),
            clock=self.time,
            database_url=self.database_url,
            journal=journal,
            plugins=[self.events],
            config=config,
        )

    @asynccontextmanager
    async def engine(self) -> AsyncIterator[Engine]:
        """An open engine on the harness's venue; open it again on the same journal to restart
        (recovery settles what the journal left open before the engine is handed over)."""
        engine = self.build_engine()
        await engine.start()
        try:
            yield engine
        finally:
            await engine.close()

    async def crash(self, signal: Signal, at: CrashPoint) -> None:
        """Execute ``signal`` on an engine that dies at ``at``: its flow stops dead there, is
        cancelled, and the engine's connections are dropped without a clean shutdown. The
        journal keeps what was committed and the venue what it received; the next
        :meth:`engine` is the restart.

        Raises ``AssertionError`` if the flow ended without reaching ``at`` (the venue did not
        do what the scenario scripted).
        """
        journal = StallingJournal(self.database_url, at)
        engine = self.build_engine(journal=journal)
        await engine.start()
        flow = asyncio.ensure_future(engine.execute(signal))
        reached = asyncio.ensure_future(journal.reached.wait())
        try:
            await asyncio.wait({flow, reached}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reached.cancel()
            await abandon(engine, flow)
        if journal.reached.is_set():
            return
        error = flow.exception()  # the flow ended by itself: abandoning it cancelled nothing
        ended = f"raised {error!r}" if error is not None else f"ended {flow.result().status.value}"
        raise AssertionError(f"the engine should have died at {at}, but the order's flow {ended}")

    async def crash_many(self, plan: Sequence[tuple[Signal, CrashPoint]]) -> None:
        """Execute every signal of ``plan`` at once on one engine, each flow dying at its own
        crash point (as :meth:`crash` does for one); returns once each flow stopped there.
        Each signal needs a ``signal_id`` (it names the flow's crash point).

        Raises ``AssertionError`` if a flow ended without reaching its point, or if they did
        not all get there within :data:`CRASH_WAIT_LIMIT` real seconds.
        """
        points = {signal.signal_id: at for signal, at in plan if signal.signal_id is not None}
        if len(points) != len(plan):
            raise ValueError("crash_many needs signals with distinct signal ids")
        signals = [signal for signal, _ in plan]
        at = plan[0][1] if plan else "after_created"
        journal = StallingJournal(self.database_url, at, points)
        engine = self.build_engine(journal=journal)
        await engine.start()
        flows = [asyncio.ensure_future(engine.execute(signal)) for signal in signals]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CRASH_WAIT_LIMIT
        try:
            while journal.stalled < len(flows) and loop.time() < deadline:
                if any(flow.done() for flow in flows):
                    break
                await asyncio.sleep(0.005)  # real time: the flows run on the fake clock
        finally:
            ended = [flow for flow in flows if flow.done() and not flow.cancelled()]
            await abandon(engine, *flows)
        if ended:
            error = ended[0].exception()
            outcome = f"raised {error!r}" if error else f"ended {ended[0].result().status.value}"
            raise AssertionError(f"the engine should have died, but a flow {outcome}")
        if journal.stalled < len(flows):
            raise AssertionError(
                f"only {journal.stalled} of {len(flows)} flows reached their crash point "
                f"within {CRASH_WAIT_LIMIT:g}s"
            )

    @contextlib.contextmanager
    def capturing_logs(self) -> Iterator[None]:
        """Keep orderlane's warnings and errors in :attr:`logs` meanwhile, so a scenario can
        check what was logged whatever logging the host process configured."""
        logger = logging.getLogger("orderlane")
        handler = _ListHandler(self.logs)
        previous = logger.level
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
