"""The KIS adapters against the fake KIS venue on loopback: what goes on the wire (golden
requests per operation and mode), tokens, KIS's codes, ticks, market hours and secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kis.kis_engines import adapter_and_engine, options
from orderlane import Engine, FakeClock, OrderStatus, Signal
from orderlane.errors import ConfigurationError
from orderlane_kis.adapter import create_paper_adapter
from orderlane_kis.fake import FakeKisVenue

KIS_HEADERS = ("content-type", "authorization", "appkey", "appsecret", "tr_id", "custtype")


@pytest.fixture
async def paper(clock: FakeClock) -> AsyncIterator[FakeKisVenue]:
    async with FakeKisVenue("paper", clock=clock, ping_interval=None) as venue:
        yield venue


@pytest.fixture
async def live(clock: FakeClock) -> AsyncIterator[FakeKisVenue]:
    async with FakeKisVenue("live", clock=clock, ping_interval=None) as venue:
        yield venue


def build_engine(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, **extra: Any
) -> Engine:
    return adapter_and_engine(venue, clock, url, cache, **extra)[1]


@contextlib.asynccontextmanager
async def engine_on(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, **extra: Any
) -> AsyncIterator[Engine]:
    engine = build_engine(venue, clock, url, cache, **extra)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


def requests_of(venue: FakeKisVenue, operation: str) -> list[dict[str, Any]]:
    return venue.recorded_requests(operation)


def header(request: dict[str, Any], name: str) -> str | None:
    for key, value in request["headers"]:
        if key == name:
            return str(value)
    return None


# ------------------------------------------------------------------ golden requests


@pytest.mark.parametrize(
    ("mode", "buy_tr", "sell_tr", "cancel_tr", "inquiry_tr"),
    [
        ("paper", "VTTC0012U", "VTTC0011U", "VTTC0013U", "VTTC0081R"),
        ("live", "TTTC0012U", "TTTC0011U", "TTTC0013U", "TTTC0081R"),
    ],
)
async def test_each_operation_sends_what_the_kis_document_says(
    mode: str,
    buy_tr: str,
    sell_tr: str,
    cancel_tr: str,
    inquiry_tr: str,
    clock: FakeClock,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    async with FakeKisVenue(mode, clock=clock, ping_interval=None) as venue:  # type: ignore[arg-type]
        venue.set_holding("005930", 10)
        account = venue.credentials.account
        async with engine_on(venue, clock, sqlite_url, tmp_path) as engine:
            venue.hold_next()
            limit = await engine.execute(
                Signal("005930", "BUY", 3, order_type="LIMIT", limit_price=Decimal(71000))
            )
            await engine.execute(Signal("005930", "SELL", 2))
            await engine.cancel(limit.id)
        token_value = venue.credentials.app_key
        places = requests_of(venue, "place")
        cancels = requests_of(venue, "cancel")
        inquiries = requests_of(venue, "inquiry")
    assert [p["method"] for p in places] == ["POST", "POST"]
    assert {p["path"] for p in places} == {"/uapi/domestic-stock/v1/trading/order-cash"}
    assert [header(p, "tr_id") for p in places] == [buy_tr, sell_tr]
    for request in [*places, *cancels, *inquiries]:
        for name in KIS_HEADERS:
            assert header(request, name) is not None, (request["path"], name)
        assert header(request, "content-type") == "application/json; charset=utf-8"
        assert (header(request, "authorization") or "").startswith("Bearer ")
        assert header(request, "appkey") == token_value
        assert header(request, "custtype") == "P"
    cano, product = account.split("-")
    assert json.loads(places[0]["body"]) == {
        "CANO": cano,
        "ACNT_PRDT_CD": product,
        "PDNO": "005930",
        "ORD_DVSN": "00",
        "ORD_QTY": "3",
        "ORD_UNPR": "71000",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    assert json.loads(places[1]["body"]) == {
        "CANO": cano,
        "ACNT_PRDT_CD": product,
        "PDNO": "005930",
        "ORD_DVSN": "01",
        "ORD_QTY": "2",
        "ORD_UNPR": "0",
        "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "01",
    }
    [cancel] = cancels
    assert cancel["path"] == "/uapi/domestic-stock/v1/trading/order-rvsecncl"
    assert header(cancel, "tr_id") == cancel_tr
    body = json.loads(cancel["body"])
    assert body["ORGN_ODNO"] == limit.broker_order_id
    assert {k: body[k] for k in ("RVSE_CNCL_DVSN_CD", "QTY_ALL_ORD_YN", "ORD_QTY")} == {
        "RVSE_CNCL_DVSN_CD": "02",
        "QTY_ALL_ORD_YN": "Y",
        "ORD_QTY": "0",
    }
    assert all(isinstance(value, str) and key.isupper() for key, value in body.items())
    assert inquiries, "the cancel is confirmed through the daily inquiry"
    first = inquiries[0]
    assert first["method"] == "GET"
    assert first["path"] == "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
    assert header(first, "tr_id") == inquiry_tr
    query = dict(first["query"])
    assert query["CANO"] == cano
    assert query["INQR_DVSN_3"] == "00"
    assert query["CTX_AREA_FK100"] == query["CTX_AREA_NK100"] == ""
    assert header(first, "tr_cont") == ""


async def test_the_inquiry_pages_with_continuation_keys(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        for quantity in range(1, 21):
            paper.hold_next()
            await engine.execute(Signal("005930", "BUY", quantity))
        before = len(requests_of(paper, "inquiry"))
        await engine.tracker.poll_once()
        pages = requests_of(paper, "inquiry")[before:]
    assert len(pages) == 2  # 20 orders, 15 a page on paper
    assert header(pages[1], "tr_cont") == "N"
    assert dict(pages[1]["query"])["CTX_AREA_NK100"] != ""


# ------------------------------------------------------------------ tokens


async def test_tokens_are_cached_owner_only_and_reused_by_the_next_engine(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "tokens"
    async with engine_on(paper, clock, sqlite_url, cache) as engine:
        await engine.execute(Signal("005930", "BUY", 1))
    async with engine_on(paper, clock, sqlite_url, cache) as engine:
        await engine.execute(Signal("005930", "BUY", 1))
    assert len(requests_of(paper, "token")) == 1
    [token_file] = cache.glob("*.json")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert paper.credentials.app_key not in token_file.name


async def test_concurrent_callers_share_one_token_request(
    paper: FakeKisVenue, clock: FakeClock, tmp_path: Path
) -> None:
    adapter = create_paper_adapter(options(paper, tmp_path))
    others = [create_paper_adapter(options(paper, tmp_path)) for _ in range(3)]
    engine = Engine(adapter, clock=clock, database_url=f"sqlite:///{tmp_path / 'j.db'}")
    ctx = engine.broker.ctx
    tokens = await asyncio.gather(
        *(a.http.tokens.token(ctx) for a in [adapter, *others] for _ in range(3))
    )
    assert len(set(tokens)) == 1
    assert len(requests_of(paper, "token")) == 1
    for each in [adapter, *others]:
        await each.http.aclose()


async def test_an_expired_token_is_refreshed_once_and_the_request_repeated(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        paper.expire_tokens()
        clock.advance(61)  # the venue issues one token a minute
        order = await engine.execute(Signal("005930", "BUY", 1))
    assert order.status is OrderStatus.SUBMITTED
    assert [r["msg_cd"] for r in requests_of(paper, "place")] == ["EGW00123", "40600000"]
    assert len(requests_of(paper, "token")) == 2


async def test_a_throttled_token_request_is_answered_by_waiting(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    async with engine_on(paper, clock, sqlite_url, tmp_path / "a"):
        pass
    # Another machine's cache: the venue has issued a token within the minute.
    async with engine_on(paper, clock, sqlite_url, tmp_path / "b") as engine:
        order = await engine.execute(Signal("005930", "BUY", 1))
    assert order.status is OrderStatus.SUBMITTED
    answers = [r["status"] for r in requests_of(paper, "token")]
    assert answers == [200, 403, 200]
    assert 60.0 in clock.sleeps


# ------------------------------------------------------------------ KIS's answers


async def test_kis_codes_become_the_error_tree(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        paper.add_fault("rate_limit", operation="place")
        retried = await engine.execute(Signal("005930", "BUY", 1))
        paper.add_fault("gateway_timeout", operation="place")
        adopted = await engine.execute(Signal("005930", "BUY", 2))
        paper.reject_next("insufficient_cash")
        poor = await engine.execute(Signal("005930", "BUY", 3))
    assert retried.status is OrderStatus.SUBMITTED
    assert [r["msg_cd"] for r in requests_of(paper, "place")][:2] == ["EGW00201", "40600000"]
    assert adopted.status in (OrderStatus.SUBMITTED, OrderStatus.FILLED)  # looked up, adopted
    assert poor.status is OrderStatus.REJECTED
    assert "InsufficientBalanceError" in (poor.reason or "")


async def test_a_paper_key_on_the_live_host_names_the_hosts(
    live: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    paper_key = live.add_app("50000002-01", "other", mode="paper")
    engine = build_engine(
        live,
        clock,
        sqlite_url,
        tmp_path,
        account="50000002-01",
        live_trading="50000002-01",
        **paper_key,
    )
    with pytest.raises(ConfigurationError) as refused:
        await engine.start()
    message = str(refused.value)
    assert "EGW02004" in message
    assert "openapivts" in message
    assert "kis-paper" in message
    assert paper_key["app_key"] not in message


async def test_market_closed_is_a_rejection_naming_the_session(
    paper: FakeKisVenue, sqlite_url: str, tmp_path: Path
) -> None:
    night = FakeClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))  # 21:00 KST
    async with FakeKisVenue("paper", clock=night, ping_interval=None) as venue:
        venue.set_market_hours(True)
        async with engine_on(venue, night, sqlite_url, tmp_path) as engine:
            order = await engine.execute(Signal("005930", "BUY", 1))
    assert order.status is OrderStatus.REJECTED
    assert "09:00 to 15:30 KST" in (order.reason or "")


async def test_off_tick_limit_prices_are_refused_before_sending(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        order = await engine.execute(
            Signal("005930", "BUY", 1, order_type="LIMIT", limit_price=Decimal(72050))
        )
    assert order.status is OrderStatus.REJECTED
    assert "72,000 and 72,100" in (order.reason or "")
    assert requests_of(paper, "place") == []


async def test_live_refuses_to_start_without_the_opt_in(
    live: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    engine = build_engine(live, clock, sqlite_url, tmp_path, live_trading=None)
    with pytest.raises(ConfigurationError, match="ORDERLANE_KIS_LIVE_TRADING"):
        await engine.start()
    assert live.request_count() == 0


# ------------------------------------------------------------------ secrets


async def test_a_debug_session_shows_no_secret(
    paper: FakeKisVenue,
    clock: FakeClock,
    sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = paper.credentials
    shown: list[str] = []
    async with engine_on(
        paper, clock, sqlite_url, tmp_path, push=True, hts_id=credentials.hts_id
    ) as engine:
        await engine.tracker.start(poll=False)
        paper.hold_next()
        held = await engine.execute(Signal("005930", "BUY", 2))
        await engine.cancel(held.id)
        paper.reject_next("insufficient_cash")
        await engine.execute(Signal("005930", "BUY", 3))
        paper.set_notice_layout("drifted")  # a frame that does not parse is logged
        await engine.execute(Signal("005930", "BUY", 1))
        await asyncio.sleep(0.2)
        shown += [repr(engine), repr(engine.broker.ctx), str(engine.stats())]
        shown += [repr(order) for order in await engine.orders()]
        shown += [order.reason or "" for order in await engine.orders()]
    token = json.loads(await asyncio.to_thread(_token_text, tmp_path))["access_token"]
    subscriptions = [
        json.loads(m["text"])
        for m in paper.notice_messages()
        if m["direction"] == "in" and m["text"].startswith("{")
    ]
    approval = subscriptions[0]["header"]["approval_key"]
    secrets = [credentials.app_key, credentials.app_secret, token, approval, credentials.account]
    secrets.append(credentials.account.replace("-", ""))
    text = "\n".join([*(r.getMessage() for r in caplog.records), *shown])
    assert any("notice frame" in r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in text


def _token_text(cache: Path) -> str:
    return next(cache.glob("*.json")).read_text()


async def test_notices_answer_pingpong_and_resubscribe_after_a_drop(
    paper: FakeKisVenue,
    clock: FakeClock,
    sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hts = paper.credentials.hts_id

    async def until(condition: Any) -> None:
        for _ in range(500):  # real time: WebSocket frames on their way over loopback
            if condition():
                return
            await asyncio.sleep(0.01)

    def subscriptions() -> int:
        return sum(
            1
            for m in paper.notice_messages()
            if m["direction"] == "in" and "approval_key" in m["text"]
        )

    async with engine_on(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts) as engine:
        await engine.tracker.start(poll=False)
        await until(lambda: subscriptions() == 1)
        paper.send_pingpong()
        await until(lambda: paper.counters()["pongs"] >= 1)
        paper.disconnect_notices()
        await until(lambda: subscriptions() == 2)
    assert paper.counters()["pongs"] >= 1
    assert subscriptions() == 2
    assert len(paper.recorded_requests("approval")) == 2
    assert any("push stream gap" in r.getMessage() for r in caplog.records)


async def test_the_engine_starts_subscribed_so_an_order_sent_at_once_has_its_notice(
    paper: FakeKisVenue,
    clock: FakeClock,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KIS pushes notices only to a subscribed socket, and a client reads none before the
    subscription's ack: the engine's start waits for that ack, so an order sent the moment the
    engine is up is filled through its notice."""
    server = paper.notices
    send_ack = server._ack

    def slow_ack(*args: Any) -> None:  # the venue takes its time to acknowledge
        asyncio.get_running_loop().call_later(0.3, send_ack, *args)

    monkeypatch.setattr(server, "_ack", slow_ack)
    hts = paper.credentials.hts_id
    async with engine_on(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts) as engine:
        await engine.tracker.start(poll=False)  # push only: no poll can book the fill
        resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
        order = await engine.execute(resting)
        assert order.status is OrderStatus.SUBMITTED
        assert order.broker_order_id is not None
        paper.fill(order.broker_order_id)
        for _ in range(300):  # real time: the notice on its way over loopback
            stored = await engine.get_order(order.id)
            if stored is not None and stored.status is OrderStatus.FILLED:
                break
            await asyncio.sleep(0.01)
        assert stored is not None
        assert (stored.status, stored.filled_quantity) == (OrderStatus.FILLED, 10)


# ------------------------------------------------------------------ permits


async def test_every_request_the_adapter_makes_takes_a_permit_first(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """The limiter counts what KIS counts: each place (and its repeat after EGW00123), each
    page of the inquiry, each token request (the refresh included) and each cancel."""
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        for quantity in range(1, 18):
            paper.hold_next()
            held = await engine.execute(Signal("005930", "BUY", quantity))
        await engine.tracker.poll_once()  # 17 open orders: two pages on paper
        paper.expire_tokens()
        clock.advance(61)  # the venue issues one token a minute
        await engine.execute(Signal("005930", "BUY", 100))  # EGW00123, a new token, a repeat
        await engine.cancel(held.id)
        granted = engine.stats()["rate_limiter"]["granted"]
    venue = {op: paper.request_count(op) for op in ("place", "cancel", "inquiry", "token")}
    assert venue["inquiry"] >= 2
    assert [r["msg_cd"] for r in requests_of(paper, "place")][-2:] == ["EGW00123", "40600000"]
    assert venue["token"] == 2
    assert granted == {
        "order": venue["place"],
        "cancel": venue["cancel"],
        "inquiry": venue["inquiry"],
        "auth": venue["token"],
    }


@pytest.mark.parametrize(
    ("mode", "buy_tr", "sell_tr", "notice_tr"),
    [
        ("paper", "VTTC0012U", "VTTC0011U", "H0STCNI9"),
        ("live", "TTTC0012U", "TTTC0011U", "H0STCNI0"),
    ],
)
async def test_tokens_notices_and_the_other_order_kinds_match_the_kis_document(
    mode: str, buy_tr: str, sell_tr: str, notice_tr: str, clock: FakeClock, tmp_path: Path
) -> None:
    """Golden requests for what the other golden test leaves out: the token and approval
    requests, a market buy, a limit sell, the whole cancel body, the whole inquiry query, the
    tr_cont header on every trading request and the notice subscription."""
    async with FakeKisVenue(mode, clock=clock, ping_interval=None) as venue:  # type: ignore[arg-type]
        venue.set_holding("005930", 10)
        credentials = venue.credentials
        cano, product = credentials.account.split("-")
        url = f"sqlite:///{tmp_path / 'journal.db'}"
        hts = credentials.hts_id
        async with engine_on(venue, clock, url, tmp_path, push=True, hts_id=hts) as engine:
            await engine.execute(Signal("005930", "BUY", 2))
            venue.hold_next()
            sell = await engine.execute(
                Signal("005930", "SELL", 1, order_type="LIMIT", limit_price=Decimal(75000))
            )
            await engine.cancel(sell.id)
        [token] = requests_of(venue, "token")
        [approval] = requests_of(venue, "approval")
        places = requests_of(venue, "place")
        [cancel] = requests_of(venue, "cancel")
        inquiries = requests_of(venue, "inquiry")
        [subscription] = [
            json.loads(m["text"])
            for m in venue.notice_messages()
            if m["direction"] == "in" and "approval_key" in m["text"]
        ]
        assert sell.broker_order_id is not None
        branch = venue.book.orders[sell.broker_order_id].branch
        approval_key = subscription["header"]["approval_key"]
        assert venue.tokens.approval_keys[approval_key] == credentials.app_key
    for request, path, body in (
        (
            token,
            "/oauth2/tokenP",
            {"appkey": credentials.app_key, "appsecret": credentials.app_secret},
        ),
        (
            approval,
            "/oauth2/Approval",
            {"appkey": credentials.app_key, "secretkey": credentials.app_secret},
        ),
    ):
        assert (request["method"], request["path"]) == ("POST", path)
        assert header(request, "content-type") == "application/json; charset=utf-8"
        assert json.loads(request["body"]) == {"grant_type": "client_credentials", **body}
    assert [header(p, "tr_id") for p in places] == [buy_tr, sell_tr]
    assert [json.loads(p["body"]) for p in places] == [
        {
            "CANO": cano,
            "ACNT_PRDT_CD": product,
            "PDNO": "005930",
            "ORD_DVSN": "01",
            "ORD_QTY": "2",
            "ORD_UNPR": "0",
            "EXCG_ID_DVSN_CD": "KRX",
        },
        {
            "CANO": cano,
            "ACNT_PRDT_CD": product,
            "PDNO": "005930",
            "ORD_DVSN": "00",
            "ORD_QTY": "1",
            "ORD_UNPR": "75000",
            "EXCG_ID_DVSN_CD": "KRX",
            "SLL_TYPE": "01",
        },
    ]
    assert json.loads(cancel["body"]) == {
        "CANO": cano,
        "ACNT_PRDT_CD": product,
        "KRX_FWDG_ORD_ORGNO": branch,
        "ORGN_ODNO": sell.broker_order_id,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    assert inquiries
    for inquiry in inquiries:
        query = dict(inquiry["query"])
        assert set(query) == {
            "CANO", "ACNT_PRDT_CD", "INQR_STRT_DT", "INQR_END_DT", "SLL_BUY_DVSN_CD", "PDNO",
            "ORD_GNO_BRNO", "ODNO", "CCLD_DVSN", "INQR_DVSN", "INQR_DVSN_1", "INQR_DVSN_3",
            "EXCG_ID_DVSN_CD", "CTX_AREA_FK100", "CTX_AREA_NK100",
        }  # fmt: skip
        assert (query["CANO"], query["ACNT_PRDT_CD"]) == (cano, product)
        assert len(query["INQR_STRT_DT"]) == len(query["INQR_END_DT"]) == 8
        assert (query["INQR_DVSN_3"], query["SLL_BUY_DVSN_CD"], query["CCLD_DVSN"]) == (
            "00",
            "00",
            "00",
        )
    for request in [*places, cancel, *inquiries]:
        assert header(request, "tr_cont") is not None, request["path"]
        for name in KIS_HEADERS:
            assert header(request, name) is not None, (request["path"], name)
    assert subscription == {
        "header": {
            "approval_key": approval_key,
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": notice_tr, "tr_key": hts}},
    }


async def test_a_restarted_engine_books_the_next_fill_notice_of_a_partly_filled_order(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """KIS's notices carry each execution, not the total: a restarted engine's stream counts
    on from what the inquiry said after the subscription (recovery's catch-up here), so the
    fills booked before the restart stay in the total: a notice of 3 on an order filled 4 is 7,
    not 3 (which the engine would ignore, or later book at a wrong price)."""
    hts = paper.credentials.hts_id

    async def until_filled(engine: Engine, order_id: str, quantity: int) -> Any:
        for _ in range(300):  # real time: notices on their way over loopback
            stored = await engine.get_order(order_id)
            if stored is not None and stored.filled_quantity >= quantity:
                return stored
            await asyncio.sleep(0.01)
        return await engine.get_order(order_id)

    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    async with engine_on(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts) as engine:
        await engine.tracker.start(poll=False)  # push only
        order = await engine.execute(resting)
        assert order.broker_order_id is not None
        paper.fill(order.broker_order_id, 4, 71000)
        assert (await until_filled(engine, order.id, 4)).filled_quantity == 4
    async with engine_on(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts) as engine:
        await engine.tracker.start(poll=False)  # push only: no poll can book the next fill
        polls = len(requests_of(paper, "inquiry"))
        # Seconds after the catch-up inquiry: an execution within KIS's clock margin of it
        # might be in its figure, and its notice would ask for a poll instead (test below).
        clock.advance(5)
        paper.fill(order.broker_order_id, 3, 70300)
        stored = await until_filled(engine, order.id, 7)
        assert len(requests_of(paper, "inquiry")) == polls
    assert stored.filled_quantity == 7
    assert stored.status is OrderStatus.PARTIALLY_FILLED
    assert stored.average_fill_price == Decimal(70700)  # (4 x 71,000 + 3 x 70,300) / 7


async def test_paged_inquiries_log_no_account_number(
    paper: FakeKisVenue,
    clock: FakeClock,
    sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An inquiry's URL carries the account (CANO) and, from the second page on, continuation
    keys that carry it too (KIS's, like the venue's): httpx's request lines show neither."""
    caplog.set_level(logging.DEBUG)  # the root logger: httpx's request lines too
    paper.set_page_size(2)
    async with engine_on(paper, clock, sqlite_url, tmp_path) as engine:
        for quantity in range(1, 6):
            paper.hold_next()
            await engine.execute(Signal("005930", "BUY", quantity))
        await engine.tracker.poll_once()
    pages = requests_of(paper, "inquiry")
    assert any(dict(p["query"])["CTX_AREA_FK100"] for p in pages)  # it paged
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("inquire-daily-ccld" in line for line in lines)
    cano = paper.credentials.account.split("-")[0]
    assert not [line for line in lines if cano in line]


async def test_a_notice_the_catch_up_inquiry_may_have_counted_is_checked_by_a_poll(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """After a restart the catch-up inquiry raises the order's total to what KIS says. A fill
    notice of an execution at the same moment may already be in that figure: it is not added
    (that could book a fill twice) but answered by a poll, whose figure is booked."""
    hts = paper.credentials.hts_id
    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    async with engine_on(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts) as engine:
        await engine.tracker.start(poll=False)
        order = await engine.execute(resting)
        assert order.broker_order_id is not None
        paper.fill(order.broker_order_id, 4, 71000)
        for _ in range(300):
            stored = await engine.get_order(order.id)
            if stored is not None and stored.filled_quantity >= 4:
                break
            await asyncio.sleep(0.01)
    adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts)
    await engine.start()
    try:
        await engine.tracker.start()  # push, and a poll on every gap
        polls = len(requests_of(paper, "inquiry"))
        paper.fill(order.broker_order_id, 3, 70300)  # the same second as the catch-up
        for _ in range(300):
            stored = await engine.get_order(order.id)
            if stored is not None and stored.filled_quantity >= 7:
                break
            await asyncio.sleep(0.01)
        held_back = adapter.totals.held_back
        await asyncio.sleep(0.2)  # nothing more arrives that could add it twice
        stored = await engine.get_order(order.id)
    finally:
        await engine.close()
    assert stored is not None
    assert (stored.filled_quantity, stored.status) == (7, OrderStatus.PARTIALLY_FILLED)
    assert stored.average_fill_price == Decimal(70700)
    assert held_back == 1
    assert len(requests_of(paper, "inquiry")) > polls, "the poll the notice asked for"
