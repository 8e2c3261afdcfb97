"""Control methods a conformance harness needs: order divisions, late and stale reports, the
clock of a scenario, arrivals per window; and the serve command in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import httpx
import pytest
from typer.testing import CliRunner

from kis.kis_raw_client import TRADING, KisClient
from orderlane import FakeClock
from orderlane_kis.fake import FakeKisVenue, RemoteVenue
from orderlane_kis.fake.cli import _serve, app


async def place(kis: KisClient, ord_dvsn: str, quantity: int = 5, price: int = 0) -> str:
    body = kis.order_body(quantity=quantity, price=price) | {"ORD_DVSN": ord_dvsn}
    answer = await kis.http.post(
        f"{TRADING}/order-cash", json=body, headers=kis.headers(kis.tr("TTTC0012U"))
    )
    assert answer.json()["rt_cd"] == "0", answer.json()
    odno: str = answer.json()["output"]["ODNO"]
    return odno


@pytest.mark.parametrize(
    ("ord_dvsn", "price", "filled", "cancelled"),
    [
        ("11", 71_000, 0, 5),  # IOC limit below the quote: nothing executes, all cancelled
        ("11", 72_000, 5, 0),  # IOC limit at the quote: executes at once
        ("13", 0, 5, 0),  # IOC market
        ("12", 71_000, 0, 5),  # FOK limit that cannot execute
        ("03", 0, 5, 0),  # best limit: executes at the quote
        ("02", 71_000, 0, 0),  # conditional limit rests like a limit order
    ],
)
async def test_order_divisions(
    kis: KisClient, ord_dvsn: str, price: int, filled: int, cancelled: int
) -> None:
    await place(kis, ord_dvsn, price=price)
    [order] = kis.venue.orders()
    assert (order["filled"], order["cancelled"], order["ord_dvsn"]) == (filled, cancelled, ord_dvsn)


async def test_partial_fill_script_on_ioc_and_fok(kis: KisClient) -> None:
    kis.venue.partial_fill_next(2)
    kis.venue.partial_fill_next(2)
    await place(kis, "13")
    await place(kis, "14")
    ioc, fok = kis.venue.orders()
    assert (ioc["filled"], ioc["cancelled"]) == (2, 3)
    assert (fok["filled"], fok["cancelled"]) == (0, 5)  # fill or kill: all or nothing
    rows = {row["odno"]: row for row in (await kis.inquiry()).json()["output1"]}
    assert rows[fok["odno"]]["ord_dvsn_name"] == "FOK시장가"


async def test_after_hours_divisions_are_refused(kis: KisClient) -> None:
    body = kis.order_body() | {"ORD_DVSN": "05"}
    answer = await kis.http.post(
        f"{TRADING}/order-cash", json=body, headers=kis.headers("VTTC0012U")
    )
    assert answer.json()["rt_cd"] != "0"


async def test_late_fill_after_a_confirmed_cancel(kis: KisClient) -> None:
    kis.venue.hold_next()
    odno = await place(kis, "00", quantity=5, price=70_000)
    cancel = (await kis.cancel(odno)).json()["output"]["ODNO"]
    kis.venue.report_late_fill(odno, 2)
    [order, cancel_row] = kis.venue.orders()
    assert (order["filled"], order["cancelled"], order["remaining"]) == (2, 3, 0)
    assert order["executions"][0][:2] == [2, 72_000]
    rows = {row["odno"]: row for row in (await kis.inquiry()).json()["output1"]}
    assert (rows[odno]["tot_ccld_qty"], rows[odno]["cnc_cfrm_qty"]) == ("2", "3")
    assert rows[cancel]["cnc_cfrm_qty"] == "3"
    assert cancel_row["odno"] == cancel
    assert kis.venue.account()["holdings"]["005930"]["quantity"] == 2
    with pytest.raises(ValueError, match="cancelled to execute late"):
        kis.venue.report_late_fill(odno, 4)


async def test_stale_next_status_shows_an_older_state_once(kis: KisClient) -> None:
    kis.venue.hold_next()
    odno = await place(kis, "00", quantity=6, price=70_000)
    kis.venue.fill(odno, 2)
    kis.venue.fill(odno, 3)
    kis.venue.stale_next_status(odno, 1)
    [stale] = (await kis.inquiry()).json()["output1"]
    [fresh] = (await kis.inquiry()).json()["output1"]
    assert (stale["tot_ccld_qty"], stale["rmn_qty"]) == ("2", "4")
    assert (fresh["tot_ccld_qty"], fresh["rmn_qty"]) == ("5", "1")


async def test_orderable_amount(kis: KisClient) -> None:
    kis.venue.set_cash(1_000_000)
    params = {
        "CANO": kis.cano,
        "ACNT_PRDT_CD": kis.product,
        "PDNO": "005930",
        "ORD_UNPR": "0",
        "ORD_DVSN": "01",
        "CMA_EVLU_AMT_ICLD_YN": "N",
        "OVRS_ICLD_YN": "N",
    }
    answer = await kis.http.get(
        f"{TRADING}/inquire-psbl-order", params=params, headers=kis.headers("VTTC8908R")
    )
    output = answer.json()["output"]
    assert (output["ord_psbl_cash"], output["max_buy_qty"]) == ("1000000", "13")
    assert answer.headers["tr_cont"] == "D"


async def test_live_lists_cancellable_orders(kis_live: KisClient) -> None:
    kis_live.venue.hold_next()
    odno = await place(kis_live, "00", quantity=3, price=70_000)
    await place(kis_live, "01")
    params = {"CANO": kis_live.cano, "ACNT_PRDT_CD": kis_live.product, "INQR_DVSN_1": "0"}
    answer = await kis_live.http.get(
        f"{TRADING}/inquire-psbl-rvsecncl", params=params, headers=kis_live.headers("TTTC0084R")
    )
    assert [row["odno"] for row in answer.json()["output"]] == [odno]


async def test_a_scenario_clock_and_arrivals_per_window(clock: FakeClock) -> None:
    other = FakeClock()
    async with FakeKisVenue("live", ping_interval=None) as venue:
        venue.use_clock(clock, monotonic=other.monotonic)
        assert venue.time()["now"] == clock.now().isoformat()
        venue.set_rate_limit(2, 1.0)
        async with httpx.AsyncClient(base_url=venue.rest_url) as http:
            kis = KisClient(venue, http, other)
            kis.pace = False
            await kis.issue_token()
            codes = []
            for step in (0.0, 0.5, 0.4, 0.2):
                other.advance(step)
                codes.append((await kis.inquiry()).json()["msg_cd"])
        assert codes.count("EGW00201") == 1
        assert codes[2] == "EGW00201"
        assert venue.max_arrivals_in_window() == 3
        assert venue.max_arrivals_in_window(0.1) == 1
        venue.use_clock()
        assert venue.clock.monotonic() == clock.monotonic()


async def test_serve_in_process_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    stop = asyncio.Event()
    task = asyncio.ensure_future(_serve("paper", 0, 0, 0, True, stop))
    out = ""
    for _ in range(500):
        await asyncio.sleep(0.01)
        out += capsys.readouterr().out
        if out:
            break
    stop.set()
    await task
    described = json.loads(out.splitlines()[0])
    assert described["mode"] == "paper"
    assert described["page_size"] == 15


def test_serve_says_when_it_cannot_listen() -> None:
    with contextlib.closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert "cannot listen" in result.output


async def test_control_over_http_stays_up_while_rest_refuses(kis: KisClient) -> None:
    remote = RemoteVenue(kis.venue.control_url)
    assert (await remote.acall("describe"))["control_url"] == kis.venue.control_url
    await remote.acall("refuse_connections")
    assert not kis.venue.http.listening
    await remote.acall("accept_connections")
    await remote.acall("set_quote", symbol="005930", price=70_000)
    await kis.place()
    [order] = await remote.acall("orders")
    assert order["amount"] == 70_000
    with pytest.raises(ValueError, match="no order"):
        await remote.acall("fill", odno="42")
    with pytest.raises(ValueError, match="no control method"):
        await remote.acall("_serve_control")
    async with httpx.AsyncClient(base_url=kis.venue.control_url) as http:
        assert (await http.get("/_fake/describe")).status_code == 404
        assert (await http.post("/_fake/describe", content=b"[]")).status_code == 400
        missing = await http.post("/_fake/set_quote", json={"symbol": "005930"})
        assert missing.status_code == 400
        assert "price" in missing.json()["error"]


async def test_oauth_refusals(kis: KisClient) -> None:
    wrong_grant = await kis.http.post(
        "/oauth2/tokenP",
        json={"grant_type": "password", "appkey": kis.app_key, "appsecret": kis.app_secret},
    )
    assert wrong_grant.status_code == 403
    approval = await kis.http.post(
        "/oauth2/Approval",
        json={"grant_type": "client_credentials", "appkey": kis.app_key, "secretkey": "x"},
    )
    assert approval.status_code == 403
    assert approval.json()["error_code"] == "EGW00105"
    revoke = await kis.http.post(
        "/oauth2/revokeP", json={"appkey": "nobody", "appsecret": "x", "token": kis.token}
    )
    assert revoke.status_code == 403
    headers = kis.headers("VTTC0012U") | {"appsecret": "wrong"}
    wrong_secret = await kis.http.post(
        f"{TRADING}/order-cash", json=kis.order_body(), headers=headers
    )
    assert wrong_secret.json()["msg_cd"] == "EGW00105"
    headers = kis.headers("VTTC0012U") | {"appkey": "someone-else"}
    wrong_key = await kis.http.post(f"{TRADING}/order-cash", json=kis.order_body(), headers=headers)
    assert wrong_key.json()["msg_cd"] == "EGW00103"


async def test_scripting_arguments_are_checked(kis: KisClient) -> None:
    with pytest.raises(ValueError, match="a kind or a msg_cd"):
        kis.venue.reject_next()
    with pytest.raises(ValueError, match="no account"):
        kis.venue.set_cash(1, account="1-1")
    kis.venue.reject_next("bad_symbol", msg1="없는 종목")
    answer = (await kis.place()).json()
    assert (answer["msg_cd"], answer["msg1"]) == ("MCA05918", "없는 종목")
    kis.venue.set_holding("005930", 5)
    kis.venue.set_holding("005930", 0)
    assert kis.venue.account()["holdings"] == {}
    kis.venue.add_instrument("900110", "이스트아시아홀딩스", 150)
    kis.venue.set_page_size(2)
    assert kis.venue.describe()["page_size"] == 2
    kis.venue.set_notice_layout(["ODER_NO", "CNTG_YN"])
    assert kis.venue.notices.columns == ("ODER_NO", "CNTG_YN")
    kis.venue.reset_record()
    assert kis.venue.request_count() == 0
