"""Secrets stay out of sight: the journal's URL never shows its password, and an adapter option's
value appears in errors, reasons, events and logs only when the adapter marks it as public."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import pytest

from orderlane import (
    BrokerContext,
    Engine,
    FakeClock,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
    hookimpl,
)
from orderlane.journal.reader import JournalReader
from orderlane.journal.sql import SqlJournal
from orderlane_mock import MockVenue
from orderlane_mock.adapter import MockAdapter

SECRET = "s3cret-api-key-0123456789"


def test_the_journal_url_never_holds_the_plaintext_password() -> None:
    url = "postgresql://trader:" + SECRET + "@127.0.0.1:5432/orders?sslpassword=" + SECRET
    journal = SqlJournal(url)
    reader = JournalReader(url)
    engine = Engine("mock", database_url=url)
    for shown in (
        journal.url,
        repr(journal),
        str(journal),
        repr(vars(journal)),
        reader.url,
        reader.display_url,
        repr(reader),
        repr(vars(reader)),
        repr(engine),
        repr(engine.config),
        engine.journal.url,
    ):
        assert SECRET not in shown, shown
    assert journal.url.startswith("postgresql+psycopg://trader:***@127.0.0.1:5432/orders")


class LeakyAdapter(MockAdapter):
    """Its place hook fails quoting its options, as a careless adapter's error might."""

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        raise RuntimeError(f"cannot sign with {ctx.options['api_key']} (zone {ctx.options['tz']})")


async def test_a_secret_option_quoted_by_an_adapter_error_never_reaches_the_journal(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = LeakyAdapter(MockVenue())
    options = {"api_key": SECRET, "timezone": "Asia/Seoul", "tz": "Asia/Seoul"}
    with caplog.at_level(logging.DEBUG, logger="orderlane"):
        async with Engine.open(
            adapter, adapter_options=options, clock=FakeClock(), database_url=sqlite_url
        ) as engine:
            order = await engine.execute(Signal("005930", "BUY", 1))
            await engine.flush_events()
    assert order.status in (OrderStatus.UNKNOWN, OrderStatus.FAILED)
    assert order.reason is not None
    assert "***" in order.reason
    assert SECRET not in order.reason
    # ``timezone`` is an option the mock marks public; ``tz`` is not one of its options.
    assert "zone ***" in order.reason
    raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    with raw:
        stored = [str(value) for row in raw.execute("SELECT * FROM orders") for value in row]
        events = [payload for (payload,) in raw.execute("SELECT payload FROM order_events")]
    raw.close()
    assert stored
    assert events
    assert all(SECRET not in value for value in stored + events)
    assert all(SECRET not in json.dumps(record.getMessage()) for record in caplog.records)


def test_cli_errors_show_public_option_values_and_mask_the_others(
    cli: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderlane_mock.adapter

    class Refusing(MockVenue):
        def __init__(self, **kwargs: Any) -> None:
            raise ValueError(f"cannot quote {kwargs['quote']}")

    # A factory that lets a ValueError through cannot say which options are public: every
    # option's value is masked.
    monkeypatch.setattr(orderlane_mock.adapter, "MockVenue", Refusing)
    result = cli(
        "order", "buy", "005930", "1", "-o", "quote=987654321", "--database-url", sqlite_url
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "refused its options" in result.output
    assert "ValueError: cannot quote ***" in result.output
    assert "987654321" not in result.output
    monkeypatch.undo()

    # The mock marks timezone as public: its value is shown, it is what the user must fix.
    shown = cli(
        "order", "buy", "005930", "1", "-o", "timezone=Mars/Base", "--database-url", sqlite_url
    )
    assert shown.exit_code == 1
    assert "Mars/Base" in shown.output


def test_kis_secrets_are_not_public_options() -> None:
    from orderlane_kis.config import PUBLIC_OPTIONS

    assert {"app_key", "app_secret", "account", "hts_id", "live_trading"}.isdisjoint(PUBLIC_OPTIONS)
    engine = Engine("kis-paper")
    assert engine.broker.info.public_options == PUBLIC_OPTIONS
