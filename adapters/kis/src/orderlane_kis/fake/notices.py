"""The order-notice WebSocket at ``/tryitout``, as KIS serves it.

A client subscribes with its approval key to ``H0STCNI0`` (live) or ``H0STCNI9`` (paper) for its
HTS id; the ack carries ``header.tr_id``/``tr_key``/``encrypt`` and in its body ``rt_cd`` "0",
``msg_cd`` ``OPSP0000`` and the AES-256 key and iv of the session. Each change of an order is a
frame ``1|<tr_id>|001|<base64>``: AES-256-CBC with PKCS7 padding over 26 ``^``-separated fields.
The server sends ``PINGPONG`` control messages now and then and accepts (and never requires) a
pong frame or a text echo. One session per app key: another session subscribing with a key of
the same app gets ``OPSP8996``.

A test may hold notices back (:meth:`NoticeServer.hold`) and release them later: each keeps the
execution time it was made with, as a notice still on its way does.

Codes other than ``OPSP0000`` and ``OPSP8996`` are the fake venue's own choice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import string
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import attrs
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from orderlane_kis.fake.book import Book, OrderEvent
from orderlane_kis.fake.tokens import TokenService
from orderlane_kis.krx import kst
from orderlane_kis.redaction import websocket_logger

__all__ = [
    "DRIFTED_COLUMNS",
    "NOTICE_COLUMNS",
    "NoticeServer",
    "decrypt",
    "encrypt",
]

log = logging.getLogger("orderlane_kis.fake")

Mode = Literal["paper", "live"]

#: The 26 fields of an order notice, in the order KIS sends them today.
NOTICE_COLUMNS: tuple[str, ...] = (
    "CUST_ID",
    "ACNT_NO",
    "ODER_NO",
    "OODER_NO",
    "SELN_BYOV_CLS",
    "RCTF_CLS",
    "ODER_KIND",
    "ODER_COND",
    "STCK_SHRN_ISCD",
    "CNTG_QTY",
    "CNTG_UNPR",
    "STCK_CNTG_HOUR",
    "RFUS_YN",
    "CNTG_YN",
    "ACPT_YN",
    "BRNC_NO",
    "ODER_QTY",
    "ACNT_NAME",
    "ORD_COND_PRC",
    "ORD_EXG_GB",
    "POPUP_YN",
    "FILLER",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)
#: The layout of an older version of KIS's example code: ODER_QTY 4th, ACNT_NO2 17th.
DRIFTED_COLUMNS: tuple[str, ...] = (
    *NOTICE_COLUMNS[:3],
    "ODER_QTY",
    *NOTICE_COLUMNS[4:16],
    "ACNT_NO2",
    *NOTICE_COLUMNS[17:],
)
NOTICE_TRS: dict[Mode, str] = {"live": "H0STCNI0", "paper": "H0STCNI9"}
MAX_SUBSCRIPTIONS = 40
_EXCHANGES = {"KRX": "1", "NXT": "2", "SOR": "3"}
_ALPHABET = string.ascii_letters + string.digits


def encrypt(plaintext: str, key: str, iv: str) -> str:
    """AES-256-CBC, PKCS7 padding, base64: how KIS encrypts a notice."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")


def decrypt(cipher_text: str, key: str, iv: str) -> str:
    """The inverse of :func:`encrypt` (what a client does with a notice)."""
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    data = decryptor.update(base64.b64decode(cipher_text)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")


@attrs.define(eq=False)
class _Session:
    connection: ServerConnection
    key: str = attrs.Factory(lambda: "".join(secrets.choice(_ALPHABET) for _ in range(32)))
    iv: str = attrs.Factory(lambda: "".join(secrets.choice(_ALPHABET) for _ in range(16)))
    app_key: str | None = None
    subscriptions: set[tuple[str, str]] = attrs.Factory(set)
    # Frames go out through one queue per session, in the order the venue made them.
    outbox: asyncio.Queue[str] = attrs.Factory(asyncio.Queue)


@attrs.frozen
class WsMessage:
    """One WebSocket message the venue received (``direction`` "in") or sent ("out"); notices
    are recorded in plaintext, before encryption."""

    direction: Literal["in", "out"]
    text: str
    at: datetime


@attrs.frozen
class _HeldNotice:
    """A notice held back: the change of the order, and when the venue made it (its
    ``STCK_CNTG_HOUR``)."""

    event: OrderEvent
    at: datetime


class NoticeServer:
    """Serves the notice WebSocket and turns the book's order events into encrypted frames."""

    def __init__(
        self,
        mode: Mode,
        tokens: TokenService,
        book: Book,
        hts_ids: Callable[[str], list[str]],
        now: Callable[[], datetime],
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float | None = 10.0,
    ) -> None:
        self.mode = mode
        self._tokens = tokens
        self._book = book
        self._hts_ids = hts_ids  # account number -> HTS ids that may see its notices
        self._now = now
        self._host = host
        self._port = port
        self.ping_interval = ping_interval
        self.columns: Sequence[str] = NOTICE_COLUMNS
        self.drop_next = 0  # notices to lose on the way
        self.holding = False  # notices made meanwhile wait for release()
        self._held: list[_HeldNotice] = []
        self.messages: list[WsMessage] = []
        self.pongs = 0
        self._sessions: set[_Session] = set()
        self._owners: dict[str, _Session] = {}
        self._server: Server | None = None
        book.listeners.append(self._on_event)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the notice server is not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            self._host,
            self._port,
            process_request=self._check_path,
            ping_interval=None,
            compression=None,
            server_header=None,
            # The venue records every message itself; websockets' frame lines would log the
            # clients' approval keys and the sessions' AES keys.
            logger=websocket_logger("orderlane_kis.fake.websocket"),
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def disconnect_all(self) -> None:
        """Drop every session, as a reconnecting notice host does."""
        for session in list(self._sessions):
            session.connection.transport.abort()

    @staticmethod
    def _check_path(connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        if path == "/tryitout" or path.startswith("/tryitout/"):
            return None
        headers = Headers([("Content-Type", "text/plain")])
        return Response(404, "Not Found", headers, b"no such WebSocket path\n")

    # ------------------------------------------------------------------ sessions

    async def _serve(self, connection: ServerConnection) -> None:
        session = _Session(connection)
        self._sessions.add(session)
        helpers = [
            asyncio.ensure_future(self._ping(session)),
            asyncio.ensure_future(self._write(session)),
        ]
        try:
            async for message in connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self._record("in", text)
                self._on_message(session, text)
        except ConnectionClosed:
            pass
        finally:
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            self._sessions.discard(session)
            if session.app_key is not None and self._owners.get(session.app_key) is session:
                del self._owners[session.app_key]

    async def _ping(self, session: _Session) -> None:
        if self.ping_interval is None:
            return
        while True:
            await asyncio.sleep(self.ping_interval)
            self.send_pingpong(session)

    async def _write(self, session: _Session) -> None:
        while True:
            text = await session.outbox.get()
            try:
                await session.connection.send(text)
            except ConnectionClosed:
                while not session.outbox.empty():  # nobody will read them: let flush() return
                    session.outbox.get_nowait()
                    session.outbox.task_done()
                return
            finally:
                session.outbox.task_done()

    async def flush(self) -> None:
        """Wait until every frame made so far has been written to its session."""
        for session in list(self._sessions):
            await session.outbox.join()

    def send_pingpong(self, session: _Session | None = None) -> None:
        """Send ``PINGPONG`` to one session (default: every session)."""
        stamp = kst(self._now()).strftime("%Y%m%d%H%M%S")
        text = json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}})
        for target in [session] if session is not None else list(self._sessions):
            self._send(target, text)

    def _send(self, session: _Session, text: str, record: str | None = None) -> None:
        self._record("out", text if record is None else record)
        session.outbox.put_nowait(text)

    def _record(self, direction: Literal["in", "out"], text: str) -> None:
        self.messages.append(WsMessage(direction, text, self._now()))

    def _on_message(self, session: _Session, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self._ack(session, "", "", "1", "OPSP9999", "JSON PARSING ERROR")
            return
        header = message.get("header") if isinstance(message, dict) else None
        if not isinstance(header, dict):
            self._ack(session, "", "", "1", "OPSP9999", "JSON PARSING ERROR")
            return
        if header.get("tr_id") == "PINGPONG":  # a client echoing the server's ping
            self.pongs += 1
            return
        body = message.get("body")
        inputs = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inputs, dict):
            self._ack(session, "", "", "1", "OPSP9999", "JSON PARSING ERROR : body.input")
            return
        self._subscribe(session, header, inputs)

    def _subscribe(self, session: _Session, header: dict[str, Any], inputs: dict[str, Any]) -> None:
        tr_id, tr_key = str(inputs.get("tr_id", "")), str(inputs.get("tr_key", ""))
        app_key = self._tokens.approval_keys.get(str(header.get("approval_key", "")))
        if app_key is None:
            self._ack(session, tr_id, tr_key, "1", "OPSP0011", "invalid approval : NOT FOUND")
            return
        owner = self._owners.get(app_key)
        if owner is not None and owner is not session:
            self._ack(session, tr_id, tr_key, "1", "OPSP8996", "ALREADY IN USE appkey")
            return
        if tr_id != NOTICE_TRS[self.mode]:
            self._ack(session, tr_id, tr_key, "1", "OPSP0009", "invalid tr_id")
            return
        kind = str(header.get("tr_type", ""))
        subscription = (tr_id, tr_key)
        if kind == "2":
            if subscription not in session.subscriptions:
                self._ack(session, tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR")
                return
            session.subscriptions.discard(subscription)
            self._ack(session, tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS")
            return
        if kind != "1":
            self._ack(session, tr_id, tr_key, "1", "OPSP9999", "invalid tr_type")
            return
        if subscription in session.subscriptions:
            self._ack(session, tr_id, tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE")
            return
        if len(session.subscriptions) >= MAX_SUBSCRIPTIONS:
            self._ack(session, tr_id, tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER")
            return
        session.app_key = app_key
        self._owners[app_key] = session
        session.subscriptions.add(subscription)
        self._ack(session, tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS")

    def _ack(
        self, session: _Session, tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str
    ) -> None:
        body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
        if msg_cd == "OPSP0000":
            body["output"] = {"iv": session.iv, "key": session.key}
        ack = {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "Y"}, "body": body}
        self._send(session, json.dumps(ack, ensure_ascii=False))

    # ------------------------------------------------------------------ notices

    def hold(self) -> None:
        """Keep the notices made from now on instead of sending them, until :meth:`release`."""
        self.holding = True

    def release(self) -> int:
        """Send the notices held, in the order they were made, to the sessions subscribed now
        (each with the execution time it was made with), and send notices at once again; how
        many were released."""
        held, self._held = self._held, []
        self.holding = False
        for notice in held:
            self._notify(notice.event, notice.at)
        return len(held)

    def _on_event(self, event: OrderEvent) -> None:
        if self.holding:
            self._held.append(_HeldNotice(event, self._now()))
            return
        self._notify(event, self._now())

    def _notify(self, event: OrderEvent, at: datetime) -> None:
        """Send the notice of ``event``, made at ``at``, to every session subscribed for the
        order's account (unless it is to be lost)."""
        tr_id = NOTICE_TRS[self.mode]
        hts_ids = set(self._hts_ids(event.order.account))
        targets = [
            (session, hts_id)
            for session in self._sessions
            for (subscribed, hts_id) in session.subscriptions
            if subscribed == tr_id and hts_id in hts_ids
        ]
        if not targets:
            return
        if self.drop_next > 0:
            self.drop_next -= 1
            self._record("out", f"(lost) {self._fields(event, targets[0][1], at)}")
            return
        for session, hts_id in targets:
            plaintext = self._fields(event, hts_id, at)
            frame = f"1|{tr_id}|001|{encrypt(plaintext, session.key, session.iv)}"
            self._send(session, frame, record=plaintext)

    def _fields(self, event: OrderEvent, hts_id: str, at: datetime) -> str:
        order = event.order
        account = self._book.accounts[order.account]
        instrument = self._book.instruments.get(order.symbol)
        fill = event.kind == "filled"
        correction = {"modified": "1", "cancelled": "2"}.get(event.kind, "0")
        accept = {"accepted": "1", "filled": "2", "rejected": "1"}.get(event.kind, "2")
        if event.kind == "cancelled" and order.kind != "cancel":
            accept = "3"  # cancelled by the venue (an IOC remainder, a halt)
        values = {
            "CUST_ID": hts_id,
            "ACNT_NO": account.cano + account.product,
            "ODER_NO": order.odno,
            "OODER_NO": order.original or "",
            "SELN_BYOV_CLS": order.side,
            "RCTF_CLS": correction,
            "ODER_KIND": order.ord_dvsn,
            "ODER_COND": "0",
            "STCK_SHRN_ISCD": order.symbol,
            "CNTG_QTY": str(event.quantity),
            "CNTG_UNPR": str(event.price) if fill else "0",
            "STCK_CNTG_HOUR": kst(at).strftime("%H%M%S"),
            "RFUS_YN": "1" if event.kind == "rejected" else "0",
            "CNTG_YN": "2" if fill else "1",
            "ACPT_YN": accept,
            "BRNC_NO": order.branch,
            "ODER_QTY": str(order.quantity),
            "ACNT_NAME": account.name,
            "ORD_COND_PRC": "0",
            "ORD_EXG_GB": _EXCHANGES.get(order.exchange, "1"),
            "POPUP_YN": "N",
            "FILLER": "",
            "CRDT_CLS": "10",
            "CRDT_LOAN_DATE": "",
            "CNTG_ISNM40": instrument.name if instrument else "",
            "ODER_PRC": str(order.price),
            "ACNT_NO2": account.cano + account.product,
        }
        return "^".join(values.get(column, "") for column in self.columns)
