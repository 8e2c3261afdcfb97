"""Faults the fake KIS venue injects on request, seen by a bare httpx client."""

from __future__ import annotations

import json

import httpx
import pytest

from kis.kis_raw_client import KisClient
from orderlane_kis.fake import Fault


async def test_drop_after_accept_keeps_the_order(kis: KisClient) -> None:
    kis.venue.add_fault("drop_after", operation="place")
    with pytest.raises(httpx.RemoteProtocolError):
        await kis.place()
    assert len(kis.venue.orders()) == 1
    [record] = kis.venue.recorded_requests("place")
    assert record["status"] is None
    assert (await kis.place()).json()["rt_cd"] == "0"  # one request only


async def test_drop_before_takes_nothing(kis: KisClient) -> None:
    kis.venue.add_fault("drop_before", operation="place", times=2)
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            await kis.place()
    assert kis.venue.orders() == []
    assert kis.venue.request_count("place") == 2


@pytest.mark.parametrize(("action", "orders"), [("stall_before", 0), ("stall_after", 1)])
async def test_stalls_time_out(kis: KisClient, action: str, orders: int) -> None:
    kis.venue.add_fault(action, operation="place")
    with pytest.raises(httpx.ReadTimeout):
        await kis.http.post(
            "/uapi/domestic-stock/v1/trading/order-cash",
            json=kis.order_body(),
            headers=kis.headers("VTTC0012U"),
            timeout=0.5,
        )
    assert len(kis.venue.orders()) == orders


@pytest.mark.parametrize("code", ["EGW00301", "EGW00302"])
async def test_gateway_timeout_after_processing(kis: KisClient, code: str) -> None:
    kis.venue.add_fault("gateway_timeout", operation="place", msg_cd=code)
    answer = await kis.place()
    assert (answer.status_code, answer.json()["msg_cd"], answer.json()["rt_cd"]) == (500, code, "1")
    assert "tr_cont" in answer.headers
    assert len(kis.venue.orders()) == 1


async def test_gateway_timeout_and_500_before_processing(kis: KisClient) -> None:
    kis.venue.add_fault("gateway_timeout", operation="place", processed=False)
    kis.venue.add_fault("http_error", operation="place", status=502)
    assert (await kis.place()).json()["msg_cd"] == "EGW00301"
    bad_gateway = await kis.place()
    assert bad_gateway.status_code == 502
    assert "html" in bad_gateway.headers["Content-Type"]
    assert kis.venue.orders() == []
    kis.venue.add_fault("http_error", operation="place", processed=True)
    assert (await kis.place()).status_code == 500
    assert len(kis.venue.orders()) == 1


async def test_garbled_answer_after_processing(kis: KisClient) -> None:
    kis.venue.add_fault("garbled", operation="place")
    answer = await kis.place()
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert len(kis.venue.orders()) == 1


async def test_scripted_rate_limit_and_token_expiry_answers(kis: KisClient) -> None:
    kis.venue.add_fault("rate_limit", operation="inquiry", status=200)
    kis.venue.add_fault("token_expired")
    limited = await kis.inquiry()
    assert (limited.status_code, limited.json()["msg_cd"]) == (200, "EGW00201")
    expired = await kis.place()
    assert (expired.status_code, expired.json()["msg_cd"]) == (500, "EGW00123")
    assert kis.venue.orders() == []
    assert kis.venue.counters()["rate_limit_answers"] == 0
    assert (await kis.place()).json()["rt_cd"] == "0"  # the token itself still works


async def test_delay_then_answer(kis: KisClient) -> None:
    kis.venue.add_fault("delay", operation="place", seconds=0.05)
    assert (await kis.place()).json()["rt_cd"] == "0"


async def test_faults_apply_in_order_and_clear(kis: KisClient) -> None:
    kis.venue.add_fault("rate_limit", operation="place")
    kis.venue.add_fault("gateway_timeout", operation="place")
    assert (await kis.place()).json()["msg_cd"] == "EGW00201"
    kis.venue.clear_faults()
    assert (await kis.place()).json()["rt_cd"] == "0"


async def test_refused_connections(kis: KisClient) -> None:
    await kis.venue.refuse_connections()
    with pytest.raises(httpx.TransportError):  # the open keep-alive connection was dropped
        await kis.place()
    with pytest.raises(httpx.ConnectError):
        await kis.place()
    await kis.venue.accept_connections()
    assert (await kis.place()).json()["rt_cd"] == "0"
    assert kis.venue.request_count("place") == 1


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault action"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EGW00301 or EGW00302"):
        Fault("gateway_timeout", msg_cd="EGW00201")
    with pytest.raises(ValueError, match="never processes"):
        Fault("rate_limit", processed=True)
    with pytest.raises(ValueError, match="at least one"):
        Fault("delay", times=0)


async def test_unknown_path_and_bad_json(kis: KisClient) -> None:
    missing = await kis.http.get("/uapi/domestic-stock/v1/quotations/nothing")
    assert missing.status_code == 404
    bad = await kis.http.post(
        "/uapi/domestic-stock/v1/trading/order-cash",
        content=b"not json",
        headers=kis.headers("VTTC0012U"),
    )
    assert bad.json()["rt_cd"] != "0"
