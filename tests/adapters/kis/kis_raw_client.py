"""A raw KIS client for the fake KIS venue's tests.

The client is written from KIS-OPEN-API.md alone (no orderlane_kis code), as a client written
from KIS's documentation would be, so these tests check the venue against the document.
"""

from __future__ import annotations

from typing import Any

import httpx

from orderlane import FakeClock
from orderlane_kis.fake import FakeKisVenue

TRADING = "/uapi/domestic-stock/v1/trading"


class KisClient:
    """A bare KIS REST client: token, headers, the trading calls."""

    def __init__(self, venue: FakeKisVenue, http: httpx.AsyncClient, clock: FakeClock) -> None:
        self.venue = venue
        self.http = http
        self.clock = clock
        #: Let a second of fake time pass before each trading call (the paper limit is 1/s).
        self.pace = True
        self.app_key = venue.credentials.app_key
        self.app_secret = venue.credentials.app_secret
        self.cano, self.product = venue.credentials.account.split("-")
        self.token = ""
        self.paper = venue.mode == "paper"

    async def issue_token(self) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "appkey": self.app_key,
            "appsecret": self.app_secret,
        }
        response = await self.http.post("/oauth2/tokenP", json=body)
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    def headers(self, tr_id: str, tr_cont: str = "") -> dict[str, str]:
        if self.pace:
            self.clock.advance(1.0)
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {self.token}",
            "appkey": self.app_key,
            "appsecret": self.app_secret,
            "tr_id": tr_id,
            "custtype": "P",
            "tr_cont": tr_cont,
        }

    def tr(self, live: str) -> str:
        return "V" + live[1:] if self.paper else live

    def order_body(
        self, symbol: str = "005930", quantity: int = 1, price: int = 0
    ) -> dict[str, str]:
        return {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "PDNO": symbol,
            "ORD_DVSN": "01" if price == 0 else "00",
            "ORD_QTY": str(quantity),
            "ORD_UNPR": str(price),
            "EXCG_ID_DVSN_CD": "KRX",
        }

    async def place(
        self, side: str = "buy", symbol: str = "005930", quantity: int = 1, price: int = 0
    ) -> httpx.Response:
        tr_id = self.tr("TTTC0012U" if side == "buy" else "TTTC0011U")
        return await self.http.post(
            f"{TRADING}/order-cash",
            json=self.order_body(symbol, quantity, price),
            headers=self.headers(tr_id),
        )

    async def cancel(self, odno: str, quantity: int | None = None) -> httpx.Response:
        body = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "KRX_FWDG_ORD_ORGNO": "",
            "ORGN_ODNO": odno,
            "ORD_DVSN": "00",
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "0" if quantity is None else str(quantity),
            "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y" if quantity is None else "N",
            "EXCG_ID_DVSN_CD": "KRX",
        }
        return await self.http.post(
            f"{TRADING}/order-rvsecncl", json=body, headers=self.headers(self.tr("TTTC0013U"))
        )

    def inquiry_params(self, fk: str = "", nk: str = "", **overrides: str) -> dict[str, str]:
        day = self.venue.time()["kst"][:10].replace("-", "")
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "INQR_STRT_DT": day,
            "INQR_END_DT": day,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "EXCG_ID_DVSN_CD": "KRX",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        params.update(overrides)
        return params

    async def inquiry(
        self, fk: str = "", nk: str = "", tr_cont: str = "", **overrides: str
    ) -> httpx.Response:
        return await self.http.get(
            f"{TRADING}/inquire-daily-ccld",
            params=self.inquiry_params(fk, nk, **overrides),
            headers=self.headers(self.tr("TTTC0081R"), tr_cont),
        )

    async def all_rows(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every row of today's inquiry, following the pages; and each page's tr_cont."""
        rows: list[dict[str, Any]] = []
        conts: list[str] = []
        fk = nk = cont = ""
        while True:
            response = await self.inquiry(fk, nk, cont)
            body = response.json()
            assert body["rt_cd"] == "0", body
            rows += body["output1"]
            conts.append(response.headers["tr_cont"])
            if response.headers["tr_cont"] not in ("F", "M"):
                return rows, conts
            fk, nk, cont = body["ctx_area_fk100"], body["ctx_area_nk100"], "N"
