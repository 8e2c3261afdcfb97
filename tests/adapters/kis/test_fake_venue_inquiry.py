"""The fake KIS venue's daily order inquiry (paging, tr_cont, filters) and its rate limit."""

from __future__ import annotations

import pytest

from kis.kis_raw_client import KisClient
from orderlane import FakeClock

# ------------------------------------------------------------------ paging


async def test_paper_pages_of_15_with_continuation_keys(kis: KisClient) -> None:
    kis.venue.set_rate_limit(None)
    for _ in range(40):
        await kis.place()
    rows, conts = await kis.all_rows()
    assert conts == ["F", "M", "E"]
    assert len(rows) == 40
    assert len({row["odno"] for row in rows}) == 40
    numbers = [int(row["odno"]) for row in rows]
    assert numbers == sorted(numbers, reverse=True)  # INQR_DVSN 00: newest first
    pages = [r for r in kis.venue.requests if r.operation == "inquiry"]
    assert [r.header("tr_cont") for r in pages] == ["", "N", "N"]


async def test_live_pages_of_100(kis_live: KisClient) -> None:
    for _ in range(101):
        await kis_live.place()
    first = await kis_live.inquiry()
    assert len(first.json()["output1"]) == 100
    assert first.headers["tr_cont"] == "F"
    body = first.json()
    second = await kis_live.inquiry(body["ctx_area_fk100"], body["ctx_area_nk100"], "N")
    assert len(second.json()["output1"]) == 1
    assert second.headers["tr_cont"] == "E"


async def test_a_single_page_ends_with_d_and_an_empty_day_answers_no_rows(kis: KisClient) -> None:
    empty = await kis.inquiry()
    assert (empty.headers["tr_cont"], empty.json()["output1"]) == ("D", [])
    assert empty.json()["rt_cd"] == "0"
    await kis.place()
    one = await kis.inquiry()
    assert one.headers["tr_cont"] == "D"
    assert len(one.json()["output1"]) == 1
    assert isinstance(one.json()["output2"], dict)


async def test_continuation_needs_tr_cont_n(kis: KisClient) -> None:
    kis.venue.set_rate_limit(None)
    for _ in range(16):
        await kis.place()
    first = (await kis.inquiry()).json()
    again = await kis.inquiry(first["ctx_area_fk100"], first["ctx_area_nk100"], tr_cont="")
    assert again.json()["output1"] == first["output1"]
    assert again.headers["tr_cont"] == "F"


async def test_parameter_names_match_case_insensitively(kis: KisClient) -> None:
    kis.venue.set_rate_limit(None)
    for _ in range(16):
        await kis.place()
    first = (await kis.inquiry()).json()
    params = kis.inquiry_params()
    del params["CTX_AREA_FK100"], params["CTX_AREA_NK100"]
    params |= {"ctx_area_fk100": first["ctx_area_fk100"], "ctx_area_nk100": first["ctx_area_nk100"]}
    response = await kis.http.get(
        "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
        params=params,
        headers=kis.headers("VTTC8001R", "N"),  # the older TR id
    )
    assert len(response.json()["output1"]) == 1
    assert response.headers["tr_cont"] == "E"


async def test_pages_stay_stable_when_orders_arrive_between_them(kis: KisClient) -> None:
    kis.venue.set_rate_limit(None)
    for _ in range(20):
        await kis.place()
    first = (await kis.inquiry(INQR_DVSN="01")).json()  # oldest first
    for _ in range(3):
        await kis.place()
    second = await kis.inquiry(
        first["ctx_area_fk100"], first["ctx_area_nk100"], "N", INQR_DVSN="01"
    )
    numbers = [row["odno"] for row in first["output1"] + second.json()["output1"]]
    assert len(numbers) == len(set(numbers)) == 23


async def test_rows_carry_every_documented_key_as_strings(kis: KisClient) -> None:
    kis.venue.partial_fill_next(2, price=71_900)
    await kis.place(quantity=5, price=72_000)
    body = (await kis.inquiry()).json()
    [row] = body["output1"]
    documented = {
        "ord_dt", "ord_gno_brno", "odno", "orgn_odno", "sll_buy_dvsn_cd", "pdno", "prdt_name",
        "ord_qty", "ord_unpr", "ord_tmd", "tot_ccld_qty", "avg_prvs", "cncl_yn", "tot_ccld_amt",
        "rmn_qty", "rjct_qty", "cnc_cfrm_qty", "excg_dvsn_cd",
    }  # fmt: skip
    assert documented <= set(row)
    assert all(isinstance(v, str) for v in row.values())
    assert (row["ord_qty"], row["tot_ccld_qty"], row["rmn_qty"]) == ("5", "2", "3")
    assert (row["avg_prvs"], row["tot_ccld_amt"], row["sll_buy_dvsn_cd"]) == (
        "71900",
        "143800",
        "02",
    )
    assert row["ord_dt"] == "20260105"
    assert row["prdt_name"] == "삼성전자"
    assert {"ctx_area_fk100", "ctx_area_nk100", "output1", "output2"} <= set(body)
    assert body["output2"]["tot_ccld_qty"] == "2"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SLL_BUY_DVSN_CD": "01"}, 1),
        ({"SLL_BUY_DVSN_CD": "02"}, 2),
        ({"PDNO": "000660"}, 1),
        ({"CCLD_DVSN": "01"}, 2),
        ({"CCLD_DVSN": "02"}, 1),
        ({"EXCG_ID_DVSN_CD": "ALL"}, 3),
        ({"INQR_STRT_DT": "20260106", "INQR_END_DT": "20260106"}, 0),
    ],
)
async def test_inquiry_filters(kis: KisClient, overrides: dict[str, str], expected: int) -> None:
    kis.venue.set_holding("005930", 1)
    await kis.place("sell")
    await kis.place(symbol="000660")
    await kis.place(price=70_000)  # rests unfilled
    assert len((await kis.inquiry(**overrides)).json()["output1"]) == expected


async def test_inquiry_by_order_number_and_missing_fields(kis: KisClient) -> None:
    odno = (await kis.place()).json()["output"]["ODNO"]
    await kis.place()
    [row] = (await kis.inquiry(ODNO=odno.lstrip("0"))).json()["output1"]
    assert row["odno"] == odno
    params = kis.inquiry_params()
    del params["INQR_DVSN_3"]
    refused = await kis.http.get(
        "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
        params=params,
        headers=kis.headers("VTTC0081R"),
    )
    assert refused.json()["rt_cd"] != "0"
    assert "INQR_DVSN_3" in refused.json()["msg1"]


async def test_a_new_order_shows_only_after_the_inquiry_lag(
    kis: KisClient, clock: FakeClock
) -> None:
    kis.venue.set_inquiry_lag(5.0)
    await kis.place()
    assert (await kis.inquiry()).json()["output1"] == []
    clock.advance(5.0)
    assert len((await kis.inquiry()).json()["output1"]) == 1


# ------------------------------------------------------------------ rate limit


async def test_rolling_second_rate_limit_on_paper(kis: KisClient, clock: FakeClock) -> None:
    kis.pace = False
    assert (await kis.place()).json()["rt_cd"] == "0"
    clock.advance(0.6)
    refused = await kis.place()
    assert (refused.status_code, refused.json()["msg_cd"]) == (500, "EGW00201")
    assert refused.json()["msg1"] == "초당 거래건수를 초과하였습니다."
    clock.advance(0.4)  # one second after the first: the window rolled past it
    assert (await kis.place()).json()["rt_cd"] == "0"
    assert kis.venue.counters()["rate_limit_answers"] == 1
    assert len(kis.venue.orders()) == 2


async def test_live_allows_18_a_second(kis_live: KisClient, clock: FakeClock) -> None:
    kis_live.pace = False
    answers = [(await kis_live.inquiry()).json()["msg_cd"] for _ in range(19)]
    assert answers.count("EGW00201") == 1
    assert answers[-1] == "EGW00201"
    kis_live.venue.set_rate_limit(2, 1.0, status=200)
    clock.advance(1.0)
    codes = [(await kis_live.inquiry()).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert kis_live.venue.recorded_requests("inquiry")[-1]["msg_cd"] == "EGW00201"


async def test_token_and_approval_requests_do_not_count(kis: KisClient, clock: FakeClock) -> None:
    kis.pace = False
    await kis.place()
    body = {"grant_type": "client_credentials", "appkey": kis.app_key, "secretkey": kis.app_secret}
    assert (await kis.http.post("/oauth2/Approval", json=body)).status_code == 200
    assert (await kis.place()).json()["msg_cd"] == "EGW00201"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"INQR_STRT_DT": "2026-01-05"}, "INQR_STRT_DT"),
        ({"EXCG_ID_DVSN_CD": "NXT"}, "EXCG_ID_DVSN_CD"),  # paper trades on KRX only
        ({"CANO": "99999999"}, ""),
    ],
)
async def test_malformed_inquiries_are_refused(
    kis: KisClient, overrides: dict[str, str], field: str
) -> None:
    answer = await kis.inquiry(**overrides)
    body = answer.json()
    assert body["rt_cd"] != "0"
    assert field in body["msg1"]
    assert "tr_cont" in answer.headers


async def test_daily_numbers_start_again_each_day_and_both_days_stay_in_the_inquiry(
    kis: KisClient, clock: FakeClock
) -> None:
    kis.venue.set_daily_numbers()
    monday = (await kis.place(quantity=1)).json()["output"]["ODNO"]
    clock.advance(86400)
    await kis.issue_token()  # a token lasts a day
    tuesday = (await kis.place(quantity=2)).json()["output"]["ODNO"]
    assert tuesday == monday, "each day's numbers start from the venue's first number"
    assert [(o["odno"], o["quantity"]) for o in kis.venue.orders()] == [(tuesday, 2)]
    both = (await kis.inquiry(INQR_STRT_DT="20260105")).json()["output1"]
    assert [(row["ord_dt"], row["odno"], row["ord_qty"]) for row in both] == [
        ("20260106", tuesday, "2"),  # newest first
        ("20260105", monday, "1"),
    ]
    today = (await kis.inquiry()).json()["output1"]
    assert [(row["ord_dt"], row["ord_qty"]) for row in today] == [("20260106", "2")]


async def test_numbers_run_on_across_days_by_default(kis: KisClient, clock: FakeClock) -> None:
    monday = (await kis.place()).json()["output"]["ODNO"]
    clock.advance(86400)
    await kis.issue_token()  # a token lasts a day
    tuesday = (await kis.place()).json()["output"]["ODNO"]
    assert int(tuesday) == int(monday) + 1
