"""Placing and cancelling cash orders (``order-cash``, ``order-rvsecncl``).

KIS takes no client order id, so a place whose answer was lost can only be settled by the daily
inquiry (:mod:`orderlane_kis.inquiry`); this module says precisely whether a request may have
reached KIS. Limit prices off KRX's tick grid are refused before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from orderlane import CancelAccepted, NothingToCancel, Order, OrderSnapshot, RequestKind
from orderlane.contract import CancelResult
from orderlane.errors import BrokerError, InvalidSymbolError, OrderValidationError
from orderlane.model import OrderStatus, OrderType, Side
from orderlane_kis.config import KisSettings
from orderlane_kis.errors import NOTHING_TO_CANCEL, describe, refusal
from orderlane_kis.http import KisHttp
from orderlane_kis.parsing import KST, check_tick, kst_time

__all__ = ["CANCEL_PATH", "ORDER_PATH", "cancel_body", "cancel_order", "order_body", "place_order"]

ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
CANCEL_PATH = "/uapi/domestic-stock/v1/trading/order-rvsecncl"

#: TR ids of the current generation (the older ones are what the fake venue also accepts).
ORDER_TR = {
    ("live", Side.BUY): "TTTC0012U",
    ("live", Side.SELL): "TTTC0011U",
    ("paper", Side.BUY): "VTTC0012U",
    ("paper", Side.SELL): "VTTC0011U",
}
CANCEL_TR = {"live": "TTTC0013U", "paper": "VTTC0013U"}
_SYMBOL = re.compile(r"^[0-9A-Z]{6}$")


def order_body(settings: KisSettings, order: Order) -> dict[str, str]:
    """The ``order-cash`` body: uppercase keys, every value a string."""
    if not _SYMBOL.match(order.symbol):
        raise InvalidSymbolError(
            f"{order.symbol!r} is not a KIS stock code (6 characters, as 005930)"
        )
    if order.order_type is OrderType.LIMIT:
        if order.limit_price is None:  # pragma: no cover - a LIMIT signal always has its price
            raise OrderValidationError("a limit order needs a price")
        check_tick(order.limit_price)
        division, price = "00", str(int(order.limit_price))
    else:
        division, price = "01", "0"
    body = {
        "CANO": settings.cano,
        "ACNT_PRDT_CD": settings.product_code,
        "PDNO": order.symbol,
        "ORD_DVSN": division,
        "ORD_QTY": str(order.quantity),
        "ORD_UNPR": price,
        "EXCG_ID_DVSN_CD": "KRX",
    }
    if order.side is Side.SELL:
        body["SLL_TYPE"] = "01"
    return body


def cancel_body(settings: KisSettings, broker_order_id: str, branch: str) -> dict[str, str]:
    """The ``order-rvsecncl`` body that cancels all that is left of an order."""
    return {
        "CANO": settings.cano,
        "ACNT_PRDT_CD": settings.product_code,
        "KRX_FWDG_ORD_ORGNO": branch,
        "ORGN_ODNO": broker_order_id,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }


def _output(body: Mapping[str, Any], what: str) -> tuple[str, str, str]:
    output = body.get("output")
    if not isinstance(output, Mapping):
        raise BrokerError(f"KIS answered the {what} without its output: {describe(body)}")
    odno = str(output.get("ODNO") or output.get("odno") or "").strip()
    if not odno.isdigit():
        raise BrokerError(f"KIS answered the {what} without an order number: {describe(body)}")
    branch = str(output.get("KRX_FWDG_ORD_ORGNO") or output.get("krx_fwdg_ord_orgno") or "")
    return odno, branch.strip(), str(output.get("ORD_TMD") or output.get("ord_tmd") or "")


async def place_order(
    http: KisHttp, ctx: Any, order: Order, branches: MutableMapping[str, str]
) -> OrderSnapshot:
    """Send ``order``; returns SUBMITTED with KIS's order number (KIS's answer carries no
    fills: they come from the inquiry or the notices)."""
    settings = http.settings
    body = order_body(settings, order)
    answer = await http.call(
        ctx, RequestKind.ORDER, "POST", ORDER_PATH, ORDER_TR[(settings.mode, order.side)], body=body
    )
    if not answer.ok:
        raise refusal(answer.body, answer.status, settings)
    odno, branch, ordered = _output(answer.body, "order")
    if branch:
        branches[odno] = branch
    today = ctx.clock.now().astimezone(KST).strftime("%Y%m%d")
    broker_time: datetime | None = kst_time(today, ordered) if ordered else None
    return OrderSnapshot(
        status=OrderStatus.SUBMITTED, broker_order_id=odno, broker_time=broker_time
    )


async def cancel_order(http: KisHttp, ctx: Any, order: Order, branch: str) -> CancelResult:
    """Cancel what is left of ``order``; KIS's "nothing left to cancel" is NothingToCancel."""
    settings = http.settings
    assert order.broker_order_id is not None
    answer = await http.call(
        ctx,
        RequestKind.CANCEL,
        "POST",
        CANCEL_PATH,
        CANCEL_TR[settings.mode],
        body=cancel_body(settings, order.broker_order_id, branch),
    )
    if answer.ok:
        return CancelAccepted()
    if answer.code in NOTHING_TO_CANCEL or answer.status == 200:
        # KIS refuses a cancel as a business answer when nothing is left to cancel (paper
        # 40330000; live codes vary): the status inquiry that follows says how the order ended.
        return NothingToCancel(f"KIS: {describe(answer.body)}")
    raise refusal(answer.body, answer.status, settings)
