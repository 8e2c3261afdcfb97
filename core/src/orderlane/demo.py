"""A scripted trading session on the mock venue: ``orderlane demo``.

It shows what orderlane does with the outcomes a strategy meets on a real day (a fill, a partial
fill completed later, a sale that realizes P&L, a rejection) on a real journal, so a new user sees
orders, positions and P&L without a broker account. Tests run :func:`run_demo` and check its
figures. The mock adapter is a separate distribution: it is imported only when the demo runs.

``orderlane demo --adapter NAME`` runs the same session through another adapter, against the
venue its conformance harness starts (the fake KIS venue on loopback for ``kis-paper``: the real
HTTP and WebSocket path, without an account), and prints the requests the venue received.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.text import Text

from orderlane.engine import Engine
from orderlane.errors import ConfigurationError
from orderlane.journal import PnLSummary
from orderlane.journal.url import resolve_database_url
from orderlane.model import Order, OrderStatus, Side, Signal
from orderlane.positions import Position
from orderlane.rendering import (
    describe_outcome,
    describe_request,
    display_url,
    format_money,
    orders_table,
    pnl_table,
    positions_table,
)

__all__ = ["DEMO_ACCOUNT", "DEMO_SESSION", "DEMO_TIMEZONE", "DemoResult", "run_demo"]

DEMO_ACCOUNT = "demo"
DEMO_SESSION = "demo"
#: The demo venue's time zone (KRX's): its fills' trading day is their date there.
DEMO_TIMEZONE = "Asia/Seoul"
SAMSUNG = ("005930", "Samsung Electronics")
HYNIX = ("000660", "SK hynix")


@attrs.frozen
class DemoResult:
    """What the session left in the journal: orders in the order they were sent, and P&L."""

    database_url: str
    orders: tuple[Order, ...]
    positions: tuple[Position, ...]
    pnl_by_session: tuple[PnLSummary, ...]
    pnl_by_day: tuple[PnLSummary, ...]
    #: Where the journal stays after the run (None: it was a temporary one and is gone).
    kept_at: str | None = None

    @property
    def realized_pnl(self) -> Decimal:
        """The seed's figure: gross minus the closing commissions."""
        return sum((summary.realized_pnl for summary in self.pnl_by_session), Decimal(0))

    @property
    def net_pnl(self) -> Decimal:
        """Net of both sides' commissions (the opening fees of what was closed)."""
        return sum((summary.net_pnl for summary in self.pnl_by_session), Decimal(0))


async def run_demo(
    database_url: str | None, console: Console, *, keep: bool = False, adapter: str = "mock"
) -> DemoResult:
    """Run the session on ``database_url`` (which must hold no orders), else on a fresh SQLite
    file in a new temporary directory, removed afterwards unless ``keep``; through ``adapter``
    (another than the mock runs against the venue of its conformance harness)."""
    if database_url is not None:
        url = resolve_database_url(database_url)
        result = await _run(url, console, adapter)
        return attrs.evolve(result, kept_at=url)
    directory = Path(tempfile.mkdtemp(prefix="orderlane-demo-"))
    url = f"sqlite:///{directory / 'orderlane.db'}"
    try:
        result = await _run(url, console, adapter)
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if keep:
        console.print(Text(f"\nThe journal is kept: orderlane orders --database-url {url}"))
        return attrs.evolve(result, kept_at=url)
    return result


async def _run(url: str, console: Console, adapter: str) -> DemoResult:
    if adapter == "mock":
        try:
            from orderlane_mock import MockVenue
        except ImportError:  # pragma: no cover - the workspace always installs the mock
            raise ConfigurationError(
                "the demo needs the mock venue: pip install orderlane-mock"
            ) from None
        venue = MockVenue(quotes={SAMSUNG[0]: Decimal(72000), HYNIX[0]: Decimal(185000)})
        options = {"venue": venue, "timezone": DEMO_TIMEZONE}
        return await _session(url, console, "mock", options, venue)
    from orderlane.testing.runner import harness_factory

    harness = harness_factory(adapter)()
    console.print(Text(f"Starting {adapter}'s venue on loopback ...", style="dim"))
    await harness.start()
    try:
        result = await _session(url, console, adapter, harness.adapter_options(), harness)
    finally:
        await harness.stop()
    describe = getattr(harness, "requests_made", None)
    if describe is not None:
        console.print(Text(f"\nRequests {adapter}'s venue received:", style="bold"))
        for line in describe():
            console.print(Text(f"  {line}"))
    return result


async def _session(
    url: str, console: Console, adapter: str, options: dict[str, Any], venue: Any
) -> DemoResult:
    """The session; ``venue`` scripts what happens (a mock venue or a conformance harness)."""
    console.print(Text(f"Journal: {display_url(url)}", style="dim"))
    async with Engine.open(
        adapter,
        adapter_options=options,
        database_url=url,
        account_id=DEMO_ACCOUNT,
    ) as engine:

        async def execute(signal: Signal) -> Order:
            order = await engine.execute(signal)
            if order.status is OrderStatus.SUBMITTED:  # a broker that answers with an ack only
                order = await engine.refresh(order.id)
            return order

        if await engine.orders(limit=1):
            raise ConfigurationError(
                f"the demo needs an empty journal and {display_url(url)} already holds orders; "
                "leave out --database-url to run on a temporary one"
            )

        def signal(instrument: tuple[str, str], side: Side, quantity: int) -> Signal:
            symbol, name = instrument
            return Signal(symbol, side, quantity, symbol_name=name, session_id=DEMO_SESSION)

        def report(order: Order) -> None:
            console.print(Text.assemble(describe_request(order), ": ", describe_outcome(order)))

        venue.fill_next(price=Decimal(72000), commission=Decimal(100))
        bought = await execute(signal(SAMSUNG, Side.BUY, 10))
        report(bought)

        venue.partial_fill_next(5, Decimal(185000))
        partial = await execute(signal(HYNIX, Side.BUY, 20))
        report(partial)
        assert partial.broker_order_id is not None
        venue.fill(partial.broker_order_id, price=Decimal(185000))
        console.print(
            f"  the venue fills the other {partial.remaining_quantity}; engine.refresh books them:"
        )
        completed = await engine.refresh(partial.id)
        console.print(Text.assemble("  ", describe_outcome(completed)))

        venue.fill_next(price=Decimal(73000), commission=Decimal(50))
        sold = await execute(signal(SAMSUNG, Side.SELL, 4))
        report(sold)
        sale = await engine.fills(sold.id)
        gross = sum((fill.gross_pnl for fill in sale), Decimal(0))
        fee = sum((fill.commission for fill in sale), Decimal(0))
        net = sum((fill.net_pnl for fill in sale), Decimal(0))
        released = gross - fee - net
        console.print(
            f"  realized gross (73,000 - 72,000) x 4 = {format_money(gross)}; net of its "
            f"commission {format_money(fee)} and the opening fees released for the 4 sold "
            f"{format_money(released)} = {format_money(net)}"
        )

        venue.reject_next("insufficient_balance", "insufficient balance for 1,000 x 005930")
        rejected = await execute(signal(SAMSUNG, Side.BUY, 1000))
        report(rejected)

        stored = [await engine.get_order(order.id) for order in (bought, partial, sold, rejected)]
        result = DemoResult(
            database_url=url,
            orders=tuple(order for order in stored if order is not None),
            positions=tuple(await engine.positions()),
            pnl_by_session=tuple(await engine.realized_pnl("session")),
            pnl_by_day=tuple(await engine.realized_pnl("day")),
        )

    console.print()
    console.print(orders_table(result.orders))
    console.print(positions_table(result.positions))
    console.print(pnl_table(result.pnl_by_session, "session"))
    console.print(pnl_table(result.pnl_by_day, "trading day"))
    return result
