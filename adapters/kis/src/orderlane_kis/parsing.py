"""KIS's wire values as orderlane's: the tick grid, the daily inquiry's rows, the order notices.

Everything here is pure: no I/O, no clock. The notice layout is data (:data:`NOTICE_COLUMNS`), so
a layout KIS changes is one list to edit, and a frame that does not fit it is refused with
:class:`NoticeFormatError` rather than guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from orderlane.errors import OrderValidationError
from orderlane.model import OrderSnapshot, OrderStatus, Side
from orderlane_kis.krx import KST, is_on_tick, nearest_ticks, tick_size

__all__ = [
    "KST",
    "NOTICE_COLUMNS",
    "InquiryRow",
    "Notice",
    "NoticeFormatError",
    "check_tick",
    "kst_time",
    "parse_notice",
    "parse_row",
    "snapshot_from_row",
    "tick_size",
]


def check_tick(price: Decimal) -> None:
    """Refuse a limit price KRX would refuse, naming the two nearest valid prices.

    KIS answers an off-tick price with a business error whose code it does not document, so the
    adapter checks before anything is sent. Prices are whole won (``ORD_UNPR`` has no decimals).
    """
    if price <= 0:
        raise OrderValidationError(f"limit price {price} is not a positive price")
    whole = price == price.to_integral_value()
    if whole and is_on_tick(int(price)):
        return
    below = nearest_ticks(math.floor(price))[0] if price >= 1 else 0
    above = nearest_ticks(math.ceil(price))[1]
    step = tick_size(math.floor(price))
    shown = f"{below:,}" if below > 0 else "none"
    raise OrderValidationError(
        f"limit price {price:,} is off KRX's tick grid (step {step:,} won at this price): "
        f"the nearest valid prices are {shown} and {above:,}"
    )


def kst_date(day: str) -> date | None:
    """``YYYYMMDD`` as a date, or None when unreadable."""
    try:
        return date(int(day[0:4]), int(day[4:6]), int(day[6:8])) if len(day) == 8 else None
    except ValueError:
        return None


def kst_time(day: str, clock: str) -> datetime | None:
    """``YYYYMMDD`` and ``HHMMSS`` in KST as an aware UTC datetime, or None when unreadable."""
    try:
        moment = datetime.combine(
            date(int(day[0:4]), int(day[4:6]), int(day[6:8])),
            time(int(clock[0:2]), int(clock[2:4]), int(clock[4:6])),
            tzinfo=KST,
        )
    except (ValueError, IndexError):
        return None
    if len(day) != 8 or len(clock) != 6:
        return None
    return moment.astimezone(UTC)


class RowFormatError(ValueError):
    """A row of the daily inquiry that does not hold what KIS documents."""


def _int(row: Mapping[str, Any], key: str, *, default: int | None = None) -> int:
    value = row.get(key)
    if value in (None, "") and default is not None:
        return default
    try:
        text = str(value).strip()
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise RowFormatError(f"{key}={value!r} is not a number") from None
    if number != number.to_integral_value() or number < 0:
        raise RowFormatError(f"{key}={value!r} is not a whole, non-negative number")
    return int(number)


def _decimal(row: Mapping[str, Any], key: str) -> Decimal:
    value = row.get(key)
    if value in (None, ""):
        return Decimal(0)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowFormatError(f"{key}={value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise RowFormatError(f"{key}={value!r} is not a non-negative amount")
    return number


@attrs.frozen
class InquiryRow:
    """One row of ``inquire-daily-ccld``: an order of the day, as KIS reports it."""

    broker_order_id: str
    original_order_id: str
    branch: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    ordered_at: datetime | None
    filled_quantity: int
    filled_amount: Decimal
    average_price: Decimal
    cancelled: bool
    remaining: int
    rejected: int
    cancel_confirmed: int
    #: The KST day KIS names for the order (``ord_dt``), when it reads as one.
    order_date: date | None = None

    @property
    def is_cancel_order(self) -> bool:
        """A cancel (or modify) request has a row of its own naming the order it acts on."""
        original = self.original_order_id.strip("0")
        return bool(original) and self.original_order_id != self.broker_order_id


def parse_row(row: Mapping[str, Any]) -> InquiryRow:
    """Read one ``output1`` row; :class:`RowFormatError` when it is not what KIS documents."""
    if not isinstance(row, Mapping):
        raise RowFormatError(f"a row is a {type(row).__name__}, not an object")
    odno = str(row.get("odno") or "").strip()
    if not odno:
        raise RowFormatError("a row has no odno")
    side_code = str(row.get("sll_buy_dvsn_cd") or "").strip()
    if side_code not in ("01", "02"):
        raise RowFormatError(f"sll_buy_dvsn_cd={side_code!r} is neither 01 (sell) nor 02 (buy)")
    quantity = _int(row, "ord_qty")
    filled = _int(row, "tot_ccld_qty", default=0)
    return InquiryRow(
        broker_order_id=odno,
        original_order_id=str(row.get("orgn_odno") or "").strip(),
        branch=str(row.get("ord_gno_brno") or "").strip(),
        symbol=str(row.get("pdno") or "").strip(),
        side=Side.SELL if side_code == "01" else Side.BUY,
        quantity=quantity,
        price=_decimal(row, "ord_unpr"),
        ordered_at=kst_time(str(row.get("ord_dt") or ""), str(row.get("ord_tmd") or "")),
        filled_quantity=filled,
        filled_amount=_decimal(row, "tot_ccld_amt"),
        average_price=_decimal(row, "avg_prvs"),
        cancelled=str(row.get("cncl_yn") or "").strip().upper() == "Y",
        remaining=_int(row, "rmn_qty", default=max(quantity - filled, 0)),
        rejected=_int(row, "rjct_qty", default=0),
        cancel_confirmed=_int(row, "cnc_cfrm_qty", default=0),
        order_date=kst_date(str(row.get("ord_dt") or "")),
    )


def snapshot_from_row(
    row: InquiryRow, cancels: Sequence[InquiryRow] = (), broker_time: datetime | None = None
) -> OrderSnapshot:
    """The cumulative snapshot of one order from its row and the rows of cancels naming it.

    KIS reports fills as a cumulative quantity and amount (``tot_ccld_qty``, ``tot_ccld_amt``),
    never per execution and without the commission, so the snapshot carries the cumulative
    notional and leaves the commission unknown. An order is over when it is filled, when KIS
    confirms a cancel of what was left, or when it was refused.
    """
    if row.filled_quantity > row.quantity:
        raise RowFormatError(
            f"order {row.broker_order_id}: filled {row.filled_quantity} of {row.quantity}"
        )
    cancelled = (
        row.cancelled
        or row.cancel_confirmed > 0
        or any(c.cancel_confirmed > 0 or c.cancelled for c in cancels)
    )
    if row.filled_quantity >= row.quantity:
        status = OrderStatus.FILLED
    elif row.rejected > 0 and row.filled_quantity == 0:
        status = OrderStatus.REJECTED
    elif cancelled or row.remaining == 0:
        status = OrderStatus.CANCELLED
    elif row.filled_quantity > 0:
        status = OrderStatus.PARTIALLY_FILLED
    else:
        status = OrderStatus.SUBMITTED
    amount = row.filled_amount
    if not amount and row.filled_quantity:
        amount = row.average_price * row.filled_quantity
    reason = None
    if status is OrderStatus.REJECTED:
        reason = f"KIS refused {row.rejected} of {row.quantity}"
    elif status is OrderStatus.CANCELLED:
        reason = "cancelled at KIS"
    return OrderSnapshot(
        status=status,
        broker_order_id=row.broker_order_id,
        filled_quantity=row.filled_quantity,
        filled_notional=amount if row.filled_quantity else None,
        broker_time=broker_time,
        reason=reason,
    )


# ------------------------------------------------------------------------- order notices

#: The columns of an H0STCNI0 / H0STCNI9 notice, in the order KIS sends them today (26).
NOTICE_COLUMNS: tuple[str, ...] = (
    "CUST_ID",
    "ACNT_NO",
    "ODER_NO",
    "OODER_NO",
    "SELN_BYOV_CLS",
    "RCTF_CLS",
    "ODER_KIND",
    "ODER_COND",
    "STCK_SHRN_ISCD",
    "CNTG_QTY",
    "CNTG_UNPR",
    "STCK_CNTG_HOUR",
    "RFUS_YN",
    "CNTG_YN",
    "ACPT_YN",
    "BRNC_NO",
    "ODER_QTY",
    "ACNT_NAME",
    "ORD_COND_PRC",
    "ORD_EXG_GB",
    "POPUP_YN",
    "FILLER",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)

#: Columns whose values are never logged: they identify the customer.
SECRET_COLUMNS = frozenset({"CUST_ID", "ACNT_NO", "ACNT_NAME"})


class NoticeFormatError(ValueError):
    """A notice that does not fit the layout: the stream logs it (without secrets) and polls."""


@attrs.frozen
class Notice:
    """One order notice: an execution (``is_fill``) or an accept/modify/cancel/refusal notice."""

    broker_order_id: str
    original_order_id: str
    symbol: str
    side: Side
    is_fill: bool
    refused: bool
    accept_code: str
    quantity: int
    price: Decimal
    order_quantity: int
    at: str

    @property
    def is_cancel_confirmation(self) -> bool:
        return not self.is_fill and self.accept_code == "3"


def _notice_int(fields: Mapping[str, str], key: str) -> int:
    value = fields[key].strip()
    if not value.isdigit():
        raise NoticeFormatError(f"{key} is not a whole number")
    return int(value)


def parse_notice(plaintext: str, columns: Sequence[str] = NOTICE_COLUMNS) -> Notice:
    """Read a decrypted notice; :class:`NoticeFormatError` when it does not fit ``columns``.

    The checks are the ones a changed layout trips: the field count, numeric quantities and
    prices, ``CNTG_YN`` in 1/2, ``SELN_BYOV_CLS`` in 01/02, order numbers (``OODER_NO`` empty or
    as long as ``ODER_NO``) and no execution above the order's quantity. A
    ``CNTG_YN`` 1 notice reports an accept, modify, cancel or refusal: its ``CNTG_QTY`` is the
    order's quantity, so it is never read as an execution.
    """
    values = plaintext.split("^")
    if len(values) != len(columns):
        raise NoticeFormatError(f"{len(values)} fields, the layout has {len(columns)}")
    fields = dict(zip(columns, values, strict=True))
    for key in ("ODER_NO", "SELN_BYOV_CLS", "CNTG_YN", "CNTG_QTY", "STCK_SHRN_ISCD"):
        if key not in fields:
            raise NoticeFormatError(f"the layout has no {key}")
    kind = fields["CNTG_YN"].strip()
    if kind not in ("1", "2"):
        raise NoticeFormatError("CNTG_YN is neither 1 nor 2")
    side = fields["SELN_BYOV_CLS"].strip()
    if side not in ("01", "02"):
        raise NoticeFormatError("SELN_BYOV_CLS is neither 01 nor 02")
    order_no = fields["ODER_NO"].strip()
    if not order_no.isdigit():
        raise NoticeFormatError("ODER_NO is not an order number")
    original = fields.get("OODER_NO", "").strip()
    if original and not (original.isdigit() and len(original) == len(order_no)):
        raise NoticeFormatError("OODER_NO is not an order number like ODER_NO")
    price_text = fields.get("CNTG_UNPR", "0").strip() or "0"
    if not price_text.isdigit():
        raise NoticeFormatError("CNTG_UNPR is not a whole price")
    quantity = _notice_int(fields, "CNTG_QTY")
    ordered = _notice_int(fields, "ODER_QTY") if "ODER_QTY" in fields else 0
    if kind == "2" and ordered and quantity > ordered:
        raise NoticeFormatError("CNTG_QTY is above ODER_QTY")
    return Notice(
        broker_order_id=order_no,
        original_order_id=original,
        symbol=fields["STCK_SHRN_ISCD"].strip(),
        side=Side.SELL if side == "01" else Side.BUY,
        is_fill=kind == "2",
        refused=fields.get("RFUS_YN", "0").strip() == "1",
        accept_code=fields.get("ACPT_YN", "").strip(),
        quantity=quantity,
        price=Decimal(price_text),
        order_quantity=ordered,
        at=fields.get("STCK_CNTG_HOUR", "").strip(),
    )
