"""The fake KIS venue's REST side against KIS-OPEN-API.md, through a bare httpx client."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import httpx
import pytest

from kis.kis_raw_client import TRADING, KisClient
from orderlane import FakeClock
from orderlane_kis.fake import FakeKisVenue
from orderlane_kis.krx import KST

# ------------------------------------------------------------------ tokens


async def test_token_answer_has_kis_keys_and_expiry_format(paper: FakeKisVenue) -> None:
    credentials = paper.credentials
    assert len(credentials.app_key) == 36
    assert len(credentials.app_secret) == 180
    async with httpx.AsyncClient(base_url=paper.rest_url) as http:
        response = await http.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": credentials.app_key,
                "appsecret": credentials.app_secret,
            },
        )
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "token_type", "expires_in", "access_token_token_expired"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    expected = (paper.clock.now() + timedelta(hours=24)).astimezone(KST)
    assert body["access_token_token_expired"] == expected.strftime("%Y-%m-%d %H:%M:%S")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["access_token_token_expired"])


async def test_token_throttled_per_minute_and_reused_for_six_hours(
    kis: KisClient, clock: FakeClock
) -> None:
    first = kis.token
    clock.advance(30)
    throttled = await kis.issue_token()
    assert throttled.status_code == 403
    assert throttled.json()["error_code"] == "EGW00133"
    assert "1분당 1회" in throttled.json()["error_description"]
    clock.advance(31)
    again = await kis.issue_token()
    assert again.status_code == 200
    assert again.json()["access_token"] == first
    assert again.json()["expires_in"] == 86400 - 61
    clock.advance(6 * 3600)
    fresh = await kis.issue_token()
    assert fresh.json()["access_token"] != first


async def test_token_refused_for_unknown_key_and_bad_secret(kis: KisClient) -> None:
    kis.app_secret = "x" * 180
    kis.clock.advance(61)
    bad_secret = await kis.issue_token()
    kis.app_key = "y" * 36
    bad_key = await kis.issue_token()
    assert (bad_secret.status_code, bad_secret.json()["error_code"]) == (403, "EGW00105")
    assert (bad_key.status_code, bad_key.json()["error_code"]) == (403, "EGW00103")


async def test_expired_token_answers_egw00123_until_a_new_one_is_issued(
    kis: KisClient, clock: FakeClock
) -> None:
    kis.venue.expire_tokens()
    expired = await kis.place()
    assert (expired.status_code, expired.json()["msg_cd"]) == (500, "EGW00123")
    clock.advance(61)
    assert (await kis.issue_token()).status_code == 200
    assert (await kis.place()).json()["rt_cd"] == "0"


async def test_token_lapses_after_24_hours(kis: KisClient, clock: FakeClock) -> None:
    clock.advance(24 * 3600)
    assert (await kis.place()).json()["msg_cd"] == "EGW00123"


async def test_invalid_or_missing_token(kis: KisClient) -> None:
    kis.token = "not-a-token"
    assert (await kis.place()).json()["msg_cd"] == "EGW00121"
    headers = kis.headers("VTTC0012U")
    del headers["authorization"]
    missing = await kis.http.post(f"{TRADING}/order-cash", json=kis.order_body(), headers=headers)
    assert missing.json()["msg_cd"] == "EGW00122"


async def test_revoke_ends_a_token(kis: KisClient) -> None:
    body = {"appkey": kis.app_key, "appsecret": kis.app_secret, "token": kis.token}
    revoked = await kis.http.post("/oauth2/revokeP", json=body)
    assert revoked.status_code == 200
    assert revoked.json()["code"] == 200
    assert (await kis.place()).json()["msg_cd"] == "EGW00123"
    assert (await kis.http.post("/oauth2/revokeP", json=body)).status_code == 403


async def test_approval_key_with_leftover_headers(kis: KisClient) -> None:
    response = await kis.http.post(
        "/oauth2/Approval",
        json={
            "grant_type": "client_credentials",
            "appkey": kis.app_key,
            "secretkey": kis.app_secret,
        },
        headers={"authorization": "Bearer x", "appkey": kis.app_key, "appsecret": kis.app_secret},
    )
    assert response.status_code == 200
    assert re.fullmatch(
        r"[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}", response.json()["approval_key"]
    )


async def test_hashkey_answers_the_body_and_its_hash(kis: KisClient) -> None:
    order = kis.order_body()
    response = await kis.http.post(
        "/uapi/hashkey", json=order, headers={"appkey": kis.app_key, "appsecret": kis.app_secret}
    )
    assert response.json()["BODY"] == order
    assert len(response.json()["HASH"]) == 64
    refused = await kis.http.post("/uapi/hashkey", json=order, headers={"appkey": "x"})
    assert refused.status_code == 403


# ------------------------------------------------------------------ wire format


async def _raw_exchange(port: int, request: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]
    length = int(dict(headers)["Content-Length"])
    body = await reader.readexactly(length)
    writer.close()
    return lines[0], headers, body  # type: ignore[return-value]


async def test_response_header_names_are_spelled_as_kis_spells_them(kis: KisClient) -> None:
    body = json.dumps(kis.order_body()).encode()
    head = "".join(
        f"{name}: {value}\r\n"
        for name, value in kis.headers(kis.tr("TTTC0012U")).items()
        if name != "content-type"
    )
    request = (
        f"POST {TRADING}/order-cash HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"charset: UTF-8\r\nAccept: text/plain\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, headers, answer = await _raw_exchange(kis.venue.http.port, request)
    names = [name for name, _ in headers]
    assert status == "HTTP/1.1 200 OK"
    assert {"Content-Type", "Content-Length", "Date", "tr_id", "tr_cont", "gt_uid"} <= set(names)
    assert dict(headers)["Content-Type"] == "application/json; charset=UTF-8"
    # KIS's sample turns every all-lowercase header name into a Python identifier.
    assert all(name.isidentifier() for name in names if name == name.lower())
    assert json.loads(answer)["rt_cd"] == "0"


async def test_every_inquiry_answer_carries_tr_cont(kis: KisClient) -> None:
    kis.token = "bad"
    refused = await kis.inquiry()
    assert "tr_cont" in refused.headers
    assert refused.json()["msg_cd"] == "EGW00121"
    top = set(refused.json())
    assert {"rt_cd", "msg_cd", "msg1"} <= top


async def test_chunked_request_body_and_bad_request(kis: KisClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield json.dumps(kis.order_body()).encode()

    response = await kis.http.post(
        f"{TRADING}/order-cash", content=chunks(), headers=kis.headers(kis.tr("TTTC0012U"))
    )
    assert response.json()["rt_cd"] == "0"
    status, _, _ = await _raw_exchange(kis.venue.http.port, b"NONSENSE\r\n\r\n")
    assert status.startswith("HTTP/1.1 400")


# ------------------------------------------------------------------ placing orders


async def test_paper_orders_answer_paper_codes(kis: KisClient) -> None:
    buy = (await kis.place("buy", quantity=2)).json()
    assert (buy["rt_cd"], buy["msg_cd"]) == ("0", "40600000")
    assert set(buy["output"]) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    assert buy["output"]["KRX_FWDG_ORD_ORGNO"] == "00950"
    assert len(buy["output"]["ODNO"]) == 10
    assert buy["output"]["ORD_TMD"] == kis.venue.clock.now().astimezone(KST).strftime("%H%M%S")
    sell = (await kis.place("sell", quantity=2)).json()
    assert (sell["rt_cd"], sell["msg_cd"]) == ("0", "40590000")


async def test_live_order_answers_apbk0013(kis_live: KisClient) -> None:
    body = (await kis_live.place()).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "APBK0013")
    assert body["msg1"] == "주문 전송 완료 되었습니다."
    assert body["output"]["KRX_FWDG_ORD_ORGNO"] == "06010"


@pytest.mark.parametrize(("buy", "sell"), [("VTTC0802U", "VTTC0801U"), ("VTTC0012U", "VTTC0011U")])
async def test_older_and_newer_tr_ids_without_exchange_code(
    kis: KisClient, buy: str, sell: str
) -> None:
    body = kis.order_body(quantity=3)
    del body["EXCG_ID_DVSN_CD"]
    body |= {"SLL_TYPE": "", "CNDT_PRIC": ""}
    placed = await kis.http.post(f"{TRADING}/order-cash", json=body, headers=kis.headers(buy))
    assert placed.json()["rt_cd"] == "0"
    sold = await kis.http.post(f"{TRADING}/order-cash", json=body, headers=kis.headers(sell))
    assert sold.json()["rt_cd"] == "0"
    assert [o["exchange"] for o in kis.venue.orders()] == ["KRX", "KRX"]


async def test_lowercase_keys_and_capitalised_authorization(kis: KisClient) -> None:
    body = {key.lower(): value for key, value in kis.order_body().items()}
    headers = kis.headers(kis.tr("TTTC0012U"))
    headers["Authorization"] = headers.pop("authorization")
    response = await kis.http.post(f"{TRADING}/order-cash", json=body, headers=headers)
    assert response.json()["rt_cd"] == "0"


async def test_host_and_key_mix_ups(kis: KisClient, live: FakeKisVenue) -> None:
    live_tr = await kis.http.post(
        f"{TRADING}/order-cash", json=kis.order_body(), headers=kis.headers("TTTC0012U")
    )
    assert (live_tr.status_code, live_tr.json()["msg_cd"]) == (500, "EGW02006")
    cancellable = await kis.http.get(
        f"{TRADING}/inquire-psbl-rvsecncl", headers=kis.headers("TTTC0084R")
    )
    assert cancellable.json()["msg_cd"] == "EGW02006"
    paper_key = live.add_app("50000002-01", "paperuser", mode="paper")
    async with httpx.AsyncClient(base_url=live.rest_url) as http:
        answer = await http.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": paper_key["app_key"],
                "appsecret": paper_key["app_secret"],
            },
        )
    assert answer.json()["error_code"] == "EGW02004"
    unknown = await kis.http.post(
        f"{TRADING}/order-cash", json=kis.order_body(), headers=kis.headers("XXXX0000U")
    )
    assert unknown.json()["msg_cd"] == "OPSQ0002"


async def test_live_exchanges_and_paper_krx_only(kis: KisClient, kis_live: KisClient) -> None:
    body = kis.order_body() | {"EXCG_ID_DVSN_CD": "NXT"}
    paper = await kis.http.post(
        f"{TRADING}/order-cash", json=body, headers=kis.headers("VTTC0012U")
    )
    assert paper.json()["rt_cd"] != "0"
    body = kis_live.order_body() | {"EXCG_ID_DVSN_CD": "SOR"}
    live = await kis_live.http.post(
        f"{TRADING}/order-cash", json=body, headers=kis_live.headers("TTTC0012U")
    )
    assert live.json()["rt_cd"] == "0"


@pytest.mark.parametrize(
    ("field", "value"),
    [("ORD_QTY", "0"), ("ORD_QTY", "1.5"), ("ORD_UNPR", "72000.5"), ("ORD_DVSN", "99")],
)
async def test_malformed_fields_are_refused(kis: KisClient, field: str, value: str) -> None:
    body = kis.order_body(price=72000) | {field: value}
    answer = await kis.http.post(
        f"{TRADING}/order-cash", json=body, headers=kis.headers("VTTC0012U")
    )
    assert answer.json()["rt_cd"] != "0"
    assert field in answer.json()["msg1"]
    assert kis.venue.orders() == []


async def test_rejections_as_kis_gives_them(kis: KisClient, kis_live: KisClient) -> None:
    assert (await kis.place(symbol="999999")).json()["msg_cd"] == "MCA05918"
    assert (await kis_live.place(symbol="999999")).json()["msg_cd"] == "APBK0656"
    off_tick = (await kis.place(price=72_050)).json()
    assert off_tick["rt_cd"] != "0"
    kis.venue.set_cash(100_000)
    assert (await kis.place(quantity=2)).json()["msg_cd"] == "40250000"
    kis_live.venue.set_cash(100_000)
    poor = (await kis_live.place(quantity=2)).json()
    assert (poor["rt_cd"], poor["msg_cd"]) == ("7", "APBK0952")
    assert (await kis.place("sell", quantity=1)).json()["msg_cd"] == "40240000"
    bad_account = kis.order_body() | {"CANO": "99999999"}
    answer = await kis.http.post(
        f"{TRADING}/order-cash", json=bad_account, headers=kis.headers("VTTC0012U")
    )
    assert answer.json()["msg_cd"] == "APAC0081"


@pytest.mark.parametrize(
    ("kst_time", "paper_code"),
    [
        ("2026-01-05T08:59:59+09:00", "40570000"),
        ("2026-01-05T15:30:00+09:00", "40580000"),
        ("2026-01-04T10:00:00+09:00", "40100000"),  # a Sunday
    ],
)
async def test_market_hours_when_switched_on(
    kis: KisClient, kis_live: KisClient, kst_time: str, paper_code: str
) -> None:
    for venue in (kis.venue, kis_live.venue):
        venue.set_market_hours(True)
        venue.set_time(kst_time)
    kis.pace = kis_live.pace = False
    assert (await kis.place()).json()["msg_cd"] == paper_code
    assert (await kis_live.place()).json()["msg_cd"] == "APBK0919"
    for venue in (kis.venue, kis_live.venue):
        venue.set_time("2026-01-05T10:00:00+09:00", 100.0)
    assert (await kis.place()).json()["rt_cd"] == "0"
    kis.venue.set_market_hours(True, holidays=["2026-01-05"])
    kis.venue.advance_time(1.0)
    assert (await kis.place()).json()["msg_cd"] == "40100000"


# ------------------------------------------------------------------ matching and accounts


async def test_market_order_fills_at_the_quote_and_moves_cash(kis: KisClient) -> None:
    kis.venue.set_quote("005930", 71_000)
    await kis.place(quantity=10)
    account = kis.venue.account()
    assert account["cash"] == 100_000_000 - 710_000
    assert account["holdings"] == {"005930": {"quantity": 10, "cost": 710_000}}
    await kis.place("sell", quantity=4)
    assert kis.venue.account()["holdings"]["005930"]["quantity"] == 6


async def test_limit_order_rests_until_the_quote_crosses(kis: KisClient) -> None:
    odno = (await kis.place(quantity=5, price=71_000)).json()["output"]["ODNO"]
    [order] = kis.venue.orders()
    assert (order["filled"], order["remaining"]) == (0, 5)
    assert kis.venue.account()["available_cash"] == 100_000_000 - 355_000
    kis.venue.set_quote("005930", 70_900)
    [order] = kis.venue.orders()
    assert order["odno"] == odno
    assert order["filled"] == 5
    assert order["amount"] == 355_000


async def test_scripted_behaviour_of_the_next_orders(kis: KisClient) -> None:
    kis.venue.partial_fill_next(3, price=71_900)
    kis.venue.hold_next()
    kis.venue.fill_next(price=72_100)
    kis.venue.reject_next(msg_cd="APBK9999", msg1="거부")
    kis.venue.reject_next("insufficient_cash")
    first = (await kis.place(quantity=10)).json()["output"]["ODNO"]
    await kis.place(quantity=2)
    await kis.place(quantity=1)
    assert (await kis.place()).json()["msg_cd"] == "APBK9999"
    assert (await kis.place()).json()["msg_cd"] == "40250000"
    partial, held, filled = kis.venue.orders()
    assert (partial["filled"], partial["remaining"], partial["amount"]) == (3, 7, 3 * 71_900)
    assert (held["filled"], filled["amount"]) == (0, 72_100)
    kis.venue.set_quote("005930", 60_000)  # scripted orders ignore quotes
    kis.venue.fill(first, 2)
    kis.venue.fill(held["odno"], price=71_000)
    partial, held, _ = kis.venue.orders()
    assert (partial["filled"], held["filled"], held["amount"]) == (5, 2, 142_000)


async def test_cancel_gets_its_own_order_number_and_row(kis: KisClient) -> None:
    kis.venue.hold_next()
    odno = (await kis.place(quantity=4, price=70_000)).json()["output"]["ODNO"]
    partial = (await kis.cancel(odno, 1)).json()
    assert (partial["rt_cd"], partial["msg_cd"]) == ("0", "40640000")
    cancel_odno = partial["output"]["ODNO"]
    assert cancel_odno != odno
    rest = (await kis.cancel(odno)).json()
    assert rest["rt_cd"] == "0"
    nothing = await kis.cancel(odno)
    assert (nothing.status_code, nothing.json()["rt_cd"], nothing.json()["msg_cd"]) == (
        200,
        "1",
        "40330000",
    )
    rows, _ = await kis.all_rows()
    by_number = {row["odno"]: row for row in rows}
    assert by_number[odno]["cnc_cfrm_qty"] == "4"
    assert by_number[odno]["rmn_qty"] == "0"
    assert by_number[cancel_odno]["orgn_odno"] == odno
    assert by_number[cancel_odno]["cncl_yn"] == "Y"


async def test_modify_moves_the_rest_to_a_new_price(kis_live: KisClient) -> None:
    odno = (await kis_live.place(quantity=4, price=70_000)).json()["output"]["ODNO"]
    body = {
        "CANO": kis_live.cano,
        "ACNT_PRDT_CD": kis_live.product,
        "KRX_FWDG_ORD_ORGNO": "06010",
        "ORGN_ODNO": odno,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "0",
        "ORD_UNPR": "72000",
        "QTY_ALL_ORD_YN": "Y",
    }
    answer = await kis_live.http.post(
        f"{TRADING}/order-rvsecncl", json=body, headers=kis_live.headers("TTTC0803U")
    )
    assert answer.json()["msg_cd"] == "APBK0013"
    original, modified = kis_live.venue.orders()
    assert original["remaining"] == 0
    assert (modified["original"], modified["price"], modified["filled"]) == (odno, 72_000, 4)


async def test_cancel_of_an_unknown_order(kis: KisClient) -> None:
    answer = (await kis.cancel("12345")).json()
    assert answer["rt_cd"] != "0"


async def test_venue_actions_on_open_orders(kis: KisClient) -> None:
    kis.venue.hold_next()
    kis.venue.hold_next()
    first = (await kis.place(quantity=2)).json()["output"]["ODNO"]
    second = (await kis.place(quantity=2)).json()["output"]["ODNO"]
    kis.venue.cancel_by_venue(first)
    kis.venue.reject_open(second)
    a, b = kis.venue.orders()
    assert (a["cancelled"], b["rejected"]) == (2, 2)
    with pytest.raises(ValueError, match="nothing open"):
        kis.venue.cancel_by_venue(first)
    kis.venue.forget_order(first)
    assert [o["odno"] for o in kis.venue.orders()] == [second]
    with pytest.raises(ValueError, match="no order"):
        kis.venue.fill(first)


async def test_balance_lists_holdings_and_one_summary(kis: KisClient) -> None:
    kis.venue.set_holding("000660", 3, price=170_000)
    await kis.place(quantity=2)
    response = await kis.http.get(
        f"{TRADING}/inquire-balance",
        params={
            "CANO": kis.cano,
            "ACNT_PRDT_CD": kis.product,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        },
        headers=kis.headers("VTTC8434R"),
    )
    body = response.json()
    assert response.headers["tr_cont"] == "D"
    assert body["rt_cd"] == "0"
    assert [row["pdno"] for row in body["output1"]] == ["000660", "005930"]
    assert body["output1"][0]["hldg_qty"] == "3"
    assert body["output1"][0]["prpr"] == "180000"
    assert isinstance(body["output2"], list)
    assert len(body["output2"]) == 1
    assert body["output2"][0]["dnca_tot_amt"] == str(100_000_000 - 144_000)


async def test_modify_to_a_market_order_executes_at_the_quote(kis: KisClient) -> None:
    odno = (await kis.place(quantity=3, price=70_000)).json()["output"]["ODNO"]
    body = {
        "CANO": kis.cano,
        "ACNT_PRDT_CD": kis.product,
        "KRX_FWDG_ORD_ORGNO": "00950",
        "ORGN_ODNO": odno,
        "ORD_DVSN": "01",
        "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "2",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "N",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    answer = await kis.http.post(
        f"{TRADING}/order-rvsecncl", json=body, headers=kis.headers("VTTC0013U")
    )
    assert answer.json()["msg_cd"] == "40630000"
    original, modified = kis.venue.orders()
    assert (original["remaining"], modified["ord_dvsn"], modified["amount"]) == (1, "01", 144_000)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ORGN_ODNO", "abc"),
        ("RVSE_CNCL_DVSN_CD", "03"),
        ("EXCG_ID_DVSN_CD", "NYSE"),
        ("ORD_QTY", "x"),
        ("ORD_DVSN", "99"),
        ("ORD_UNPR", "0"),
        ("CANO", None),
    ],
)
async def test_malformed_modify_requests_are_refused(
    kis: KisClient, field: str, value: str | None
) -> None:
    kis.venue.hold_next()
    odno = (await kis.place(quantity=3, price=70_000)).json()["output"]["ODNO"]
    body = {
        "CANO": kis.cano,
        "ACNT_PRDT_CD": kis.product,
        "KRX_FWDG_ORD_ORGNO": "00950",
        "ORGN_ODNO": odno,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "1",
        "ORD_UNPR": "71000",
        "QTY_ALL_ORD_YN": "N",
    }
    if value is None:
        del body[field]
    else:
        body[field] = value
    answer = await kis.http.post(
        f"{TRADING}/order-rvsecncl", json=body, headers=kis.headers("VTTC0013U")
    )
    assert answer.json()["rt_cd"] != "0"
    assert field in answer.json()["msg1"]
    assert len(kis.venue.orders()) == 1
