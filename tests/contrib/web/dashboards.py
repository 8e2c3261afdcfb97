"""What the dashboard's tests share: a running dashboard's address, and one more trade."""

from __future__ import annotations

from decimal import Decimal

import attrs

from orderlane import Engine, EngineConfig, Order, Signal
from orderlane.demo import DEMO_ACCOUNT, DEMO_SESSION, DEMO_TIMEZONE
from orderlane.journal.reader import JournalReader
from orderlane_mock import MockVenue


@attrs.frozen
class Dashboard:
    """A running dashboard: its base address, and the reader it reads through."""

    base: str
    reader: JournalReader
    token: str | None = None


async def trade(url: str, signal: Signal, *, price: int, commission: int = 0) -> Order:
    """One more order on the journal at ``url``, filled by a fresh mock venue (the demo's, in
    its time zone: an account's fills keep one venue's trading days)."""
    venue = MockVenue(quotes={signal.symbol: Decimal(price)})
    config = EngineConfig(account_id=DEMO_ACCOUNT, track=False, recover_on_start=False)
    async with Engine.open(
        "mock",
        adapter_options={"venue": venue, "timezone": DEMO_TIMEZONE},
        database_url=url,
        config=config,
    ) as engine:
        venue.fill_next(price=price, commission=commission)
        return await engine.execute(signal)


NAMES = {"005930": "Samsung Electronics", "000660": "SK hynix"}


def sell(quantity: int, symbol: str = "005930") -> Signal:
    return Signal(
        symbol, "SELL", quantity, symbol_name=NAMES.get(symbol, ""), session_id=DEMO_SESSION
    )
