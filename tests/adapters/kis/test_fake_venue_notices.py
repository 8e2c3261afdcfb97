"""The fake KIS venue's order-notice WebSocket, through a bare websockets client."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Any

import pytest
import websockets
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.client import ClientConnection

from kis.kis_raw_client import KisClient
from orderlane import FakeClock
from orderlane_kis.fake import DRIFTED_COLUMNS, NOTICE_COLUMNS, RemoteVenue, decrypt, encrypt
from orderlane_kis.krx import kst

FIELDS = NOTICE_COLUMNS


def aes_decrypt(text: str, key: str, iv: str) -> str:
    """Written from the document, independent of the venue's own helpers."""
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(text)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


async def approval_key(kis: KisClient) -> str:
    body = {"grant_type": "client_credentials", "appkey": kis.app_key, "secretkey": kis.app_secret}
    response = await kis.http.post("/oauth2/Approval", json=body)
    key: str = response.json()["approval_key"]
    return key


def subscribe(key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


async def receive(ws: ClientConnection) -> Any:
    message = await asyncio.wait_for(ws.recv(), 5)
    return json.loads(message) if message.startswith("{") else message


async def subscribed(kis: KisClient, ws: ClientConnection) -> dict[str, Any]:
    tr_id = "H0STCNI9" if kis.paper else "H0STCNI0"
    await ws.send(subscribe(await approval_key(kis), tr_id, kis.venue.credentials.hts_id))
    ack: dict[str, Any] = await receive(ws)
    return ack


async def test_subscribe_ack_and_encrypted_notices(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        ack = await subscribed(kis, ws)
        assert ack["header"] == {"tr_id": "H0STCNI9", "tr_key": "orderlane", "encrypt": "Y"}
        body = ack["body"]
        assert (body["rt_cd"], body["msg_cd"]) == ("0", "OPSP0000")
        assert body["msg1"]
        key, iv = body["output"]["key"], body["output"]["iv"]
        assert (len(key), len(iv)) == (32, 16)
        kis.venue.partial_fill_next(4, price=71_900)
        odno = (await kis.place(quantity=10)).json()["output"]["ODNO"]
        frames = [await receive(ws) for _ in range(2)]
    values = []
    for frame in frames:
        encrypted, tr_id, count, data = frame.split("|")
        assert (encrypted, tr_id, count) == ("1", "H0STCNI9", "001")
        values.append(dict(zip(FIELDS, aes_decrypt(data, key, iv).split("^"), strict=True)))
    accept, fill = values
    assert (accept["CNTG_YN"], accept["ACPT_YN"], accept["CNTG_QTY"]) == ("1", "1", "10")
    assert (fill["CNTG_YN"], fill["CNTG_QTY"], fill["CNTG_UNPR"]) == ("2", "4", "71900")
    assert fill["ODER_NO"] == accept["ODER_NO"] == odno
    assert (fill["STCK_SHRN_ISCD"], fill["SELN_BYOV_CLS"], fill["RFUS_YN"]) == ("005930", "02", "0")
    assert fill["ACNT_NO"] == kis.venue.credentials.account.replace("-", "")
    assert (fill["ODER_QTY"], fill["ORD_EXG_GB"], fill["CNTG_ISNM40"]) == ("10", "1", "삼성전자")


async def test_cancel_and_refusal_notices_are_not_fills(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout/H0STCNI9") as ws:
        output = (await subscribed(kis, ws))["body"]["output"]
        kis.venue.hold_next()
        kis.venue.hold_next()
        first = (await kis.place(quantity=3, price=70_000)).json()["output"]["ODNO"]
        second = (await kis.place(quantity=2, price=70_000)).json()["output"]["ODNO"]
        cancel = (await kis.cancel(first)).json()["output"]["ODNO"]
        kis.venue.reject_open(second)
        frames = [await receive(ws) for _ in range(4)]
    notices = [
        dict(
            zip(
                FIELDS,
                decrypt(f.split("|")[3], output["key"], output["iv"]).split("^"),
                strict=True,
            )
        )
        for f in frames
    ]
    cancelled, refused = notices[2], notices[3]
    assert all(n["CNTG_YN"] == "1" for n in notices)
    assert (cancelled["ODER_NO"], cancelled["OODER_NO"], cancelled["RCTF_CLS"]) == (
        cancel,
        first,
        "2",
    )
    assert (cancelled["ACPT_YN"], cancelled["CNTG_QTY"]) == ("2", "3")
    assert (refused["ODER_NO"], refused["RFUS_YN"]) == (second, "1")


async def test_one_session_per_app_key(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as first:
        assert (await subscribed(kis, first))["body"]["msg_cd"] == "OPSP0000"
        async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as second:
            refused = await subscribed(kis, second)
            assert (refused["body"]["rt_cd"], refused["body"]["msg_cd"]) == ("1", "OPSP8996")
            assert "output" not in refused["body"]
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as later:
        assert (await subscribed(kis, later))["body"]["msg_cd"] == "OPSP0000"


async def test_subscription_errors(kis: KisClient) -> None:
    key = await approval_key(kis)
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        await ws.send(subscribe("unknown", "H0STCNI9", "orderlane"))
        assert (await receive(ws))["body"]["msg_cd"] == "OPSP0011"
        await ws.send(subscribe(key, "H0STCNI0", "orderlane"))  # the live id on paper
        assert (await receive(ws))["body"]["rt_cd"] == "1"
        await ws.send(subscribe(key, "H0STCNI9", "orderlane", tr_type="2"))
        assert (await receive(ws))["body"]["msg_cd"] == "OPSP0003"
        await ws.send(subscribe(key, "H0STCNI9", "orderlane"))
        assert (await receive(ws))["body"]["msg_cd"] == "OPSP0000"
        await ws.send(subscribe(key, "H0STCNI9", "orderlane"))
        assert (await receive(ws))["body"]["msg_cd"] == "OPSP0002"
        await ws.send(subscribe(key, "H0STCNI9", "orderlane", tr_type="2"))
        assert (await receive(ws))["body"]["msg_cd"] == "OPSP0001"
        await ws.send("not json")
        assert (await receive(ws))["body"]["rt_cd"] == "1"
        await ws.send(json.dumps({"header": {"tr_id": "x"}}))
        assert (await receive(ws))["body"]["rt_cd"] == "1"


async def test_pingpong_accepts_pong_frames_and_text_echoes(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        await subscribed(kis, ws)
        kis.venue.send_pingpong()
        ping = await asyncio.wait_for(ws.recv(), 5)
        assert json.loads(ping)["header"]["tr_id"] == "PINGPONG"
        await ws.send(ping)  # a text echo
        await ws.pong(ping.encode())  # a pong frame, as KIS's own client answers
        kis.venue.send_pingpong()
        await asyncio.wait_for(ws.recv(), 5)  # no answer at all is fine too
        await kis.place()
        assert (await receive(ws)).startswith("1|H0STCNI9|")
    assert kis.venue.counters()["pongs"] == 1


async def test_periodic_pingpong(kis: KisClient) -> None:
    kis.venue.notices.ping_interval = 0.05
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["header"]["tr_id"] == "PINGPONG"


async def test_lost_notices_and_drifted_layout(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        output = (await subscribed(kis, ws))["body"]["output"]
        kis.venue.drop_notices(2)
        await kis.place(quantity=7)  # accept + fill notices lost
        kis.venue.set_notice_layout("drifted")
        await kis.place(quantity=7)
        frame = await receive(ws)
    fields = decrypt(frame.split("|")[3], output["key"], output["iv"]).split("^")
    assert len(fields) == 26
    drifted = dict(zip(DRIFTED_COLUMNS, fields, strict=True))
    assert drifted["ODER_QTY"] == "7"
    assert fields[3] == "7"
    assert len(kis.venue.orders()) == 2
    lost = [m for m in kis.venue.notice_messages() if m["text"].startswith("(lost)")]
    assert len(lost) == 2


def notice_fields(frame: str, output: dict[str, str]) -> dict[str, str]:
    plain = aes_decrypt(frame.split("|")[3], output["key"], output["iv"])
    return dict(zip(FIELDS, plain.split("^"), strict=True))


def hhmmss(moment: datetime) -> str:
    return kst(moment).strftime("%H%M%S")


async def test_held_notices_go_out_on_release_with_the_time_they_were_made(
    kis: KisClient, clock: FakeClock
) -> None:
    """A held notice is one still on its way: it reaches the client only when released, in the
    order the notices were made, carrying the execution time of its fill, not the release's."""
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        output = (await subscribed(kis, ws))["body"]["output"]
        kis.venue.hold_notices()
        kis.venue.partial_fill_next(4, price=71_900)
        odno = (await kis.place(quantity=10)).json()["output"]["ODNO"]
        kis.venue.fill(odno, 3, 71_800)
        await kis.venue.notices.flush()
        sent_while_held = [m for m in kis.venue.notice_messages() if m["direction"] == "out"]
        clock.advance(30)
        released_at = hhmmss(clock.now())
        released = kis.venue.release_notices()
        accept, first, second = [notice_fields(await receive(ws), output) for _ in range(3)]
        kis.venue.fill(odno, 1, 71_700)  # no longer held: sent at once
        after = notice_fields(await receive(ws), output)
    made = [hhmmss(datetime.fromisoformat(e[2])) for e in kis.venue.orders()[0]["executions"]]
    assert released == 3
    assert [json.loads(m["text"])["body"]["msg_cd"] for m in sent_while_held] == ["OPSP0000"]
    assert (accept["CNTG_YN"], first["CNTG_QTY"], second["CNTG_QTY"]) == ("1", "4", "3")
    assert [first["STCK_CNTG_HOUR"], second["STCK_CNTG_HOUR"]] == made[:2]
    assert released_at not in made[:2]
    assert after["STCK_CNTG_HOUR"] == made[2] == released_at
    assert kis.venue.release_notices() == 0


async def test_notices_are_held_and_released_over_the_control_api(kis: KisClient) -> None:
    remote = RemoteVenue(kis.venue.control_url)
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        output = (await subscribed(kis, ws))["body"]["output"]
        assert await remote.acall("hold_notices") is None
        await kis.place(quantity=2)  # a market order: accepted and filled at once
        held = [m for m in await remote.acall("notice_messages") if m["direction"] == "out"]
        released = await remote.acall("release_notices")
        notices = [notice_fields(await receive(ws), output) for _ in range(2)]
    assert len(held) == 1, "the subscription's ack only"
    assert released == 2
    assert [(n["CNTG_YN"], n["CNTG_QTY"]) for n in notices] == [("1", "2"), ("2", "2")]
    assert not kis.venue.notices.holding


async def test_reconnect_after_the_venue_drops_sessions(kis: KisClient) -> None:
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        await subscribed(kis, ws)
        kis.venue.disconnect_notices()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as again:
        assert (await subscribed(kis, again))["body"]["msg_cd"] == "OPSP0000"


async def test_other_paths_are_not_found(kis: KisClient) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{kis.venue.ws_url}/other"):
            pass


def test_encryption_round_trip() -> None:
    key, iv = "k" * 32, "i" * 16
    text = "^".join(["x"] * 26) + "삼성전자"
    assert aes_decrypt(encrypt(text, key, iv), key, iv) == text


async def test_at_most_40_subscriptions_and_a_known_tr_type(kis: KisClient) -> None:
    key = await approval_key(kis)
    async with websockets.connect(f"{kis.venue.ws_url}/tryitout") as ws:
        await ws.send(subscribe(key, "H0STCNI9", "orderlane", tr_type="3"))
        assert (await receive(ws))["body"]["msg1"] == "invalid tr_type"
        answers = []
        for number in range(41):
            await ws.send(subscribe(key, "H0STCNI9", f"user{number}"))
            answers.append((await receive(ws))["body"]["msg_cd"])
    assert answers[:40] == ["OPSP0000"] * 40
    assert answers[40] == "OPSP0008"
