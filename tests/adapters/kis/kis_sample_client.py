"""A KIS client written the way KIS's own sample code is written, for the fake venue's tests.

KIS publishes a Python sample (``koreainvestment/open-trading-api``: ``kis_auth.py``, the
``domestic_stock`` functions and the ``KISWebSocket`` notice client) that many users copy. This
client is not that code: it is written for these tests after how that sample behaves on the
wire and what it assumes of KIS's answers, so that a venue that breaks such a client fails here:

- requests carry the sample's header set: ``Content-Type: application/json`` without a charset,
  a separate ``charset: UTF-8``, ``Accept: text/plain``, a ``User-Agent``, then lowercase
  ``authorization``, ``appkey``, ``appsecret``, ``tr_id``, ``custtype`` and ``tr_cont``; bodies
  are sent as a JSON string (``data=json.dumps(params)``), with empty ``SLL_TYPE`` and
  ``CNDT_PRIC`` in every order body; live TR ids are turned into paper ones by replacing their
  first letter with ``V``;
- the approval-key request reuses the REST base headers (leftover ``authorization``, ``appkey``
  and ``appsecret``);
- an answer with HTTP 200 is read into named tuples: one of the response header names that are
  all lowercase (so such a name must be a Python identifier) and one of the body's top-level keys
  (so they must be identifiers too); ``msg_cd`` and ``msg1`` are read as attributes and must be
  there; any other status is an error object;
- the token's ``access_token_token_expired`` is parsed with ``%Y-%m-%d %H:%M:%S`` and the token
  is kept in a file until then;
- the daily inquiry follows its pages while the ``tr_cont`` response header is ``F`` or ``M``,
  asking the next one with ``tr_cont: N`` and the body's ``ctx_area_fk100`` and
  ``ctx_area_nk100``;
- the notice client subscribes with ``{"header": {"content-type": "utf-8", "approval_key", ...
  "tr_type": "1", "custtype": "P"}, "body": {"input": {"tr_id", "tr_key"}}}``, reads a JSON
  control message's ``header.tr_id``, ``header.tr_key``, ``header.encrypt`` and ``body.rt_cd``,
  ``body.msg1``, ``body.output.iv``/``key``, keeps the key per TR id, decrypts a data frame only
  when the ack said ``encrypt`` "Y", splits it by ``^`` into the 26 named columns, and answers
  ``PINGPONG`` (a message without a body) with a WebSocket pong frame carrying the text.

It uses httpx (the sample uses requests: same wire behaviour here; response header names are read
as received, as requests keeps them) and ``cryptography`` for AES (the sample uses pycryptodome).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

NOTICE_COLUMNS = [
    "CUST_ID", "ACNT_NO", "ODER_NO", "OODER_NO", "SELN_BYOV_CLS", "RCTF_CLS",
    "ODER_KIND", "ODER_COND", "STCK_SHRN_ISCD", "CNTG_QTY", "CNTG_UNPR",
    "STCK_CNTG_HOUR", "RFUS_YN", "CNTG_YN", "ACPT_YN", "BRNC_NO", "ODER_QTY",
    "ACNT_NAME", "ORD_COND_PRC", "ORD_EXG_GB", "POPUP_YN", "FILLER", "CRDT_CLS",
    "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
]  # fmt: skip


def result_object(data: dict[str, Any]) -> Any:
    """A named tuple of a JSON object's keys, as the sample reads every answer."""
    return namedtuple("res", data.keys())(**data)  # type: ignore[misc]


class Answer:
    """An HTTP 200 answer, read the sample's way (raises where the sample crashes)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        names = [raw.decode("latin-1") for raw, _ in response.headers.raw]
        fields = {name: response.headers[name] for name in names if name.islower()}
        self.header = namedtuple("header", fields.keys())(**fields)  # type: ignore[misc]
        self.body = namedtuple("body", response.json().keys())(**response.json())  # type: ignore[misc]
        self.error_code = self.body.msg_cd
        self.error_message = self.body.msg1

    def ok(self) -> bool:
        return bool(self.body.rt_cd == "0")


class Failure:
    """Any other status: the sample keeps the status and the text."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.text = response.text

    def ok(self) -> bool:
        return False


class SampleStyleClient:
    """REST calls as the sample makes them (synchronous; run it in a thread)."""

    def __init__(
        self,
        *,
        rest_url: str,
        ws_url: str,
        app_key: str,
        app_secret: str,
        account: str,
        hts_id: str,
        paper: bool,
        token_file: Path,
        smart_sleep: float,
    ) -> None:
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.app_key = app_key
        self.app_secret = app_secret
        self.cano, self.product = account.split("-")
        self.hts_id = hts_id
        self.paper = paper
        self.token_file = token_file
        self.smart_sleep = smart_sleep
        self.base_headers: dict[str, str] = {
            "Content-Type": "application/json",
            "Accept": "text/plain",
            "charset": "UTF-8",
            "User-Agent": "orderlane-sample-style-test",
        }
        self.http = httpx.Client(trust_env=False, timeout=10.0)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ auth

    def save_token(self, token: str, expired: str) -> None:
        valid = datetime.strptime(expired, "%Y-%m-%d %H:%M:%S")
        self.token_file.write_text(f"token: {token}\nvalid-date: {valid}\n", encoding="utf-8")

    def read_token(self) -> str | None:
        try:
            lines = dict(
                line.split(": ", 1) for line in self.token_file.read_text("utf-8").splitlines()
            )
        except FileNotFoundError:
            return None
        valid = datetime.strptime(lines["valid-date"], "%Y-%m-%d %H:%M:%S")
        return lines["token"] if valid > datetime.now() else None

    def auth(self) -> str:
        token = self.read_token()
        if token is None:
            params = {
                "grant_type": "client_credentials",
                "appkey": self.app_key,
                "appsecret": self.app_secret,
            }
            response = self.http.post(
                f"{self.rest_url}/oauth2/tokenP",
                content=json.dumps(params),
                headers=dict(self.base_headers),
            )
            if response.status_code != 200:
                raise RuntimeError(f"Get Authentification token fail: {response.status_code}")
            answer = result_object(response.json())
            token = answer.access_token
            self.save_token(token, answer.access_token_token_expired)
        self.base_headers["authorization"] = f"Bearer {token}"
        self.base_headers["appkey"] = self.app_key
        self.base_headers["appsecret"] = self.app_secret
        return str(token)

    def auth_ws(self) -> str:
        params = {
            "grant_type": "client_credentials",
            "appkey": self.app_key,
            "secretkey": self.app_secret,
        }
        response = self.http.post(
            f"{self.rest_url}/oauth2/Approval",
            content=json.dumps(params),
            headers=dict(self.base_headers),  # the REST headers, token and keys included
        )
        if response.status_code != 200:
            raise RuntimeError(f"Get Approval token fail: {response.status_code}")
        return str(result_object(response.json()).approval_key)

    # ------------------------------------------------------------------ REST calls

    def url_fetch(
        self, api_url: str, tr_id: str, tr_cont: str, params: dict[str, str], post: bool = False
    ) -> Answer | Failure:
        headers = dict(self.base_headers)
        if tr_id[0] in ("T", "J", "C") and self.paper:
            tr_id = "V" + tr_id[1:]
        headers["tr_id"] = tr_id
        headers["custtype"] = "P"
        headers["tr_cont"] = tr_cont
        url = f"{self.rest_url}{api_url}"
        if post:
            response = self.http.post(url, headers=headers, content=json.dumps(params))
        else:
            response = self.http.get(url, headers=headers, params=params)
        if response.status_code == 200:
            return Answer(response)
        return Failure(response)

    def order_cash(
        self, side: str, pdno: str, ord_dvsn: str, qty: str, price: str
    ) -> Answer | Failure:
        time.sleep(self.smart_sleep)
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "PDNO": pdno,
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": qty,
            "ORD_UNPR": price,
            "EXCG_ID_DVSN_CD": "KRX",
            "SLL_TYPE": "",
            "CNDT_PRIC": "",
        }
        tr_id = "TTTC0011U" if side == "sell" else "TTTC0012U"
        return self.url_fetch(
            "/uapi/domestic-stock/v1/trading/order-cash", tr_id, "", params, post=True
        )

    def order_rvsecncl(self, branch: str, odno: str) -> Answer | Failure:
        time.sleep(self.smart_sleep)
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "KRX_FWDG_ORD_ORGNO": branch,
            "ORGN_ODNO": odno,
            "ORD_DVSN": "00",
            "RVSE_CNCL_DVSN_CD": "02",
            "ORD_QTY": "0",
            "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y",
            "EXCG_ID_DVSN_CD": "KRX",
        }
        return self.url_fetch(
            "/uapi/domestic-stock/v1/trading/order-rvsecncl", "TTTC0013U", "", params, post=True
        )

    def inquire_daily_ccld(
        self, day: str, fk: str = "", nk: str = "", tr_cont: str = "", depth: int = 0
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """Every row of the day, page after page (the sample recurses); the output2 of each
        page; and each page's ``tr_cont``."""
        time.sleep(self.smart_sleep)
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "INQR_STRT_DT": day,
            "INQR_END_DT": day,
            "SLL_BUY_DVSN_CD": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "INQR_DVSN": "00",
            "INQR_DVSN_3": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
            "EXCG_ID_DVSN_CD": "KRX",
        }
        res = self.url_fetch(
            "/uapi/domestic-stock/v1/trading/inquire-daily-ccld", "TTTC0081R", tr_cont, params
        )
        if not isinstance(res, Answer) or not res.ok():
            raise RuntimeError(f"inquiry failed: {vars(res)}")
        rows = list(res.body.output1)
        totals = [res.body.output2]
        cont = res.header.tr_cont
        if cont in ("M", "F") and depth < 10:
            more, more_totals, conts = self.inquire_daily_ccld(
                day, res.body.ctx_area_fk100, res.body.ctx_area_nk100, "N", depth + 1
            )
            return rows + more, totals + more_totals, [cont, *conts]
        return rows, totals, [cont]

    def inquire_balance(self) -> Answer | Failure:
        time.sleep(self.smart_sleep)
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.product,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        }
        return self.url_fetch(
            "/uapi/domestic-stock/v1/trading/inquire-balance", "TTTC8434R", "", params
        )


def system_resp(data: str) -> Any:
    """A JSON control message read the sample's way."""
    rdic = json.loads(data)
    tr_id = rdic["header"]["tr_id"]
    tr_key = encrypt = iv = ekey = tr_msg = None
    is_ok = is_pingpong = is_unsub = False
    if tr_id != "PINGPONG":
        tr_key = rdic["header"]["tr_key"]
        encrypt = rdic["header"]["encrypt"]
    if rdic.get("body", None) is not None:
        is_ok = rdic["body"]["rt_cd"] == "0"
        tr_msg = rdic["body"]["msg1"]
        if "output" in rdic["body"]:
            iv = rdic["body"]["output"]["iv"]
            ekey = rdic["body"]["output"]["key"]
        is_unsub = tr_msg[:5] == "UNSUB"
    else:
        is_pingpong = tr_id == "PINGPONG"
    fields = ["isOk", "tr_id", "tr_key", "isUnSub", "isPingPong", "tr_msg", "iv", "ekey"]
    return namedtuple("SysMsg", [*fields, "encrypt"])(
        is_ok, tr_id, tr_key, is_unsub, is_pingpong, tr_msg, iv, ekey, encrypt
    )


def aes_cbc_base64_dec(key: str, iv: str, cipher_text: str) -> str:
    decryptor = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8")))
    raw = decryptor.decryptor()
    padded = raw.update(base64.b64decode(cipher_text)) + raw.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return bytes.decode(unpadder.update(padded) + unpadder.finalize())


class SampleStyleNotices:
    """The notice WebSocket client: subscribe, then read frames the sample's way."""

    def __init__(self, ws_url: str, approval_key: str, tr_id: str, hts_id: str) -> None:
        self.url = f"{ws_url}/tryitout"
        self.approval_key = approval_key
        self.tr_id = tr_id
        self.hts_id = hts_id
        self.data_map: dict[str, dict[str, Any]] = {}
        self.system: list[Any] = []
        self.rows: list[dict[str, str]] = []
        self.pingpongs = 0
        #: Set once the first control message (the subscription's ack) arrived.
        self.acked = asyncio.Event()

    def _add_data_map(self, tr_id: str, **values: Any) -> None:
        entry = self.data_map.setdefault(
            tr_id, {"columns": [], "encrypt": False, "key": None, "iv": None}
        )
        entry.update({k: v for k, v in values.items() if v is not None})

    async def run(self, until: Callable[[SampleStyleNotices], bool], seconds: float) -> None:
        async with websockets.connect(self.url) as ws:
            message = {
                "header": {
                    "content-type": "utf-8",
                    "approval_key": self.approval_key,
                    "tr_type": "1",
                    "custtype": "P",
                },
                "body": {"input": {"tr_id": self.tr_id, "tr_key": self.hts_id}},
            }
            self._add_data_map(self.tr_id, columns=NOTICE_COLUMNS)
            await ws.send(json.dumps(message))
            async with asyncio.timeout(seconds):
                async for raw in ws:
                    assert isinstance(raw, str)
                    if raw[0] in ("0", "1"):
                        parts = raw.split("|")
                        entry = self.data_map[parts[1]]
                        data = parts[3]
                        if entry.get("encrypt", None) == "Y":
                            data = aes_cbc_base64_dec(entry["key"], entry["iv"], data)
                        values = data.split("^")
                        self.rows.append(dict(zip(entry["columns"], values, strict=True)))
                    else:
                        rsp = system_resp(raw)
                        self.system.append(rsp)
                        self.acked.set()
                        self._add_data_map(rsp.tr_id, encrypt=rsp.encrypt, key=rsp.ekey, iv=rsp.iv)
                        if rsp.isPingPong:
                            self.pingpongs += 1
                            await ws.pong(raw)
                    if until(self):
                        return
