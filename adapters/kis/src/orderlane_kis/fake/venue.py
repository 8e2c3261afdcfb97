"""The fake KIS venue: REST and notice WebSocket servers on loopback over one set of books.

Start it in process (``async with FakeKisVenue("paper") as venue``: ephemeral ports, the
test's clock if given) or as its own process (``orderlane fake-kis serve``). Point a client's
REST base URL at :attr:`FakeKisVenue.rest_url` and its notice URL at :attr:`FakeKisVenue.ws_url`,
and give it :attr:`FakeKisVenue.credentials`. Every HTTP request is kept in
:attr:`FakeKisVenue.requests`; the control methods (see :mod:`orderlane_kis.fake.control`) script
quotes, fills and faults, in process or over HTTP under ``/_fake/``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from orderlane.clock import Clock
from orderlane_kis.fake.book import Book
from orderlane_kis.fake.codes import Answer, Codes
from orderlane_kis.fake.faults import Fault, VenueClock
from orderlane_kis.fake.notices import NoticeServer
from orderlane_kis.fake.tokens import App, Credentials, TokenService
from orderlane_kis.fake.trading import TR_IDS, Reply, Trading, check_tr
from orderlane_kis.fake.wire import DROP, STALL, Headers, HttpServer, Outcome, Request, Response

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "PAGE_SIZES",
    "RATE_LIMITS",
    "TRADING_OPERATIONS",
    "RecordedRequest",
    "VenueCore",
]

Mode = Literal["paper", "live"]

#: Rows per page of the daily inquiry.
PAGE_SIZES: dict[Mode, int] = {"paper": 15, "live": 100}
#: Trading requests per rolling second, per app key.
RATE_LIMITS: dict[Mode, int] = {"paper": 1, "live": 18}
#: The instruments a fresh venue lists: code -> (name, quote).
DEFAULT_INSTRUMENTS: dict[str, tuple[str, int]] = {
    "005930": ("삼성전자", 72_000),
    "000660": ("SK하이닉스", 180_000),
    "373220": ("LG에너지솔루션", 400_000),
    "005380": ("현대차", 250_000),
    "000270": ("기아", 100_000),
    "035420": ("NAVER", 190_000),
    "035720": ("카카오", 42_000),
    "068270": ("셀트리온", 170_000),
    "105560": ("KB금융", 80_000),
    "051910": ("LG화학", 350_000),
}
DEFAULT_ACCOUNT = "50000001-01"
DEFAULT_HTS_ID = "orderlane"
DEFAULT_CASH = 100_000_000

_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/oauth2/tokenP"): "token",
    ("POST", "/oauth2/revokeP"): "revoke",
    ("POST", "/oauth2/Approval"): "approval",
    ("POST", "/uapi/hashkey"): "hashkey",
    ("POST", "/uapi/domestic-stock/v1/trading/order-cash"): "place",
    ("POST", "/uapi/domestic-stock/v1/trading/order-rvsecncl"): "cancel",
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"): "inquiry",
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-balance"): "balance",
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl"): "cancellable",
    ("GET", "/uapi/domestic-stock/v1/trading/inquire-psbl-order"): "orderable",
}
#: The operations that count against the rate limit.
TRADING_OPERATIONS = frozenset(
    {"place", "cancel", "inquiry", "balance", "cancellable", "orderable"}
)
_TRADING = TRADING_OPERATIONS
_JSON = "application/json; charset=UTF-8"
_NOT_FOUND = Answer("1", "EGW00404", "요청하신 서비스를 찾을 수 없습니다.", 404)
_BAD_JSON = Answer("1", "OPSQ0001", "JSON PARSING ERROR", 500)
_GARBLED = b'{"rt_cd":"0","msg_cd":"APBK0013","msg1":"\xec\xa3\xbc\xeb\xac\xb8 \xec\xa0\x84'


@attrs.define
class RecordedRequest:
    """One HTTP request the venue received, as it came (header names as spelled), with the
    operation it was for and how the venue answered (``status`` None: not answered)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    operation: str
    at: datetime
    monotonic: float
    status: int | None = None
    msg_cd: str | None = None

    def header(self, name: str) -> str | None:
        return Headers(self.headers).get(name)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "headers": [list(pair) for pair in self.headers],
            "body": self.body.decode("utf-8", "replace"),
            "operation": self.operation,
            "at": self.at.isoformat(),
            "monotonic": self.monotonic,
            "status": self.status,
            "msg_cd": self.msg_cd,
        }


def _json_response(
    status: int, body: Mapping[str, object], extra: list[tuple[str, str]]
) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(status, [("Content-Type", _JSON), *extra], data)


class VenueCore:
    """Everything but the control API: state, HTTP dispatch, faults and the request record."""

    def __init__(
        self,
        mode: Mode = "paper",
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ws_port: int = 0,
        credentials: Credentials | None = None,
        ping_interval: float | None = 10.0,
    ) -> None:
        if mode not in PAGE_SIZES:
            raise ValueError(f"mode must be 'paper' or 'live', not {mode!r}")
        self.mode: Mode = mode
        self.host = host
        self.clock = VenueClock(clock)
        self.book = Book(mode, self.clock.now, self.clock.monotonic)
        self.tokens = TokenService(mode, self.clock.now, self.clock.monotonic)
        self.trading = Trading(self.book, mode, PAGE_SIZES[mode])
        self.rate_limit: tuple[int, float] | None = (RATE_LIMITS[mode], 1.0)
        self.rate_limit_status = 500
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.rate_limit_answers = 0
        self._served: dict[str, collections.deque[float]] = {}
        for code, (name, quote) in DEFAULT_INSTRUMENTS.items():
            self.book.add_instrument(code, name, quote)
        self.credentials = credentials or Credentials.generate(DEFAULT_ACCOUNT, DEFAULT_HTS_ID)
        self._add_app(self.credentials, mode, DEFAULT_CASH)
        self.http = HttpServer(self._handle, host, port)
        self.notices = NoticeServer(
            mode,
            self.tokens,
            self.book,
            self._hts_ids,
            self.clock.now,
            host,
            ws_port,
            ping_interval,
        )

    def _add_app(self, credentials: Credentials, mode: Mode, cash: int) -> App:
        if credentials.account not in self.book.accounts:
            self.book.add_account(credentials.account, "홍길동", cash)
        return self.tokens.add_app(credentials, mode, [credentials.account])

    def _hts_ids(self, account: str) -> list[str]:
        return [
            app.credentials.hts_id for app in self.tokens.apps.values() if account in app.accounts
        ]

    # ------------------------------------------------------------------ lifecycle

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.http.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.notices.port}"

    def adapter_options(self, token_cache: str | os.PathLike[str], **extra: Any) -> dict[str, Any]:
        """Options of the KIS adapter that trade at this venue with its own credentials: the
        app key and secret, the account, both URLs and where tokens are cached; ``extra`` adds
        settings (or replaces these)."""
        credentials = self.credentials
        return {
            "app_key": credentials.app_key,
            "app_secret": credentials.app_secret,
            "account": credentials.account,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "token_cache": os.fspath(token_cache),
            **extra,
        }

    async def start(self) -> None:
        await self.http.start()
        await self.notices.start()

    async def stop(self) -> None:
        await self.notices.stop()
        await self.http.stop()

    # ------------------------------------------------------------------ dispatch

    async def _handle(self, request: Request) -> Outcome:
        operation = _ROUTES.get((request.method, request.path), "unknown")
        record = RecordedRequest(
            request.method,
            request.path,
            request.query,
            list(request.headers),
            request.body,
            operation,
            self.clock.now(),
            self.clock.monotonic(),
        )
        self.requests.append(record)
        fault = self._take_fault(operation)
        outcome = await self._answer(request, operation, fault)
        if isinstance(outcome, Response):
            record.status = outcome.status
            record.msg_cd = _msg_cd(outcome)
        return outcome

    def _take_fault(self, operation: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(operation):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _answer(self, request: Request, operation: str, fault: Fault | None) -> Outcome:
        action = fault.action if fault is not None else None
        if fault is not None and action == "drop_before":
            return DROP
        if fault is not None and action == "stall_before":
            return STALL
        if fault is not None and action == "delay":
            await asyncio.sleep(fault.seconds)
        headers = self._trading_headers(request) if operation in _TRADING else []
        if fault is not None and action == "rate_limit":
            return _json_response(fault.status, Codes.RATE_LIMIT.body(), headers)
        if fault is not None and action == "token_expired":
            return _json_response(500, Codes.TOKEN_EXPIRED.body(), headers)
        if fault is not None and not fault.processed:
            if action == "gateway_timeout":
                return self._gateway_timeout(fault, headers)
            if action == "http_error":
                return _http_error(fault.status)
            if action == "raw":
                return _raw(fault)
        if operation in _TRADING and self._over_rate_limit(request):
            self.rate_limit_answers += 1
            answer = Codes.RATE_LIMIT
            return _json_response(self.rate_limit_status, answer.body(), headers)
        response = self._process(request, operation, headers)
        if fault is None or action == "delay":
            return response
        if action == "drop_after":
            return DROP
        if action == "stall_after":
            return STALL
        if action == "gateway_timeout":
            return self._gateway_timeout(fault, headers)
        if action == "http_error":
            return _http_error(fault.status)
        if action == "garbled":
            return Response(200, [("Content-Type", _JSON), *headers], _GARBLED)
        if action == "raw":
            return _raw(fault)
        await self.notices.flush()  # notices_first
        return response

    def _gateway_timeout(self, fault: Fault, headers: list[tuple[str, str]]) -> Response:
        answer = Codes.GATEWAY_TIMEOUT if fault.msg_cd == "EGW00301" else Codes.GATEWAY_NO_ANSWER
        return _json_response(500, answer.body(), headers)

    def _trading_headers(self, request: Request) -> list[tuple[str, str]]:
        return [
            ("tr_id", request.headers.get("tr_id") or ""),
            ("tr_cont", ""),
            ("gt_uid", secrets.token_hex(16)),
        ]

    def _over_rate_limit(self, request: Request) -> bool:
        """Whether this request would put more than the limit into one rolling window."""
        if self.rate_limit is None:
            return False
        limit, period = self.rate_limit
        served = self._served.setdefault(request.headers.get("appkey") or "", collections.deque())
        now = self.clock.monotonic()
        while served and served[0] <= now - period:
            served.popleft()
        if len(served) >= limit:
            return True
        served.append(now)
        return False

    def _process(
        self, request: Request, operation: str, headers: list[tuple[str, str]]
    ) -> Response:
        if operation == "unknown":
            return _json_response(404, _NOT_FOUND.body(), [])
        body: dict[str, Any]
        if request.method == "POST":
            try:
                parsed = json.loads(request.body or b"{}")
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return _json_response(_BAD_JSON.status, _BAD_JSON.body(), headers)
            body = parsed
        else:
            body = dict(request.query)
        if operation in ("token", "revoke", "approval"):
            oauth = {str(key).lower(): value for key, value in body.items()}
            service = {
                "token": self.tokens.issue,
                "revoke": self.tokens.revoke,
                "approval": self.tokens.approve,
            }[operation]
            status, answer = service(oauth)
            return _json_response(status, answer, [])
        if operation == "hashkey":
            return self._hashkey(request, body)
        params = {
            str(key).upper(): "" if value is None else str(value) for key, value in body.items()
        }
        return self._trade(request, operation, params, headers)

    def _hashkey(self, request: Request, body: dict[str, Any]) -> Response:
        app = self.tokens.apps.get(request.headers.get("appkey") or "")
        if app is None or app.credentials.app_secret != request.headers.get("appsecret"):
            return _json_response(
                403,
                {"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey입니다."},
                [],
            )
        digest = hashlib.sha256(json.dumps(body, ensure_ascii=False).encode("utf-8")).hexdigest()
        return _json_response(200, {"BODY": body, "HASH": digest}, [])

    def _trade(
        self,
        request: Request,
        operation: str,
        params: dict[str, str],
        headers: list[tuple[str, str]],
    ) -> Response:
        app = self.tokens.authenticate(
            request.headers.get("authorization"),
            request.headers.get("appkey"),
            request.headers.get("appsecret"),
        )
        if isinstance(app, Answer):
            return _json_response(app.status, app.body(), headers)
        tr_id = (request.headers.get("tr_id") or "").strip().upper()
        refusal = check_tr(operation, self.mode, tr_id)  # type: ignore[arg-type]
        if refusal is not None:
            return _json_response(refusal.status, refusal.body(), headers)
        tr_cont = request.headers.get("tr_cont") or ""
        reply: Reply
        if operation == "place":
            reply = self.trading.place(app, tr_id, params)
        elif operation == "cancel":
            reply = self.trading.cancel(app, tr_id, params)
        elif operation == "inquiry":
            reply = self.trading.inquiry(app, params, tr_cont)
        elif operation == "balance":
            reply = self.trading.balance(app, params, tr_cont)
        elif operation == "orderable":
            reply = self.trading.orderable(app, params)
        else:
            reply = self.trading.cancellable(app, params)
        headers = [(name, reply.tr_cont if name == "tr_cont" else value) for name, value in headers]
        return _json_response(reply.answer.status, reply.body(), headers)


def _raw(fault: Fault) -> Response:
    return Response(fault.status, [("Content-Type", fault.content_type)], fault.body)


def _http_error(status: int) -> Response:
    try:
        from http import HTTPStatus

        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
    return Response(status, [("Content-Type", "text/html")], body)


def _msg_cd(response: Response) -> str | None:
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    if isinstance(body, dict):
        code = body.get("msg_cd", body.get("error_code"))
        return None if code is None else str(code)
    return None


assert set(TR_IDS) == _TRADING
