"""A scripted trading session on the mock venue: ``orderlane demo``.

It shows what orderlane does with the outcomes a strategy meets on a real day (a fill, a partial
fill completed later, a sale that realizes P&L, a rejection) on a real journal, so a new user sees
orders, positions and P&L without a broker account. Tests run :func:`run_demo` and check its
figures. The mock adapter is a separate distribution: it is imported only when the demo runs.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import attrs
from rich.console import Console
from rich.text import Text

from orderlane.cli import (
    describe_outcome,
    describe_request,
    display_url,
    format_money,
    orders_table,
    pnl_table,
    positions_table,
)
from orderlane.engine import Engine
from orderlane.errors import ConfigurationError
from orderlane.journal import PnLSummary
from orderlane.journal.sql import resolve_database_url
from orderlane.model import Order, Side, Signal
from orderlane.positions import Position

__all__ = ["DEMO_ACCOUNT", "DEMO_SESSION", "DemoResult", "run_demo"]

DEMO_ACCOUNT = "demo"
DEMO_SESSION = "demo"
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
        return sum((summary.realized_pnl for summary in self.pnl_by_session), Decimal(0))


async def run_demo(database_url: str | None, console: Console, *, keep: bool = False) -> DemoResult:
    """Run the session on ``database_url`` (which must hold no orders), else on a fresh SQLite
    file in a new temporary directory, removed afterwards unless ``keep``."""
    if database_url is not None:
        url = resolve_database_url(database_url)
        result = await _session(url, console)
        return attrs.evolve(result, kept_at=url)
    directory = Path(tempfile.mkdtemp(prefix="orderlane-demo-"))
    url = f"sqlite:///{directory / 'orderlane.db'}"
    try:
        result = await _session(url, console)
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if keep:
        console.print(Text(f"\nThe journal is kept: orderlane orders --database-url {url}"))
        return attrs.evolve(result, kept_at=url)
    return result


async def _session(url: str, console: Console) -> DemoResult:
    try:
        from orderlane_mock import MockVenue
    except ImportError:  # pragma: no cover - the workspace always installs the mock
        raise ConfigurationError(
            "the demo needs the mock venue: pip install orderlane-mock"
        ) from None

    venue = MockVenue(quotes={SAMSUNG[0]: Decimal(72000), HYNIX[0]: Decimal(185000)})
    console.print(Text(f"Journal: {display_url(url)}", style="dim"))
    async with Engine.open(
        "mock",
        adapter_options={"venue": venue, "timezone": "Asia/Seoul"},
        database_url=url,
        account_id=DEMO_ACCOUNT,
    ) as engine:
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

        venue.fill_next(price=72000, commission=100)
        bought = await engine.execute(signal(SAMSUNG, Side.BUY, 10))
        report(bought)

        venue.partial_fill_next(5)
        partial = await engine.execute(signal(HYNIX, Side.BUY, 20))
        report(partial)
        assert partial.broker_order_id is not None
        venue.fill(partial.broker_order_id)
        console.print(
            f"  the venue fills the other {partial.remaining_quantity}; engine.refresh books them:"
        )
        completed = await engine.refresh(partial.id)
        console.print(Text.assemble("  ", describe_outcome(completed)))

        venue.fill_next(price=73000, commission=50)
        sold = await engine.execute(signal(SAMSUNG, Side.SELL, 4))
        report(sold)
        realized = sum((fill.realized_pnl for fill in await engine.fills(sold.id)), Decimal(0))
        console.print(f"  realized (73,000 - 72,000) x 4 - 50 = {format_money(realized)}")

        venue.reject_next("insufficient_balance", "insufficient balance for 1,000 x 005930")
        rejected = await engine.execute(signal(SAMSUNG, Side.BUY, 1000))
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
