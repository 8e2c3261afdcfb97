"""Secrets over a whole KIS session with every operation made to fail: at DEBUG level (every
library's logger included), the logs, the events, the text of every exception the session
raised, the reprs and every row of the journal hold none of the app key, the app secret, the
access token, the approval key or the account number; the token cache stays owner-only."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orderlane import Engine, EngineConfig, Signal, SystemClock
from orderlane.retry import Operation, RetryConfig
from orderlane_kis.adapter import create_paper_adapter
from orderlane_kis.fake import FakeKisVenue


async def _raised(call: Any, errors: list[BaseException]) -> None:
    try:
        await call
    except Exception as error:
        errors.append(error)


def _journal_text(url: str) -> str:
    """Every value of every row of every table of the journal, as text."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return "\n".join(
                repr(tuple(row))
                for table in tables
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


async def test_a_debug_session_with_every_operation_failing_shows_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: httpx, httpcore, websockets too
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    cache = tmp_path / "tokens"
    errors: list[BaseException] = []
    shown: list[str] = []
    async with FakeKisVenue("paper", ping_interval=None) as venue:
        venue.set_rate_limit(None)
        credentials = venue.credentials
        adapter = create_paper_adapter(
            venue.adapter_options(
                cache,
                hts_id=credentials.hts_id,
                timeout=0.5,
                new_order_lag=0.3,
                token_interval=0.1,
            )
        )
        quick = RetryConfig(max_attempts=2, initial_delay=0.05)
        engine = Engine(
            adapter,
            clock=SystemClock(),
            database_url=url,
            config=EngineConfig(
                load_entry_point_plugins=False,
                retry={op: quick for op in Operation},
                poll_interval=0.1,
                lookup_interval=0.2,
                instrument_hold_timeout=2.0,
            ),
        )
        # The first token request and the notice stream's approval key fail too.
        venue.add_fault("http_error", operation="token", status=500)
        venue.add_fault("http_error", operation="approval", status=500)
        await _raised(engine.start(), errors)
        await engine.start()
        # Place: every kind of failure KIS has, each once, then a refusal.
        faults: tuple[tuple[str, dict[str, Any]], ...] = (
            ("gateway_timeout", {"msg_cd": "EGW00301"}),
            ("garbled", {}),
            ("drop_before", {}),
            ("rate_limit", {}),
            ("token_expired", {}),
        )
        for action, extra in faults:
            venue.add_fault(action, operation="place", **extra)
        venue.reject_next("insufficient_cash")
        for quantity in range(1, 6):
            await _raised(engine.execute(Signal("005930", "BUY", quantity)), errors)
        # Cancel, status and lookup fail as well.
        venue.hold_next()
        held = await engine.execute(Signal("035720", "BUY", 1, "LIMIT", 41_000))
        for action in ("http_error", "garbled", "gateway_timeout"):
            venue.add_fault(action, operation="cancel")
            await _raised(engine.cancel(held.id), errors)
            venue.add_fault(action, operation="inquiry")
            await _raised(engine.refresh(held.id), errors)
        venue.expire_tokens(lapsed=True)
        venue.add_fault("http_error", operation="token", status=503)
        await _raised(engine.refresh(held.id), errors)
        await engine.cancel(held.id)
        venue.set_notice_layout("drifted")
        venue.disconnect_notices()
        await _raised(engine.execute(Signal("000270", "SELL", 1)), errors)
        await asyncio.sleep(0.5)
        await _raised(engine.resolve(held.id, absent=True), errors)
        orders = list(await engine.orders(limit=100))
        shown += [repr(engine), repr(engine.broker.ctx), repr(adapter), str(engine.stats())]
        shown += [repr(order) for order in orders]
        shown += [json.dumps(payload, default=str) for _, payload in await engine.journal.events()]
        await engine.close()
        subscriptions = [
            json.loads(m["text"])
            for m in venue.notice_messages()
            if m["direction"] == "in" and m["text"].startswith("{")
        ]
        failed = {
            r["operation"]
            for r in venue.recorded_requests()
            if r["status"] is None or r["status"] >= 400
        }
        tokens = {
            line.split()[-1]
            for r in venue.recorded_requests()
            for name, line in r["headers"]
            if name.lower() == "authorization"
        }
    # Every operation failed at least once, as the venue recorded it.
    assert {"token", "approval", "place", "cancel", "inquiry"} <= failed
    assert errors, "the session was meant to raise"
    assert any(not o.is_terminal or o.reason for o in orders)
    approvals = {s["header"]["approval_key"] for s in subscriptions}
    assert tokens
    assert approvals
    account = credentials.account
    keys = [credentials.app_key, credentials.app_secret, *tokens, *approvals]
    # The account number in any spelling: the URL of an inquiry carries it as
    # CANO=12345678&ACNT_PRDT_CD=01, so its 8 digits alone are a secret too; and no start of
    # a key, a token or an approval key (a library's log line may cut one short).
    secrets = [*keys, account, account.replace("-", ""), account.split("-")[0]]
    secrets += [key[:12] for key in keys]
    texts = [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info and r.exc_info[1]]
    texts += [f"{type(e).__name__}: {e!s} {e!r} {e.__cause__!r}" for e in errors]
    texts += shown
    texts.append(_journal_text(url))
    text = "\n".join(texts)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for secret in secrets:
        assert secret not in text
    [token_file] = cache.glob("*.json")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert credentials.app_key not in token_file.name
