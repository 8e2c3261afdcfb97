"""A client written the way KIS's own sample code is written works against the fake venue
unchanged, with nothing but its base URLs pointed at loopback (see kis_sample_client).

The venue runs on real time here, with KIS's real limits (1 request a second on paper), and the
client paces itself as a user of the documentation would; only the page size is made small
through the control API so that paging shows with a few orders.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kis.kis_sample_client import (
    NOTICE_COLUMNS,
    Answer,
    Failure,
    SampleStyleClient,
    SampleStyleNotices,
)
from orderlane_kis.fake import FakeKisVenue


@pytest.fixture(params=["paper", "live"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[FakeKisVenue]:
    served = FakeKisVenue(request.param, ping_interval=0.3)
    async with served:
        served.set_page_size(2)
        yield served


def _client(venue: FakeKisVenue, tmp_path: Path) -> SampleStyleClient:
    credentials = venue.credentials
    return SampleStyleClient(
        rest_url=venue.rest_url,
        ws_url=venue.ws_url,
        app_key=credentials.app_key,
        app_secret=credentials.app_secret,
        account=credentials.account,
        hts_id=credentials.hts_id,
        paper=venue.mode == "paper",
        token_file=tmp_path / "KIS-token",
        smart_sleep=1.0 if venue.mode == "paper" else 0.1,
    )


def _ok(answer: Answer | Failure) -> Answer:
    assert isinstance(answer, Answer), vars(answer)
    assert answer.ok(), (answer.error_code, answer.error_message)
    return answer


def _session(client: SampleStyleClient) -> dict[str, Any]:
    """Orders as the sample places them: two market buys, a resting limit buy it cancels, a
    sell of what it holds; then the day's orders, page after page, and the balance."""
    bought = [_ok(client.order_cash("buy", "005930", "01", qty, "0")) for qty in ("2", "3")]
    resting = _ok(client.order_cash("buy", "005930", "00", "1", "60000")).body.output
    cancel = _ok(client.order_rvsecncl(resting["KRX_FWDG_ORD_ORGNO"], resting["ODNO"]))
    sold = _ok(client.order_cash("sell", "005930", "01", "4", "0"))
    return {
        "orders": [a.body.output for a in [*bought, sold]] + [resting],
        "cancel": cancel.body.output,
        "codes": [a.error_code for a in [*bought, sold]],
    }


async def test_a_sample_style_client_trades_pages_and_hears_its_notices(
    venue: FakeKisVenue, tmp_path: Path
) -> None:
    client = _client(venue, tmp_path)
    try:
        await asyncio.to_thread(client.auth)
        approval = await asyncio.to_thread(client.auth_ws)
        tr_id = "H0STCNI9" if venue.mode == "paper" else "H0STCNI0"
        notices = SampleStyleNotices(venue.ws_url, approval, tr_id, client.hts_id)

        def heard_all(n: SampleStyleNotices) -> bool:
            fills = [r for r in n.rows if r["CNTG_YN"] == "2"]
            cancelled = [r for r in n.rows if r["RCTF_CLS"] == "2"]
            return len(fills) == 3 and bool(cancelled) and n.pingpongs > 0

        listening = asyncio.ensure_future(notices.run(heard_all, seconds=60))
        await asyncio.wait_for(notices.acked.wait(), 10)  # subscribed before the first order
        session = await asyncio.to_thread(_session, client)
        await listening

        # The ack as the sample reads it: ok, encrypted, the key and iv kept per TR id.
        ack = notices.system[0]
        assert (ack.isOk, ack.tr_id, ack.tr_key, ack.encrypt) == (True, tr_id, client.hts_id, "Y")
        assert len(notices.data_map[tr_id]["key"]) == 32
        assert len(notices.data_map[tr_id]["iv"]) == 16
        # Every frame decrypted into the 26 columns; fills carry what was bought and sold.
        assert all(len(row) == len(NOTICE_COLUMNS) for row in notices.rows)
        assert {row["CNTG_YN"] for row in notices.rows} == {"1", "2"}
        fills = [(r["SELN_BYOV_CLS"], r["CNTG_QTY"]) for r in notices.rows if r["CNTG_YN"] == "2"]
        assert sorted(fills) == [("01", "4"), ("02", "2"), ("02", "3")]
        # PINGPONG answered with a pong frame: the session stayed up throughout.
        assert notices.pingpongs > 0

        assert all(o["ODNO"].isdigit() and o["ORD_TMD"] for o in session["orders"])
        assert session["cancel"]["ODNO"].isdigit()

        day = venue.time()["kst"][:10].replace("-", "")
        rows, totals, conts = await asyncio.to_thread(client.inquire_daily_ccld, day)
        # Five orders (two buys, the limit, its cancel, the sell) on pages of two.
        assert len(rows) == 5
        assert {r["odno"] for r in rows} >= {o["ODNO"] for o in session["orders"]}
        assert conts[:-1] == ["F", "M"]
        assert conts[-1] in ("D", "E")
        assert all(isinstance(t, dict) for t in totals)
        balance = _ok(await asyncio.to_thread(client.inquire_balance))
        assert isinstance(balance.body.output2, list)
        assert len(balance.body.output2) == 1
        holdings = {h["pdno"]: h["hldg_qty"] for h in balance.body.output1}
        assert holdings["005930"] == "1"

        # A second run of the sample reads the token back from its file: no new issuance.
        again = _client(venue, tmp_path)
        try:
            await asyncio.to_thread(again.auth)
        finally:
            again.close()
        assert venue.request_count("token") == 1
        # What the venue saw: the sample's header spelling, a JSON string body, paper TR ids.
        places = venue.recorded_requests("place")
        names = [name for name, _ in places[0]["headers"]]
        assert {"Content-Type", "charset", "Accept", "authorization", "tr_id"} <= set(names)
        prefix = "V" if venue.mode == "paper" else "T"
        tr_ids = {dict(r["headers"])["tr_id"] for r in places}
        assert tr_ids == {f"{prefix}TTC0012U", f"{prefix}TTC0011U"}
    finally:
        client.close()


async def test_the_samples_own_pacing_meets_the_paper_limit_as_on_kis(tmp_path: Path) -> None:
    """The sample sleeps 0.1 s between calls; on paper's 1 a second the venue answers the
    second order as KIS does (HTTP 500, EGW00201), which the sample reads as an error."""
    async with FakeKisVenue("paper", ping_interval=None) as venue:
        client = _client(venue, tmp_path)
        client.smart_sleep = 0.1
        try:
            await asyncio.to_thread(client.auth)
            first = await asyncio.to_thread(client.order_cash, "buy", "005930", "01", "1", "0")
            second = await asyncio.to_thread(client.order_cash, "buy", "005930", "01", "1", "0")
        finally:
            client.close()
        assert isinstance(first, Answer)
        assert first.ok()
        assert isinstance(second, Failure)
        assert second.status == 500
        assert "EGW00201" in second.text
