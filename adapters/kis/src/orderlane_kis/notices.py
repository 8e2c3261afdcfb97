"""KIS order notices over WebSocket (H0STCNI0 live, H0STCNI9 paper) as the tracker's push stream.

The stream takes an approval key, subscribes with the HTS id, reads the ack's AES key and iv,
and decrypts each data frame (``1|H0STCNI0|001|<base64>``: AES-256-CBC, PKCS7). A fill notice
(``CNTG_YN`` 2) adds to the order's running total, which is yielded as a cumulative snapshot;
notices with ``CNTG_YN`` 1 (accept, modify, cancel, refusal) are never fills: a cancel or a
refusal makes the tracker poll for KIS's authoritative answer. A frame that does not parse is
logged without its content and answered with a gap (a poll), never guessed at. ``PINGPONG`` is
answered with a pong frame and the text echoed. The connection opens when the engine starts and
keeps what arrives until the tracker reads it. A dropped connection is reopened with backoff,
and every reconnect yields a gap, since notices sent meanwhile are lost; the gap poll
resynchronises the totals.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import websockets
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.client import ClientConnection

from orderlane import BrokerContext, OrderSnapshot, OrderStatus, StreamGap
from orderlane.broker import PushItem
from orderlane.errors import BrokerError
from orderlane_kis.daily import DayMap, TradingDay
from orderlane_kis.http import KisHttp
from orderlane_kis.krx import kst
from orderlane_kis.parsing import NOTICE_COLUMNS, Notice, NoticeFormatError, parse_notice
from orderlane_kis.redaction import websocket_logger

__all__ = ["NOTICE_TR", "NoticeStream", "RunningTotals", "decrypt", "subscribe_message"]

log = logging.getLogger("orderlane.kis.notices")

NOTICE_TR = {"live": "H0STCNI0", "paper": "H0STCNI9"}
NOTICE_PATH = "/tryitout"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: websockets' logger for the notice connection, without its frame lines (the subscription
#: carries the approval key).
WIRE_LOG = websocket_logger("orderlane.kis.notices.websocket")


def subscribe_message(approval_key: str, tr_id: str, hts_id: str) -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": "P",
                "tr_type": "1",
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": hts_id}},
        }
    )


def decrypt(key: str, iv: str, data: str) -> str:
    """AES-256-CBC with PKCS7 padding, as KIS encrypts notices; ValueError when it fails."""
    try:
        raw = base64.b64decode(data, validate=True)
        decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot decrypt ({type(error).__name__})") from None


@attrs.define
class _Total:
    quantity: int = 0
    notional: Decimal = Decimal(0)
    #: Set when an inquiry raised this total: the KST time (HHMMSS) up to which an execution's
    #: notice may already be in the inquiry's figure. None: every notice adds.
    counted_until: str | None = None
    #: A notice was held back: the next inquiry that has more than this total is taken.
    doubtful: bool = False


#: How far KIS's clock (a notice's execution time) may be from this machine's: an execution
#: within this long of an inquiry's answer may or may not be in the inquiry's figure.
CLOCK_MARGIN = timedelta(seconds=2)


class RunningTotals:
    """Each order's executions as the notices told them, resynchronised by the gap poll.

    Totals are kept for today only (``today()``, KST): a KIS order number names an order
    within a day, and a total must never carry over to another day's order.

    Notices carry each execution; an inquiry carries the order's cumulative figure. After a
    gap (``resync_pending``: notices may have been lost) the next inquiry's figure replaces a
    lower total. A notice that was on its way while that inquiry read the order may already be
    in the figure, and adding it again would book a fill that did not happen. So once an
    inquiry has raised an order's total, a notice of an execution not clearly later than the
    inquiry's answer (KIS's execution time against the time the answer was in,
    :data:`CLOCK_MARGIN` either way) is not added: it asks for another poll instead
    (:class:`StreamGap`), and the next inquiry whose figure is higher is taken for that order,
    counting the execution if it was not counted yet. The same holds for an order whose figure
    after a gap was no higher than its total (notices of later executions may hide a lost
    one). The first notice of a clearly later execution ends the doubt about notices: those of
    one order arrive in order. Without a gap or a doubt, notices alone make the total, and an
    inquiry changes nothing (its figure may be ahead of notices still on their way).
    """

    def __init__(self, today: Callable[[], date] | None = None) -> None:
        self._totals: DayMap[str, _Total] = DayMap(today or TradingDay(), keep_yesterday=False)
        self.resync_pending = False
        #: Notices not added because the inquiry may have counted them (each asked for a poll).
        self.held_back = 0

    def __len__(self) -> int:
        return len(self._totals)

    def add(self, notice: Notice) -> OrderSnapshot | StreamGap:
        total = self._totals.setdefault(notice.broker_order_id, _Total())
        if total.counted_until is not None:
            at = notice.at
            if not (len(at) == 6 and at.isdigit() and at > total.counted_until):
                self.held_back += 1
                total.doubtful = True
                return StreamGap(
                    f"KIS notice on order {notice.broker_order_id} may be in the last inquiry"
                )
            total.counted_until = None  # notices arrive in order: the rest are later still
        total.quantity += notice.quantity
        total.notional += notice.price * notice.quantity
        done = notice.order_quantity and total.quantity >= notice.order_quantity
        return OrderSnapshot(
            status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
            broker_order_id=notice.broker_order_id,
            filled_quantity=total.quantity,
            filled_notional=total.notional,
        )

    def resync(self, snapshots: Sequence[OrderSnapshot], answered_at: datetime) -> None:
        """After a gap, or for an order with a notice held back: raise the total to the
        inquiry's figure (answered by ``answered_at``) where that is higher; a total raised
        takes notices again only of executions clearly after ``answered_at``."""
        until = kst(answered_at + CLOCK_MARGIN).strftime("%H%M%S")
        for snapshot in snapshots:
            if snapshot.broker_order_id is None:
                continue
            total = self._totals.get(snapshot.broker_order_id)
            if total is None:
                if not self.resync_pending:
                    continue
                total = self._totals.setdefault(snapshot.broker_order_id, _Total())
            if not (self.resync_pending or total.doubtful):
                continue
            notional = snapshot.cumulative_notional
            if snapshot.filled_quantity > total.quantity and notional is not None:
                total.quantity, total.notional = snapshot.filled_quantity, notional
                total.counted_until = until
                total.doubtful = False
            elif self.resync_pending:
                # A figure no higher than the total after a gap proves nothing lost was
                # counted: notices of later executions may have made up the difference, or
                # the row lags. The next higher figure for the order is taken.
                total.doubtful = True
        self.resync_pending = False


class _Subscription:
    def __init__(self, key: str, iv: str) -> None:
        self.key = key
        self.iv = iv


class NoticeStream:
    """One account's notice stream; :meth:`updates` is ``orderlane_order_updates``."""

    def __init__(
        self, http: KisHttp, totals: RunningTotals, columns: Sequence[str] = NOTICE_COLUMNS
    ) -> None:
        self.http = http
        self.totals = totals
        self.columns = tuple(columns)
        self.connections = 0
        self.unparsed = 0
        self._queue: asyncio.Queue[PushItem] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: Set once the first connection attempt has subscribed or failed.
        self._first_attempt = asyncio.Event()

    def __repr__(self) -> str:
        return f"NoticeStream(connections={self.connections}, unparsed={self.unparsed})"

    @property
    def tr_id(self) -> str:
        return NOTICE_TR[self.http.settings.mode]

    def start(self, ctx: BrokerContext) -> None:
        """Connect and subscribe now (the engine's start), keeping notices until the tracker
        reads them: a notice sent before anyone reads the stream is not lost."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump(ctx))

    async def first_attempt(self) -> bool:
        """Wait until the first connection has subscribed or failed; whether it subscribed.

        KIS pushes notices only to a subscribed socket, so the engine's start waits for it (under
        a timeout of the caller's): an order sent right after the start has its notices."""
        await self._first_attempt.wait()
        return self.connections > 0

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pump(self, ctx: BrokerContext) -> None:
        async for item in self._connections(ctx):
            self._queue.put_nowait(item)

    async def updates(self, ctx: BrokerContext) -> AsyncIterator[PushItem]:
        """``orderlane_order_updates``: what the connection kept and keeps receiving."""
        self.start(ctx)
        while True:
            yield await self._queue.get()

    async def _connections(self, ctx: BrokerContext) -> AsyncIterator[PushItem]:
        settings = self.http.settings
        backoff = BACKOFF_FIRST
        while True:
            try:
                approval = await self.http.approval.issue(ctx)
                async with websockets.connect(
                    settings.ws_url + NOTICE_PATH,
                    open_timeout=settings.timeout,
                    ping_interval=None,
                    proxy=None,
                    logger=WIRE_LOG,
                ) as socket:
                    subscription = await self._subscribe(socket, approval)
                    self.connections += 1
                    # Notices carry each execution, not the total: the totals count on from
                    # what the next inquiry says, on the first subscription too (an engine
                    # that restarts knows fills that no notice of this stream will repeat).
                    self.totals.resync_pending = True
                    self._first_attempt.set()
                    if self.connections > 1:
                        yield StreamGap("KIS notice stream reconnected")
                    else:
                        # KIS sends notices only to a subscribed socket: if the engine's start
                        # stopped waiting for this subscription, what executed meanwhile was not
                        # pushed, so one poll closes that gap.
                        yield StreamGap("KIS notice stream subscribed")
                    backoff = BACKOFF_FIRST
                    async for item in self._read(socket, subscription):
                        yield item
                log.warning("KIS notice stream closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as error:
                log.warning(
                    "KIS notice stream: %s; reconnecting in %.1fs", type(error).__name__, backoff
                )
            except BrokerError as error:
                log.warning("KIS notice stream: %s; reconnecting in %.1fs", error, backoff)
            self._first_attempt.set()
            self.totals.resync_pending = True
            yield StreamGap("KIS notice stream disconnected")
            await ctx.clock.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _subscribe(self, socket: ClientConnection, approval: str) -> _Subscription:
        settings = self.http.settings
        assert settings.hts_id is not None
        await socket.send(subscribe_message(approval, self.tr_id, settings.hts_id))
        while True:
            received = await asyncio.wait_for(socket.recv(), settings.timeout)
            text = received.decode() if isinstance(received, bytes) else received
            if not text.startswith("{"):
                continue  # a data frame before the ack cannot be read yet
            ack = _json(text)
            if _table(ack, "header").get("tr_id") == "PINGPONG":
                await _answer_pingpong(socket, text)
                continue
            body = _table(ack, "body")
            output = _table(body, "output")
            if str(body.get("rt_cd")) != "0":
                code, message = body.get("msg_cd"), body.get("msg1")
                raise BrokerError(f"KIS refused the notice subscription: [{code}] {message}")
            key, iv = output.get("key"), output.get("iv")
            if not (
                isinstance(key, str) and len(key) == 32 and isinstance(iv, str) and len(iv) == 16
            ):
                raise BrokerError("KIS's subscription ack carries no usable key and iv")
            log.info("KIS notices subscribed (%s)", self.tr_id)
            return _Subscription(key, iv)

    async def _read(
        self, socket: ClientConnection, subscription: _Subscription
    ) -> AsyncIterator[PushItem]:
        async for message in socket:
            text = message.decode() if isinstance(message, bytes) else message
            if text.startswith("{"):
                if _table(_json(text), "header").get("tr_id") == "PINGPONG":
                    await _answer_pingpong(socket, text)
                continue
            for item in self._frame(text, subscription):
                yield item

    def _frame(self, text: str, subscription: _Subscription) -> list[PushItem]:
        parts = text.split("|", 3)
        if len(parts) != 4 or parts[1] != self.tr_id:
            return self._unparsed("a frame that is not an order notice", parts[1:2])
        encrypted, _, count_text, data = parts
        try:
            plain = decrypt(subscription.key, subscription.iv, data) if encrypted == "1" else data
        except ValueError as error:
            return self._unparsed(str(error), parts[1:2])
        count = int(count_text) if count_text.isdigit() and int(count_text) > 0 else 1
        values = plain.split("^")
        width = len(self.columns)
        if len(values) != count * width:
            return self._unparsed(f"{len(values)} fields for {count} x {width}", parts[1:2])
        items: list[PushItem] = []
        for index in range(count):
            record = "^".join(values[index * width : (index + 1) * width])
            try:
                notice = parse_notice(record, self.columns)
            except NoticeFormatError as error:
                return [*items, *self._unparsed(str(error), parts[1:2])]
            if notice.is_fill:
                items.append(self.totals.add(notice))
            elif notice.refused or notice.original_order_id.strip("0"):
                # A refusal or a cancel/modify confirmation: KIS's inquiry says how it ended.
                items.append(StreamGap(f"KIS notice on order {notice.broker_order_id}"))
        return items

    def _unparsed(self, why: str, tr: Sequence[str]) -> list[PushItem]:
        """Log (the reason and TR id only: a frame carries the account) and poll instead."""
        self.unparsed += 1
        log.warning(
            "KIS notice frame %s not understood (%s); polling to close the gap",
            tr[0] if tr else "?",
            why,
        )
        return [StreamGap("a KIS notice did not parse")]


async def _answer_pingpong(socket: ClientConnection, text: str) -> None:
    """Answer KIS's ``PINGPONG`` as its own client does (a pong frame) and as other clients do
    (the text echoed back); KIS takes either."""
    await socket.pong(text.encode())
    await socket.send(text)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
