"""``orderlane demo --adapter kis-paper``: the demo session over real HTTP and WebSocket, against
a fake KIS venue the demo starts itself, printing the requests the venue received."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from orderlane import OrderStatus
from orderlane.demo import run_demo


async def test_the_demo_runs_through_kis_paper(sqlite_url: str) -> None:
    output = io.StringIO()
    result = await run_demo(sqlite_url, Console(file=output, width=200), adapter="kis-paper")
    statuses = [order.status for order in result.orders]
    assert statuses == [
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.REJECTED,
    ]
    assert result.realized_pnl == Decimal(4000)  # KIS reports no commission
    assert {(p.symbol, p.quantity) for p in result.positions} == {("005930", 6), ("000660", 20)}
    text = output.getvalue()
    assert "Requests kis-paper's venue received:" in text
    assert "POST /uapi/domestic-stock/v1/trading/order-cash VTTC0012U -> HTTP 200" in text
    assert "GET /uapi/domestic-stock/v1/trading/inquire-daily-ccld VTTC0081R" in text
    assert "[40250000]" in text  # the rejection, with KIS's code
