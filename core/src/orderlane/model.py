"""The trading domain: signals, orders and their states, broker snapshots and fills.

Pure data and rules, no I/O. Money is ``Decimal``, quantities are ``int``, times are aware UTC.
Orders are immutable: every change makes a new ``Order`` through :meth:`Order.evolve`, which
checks the one transition table, :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from orderlane.errors import InvalidSignalError, InvalidTransitionError
from orderlane.evolve import evolver
from orderlane.money import minor_unit, split

__all__ = [
    "MAX_AMOUNT",
    "MAX_ID_LENGTH",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MAX_SYMBOL_LENGTH",
    "MAX_SYMBOL_NAME_LENGTH",
    "MIN_PRICE_EXPONENT",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Execution",
    "Fill",
    "Order",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Side",
    "Signal",
    "check_price",
    "check_text",
    "fills_from_snapshot",
    "printable",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderStatus(enum.StrEnum):
    CREATED = "CREATED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    UNKNOWN = "UNKNOWN"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


S = OrderStatus
TERMINAL_STATUSES = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.FAILED})

#: The allowed status changes, the only place they are written down. Staying in the same
#: status is always allowed (more fills on a partially filled order, a late fill on a failed one).
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    # FAILED from CREATED: never sent (recovery, instrument hold timeout).
    S.CREATED: frozenset({S.SUBMITTING, S.FAILED}),
    S.SUBMITTING: frozenset(
        {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.FAILED, S.UNKNOWN, S.CANCELLED}
    ),
    # SUBMITTING again from UNKNOWN: the broker confirmed it has nothing, so it is sent again.
    S.UNKNOWN: frozenset(
        {S.SUBMITTING, S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.FAILED}
    ),
    S.SUBMITTED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELLED, S.REJECTED, S.FAILED}
    ),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.PENDING_CANCEL, S.CANCELLED, S.FAILED}),
    # Back to SUBMITTED / PARTIALLY_FILLED: the broker refused the cancel and the order lives on.
    # UNKNOWN: a timeout's cancel could not be confirmed; the broker's status settles it later.
    S.PENDING_CANCEL: frozenset(
        {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.FAILED, S.UNKNOWN}
    ),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
}
del S


#: Largest quantity the journal holds: a signed 64-bit integer (SQLite INTEGER, PostgreSQL
#: BIGINT). A larger one could be sent and filled, then never booked.
MAX_QUANTITY = 2**63 - 1
#: Prices (limit prices, fill prices, averages) stay below this magnitude ...
MAX_PRICE = Decimal(10) ** 20
#: ... and amounts (a cumulative notional, a commission) below this one: enough for
#: ``MAX_QUANTITY`` at ``MAX_PRICE``.
MAX_AMOUNT = Decimal(10) ** 40
#: Smallest decimal exponent a price or amount may have: at most 28 decimal places, the digits
#: Python's decimal arithmetic carries (more would be rounded away on the first sum).
MIN_PRICE_EXPONENT = -28
#: Significant digits of a limit price, for the same reason.
MAX_PRICE_DIGITS = 28


def check_price(value: Decimal, *, limit: Decimal = MAX_PRICE) -> str | None:
    """Why ``value`` is no price (or amount, with ``limit``) the journal can hold, or None.

    Finite, below ``limit`` in magnitude, at most 28 decimal places: what the engine can book
    and add up exactly, on SQLite and PostgreSQL alike.
    """
    if not value.is_finite():
        return "is not a finite number"
    if value.copy_abs() >= limit:  # copy_abs: no arithmetic, so no overflow
        return f"is beyond what the journal holds (below {limit:.0E})"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < MIN_PRICE_EXPONENT:
        return f"has more than {-MIN_PRICE_EXPONENT} decimal places"
    return None


def _to_decimal(value: object, name: str) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        if isinstance(value, str) and (not value.isascii() or "_" in value):
            # Decimal() reads "1_000" and non-ASCII digits; a price typed so is a slip.
            raise InvalidSignalError(
                f"{name} must be written with ASCII digits and no separators, got {_short(value)}"
            )
        try:
            result = Decimal(value)
        except (InvalidOperation, ValueError):
            raise InvalidSignalError(
                f"{name} must be a decimal number, got {_short(value)}"
            ) from None
    else:
        raise InvalidSignalError(
            f"{name} must be a Decimal, int or decimal string (never float), got {_short(value)}"
        )
    problem = check_price(result)
    if problem is None and len(result.as_tuple().digits) > MAX_PRICE_DIGITS:
        problem = f"has more than {MAX_PRICE_DIGITS} significant digits"
    if problem is not None:
        raise InvalidSignalError(f"{name} {problem}, got {_short(value)}")
    return result


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: Longest texts a signal may carry: the journal's columns hold no more, on every database.
MAX_SYMBOL_LENGTH = 64
MAX_SYMBOL_NAME_LENGTH = 256
MAX_ID_LENGTH = 128

#: Unicode categories no identifier or name may hold: control characters (escape sequences,
#: newlines), invisible format characters (bidirectional overrides), line and paragraph
#: separators, and lone surrogates (bytes that were not valid UTF-8).
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_text(value: str, name: str, limit: int) -> None:
    """Refuse ``value`` as the text ``name`` when longer than ``limit`` characters or holding a
    character that is no printable text (raises :class:`InvalidSignalError`).

    Such text would reach terminals and logs as escape sequences or forged lines, and a lone
    surrogate cannot even be stored.
    """
    _check_length(value, name, limit)
    if value.isprintable():  # no character of another category than letters, marks, numbers,
        return  # punctuation, symbols and the space: the common case, checked in C
    for index, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            raise InvalidSignalError(
                f"{name} holds the character U+{ord(char):04X} at position {index + 1}, which is "
                "not printable text (a control character, an invisible format character or a "
                "byte that is not UTF-8): use printable characters only"
            )


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` fit for a terminal or a log line: each character :func:`check_text` refuses
    (an escape sequence's ESC, a newline, a bidirectional override, a lone surrogate) shown as
    its Python escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\udcff``), so stored text can
    neither drive the terminal nor forge a line. ``keep_newlines`` leaves ``\\n`` as it is (a
    message of several lines)."""
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _UNPRINTABLE and not (keep_newlines and char == "\n")
        else char
        for char in text
    )


def _check_length(value: str, name: str, limit: int) -> None:
    # Refused here, not by the database: PostgreSQL would fail the insert, SQLite would not.
    if len(value) > limit:
        raise InvalidSignalError(f"{name} is longer than {limit} characters: {value[:20]!r}...")


def _enum_value(enum_type: type[enum.Enum], value: object, name: str) -> Any:
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value.upper())
        except ValueError:
            pass
    choices = ", ".join(member.value for member in enum_type)
    raise InvalidSignalError(f"{name} must be one of {choices}, got {value!r}")


@attrs.frozen(init=False)
class Signal:
    """What a strategy wants: buy or sell ``quantity`` of ``symbol``.

    Validated on construction; a malformed signal raises :class:`InvalidSignalError`.
    ``signal_id`` makes execution idempotent: the same id executed twice returns one order.
    """

    symbol: str
    direction: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    symbol_name: str = ""
    session_id: str = "default"
    signal_id: str | None = None

    def __init__(
        self,
        symbol: str,
        direction: Side | str,
        quantity: int,
        order_type: OrderType | str = OrderType.MARKET,
        limit_price: Decimal | int | str | None = None,
        symbol_name: str = "",
        session_id: str = "default",
        signal_id: str | None = None,
    ) -> None:
        if not isinstance(symbol, str) or not symbol.strip():
            raise InvalidSignalError(f"symbol must be a non-empty string, got {symbol!r}")
        symbol = symbol.strip()
        check_text(symbol, "symbol", MAX_SYMBOL_LENGTH)
        side = _enum_value(Side, direction, "direction")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidSignalError(f"quantity must be an int, got {quantity!r}")
        if quantity <= 0:
            raise InvalidSignalError(f"quantity must be positive, got {quantity}")
        if quantity > MAX_QUANTITY:
            raise InvalidSignalError(
                f"quantity must be at most {MAX_QUANTITY:,} (what the journal holds), "
                f"got {quantity:,}"
            )
        kind = _enum_value(OrderType, order_type, "order_type")
        price = None if limit_price is None else _to_decimal(limit_price, "limit_price")
        if kind is OrderType.LIMIT and price is None:
            raise InvalidSignalError("a LIMIT signal needs a limit_price")
        if kind is OrderType.MARKET and price is not None:
            raise InvalidSignalError("a MARKET signal takes no limit_price; use order_type=LIMIT")
        if price is not None and price <= 0:
            raise InvalidSignalError(f"limit_price must be positive, got {price}")
        if not isinstance(symbol_name, str):
            raise InvalidSignalError(f"symbol_name must be a string, got {symbol_name!r}")
        check_text(symbol_name, "symbol_name", MAX_SYMBOL_NAME_LENGTH)
        if not isinstance(session_id, str) or not session_id:
            raise InvalidSignalError("session_id must be a non-empty string")
        check_text(session_id, "session_id", MAX_ID_LENGTH)
        if signal_id is not None and (not isinstance(signal_id, str) or not signal_id):
            raise InvalidSignalError("signal_id must be a non-empty string or None")
        if signal_id is not None:
            check_text(signal_id, "signal_id", MAX_ID_LENGTH)
        self.__attrs_init__(symbol, side, quantity, kind, price, symbol_name, session_id, signal_id)


@attrs.frozen
class Order:
    """One order's full state. Immutable: :meth:`evolve` returns the next version."""

    id: str
    account_id: str
    session_id: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    symbol_name: str = ""
    signal_id: str | None = None
    status: OrderStatus = OrderStatus.CREATED
    broker_order_id: str | None = None
    filled_quantity: int = 0
    filled_notional: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    reason: str | None = None
    created_at: datetime = attrs.field(factory=utc_now)
    submitted_at: datetime | None = None
    updated_at: datetime = attrs.field(factory=utc_now)
    filled_at: datetime | None = None
    attempts: int = 0
    version: int = 0

    @classmethod
    def from_signal(cls, signal: Signal, *, account_id: str, now: datetime) -> Order:
        return cls(
            id=str(uuid.uuid4()),
            account_id=account_id,
            session_id=signal.session_id,
            symbol=signal.symbol,
            symbol_name=signal.symbol_name,
            side=signal.direction,
            quantity=signal.quantity,
            order_type=signal.order_type,
            limit_price=signal.limit_price,
            signal_id=signal.signal_id,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def average_fill_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.filled_notional / self.filled_quantity

    def matches(self, signal: Signal) -> bool:
        """Whether ``signal`` asks for exactly this order (used for duplicate signal ids)."""
        return (
            self.symbol == signal.symbol
            and self.side is signal.direction
            and self.quantity == signal.quantity
            and self.order_type is signal.order_type
            and self.limit_price == signal.limit_price
            and self.session_id == signal.session_id
        )

    def evolve(self, status: OrderStatus | None = None, **changes: Any) -> Order:
        """Return this order moved to ``status`` (default: unchanged) with ``changes`` applied.

        Raises :class:`InvalidTransitionError` when the table does not allow the move; the
        order itself never changes.
        """
        target = self.status if status is None else status
        if target is not self.status and target not in TRANSITIONS[self.status]:
            raise InvalidTransitionError(
                f"order {self.id}: {self.status.value} cannot become {target.value}"
            )
        return _evolve_order(self, status=target, **changes)

    def with_fills(self, fills: Iterable[Fill]) -> Order:
        """Return this order with ``fills`` added to its filled quantity, notional, commission."""
        quantity, notional, commission = self.filled_quantity, self.filled_notional, self.commission
        last = self.filled_at
        added = False
        for fill in fills:
            added = True
            quantity += fill.quantity
            notional += fill.price * fill.quantity
            commission += fill.commission
            if fill.quantity:  # a fee-only fill executes nothing
                last = fill.executed_at
        if quantity > self.quantity:
            raise InvalidTransitionError(
                f"order {self.id}: fills of {quantity} exceed the order quantity {self.quantity}"
            )
        if not added:
            return self  # nothing new (most status answers): no copy
        filled_at = last if quantity == self.quantity else self.filled_at
        return _evolve_order(
            self,
            filled_quantity=quantity,
            filled_notional=notional,
            commission=commission,
            filled_at=filled_at,
        )


@attrs.frozen
class Execution:
    """One execution as a broker reports it (with the broker's own fill id)."""

    fill_id: str
    quantity: int
    price: Decimal
    commission: Decimal = Decimal(0)
    executed_at: datetime | None = None


@attrs.frozen
class OrderSnapshot:
    """What a broker reports about one order: always cumulative, never a bare delta.

    ``status`` is the broker's view mapped onto orderlane's statuses (SUBMITTED, PARTIALLY_FILLED,
    FILLED, CANCELLED, REJECTED, PENDING_CANCEL). Give either ``filled_notional`` or
    ``average_price`` for the cumulative fill, and ``executions`` when the broker names its fills.
    """

    status: OrderStatus
    broker_order_id: str | None = None
    filled_quantity: int = 0
    filled_notional: Decimal | None = None
    average_price: Decimal | None = None
    commission: Decimal | None = None
    broker_time: datetime | None = None
    executions: tuple[Execution, ...] = ()
    reason: str | None = None

    @property
    def cumulative_notional(self) -> Decimal | None:
        if self.filled_notional is not None:
            return self.filled_notional
        if self.average_price is not None:
            return self.average_price * self.filled_quantity
        return None


@attrs.frozen
class Fill:
    """A fact: ``quantity`` of an order executed at ``price``. Unique per (order, fill id)."""

    fill_id: str
    order_id: str
    account_id: str
    session_id: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    commission: Decimal
    executed_at: datetime
    trading_day: date
    #: What a closing fill realized, as booked against the position (zero for an opening one):
    #: the seed's figure, gross minus the closing commission...
    realized_pnl: Decimal = Decimal(0)
    #: ... the price difference times the closed quantity, before any commission ...
    gross_pnl: Decimal = Decimal(0)
    #: ... and net of both sides' commissions (the opening fees released pro rata).
    net_pnl: Decimal = Decimal(0)


def fills_from_snapshot(
    order: Order,
    snapshot: OrderSnapshot,
    *,
    known_fill_ids: frozenset[str] | set[str],
    now: datetime,
    venue_timezone: Any = UTC,
    currency_decimals: int = 2,
) -> list[Fill]:
    """Turn a cumulative broker snapshot into the fills orderlane has not counted yet.

    Executions with fill ids are taken by id (each once). Without ids, the part of the cumulative
    quantity above what the order already holds becomes one fill named
    ``{broker_order_id}:{cumulative quantity}``; a snapshot not above what is known adds nothing.
    Neither the order's quantity nor the snapshot's own cumulative quantity is ever exceeded.

    One order may be reported both ways (executions pushed with ids, totals polled without). Once
    part of it was booked from totals, executions can no longer be matched by id, so from then on
    the snapshot's totals are booked instead: a fill seen both ways still counts once.

    The snapshot's cumulative commission is booked in full: what it holds above the commission
    already booked (and the new executions' own) is spread over the new fills that carry none
    of their own, pro rata in the venue's minor unit (``currency_decimals``); a rise with no new
    quantity (a fee the broker settles later) is a fee-only fill of quantity 0 named
    ``{broker_order_id}:fee:{cumulative commission}``.
    """

    def make(
        fill_id: str, quantity: int, price: Decimal, commission: Decimal, at: datetime
    ) -> Fill:
        return Fill(
            fill_id=fill_id,
            order_id=order.id,
            account_id=order.account_id,
            session_id=order.session_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            commission=commission,
            executed_at=at,
            trading_day=at.astimezone(venue_timezone).date(),
        )

    total, notional, commission = _snapshot_totals(snapshot)
    names = (snapshot.broker_order_id, order.broker_order_id, order.id)
    prefixes = {f"{name}:" for name in names if name}
    booked_from_totals = any(
        fill_id.startswith(prefix) and fill_id[len(prefix) :].isdigit()
        for fill_id in known_fill_ids
        for prefix in prefixes
    )
    fills: list[Fill] = []
    if snapshot.executions and not booked_from_totals:
        seen = set(known_fill_ids)
        allowed = min(order.remaining_quantity, total - order.filled_quantity)
        for execution in snapshot.executions:
            if allowed <= 0:
                break
            if execution.fill_id in seen or execution.quantity <= 0:
                continue
            quantity = min(execution.quantity, allowed)
            seen.add(execution.fill_id)
            allowed -= quantity
            at = execution.executed_at or snapshot.broker_time or now
            fills.append(
                make(execution.fill_id, quantity, execution.price, execution.commission, at)
            )
        # The broker's total may go beyond the executions it listed (a list cut short): the
        # rest is booked from the totals, as a snapshot without executions would be.
        booked = order.filled_quantity + sum(fill.quantity for fill in fills)
        cumulative = min(total, order.quantity)
        if cumulative > booked and notional is not None:
            rest = cumulative - booked
            spent = order.filled_notional + sum((f.price * f.quantity for f in fills), Decimal(0))
            fill_id = (
                f"{snapshot.broker_order_id or order.broker_order_id or order.id}:{cumulative}"
            )
            if fill_id not in known_fill_ids:
                at = snapshot.broker_time or now
                fills.append(make(fill_id, rest, (notional - spent) / rest, Decimal(0), at))
    else:
        fills = _fills_from_totals(order, snapshot, total, notional, known_fill_ids, make, now)
    return _charge_commission(
        order, snapshot, fills, commission, known_fill_ids, make, now, currency_decimals
    )


Maker = Callable[[str, int, Decimal, Decimal, datetime], Fill]


def _fills_from_totals(
    order: Order,
    snapshot: OrderSnapshot,
    total: int,
    notional: Decimal | None,
    known_fill_ids: frozenset[str] | set[str],
    make: Maker,
    now: datetime,
) -> list[Fill]:
    """The part of the cumulative quantity above what the order holds, as one fill."""
    cumulative = min(total, order.quantity)
    if cumulative <= order.filled_quantity or notional is None:
        # Nothing new; or a fill without a price, which the next snapshot will carry.
        return []
    quantity = cumulative - order.filled_quantity
    if total > order.quantity:
        # Overfill reported: book the capped quantity at the reported average price.
        price = notional / total
    else:
        price = (notional - order.filled_notional) / quantity
    broker_id = snapshot.broker_order_id or order.broker_order_id or order.id
    fill_id = f"{broker_id}:{cumulative}"
    if fill_id in known_fill_ids:
        return []
    return [make(fill_id, quantity, price, Decimal(0), snapshot.broker_time or now)]


def _charge_commission(
    order: Order,
    snapshot: OrderSnapshot,
    fills: list[Fill],
    commission: Decimal | None,
    known_fill_ids: frozenset[str] | set[str],
    make: Maker,
    now: datetime,
    currency_decimals: int,
) -> list[Fill]:
    """``fills`` with what the cumulative ``commission`` holds above the booked commission:
    spread over the new fills without a commission of their own, or a fee-only fill."""
    if commission is None:
        return fills
    owed = commission - order.commission - sum((f.commission for f in fills), Decimal(0))
    if owed <= 0:
        return fills
    if not fills:
        broker_id = snapshot.broker_order_id or order.broker_order_id or order.id
        fill_id = f"{broker_id}:fee:{commission}"
        if fill_id in known_fill_ids:
            return fills
        return [make(fill_id, 0, Decimal(0), owed, snapshot.broker_time or now)]
    uncharged = [index for index, fill in enumerate(fills) if not fill.commission]
    targets = uncharged or list(range(len(fills)))
    parts = split(owed, [fills[i].quantity for i in targets], minor_unit(currency_decimals))
    charged = list(fills)
    for index, part in zip(targets, parts, strict=True):
        charged[index] = _evolve_fill(fills[index], commission=fills[index].commission + part)
    return charged


def _snapshot_totals(snapshot: OrderSnapshot) -> tuple[int, Decimal | None, Decimal | None]:
    """Cumulative quantity, notional and commission, from the snapshot or its executions.

    An execution listed twice (a venue resending its report) counts once.
    """
    executions = list({e.fill_id: e for e in snapshot.executions}.values())
    listed = sum(e.quantity for e in executions)
    listed_notional = sum((e.price * e.quantity for e in executions), Decimal(0))
    commission = snapshot.commission
    if commission is None and executions:  # an empty execution charges nothing
        commission = sum((e.commission for e in executions if e.quantity > 0), Decimal(0))
    if executions and listed > snapshot.filled_quantity:
        return listed, listed_notional, commission
    notional = snapshot.cumulative_notional
    if notional is None and executions and listed == snapshot.filled_quantity:
        notional = listed_notional
    return snapshot.filled_quantity, notional, commission


_evolve_order = evolver(Order)
_evolve_fill = evolver(Fill)
