"""The checks every broker answer passes before the engine books anything of it.

Hook results are ``Any`` to the type checker and come from code the engine does not control: a
JSON number parsed as a float, a broker's "NaN" passed through ``Decimal``, a negative price or a
cumulative quantity above the order's would otherwise reach the books (or crash them). The
``Broker`` facade runs :func:`check_snapshot` on every snapshot it hands on and raises
:class:`~orderlane.errors.BrokerAnswerError` naming the adapter, the hook and the field; the order
the answer was about is then left as it is until a later answer is usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from orderlane.errors import BrokerAnswerError, InvalidSignalError
from orderlane.model import (
    MAX_AMOUNT,
    MAX_ID_LENGTH,
    MAX_PRICE,
    MAX_QUANTITY,
    Execution,
    Order,
    OrderSnapshot,
    OrderStatus,
    check_price,
    check_text,
)

__all__ = ["check_snapshot"]

# The bounds are the journal's, the same a Signal is held to (orderlane.model): a price below
# MAX_PRICE, an amount (notional, commission) below MAX_AMOUNT, at most 28 decimal places, a
# quantity up to MAX_QUANTITY. An answer beyond them could not be booked.


class _Checker:
    def __init__(self, adapter: str, operation: str, order: Order | None) -> None:
        self.adapter, self.operation, self.order = adapter, operation, order

    def fail(self, field: str, problem: str) -> BrokerAnswerError:
        about = f" about order {self.order.id}" if self.order is not None else ""
        return BrokerAnswerError(
            f"adapter {self.adapter!r} answered {self.operation}{about} with a bad {field}: "
            f"{problem}",
            adapter=self.adapter,
            operation=self.operation,
            field=field,
        )

    def integer(self, value: Any, field: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{_show(value)} is not an int")
        if value < minimum:
            raise self.fail(field, f"{value} is below {minimum}")
        if value > MAX_QUANTITY:
            raise self.fail(field, f"{value} is beyond what the journal holds")
        return value

    def money(
        self, value: Any, field: str, *, positive: bool = False, limit: Decimal = MAX_PRICE
    ) -> Decimal:
        if not isinstance(value, Decimal):
            raise self.fail(field, f"{_show(value)} is not a Decimal")
        if not value.is_finite():
            raise self.fail(field, f"{value} is not a finite number")
        if value < 0 or (positive and value == 0):
            raise self.fail(field, f"{value} is {'not above' if positive else 'below'} zero")
        problem = check_price(value, limit=limit)
        if problem is not None:
            raise self.fail(field, f"{value} {problem}")
        return value

    def optional_money(
        self, value: Any, field: str, *, positive: bool = False, limit: Decimal = MAX_PRICE
    ) -> None:
        if value is not None:
            self.money(value, field, positive=positive, limit=limit)

    def moment(self, value: Any, field: str) -> None:
        if value is None:
            return
        if not isinstance(value, datetime):
            raise self.fail(field, f"{_show(value)} is not a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise self.fail(field, f"{value} has no timezone")

    def text(self, value: Any, field: str, *, optional: bool = True) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"{_show(value)} is not a non-empty string")
        try:
            check_text(value, field, MAX_ID_LENGTH)
        except InvalidSignalError as error:
            raise self.fail(field, str(error)) from None

    def execution(self, execution: Any, field: str) -> Execution:
        if not isinstance(execution, Execution):
            raise self.fail(field, f"{_show(execution)} is not an Execution")
        self.text(execution.fill_id, f"{field}.fill_id", optional=False)
        self.integer(execution.quantity, f"{field}.quantity", minimum=1)
        self.money(execution.price, f"{field}.price", positive=True)
        self.money(execution.commission, f"{field}.commission", limit=MAX_AMOUNT)
        self.moment(execution.executed_at, f"{field}.executed_at")
        return execution


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def check_snapshot(
    snapshot: Any, *, adapter: str, operation: str, order: Order | None = None
) -> OrderSnapshot:
    """Return ``snapshot`` if every field has its type and a possible value, else raise
    :class:`~orderlane.errors.BrokerAnswerError` naming the first field that does not.

    With ``order`` (the order the answer is about) it also checks that the answer names the
    order's broker id, if the order has one, and reports no more filled than was ordered.
    """
    check = _Checker(adapter, operation, order)
    if not isinstance(snapshot, OrderSnapshot):
        raise check.fail("result", f"{_show(snapshot)} is not an OrderSnapshot")
    if not isinstance(snapshot.status, OrderStatus):
        raise check.fail("status", f"{_show(snapshot.status)} is not an OrderStatus")
    check.text(snapshot.broker_order_id, "broker_order_id")
    filled = check.integer(snapshot.filled_quantity, "filled_quantity", minimum=0)
    executions = snapshot.executions
    if not isinstance(executions, Sequence) or isinstance(executions, str):
        raise check.fail("executions", f"{_show(executions)} is not a sequence of Executions")
    listed: dict[str, int] = {}
    for index, execution in enumerate(executions):
        checked = check.execution(execution, f"executions[{index}]")
        listed[checked.fill_id] = checked.quantity
    # An execution listed twice (a resent report) counts once, as the books count it.
    cumulative = max(filled, sum(listed.values()))
    # The notional and the average describe ``filled_quantity``.
    check.optional_money(
        snapshot.filled_notional, "filled_notional", positive=filled > 0, limit=MAX_AMOUNT
    )
    if filled == 0 and snapshot.filled_notional:
        raise check.fail("filled_notional", f"{snapshot.filled_notional} with nothing filled")
    check.optional_money(snapshot.average_price, "average_price", positive=filled > 0)
    check.optional_money(snapshot.commission, "commission", limit=MAX_AMOUNT)
    check.moment(snapshot.broker_time, "broker_time")
    if snapshot.reason is not None and not isinstance(snapshot.reason, str):
        raise check.fail("reason", f"{_show(snapshot.reason)} is not a string")
    if order is None:
        return snapshot
    known = order.broker_order_id
    if known is not None and snapshot.broker_order_id not in (None, known):
        raise check.fail(
            "broker_order_id", f"{snapshot.broker_order_id!r} is not the order's {known!r}"
        )
    if cumulative > order.quantity:
        raise check.fail(
            "filled_quantity", f"{cumulative} filled is more than the {order.quantity} ordered"
        )
    return snapshot
