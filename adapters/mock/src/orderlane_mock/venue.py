"""An in-process venue that does what it is told and remembers every request.

By default it fills every order at once at its quote (72,000 unless set per symbol) with a fixed
commission (100). Tests script what happens next::

    venue.partial_fill_next(4)           # the next order fills 4 and stays open
    venue.reject_next("insufficient_balance", "not enough cash")
    venue.fail_next("connection", times=3)
    venue.fill(broker_order_id, 6)       # execute more of an open order later
    venue.stale_next_status(broker_order_id, 1)  # the next status answer lags behind
    venue.corrupt_next_status(broker_order_id, change)  # ... or comes out malformed

Its daily inquiry answers in pages of :attr:`MockVenue.page_size` orders, one request per page,
and it pushes a notice of every change of an order's state (see :mod:`orderlane_mock.push`).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import attrs

from orderlane.errors import (
    BrokerConnectionError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    InsufficientBalanceError,
    InvalidSymbolError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderValidationError,
)
from orderlane.model import Execution, Order, OrderSnapshot, OrderStatus, OrderType, Side
from orderlane.testing.venue import RollingWindow
from orderlane_mock.push import PushNotices

__all__ = ["Corruption", "MockVenue", "VenueOrder", "VenueRequest"]

RejectKind = Literal["insufficient_balance", "invalid_symbol", "validation", "other"]
FailKind = Literal[
    "connection",  # refused: nothing reached the venue
    "timeout_before",  # sent, but the venue never saw it (the caller cannot know)
    "timeout_after",  # the venue accepted it, the answer was lost
    "drop_after_accept",  # the venue accepted it, the connection dropped
    "garbled",  # the venue accepted it and answered with something unreadable
    "rate_limit",  # the venue refused it for exceeding its rate
]
Operation = Literal["place", "cancel", "status", "lookup"]
#: Turns a true answer into a malformed one (``corrupt_next_status``, ``corrupt_next_place``).
Corruption = Callable[[OrderSnapshot], OrderSnapshot]

_REJECTIONS: dict[str, type[OrderRejectedError]] = {
    "insufficient_balance": InsufficientBalanceError,
    "invalid_symbol": InvalidSymbolError,
    "validation": OrderValidationError,
    "other": OrderRejectedError,
}


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.define
class VenueRequest:
    """One request as the venue received it."""

    operation: str
    client_order_id: str | None
    broker_order_id: str | None
    received_at: datetime
    accepted: bool = True


@attrs.define
class VenueOrder:
    broker_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    created_at: datetime
    status: OrderStatus = OrderStatus.SUBMITTED
    executions: list[Execution] = attrs.Factory(list)
    reason: str | None = None
    #: Answers list the executions without a commission of their own; the commission shows
    #: only in the order's cumulative total (as brokers whose fills carry no fee report it).
    commission_in_total: bool = False
    #: Charged after the executions, with no execution of its own (a fee settled later).
    charged_later: Decimal = Decimal(0)

    @property
    def filled_quantity(self) -> int:
        return sum(execution.quantity for execution in self.executions)

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)

    def snapshot(self) -> OrderSnapshot:
        notional = sum((e.price * e.quantity for e in self.executions), Decimal(0))
        commission = sum((e.commission for e in self.executions), self.charged_later)
        last = self.executions[-1].executed_at if self.executions else self.created_at
        executions = tuple(self.executions)
        if self.commission_in_total:
            executions = tuple(attrs.evolve(e, commission=Decimal(0)) for e in executions)
        return OrderSnapshot(
            status=self.status,
            broker_order_id=self.broker_order_id,
            filled_quantity=self.filled_quantity,
            filled_notional=notional,
            commission=commission,
            broker_time=last,
            executions=executions,
            reason=self.reason,
        )


@attrs.define
class _Plan:
    action: Literal["fill", "partial", "hold", "reject"]
    quantity: int | None = None
    price: Decimal | None = None
    commission: Decimal | None = None
    reject_kind: str = "other"
    message: str = ""


class MockVenue:
    """A scriptable venue. Not thread-safe: use it from the engine's event loop."""

    def __init__(
        self,
        *,
        quote: Decimal | int | str = Decimal(72000),
        commission: Decimal | int | str = Decimal(100),
        quotes: dict[str, Decimal] | None = None,
        clock: Callable[[], datetime] = _now,
        dedupe_client_ids: bool = False,
        id_prefix: str = "M",
        page_size: int = 100,
    ) -> None:
        self.default_quote = Decimal(quote)
        self.commission = Decimal(commission)
        self.quotes: dict[str, Decimal] = dict(quotes or {})
        self.clock = clock
        self.requests: list[VenueRequest] = []
        self.orders: dict[str, VenueOrder] = {}
        #: Broker ids per client order id, in the order accepted (lookups need not scan).
        self._by_client: dict[str, list[str]] = collections.defaultdict(list)
        self._plans: collections.deque[_Plan] = collections.deque()
        self._failures: dict[str, collections.deque[FailKind]] = collections.defaultdict(
            collections.deque
        )
        self._lookup_answers: collections.deque[str] = collections.deque()
        self._ids = itertools.count(1)
        self._fill_ids = itertools.count(1)
        #: Answer a repeated client order id with the order it already created (as brokers
        #: that deduplicate client order ids do).
        self.dedupe_client_ids = dedupe_client_ids
        #: Starts every broker order id; venues built by the adapter factory get a random one,
        #: so orders from separate runs on one journal never share a broker id.
        self.id_prefix = id_prefix
        self._window: RollingWindow | None = None
        #: Scripted status answers per broker order id: ("repeat", 0) or ("stale", executions).
        self._status_answers: dict[str, collections.deque[tuple[str, int]]] = (
            collections.defaultdict(collections.deque)
        )
        #: Changes applied to the next answers: per broker order id for status answers, and
        #: for place answers (to script malformed answers, as an adapter's parsing slip makes).
        self._corrupt_status: dict[str, collections.deque[Corruption]] = collections.defaultdict(
            collections.deque
        )
        self._corrupt_place: collections.deque[Corruption] = collections.deque()
        self.page_size = page_size
        #: How a lookup finds an order: by its client order id, or (as brokers without client
        #: order ids must) by its attributes: symbol, side, quantity, type and limit price.
        self.lookup_by: Literal["client_id", "attributes"] = "client_id"
        #: Answer a place that repeats a held client order id with a rejection ("duplicate
        #: client order id") instead of the order it holds, this many times.
        self.refuse_duplicates = 0
        self._delayed_answers = 0
        self._answer_gates: list[asyncio.Event] = []
        #: The push channel: every change of an order's state goes out as a notice to whoever
        #: subscribed (the adapter, while it runs).
        self.notices = PushNotices()

    @property
    def page_size(self) -> int:
        """How many orders one page of the daily inquiry holds."""
        return self._page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a page holds at least one order, got {size!r}")
        self._page_size = size

    def enforce_rate_limit(
        self, limit: int, period: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """Refuse, like a broker, any request that would put more than ``limit`` arrivals into
        a rolling window of ``period`` (timed by ``monotonic``; pass the engine's fake clock)."""
        self._window = RollingWindow(limit, period, monotonic)

    @property
    def arrival_times(self) -> list[float]:
        """When each request arrived (only recorded while a rate limit is enforced)."""
        return [] if self._window is None else list(self._window.arrivals)

    def max_arrivals_in_window(self, period: float | None = None) -> int:
        """The most arrivals in any half-open window ``[t, t + period)``."""
        return 0 if self._window is None else self._window.busiest(period)

    @property
    def rate_limit_rejections(self) -> int:
        return sum(1 for r in self.requests if r.operation.endswith(":rate-limited"))

    def _arrive(self, operation: str) -> None:
        if self._window is not None and not self._window.arrive():
            self.requests.append(
                VenueRequest(f"{operation}:rate-limited", None, None, self.clock(), accepted=False)
            )
            raise BrokerRateLimitError("the mock venue's rate limit was exceeded")

    # ---------------------------------------------------------------- scripting

    def quote(self, symbol: str) -> Decimal:
        return self.quotes.get(symbol, self.default_quote)

    def set_quote(self, symbol: str, price: Decimal | int | str) -> None:
        self.quotes[symbol] = Decimal(price)

    def fill_next(
        self, price: Decimal | int | None = None, commission: Decimal | int | None = None
    ) -> None:
        """The next order fills completely at once."""
        self._plans.append(_Plan("fill", price=_dec(price), commission=_dec(commission)))

    def partial_fill_next(
        self,
        quantity: int,
        price: Decimal | int | None = None,
        commission: Decimal | int | None = None,
    ) -> None:
        """The next order fills ``quantity`` at once and stays open for the rest."""
        self._plans.append(
            _Plan("partial", quantity=quantity, price=_dec(price), commission=_dec(commission))
        )

    def hold_next(self, times: int = 1) -> None:
        """The next ``times`` orders are accepted and stay open, unfilled."""
        self._plans.extend(_Plan("hold") for _ in range(times))

    def reject_next(
        self, kind: RejectKind = "other", message: str = "rejected by the venue"
    ) -> None:
        """The next order is refused with the rejection error of ``kind``."""
        if kind not in _REJECTIONS:
            raise ValueError(f"unknown rejection kind {kind!r}; use one of {sorted(_REJECTIONS)}")
        self._plans.append(_Plan("reject", reject_kind=kind, message=message))

    def fail_next(self, kind: FailKind, *, times: int = 1, operation: Operation = "place") -> None:
        """The next ``times`` requests of ``operation`` fail as ``kind`` describes."""
        self._failures[operation].extend([kind] * times)

    def delay_answer_next(self) -> None:
        """The venue takes the next order as scripted, but its answer is held back until
        :meth:`release_answers` (a slow answer; the adapter waits for it)."""
        self._delayed_answers += 1

    def take_answer_delay(self) -> asyncio.Event | None:
        """For the adapter, before a place: what to wait on before answering, if anything."""
        if not self._delayed_answers:
            return None
        self._delayed_answers -= 1
        gate = asyncio.Event()
        self._answer_gates.append(gate)
        return gate

    def release_answers(self) -> None:
        """Let every held-back answer go."""
        gates, self._answer_gates = self._answer_gates, []
        for gate in gates:
            gate.set()

    def answer_lookup_next(self, answer: Literal["cannot_tell", "absent"], times: int = 1) -> None:
        """The next lookups answer this instead of searching (to script an unsettled order)."""
        self._lookup_answers.extend([answer] * times)

    # ---------------------------------------------------------------- the push channel

    def drop_pushes(self, count: int) -> None:
        """The next ``count`` notices are lost, as they are while a stream reconnects."""
        self.notices.drop(count)

    def reconnect_push(self, reason: str = "reconnected") -> None:
        """The stream reconnects: listeners hear a gap, since notices may have been missed."""
        self.notices.gap(reason)

    def push_before_answer_next(self) -> None:
        """The next order the adapter places answers only after its notices were read, as when
        a broker's execution notice overtakes its answer to the place request."""
        self.notices.answer_after_push_next()

    # ---------------------------------------------------------------- the next status answers

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        """The next status answer for the order lists its latest execution twice, as a venue
        that resends an execution report does; its cumulative figures stay true."""
        if not self._get(broker_order_id).executions:
            raise ValueError(f"venue order {broker_order_id} has no execution to repeat")
        self._status_answers[broker_order_id].append(("repeat", 0))

    def stale_next_status(self, broker_order_id: str, executions: int) -> None:
        """The next status answer for the order is an older cumulative snapshot: the order as
        it stood after its first ``executions`` executions, as a lagging replica reports it."""
        have = len(self._get(broker_order_id).executions)
        if not 0 <= executions <= have:
            raise ValueError(
                f"venue order {broker_order_id} has {have} executions, cannot report {executions}"
            )
        self._status_answers[broker_order_id].append(("stale", executions))

    def corrupt_next_status(self, broker_order_id: str, change: Corruption) -> None:
        """The next status answer for the order is ``change(answer)``: a malformed answer (a
        float price, NaN, a negative commission...), as an adapter's parsing slip passes on."""
        self._get(broker_order_id)
        self._corrupt_status[broker_order_id].append(change)

    def corrupt_next_place(self, change: Corruption) -> None:
        """The next accepted place request is answered with ``change(answer)``; the venue
        holds the order as it truly is."""
        self._corrupt_place.append(change)

    def _answer(self, order: VenueOrder) -> OrderSnapshot:
        """The status answer for ``order``: the scripted one, if any, else the truth; then a
        scripted corruption, if any."""
        answer = self._scripted_answer(order)
        corruptions = self._corrupt_status.get(order.broker_order_id)
        if corruptions:
            answer = corruptions.popleft()(answer)
        return answer

    def _scripted_answer(self, order: VenueOrder) -> OrderSnapshot:
        scripted = self._status_answers.get(order.broker_order_id)
        if not scripted:
            return order.snapshot()
        kind, executions = scripted.popleft()
        if kind == "repeat":
            truth = order.snapshot()
            return attrs.evolve(truth, executions=(*truth.executions, truth.executions[-1]))
        past = attrs.evolve(order, executions=order.executions[:executions], reason=None)
        past.status = OrderStatus.SUBMITTED
        if past.executions:
            full = past.filled_quantity == past.quantity
            past.status = OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED
        return past.snapshot()

    # ---------------------------------------------------------------- the venue acting on its own

    def fill(
        self,
        broker_order_id: str,
        quantity: int | None = None,
        price: Decimal | int | None = None,
        commission: Decimal | int | None = None,
    ) -> Execution:
        """Execute ``quantity`` (default: all that is left) of an open order."""
        order = self._get(broker_order_id)
        if not order.is_open:
            raise ValueError(f"venue order {broker_order_id} is {order.status.value}, not open")
        left = order.quantity - order.filled_quantity
        size = left if quantity is None else quantity
        if not 0 < size <= left:
            raise ValueError(f"cannot fill {size} of venue order {broker_order_id}: {left} left")
        execution = Execution(
            fill_id=f"{broker_order_id}-F{next(self._fill_ids)}",
            quantity=size,
            price=_dec(price) or self._price(order),
            commission=self.commission if commission is None else Decimal(commission),
            executed_at=self.clock(),
        )
        order.executions.append(execution)
        order.status = (
            OrderStatus.FILLED
            if order.filled_quantity == order.quantity
            else OrderStatus.PARTIALLY_FILLED
        )
        self.notices.send(order.snapshot())
        return execution

    def report_commission_in_total(self, broker_order_id: str) -> None:
        """From now on the order's answers list its executions without a commission of their
        own and give the commission only as the order's cumulative total."""
        self._get(broker_order_id).commission_in_total = True

    def charge(self, broker_order_id: str, commission: Decimal | int) -> None:
        """Charge the order ``commission`` more with no execution of its own (a fee the venue
        settles after the fill): its cumulative commission rises, its quantity does not."""
        order = self._get(broker_order_id)
        order.charged_later += Decimal(commission)
        self.notices.send(order.snapshot())

    def cancel_by_venue(self, broker_order_id: str, reason: str = "cancelled by the venue") -> None:
        order = self._get(broker_order_id)
        order.status, order.reason = OrderStatus.CANCELLED, reason
        self.notices.send(order.snapshot())

    def reject_open(self, broker_order_id: str, reason: str = "rejected after acceptance") -> None:
        order = self._get(broker_order_id)
        order.status, order.reason = OrderStatus.REJECTED, reason
        self.notices.send(order.snapshot())

    def forget(self, broker_order_id: str) -> None:
        """Drop an order from the venue's books: inquiries then answer that it does not exist,
        as a broker does for an order of another day or account."""
        self._get(broker_order_id)
        del self.orders[broker_order_id]
        self._status_answers.pop(broker_order_id, None)
        self._corrupt_status.pop(broker_order_id, None)

    # ---------------------------------------------------------------- what requests see

    @property
    def places(self) -> list[VenueRequest]:
        """Every place attempt, refused ones included (``accepted`` tells them apart)."""
        return [r for r in self.requests if r.operation == "place"]

    def requests_of(self, operation: str) -> list[VenueRequest]:
        return [r for r in self.requests if r.operation == operation]

    def orders_for(self, client_order_id: str) -> list[VenueOrder]:
        known = self._by_client.get(client_order_id, ())
        return [self.orders[broker_id] for broker_id in known if broker_id in self.orders]

    def _record(self, operation: str, client_id: str | None, broker_id: str | None) -> VenueRequest:
        request = VenueRequest(operation, client_id, broker_id, self.clock())
        self.requests.append(request)
        return request

    def _fail(self, operation: str, order: Order | None) -> VenueOrder | None:
        """Apply a scripted failure, if any: raise, possibly after accepting ``order``."""
        failures = self._failures.get(operation)
        kind = failures.popleft() if failures else None
        client_id = order.id if order is not None else None
        if kind == "connection":  # refused: it never arrives, so the venue does not count it
            self._record(operation, client_id, None).accepted = False
            raise BrokerConnectionError("connection refused by the mock venue")
        self._arrive(operation)
        if kind is None:
            return None
        request = self._record(operation, client_id, None)
        if kind == "rate_limit":
            request.accepted = False
            raise BrokerRateLimitError("rate limit exceeded at the mock venue", retry_after=None)
        if kind == "timeout_before":
            request.accepted = False
            raise BrokerTimeoutError("no answer from the mock venue", request_sent=True)
        if operation != "place" or order is None:
            raise BrokerTimeoutError(f"{operation} timed out", request_sent=True)
        accepted = self._take(order)
        request.broker_order_id = accepted.broker_order_id
        if kind == "timeout_after":
            raise BrokerTimeoutError("no answer from the mock venue", request_sent=True)
        if kind == "drop_after_accept":
            raise BrokerConnectionError("connection dropped after sending", request_sent=True)
        raise BrokerError("the mock venue's answer could not be parsed")

    def _take(self, order: Order) -> VenueOrder:
        """The order the venue holds for this request: a new one, or, where it deduplicates
        client order ids, the one it already took under the same id."""
        if self.dedupe_client_ids:
            for existing in self.orders_for(order.id):
                return existing
        return self._accept(order)

    def _accept(self, order: Order) -> VenueOrder:
        broker_id = f"{self.id_prefix}{next(self._ids):08d}"
        accepted = VenueOrder(
            broker_order_id=broker_id,
            client_order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            created_at=self.clock(),
        )
        self.orders[broker_id] = accepted
        self._by_client[order.id].append(broker_id)
        self.notices.send(accepted.snapshot())
        plan = self._plans.popleft() if self._plans else _Plan("fill")
        if plan.action == "fill":
            self.fill(broker_id, price=plan.price, commission=plan.commission)
        elif plan.action == "partial":
            self.fill(broker_id, plan.quantity, price=plan.price, commission=plan.commission)
        return accepted

    def _price(self, order: VenueOrder) -> Decimal:
        if order.order_type is OrderType.LIMIT and order.limit_price is not None:
            return order.limit_price
        return self.quote(order.symbol)

    def _get(self, broker_order_id: str) -> VenueOrder:
        try:
            return self.orders[broker_order_id]
        except KeyError:
            raise OrderNotFoundError(f"the mock venue has no order {broker_order_id}") from None

    # ---------------------------------------------------------------- operations

    def place(self, order: Order) -> OrderSnapshot:
        if self._fail("place", order) is not None:  # pragma: no cover - _fail always raises
            raise AssertionError
        plan = self._plans[0] if self._plans else None
        if plan is not None and plan.action == "reject":
            self._plans.popleft()
            request = self._record("place", order.id, None)
            request.accepted = False
            raise _REJECTIONS[plan.reject_kind](plan.message)
        request = self._record("place", order.id, None)
        if self.dedupe_client_ids and self.refuse_duplicates and self.orders_for(order.id):
            self.refuse_duplicates -= 1
            request.accepted = False
            raise OrderRejectedError(f"duplicate client order id {order.id}")
        accepted = self._take(order)
        request.broker_order_id = accepted.broker_order_id
        if self._corrupt_place:
            return self._corrupt_place.popleft()(accepted.snapshot())
        return accepted.snapshot()

    def cancel(self, broker_order_id: str) -> OrderSnapshot | None:
        """Cancel what is left; ``None`` when there is nothing left to cancel."""
        self._fail("cancel", None)
        self._record("cancel", None, broker_order_id)
        order = self._get(broker_order_id)
        if not order.is_open:
            return None
        order.status, order.reason = OrderStatus.CANCELLED, "cancelled on request"
        self.notices.send(order.snapshot())
        return order.snapshot()

    def status(self, broker_order_id: str) -> OrderSnapshot:
        self._fail("status", None)
        self._record("status", None, broker_order_id)
        return self._answer(self._get(broker_order_id))

    def statuses(self, broker_order_ids: list[str]) -> dict[str, OrderSnapshot]:
        """Every asked-for order in one request (the venue's daily inquiry)."""
        self._fail("status", None)
        self._record("status", None, None)
        return {
            broker_id: self._answer(self.orders[broker_id])
            for broker_id in broker_order_ids
            if broker_id in self.orders
        }

    def statuses_page(
        self, broker_order_ids: Sequence[str], page: int
    ) -> tuple[dict[str, OrderSnapshot], bool]:
        """Page ``page`` (from 0) of the daily inquiry for the asked-for orders, one request per
        page: the orders of that page the venue holds, and whether more pages follow."""
        if page < 0:
            raise ValueError(f"pages count from 0, got {page}")
        self._fail("status", None)
        self._record("status", None, None)
        start = page * self.page_size
        asked = broker_order_ids[start : start + self.page_size]
        answer = {b: self._answer(self.orders[b]) for b in asked if b in self.orders}
        return answer, start + self.page_size < len(broker_order_ids)

    def lookup(self, client_order_id: str) -> VenueOrder | Literal["cannot_tell"] | None:
        self._fail("lookup", None)
        self._record("lookup", client_order_id, None)
        if self._lookup_answers:
            answer = self._lookup_answers.popleft()
            return "cannot_tell" if answer == "cannot_tell" else None
        found = self.orders_for(client_order_id)
        return found[0] if found else None

    def lookup_like(self, order: Order) -> list[VenueOrder] | Literal["cannot_tell"]:
        """The orders the venue holds with ``order``'s attributes (an inquiry by intent, as a
        broker without client order ids offers), in the order it took them."""
        self._fail("lookup", None)
        self._record("lookup", order.id, None)
        if self._lookup_answers:
            answer = self._lookup_answers.popleft()
            return "cannot_tell" if answer == "cannot_tell" else []
        return [
            held
            for held in self.orders.values()
            if (held.symbol, held.side, held.quantity, held.order_type, held.limit_price)
            == (order.symbol, order.side, order.quantity, order.order_type, order.limit_price)
        ]

    def lookup_like_page(
        self, orders: Sequence[Order], page: int, scripted: dict[str, str]
    ) -> tuple[dict[str, list[VenueOrder]], bool]:
        """Page ``page`` of the day's orders, one request per page, matched by intent against
        each of ``orders``. On the first page, scripted lookup answers are taken for the orders
        in turn into ``scripted`` (order id -> "cannot_tell" or "absent")."""
        self._fail("lookup", None)
        self._record("lookup", None, None)
        if page == 0:
            for order in orders:
                if not self._lookup_answers:
                    break
                scripted[order.id] = self._lookup_answers.popleft()
        start = page * self.page_size
        held = list(self.orders.values())[start : start + self.page_size]
        answers: dict[str, list[VenueOrder]] = {}
        for order in orders:
            intent = (order.symbol, order.side, order.quantity, order.order_type, order.limit_price)
            answers[order.id] = [
                h
                for h in held
                if (h.symbol, h.side, h.quantity, h.order_type, h.limit_price) == intent
            ]
        return answers, start + self.page_size < len(self.orders)

    def lookup_page(
        self, client_order_ids: Sequence[str], page: int
    ) -> tuple[dict[str, VenueOrder | Literal["cannot_tell"] | None], bool]:
        """Page ``page`` (from 0) of the day's orders, one request per page, matched against
        ``client_order_ids``: a batch lookup costs pages of the day's orders, not one request
        per order. The answers cover every asked id once the last page is read (scripted
        lookup answers apply to the asked ids in turn, on the first page)."""
        if page < 0:
            raise ValueError(f"pages count from 0, got {page}")
        self._fail("lookup", None)
        self._record("lookup", None, None)
        answers: dict[str, VenueOrder | Literal["cannot_tell"] | None] = {}
        if page == 0:
            for client_id in client_order_ids:
                if not self._lookup_answers:
                    break
                scripted = self._lookup_answers.popleft()
                answers[client_id] = "cannot_tell" if scripted == "cannot_tell" else None
        start = page * self.page_size
        asked = set(client_order_ids)
        for order in list(self.orders.values())[start : start + self.page_size]:
            if order.client_order_id in asked:
                answers.setdefault(order.client_order_id, order)
        more = start + self.page_size < len(self.orders)
        if not more:
            for client_id in client_order_ids:
                answers.setdefault(client_id, None)
        return answers, more


def _dec(value: Decimal | int | str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
