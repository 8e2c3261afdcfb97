"""The fake KIS venue's books: instruments and quotes, accounts with cash and holdings, orders.

No I/O here. Matching is deliberately simple and predictable: a market order fills at the
instrument's quote; a limit order fills at the quote when the quote crosses its price, and an order
left resting fills at its own price once a later quote crosses it. Tests script the next orders
(fill at a price, partial fill, hold, reject) and act on open ones (fill, cancel, reject) the way
a venue would on its own. Every change of an order is reported to :attr:`Book.listeners` so
notices go out over the WebSocket.

Cash is checked against what open buys have reserved (their limit price, or the quote for a market
order) and sells against the holding less what open sells have reserved. Prices are whole won;
the venue charges no fees.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

import attrs

from orderlane_kis.fake.codes import Answer, Codes
from orderlane_kis.krx import SESSION_CLOSE, SESSION_OPEN, is_business_day, is_on_tick, kst, kst_day

__all__ = [
    "BUY",
    "SELL",
    "Account",
    "Behaviour",
    "Book",
    "Execution",
    "Holding",
    "Instrument",
    "OrderEvent",
    "VenueOrder",
]

SELL = "01"
BUY = "02"
MARKET = "01"
LIMIT = "00"
#: The order divisions (ORD_DVSN) the venue takes, by name. With one quote per instrument,
#: "best" prices (03 최유리, 04 최우선) and the IOC/FOK market variants fill like a market order;
#: 02 (conditional limit) is a limit order during the session.
ORDER_DIVISIONS: dict[str, str] = {
    "00": "지정가",
    "01": "시장가",
    "02": "조건부지정가",
    "03": "최유리지정가",
    "04": "최우선지정가",
    "11": "IOC지정가",
    "12": "FOK지정가",
    "13": "IOC시장가",
    "14": "FOK시장가",
    "15": "IOC최유리",
    "16": "FOK최유리",
}
MARKET_LIKE = frozenset({"01", "03", "04", "13", "14", "15", "16"})
IMMEDIATE_OR_CANCEL = frozenset({"11", "13", "15"})
FILL_OR_KILL = frozenset({"12", "14", "16"})

Mode = Literal["paper", "live"]
EventKind = Literal["accepted", "filled", "cancelled", "modified", "rejected"]


@attrs.define
class Instrument:
    code: str
    name: str
    quote: int


@attrs.frozen
class Execution:
    quantity: int
    price: int
    at: datetime


@attrs.define
class Holding:
    quantity: int = 0
    cost: int = 0  # what the quantity held cost, in won


@attrs.define
class Account:
    """One account: ``number`` is ``CANO-ACNT_PRDT_CD`` (``12345678-01``)."""

    number: str
    name: str
    cash: int
    holdings: dict[str, Holding] = attrs.Factory(dict)

    @property
    def cano(self) -> str:
        return self.number.split("-")[0]

    @property
    def product(self) -> str:
        return self.number.split("-")[1]


@attrs.define(eq=False)
class VenueOrder:
    """An order row of the daily inquiry. Cancel and modify requests are rows of their own that
    point at the order they act on through ``original``."""

    odno: str
    branch: str
    account: str
    symbol: str
    side: str
    ord_dvsn: str
    quantity: int
    price: int
    exchange: str
    accepted_at: datetime
    visible_at: float  # venue-monotonic moment from which the daily inquiry shows it
    tr_id: str
    kind: Literal["order", "cancel", "modify"] = "order"
    original: str | None = None
    executions: list[Execution] = attrs.Factory(list)
    cancelled: int = 0  # confirmed cancelled quantity (cnc_cfrm_qty)
    replaced: int = 0  # quantity moved to a modify order
    rejected: int = 0
    held: bool = False  # scripted to stay open: quotes never fill it

    @property
    def filled(self) -> int:
        return sum(execution.quantity for execution in self.executions)

    @property
    def amount(self) -> int:
        return sum(execution.quantity * execution.price for execution in self.executions)

    @property
    def remaining(self) -> int:
        """The quantity still open at the venue."""
        if self.kind == "cancel":
            return 0
        return self.quantity - self.filled - self.cancelled - self.replaced - self.rejected

    def as_of(self, executions: int) -> VenueOrder:
        """The order as it stood after its first ``executions`` executions."""
        return attrs.evolve(
            self, executions=self.executions[:executions], cancelled=0, replaced=0, rejected=0
        )

    @property
    def is_market(self) -> bool:
        return self.ord_dvsn in MARKET_LIKE


@attrs.frozen
class OrderEvent:
    """A change of an order, for notices: ``quantity`` is the executed, cancelled or ordered
    quantity the notice carries, ``price`` the execution price for fills."""

    kind: EventKind
    order: VenueOrder
    quantity: int
    price: int = 0


@attrs.frozen
class Behaviour:
    """What the venue does with the next order it accepts (scripted by a test)."""

    kind: Literal["fill", "partial", "hold", "reject"]
    quantity: int = 0
    price: int | None = None
    answer: Answer | None = None


class Book:
    """Instruments, accounts and orders of one venue."""

    def __init__(self, mode: Mode, now: Callable[[], datetime], monotonic: Callable[[], float]):
        self.mode = mode
        self._now = now
        self._monotonic = monotonic
        self.instruments: dict[str, Instrument] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, VenueOrder] = {}
        self.script: collections.deque[Behaviour] = collections.deque()
        self.listeners: list[Callable[[OrderEvent], None]] = []
        self.market_hours = False
        self.holidays: frozenset[date] = frozenset()
        self.inquiry_lag = 0.0
        self.stale: dict[str, int] = {}  # order -> executions its next inquiry row shows
        self.malformed: set[str] = set()  # orders whose next inquiry row carries a bad amount
        self.branch = "00950" if mode == "paper" else "06010"
        self._first_number = 1569157 if mode == "live" else 31001
        self._numbers = itertools.count(self._first_number)
        #: Number each KST day's orders from the first number again (set_daily_numbers).
        self.daily_numbers = False
        self._numbered_on: date | None = None
        #: Orders of earlier days whose number a later order took: the inquiry still shows
        #: them on their day; nothing else can name them any more.
        self.earlier: list[VenueOrder] = []

    # ------------------------------------------------------------------ set-up

    def add_instrument(self, code: str, name: str, quote: int) -> None:
        self.instruments[code] = Instrument(code, name, quote)

    def add_account(self, number: str, name: str, cash: int) -> Account:
        account = Account(number, name, cash)
        self.accounts[number] = account
        return account

    def set_quote(self, code: str, quote: int) -> None:
        """Move the quote; resting limit orders it crosses fill at their own price."""
        self.instruments[code].quote = quote
        for order in list(self.orders.values()):
            open_limit = order.remaining > 0 and not order.held and not order.is_market
            if order.symbol == code and open_limit and self._crosses(order, quote):
                self.execute(order, order.remaining, order.price)

    # ------------------------------------------------------------------ checks

    def session_answer(self) -> Answer | None:
        """The refusal for an order outside KRX's regular session, or None while it is open."""
        if not self.market_hours:
            return None
        local = kst(self._now())
        paper = self.mode == "paper"
        if not is_business_day(local.date(), self.holidays):
            return Codes.PAPER_NOT_BUSINESS_DAY if paper else Codes.MARKET_CLOSED
        if local.time() < SESSION_OPEN:
            return Codes.PAPER_BEFORE_OPEN if paper else Codes.MARKET_CLOSED
        if local.time() >= SESSION_CLOSE:
            return Codes.PAPER_MARKET_CLOSED if paper else Codes.MARKET_CLOSED
        return None

    def _refusal(
        self, account: Account, side: str, symbol: str, market: bool, quantity: int, price: int
    ) -> Answer | None:
        paper = self.mode == "paper"
        instrument = self.instruments.get(symbol)
        if instrument is None:
            return Codes.PAPER_BAD_SYMBOL if paper else Codes.BAD_SYMBOL
        if not market and not is_on_tick(price):
            return Codes.PAPER_OFF_TICK if paper else Codes.OFF_TICK
        closed = self.session_answer()
        if closed is not None:
            return closed
        if side == BUY:
            cost = quantity * (instrument.quote if market else price)
            if cost > self.available_cash(account):
                return Codes.PAPER_INSUFFICIENT_CASH if paper else Codes.INSUFFICIENT_CASH
        elif quantity > self.sellable(account, symbol):
            return Codes.PAPER_NOT_HELD if paper else Codes.NOT_HELD
        return None

    def available_cash(self, account: Account) -> int:
        reserved = 0
        for order in self._open_orders(account.number):
            if order.side == BUY:
                quote = self.instruments[order.symbol].quote
                reserved += order.remaining * (quote if order.is_market else order.price)
        return account.cash - reserved

    def sellable(self, account: Account, symbol: str) -> int:
        held = account.holdings.get(symbol, Holding()).quantity
        selling = sum(
            order.remaining
            for order in self._open_orders(account.number)
            if order.side == SELL and order.symbol == symbol
        )
        return held - selling

    def _open_orders(self, account: str) -> list[VenueOrder]:
        return [o for o in self.orders.values() if o.account == account and o.remaining > 0]

    # ------------------------------------------------------------------ orders

    def _new_number(self) -> str:
        if self.daily_numbers:
            today = kst_day(self._now())
            if today != self._numbered_on:
                self._numbered_on = today
                self._numbers = itertools.count(self._first_number)
        number = f"{next(self._numbers):010d}"
        displaced = self.orders.pop(number, None)
        if displaced is not None:
            self.earlier.append(displaced)
        return number

    def place(
        self,
        account: Account,
        *,
        side: str,
        symbol: str,
        ord_dvsn: str,
        quantity: int,
        price: int,
        exchange: str,
        tr_id: str,
    ) -> VenueOrder | Answer:
        """Accept an order (and match it) or answer why not."""
        market = ord_dvsn in MARKET_LIKE
        refusal = self._refusal(account, side, symbol, market, quantity, price)
        if refusal is not None:
            return refusal
        behaviour = self.script.popleft() if self.script else None
        if behaviour is not None and behaviour.kind == "reject":
            assert behaviour.answer is not None
            return behaviour.answer
        order = VenueOrder(
            odno=self._new_number(),
            branch=self.branch,
            account=account.number,
            symbol=symbol,
            side=side,
            ord_dvsn=ord_dvsn,
            quantity=quantity,
            price=0 if market else price,
            exchange=exchange,
            accepted_at=self._now(),
            visible_at=self._monotonic() + self.inquiry_lag,
            tr_id=tr_id,
        )
        self.orders[order.odno] = order
        self._emit(OrderEvent("accepted", order, quantity, order.price))
        quote = self.instruments[symbol].quote
        if behaviour is None:
            if market or self._crosses(order, quote):
                self.execute(order, quantity, quote)
        elif behaviour.kind == "fill":
            self.execute(order, quantity, behaviour.price or quote)
        elif ord_dvsn not in FILL_OR_KILL:  # hold or partial (a fill-or-kill fills all or none)
            order.held = True
            if behaviour.kind == "partial":
                self.execute(order, min(behaviour.quantity, quantity), behaviour.price or quote)
        if order.remaining > 0 and (ord_dvsn in IMMEDIATE_OR_CANCEL | FILL_OR_KILL):
            self.cancel_by_venue(order.odno)  # what could not execute at once is cancelled
        return order

    def _crosses(self, order: VenueOrder, quote: int) -> bool:
        return quote <= order.price if order.side == BUY else quote >= order.price

    def execute(self, order: VenueOrder, quantity: int, price: int) -> None:
        """Execute ``quantity`` of an open order at ``price`` and settle the account."""
        quantity = min(quantity, order.remaining)
        if quantity <= 0:
            raise ValueError(f"order {order.odno} has nothing open to execute")
        self._settle(order, quantity, price)

    def _settle(self, order: VenueOrder, quantity: int, price: int) -> None:
        order.executions.append(Execution(quantity, price, self._now()))
        account = self.accounts[order.account]
        holding = account.holdings.setdefault(order.symbol, Holding())
        amount = quantity * price
        if order.side == BUY:
            account.cash -= amount
            holding.quantity += quantity
            holding.cost += amount
        else:
            account.cash += amount
            holding.cost -= holding.cost * quantity // holding.quantity if holding.quantity else 0
            holding.quantity -= quantity
        if holding.quantity == 0:
            del account.holdings[order.symbol]
        self._emit(OrderEvent("filled", order, quantity, price))

    def cancel(
        self, account: Account, original: str, quantity: int | None, tr_id: str
    ) -> VenueOrder | Answer:
        """Cancel ``quantity`` (None: all) of what is open; a new order number for the cancel."""
        target = self.orders.get(original)
        if target is None or target.account != account.number or target.kind == "cancel":
            return Codes.ORDER_NOT_FOUND
        amount = target.remaining if quantity is None else min(quantity, target.remaining)
        if amount <= 0:
            return (
                Codes.PAPER_NOTHING_TO_CANCEL if self.mode == "paper" else Codes.NOTHING_TO_CANCEL
            )
        row = self._action_row(target, "cancel", amount, target.price, tr_id)
        target.cancelled += amount
        self._emit(OrderEvent("cancelled", row, amount, target.price))
        return row

    def modify(
        self,
        account: Account,
        original: str,
        quantity: int | None,
        price: int,
        tr_id: str,
        ord_dvsn: str | None = None,
    ) -> VenueOrder | Answer:
        """Move ``quantity`` (None: all) of what is open to a new order at ``price`` (and of
        division ``ord_dvsn``, default the original's; a market-like one executes at once)."""
        target = self.orders.get(original)
        if target is None or target.account != account.number or target.kind == "cancel":
            return Codes.ORDER_NOT_FOUND
        amount = target.remaining if quantity is None else min(quantity, target.remaining)
        if amount <= 0:
            return (
                Codes.PAPER_NOTHING_TO_CANCEL if self.mode == "paper" else Codes.NOTHING_TO_CANCEL
            )
        division = ord_dvsn or target.ord_dvsn
        market = division in MARKET_LIKE
        if not market and not is_on_tick(price):
            return Codes.PAPER_OFF_TICK if self.mode == "paper" else Codes.OFF_TICK
        row = self._action_row(target, "modify", amount, 0 if market else price, tr_id)
        row.ord_dvsn = division
        target.replaced += amount
        row.held = target.held
        self._emit(OrderEvent("modified", row, amount, row.price))
        quote = self.instruments[row.symbol].quote
        if not row.held and (market or self._crosses(row, quote)):
            self.execute(row, amount, quote)
        return row

    def _action_row(
        self, target: VenueOrder, kind: Literal["cancel", "modify"], qty: int, price: int, tr: str
    ) -> VenueOrder:
        row = VenueOrder(
            odno=self._new_number(),
            branch=target.branch,
            account=target.account,
            symbol=target.symbol,
            side=target.side,
            ord_dvsn=target.ord_dvsn,
            quantity=qty,
            price=price,
            exchange=target.exchange,
            accepted_at=self._now(),
            visible_at=self._monotonic() + self.inquiry_lag,
            tr_id=tr,
            kind=kind,
            original=target.odno,
        )
        if kind == "cancel":
            row.cancelled = qty
        self.orders[row.odno] = row
        return row

    def cancel_by_venue(self, odno: str) -> None:
        """The venue cancels what is open of an order on its own (an IOC remainder, a halt)."""
        order = self.orders[odno]
        amount = order.remaining
        if amount <= 0:
            raise ValueError(f"order {odno} has nothing open to cancel")
        order.cancelled += amount
        self._emit(OrderEvent("cancelled", order, amount, order.price))

    def reject_open(self, odno: str) -> None:
        """The venue refuses an order it had accepted."""
        order = self.orders[odno]
        amount = order.remaining
        if amount <= 0:
            raise ValueError(f"order {odno} has nothing open to reject")
        order.rejected += amount
        self._emit(OrderEvent("rejected", order, amount, order.price))

    def report_late_fill(self, odno: str, quantity: int, price: int) -> None:
        """An execution of ``quantity`` made just before a cancel the venue already confirmed:
        the order stays cancelled, with ``quantity`` less cancelled and that much executed."""
        order = self.orders[odno]
        if not 0 < quantity <= order.cancelled:
            raise ValueError(f"order {odno} has not {quantity} cancelled to execute late")
        order.cancelled -= quantity
        left = quantity
        for row in reversed(list(self.orders.values())):  # the latest cancels give it back
            if row.kind == "cancel" and row.original == odno and left > 0:
                taken = min(row.cancelled, left)
                row.cancelled -= taken
                left -= taken
        self._settle(order, quantity, price)

    def forget(self, odno: str) -> None:
        """Drop an order from the books, as if it were never taken."""
        del self.orders[odno]

    # ------------------------------------------------------------------ inquiry

    def visible_orders(self, account: str) -> list[VenueOrder]:
        """The account's orders the daily inquiry shows now, oldest first."""
        now = self._monotonic()
        shown = [o for o in self.orders.values() if o.account == account and o.visible_at <= now]
        if not self.earlier:
            return shown
        earlier = [o for o in self.earlier if o.account == account]
        return sorted(earlier + shown, key=lambda order: order.accepted_at)

    def _emit(self, event: OrderEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
