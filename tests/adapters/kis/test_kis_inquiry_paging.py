"""The daily inquiry's paging against a KIS that misbehaves: a page that says "more" but hands
back the continuation keys it was asked with would have the adapter ask for it forever (one
permit a second on paper); the adapter stops there instead and says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from orderlane import BrokerContext, FakeClock, RequestKind
from orderlane_kis.adapter import create_paper_adapter

APP_KEY = "P" * 36
APP_SECRET = "s" * 180


def _stuck_kis(pages: list[httpx.Request]) -> httpx.MockTransport:
    """KIS as a transport: a token, then inquiry pages that always say more (tr_cont M) with
    the same continuation keys."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/tokenP":
            body = {
                "access_token": "t" * 40,
                "token_type": "Bearer",
                "expires_in": 86400,
                "access_token_token_expired": "2026-01-06 09:00:00",
            }
            return httpx.Response(200, json=body)
        pages.append(request)
        body = {
            "rt_cd": "0",
            "msg_cd": "KIOK0510",
            "msg1": "조회가 완료되었습니다",
            "ctx_area_fk100": "12345678^01^20260105^20260105",
            "ctx_area_nk100": "0000000001^12345678",
            "output1": [],
            "output2": {},
        }
        headers = {"Content-Type": "application/json; charset=UTF-8", "tr_cont": "M"}
        return httpx.Response(200, content=json.dumps(body).encode(), headers=headers)

    return httpx.MockTransport(answer)


async def test_a_page_that_hands_back_the_same_keys_ends_the_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")
    pages: list[httpx.Request] = []
    adapter = create_paper_adapter(
        {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "account": "12345678-01",
            "rest_url": "http://127.0.0.1:9",
            "token_cache": str(tmp_path),
            "transport": _stuck_kis(pages),
        }
    )
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
    permits: list[RequestKind] = []

    async def permit(kind: RequestKind) -> None:
        permits.append(kind)
        if len(permits) > 20:  # the transport answers at once: a loop would never yield
            raise RuntimeError("the adapter kept asking for the same page")

    ctx = BrokerContext("acct", {}, clock)
    ctx.use_limiter(permit)
    try:
        rows = await adapter.inquiry.rows_between(ctx, clock.now())
    finally:
        await adapter.http.aclose()
    assert rows == []
    assert len(pages) == 2  # the first page, and the one that handed its keys back
    assert permits.count(RequestKind.INQUIRY) == 2
    assert any("continuation keys" in r.getMessage() for r in caplog.records)
