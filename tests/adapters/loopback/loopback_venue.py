"""A fake broker behind a real HTTP server on 127.0.0.1, and the harness that scripts it.

The server speaks the JSON the ``loopback_http`` adapter speaks and keeps its books in a
:class:`~orderlane_mock.MockVenue`, so the harness scripts it with the mock's own harness
methods. What the suite asks of the wire is made real at the socket:

- ``connection``: the next place request goes to a port on which nothing listens (the harness
  keeps it bound, so the kernel refuses the connection): httpx raises ``ConnectError`` and the
  venue never sees the request. The adapter reaches the venue through an httpx transport the
  harness hands it for that (:class:`Door`).
- ``timeout_before`` / ``timeout_after``: the venue reads the request (and takes the order, for
  ``timeout_after``) and never answers; the adapter's real read timeout ends the wait (the
  transport shortens it for such a request, so that a stall costs a quarter of a second while
  every other request keeps a timeout no loaded machine runs out of).
- ``drop_after_accept``: the venue takes the order and resets the connection.
- ``garbled``: the venue takes the order and answers with a body that is not JSON.
- ``rate_limit``: 429.

A place answer scripted to be slow (``delay_answer_next``) is held at the socket: the venue takes
the order at once and writes the answer only once ``release_answers`` is called.

The server runs in the test's event loop, so the scenario's fake clock, which moves only when
that loop is idle, never moves while a request or its answer is on the way: the venue stamps
each arrival at the simulated time its permit was granted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from orderlane import Capability, Order, OrderSnapshot, OrderStatus, OrderType, Side
from orderlane.errors import (
    BrokerConnectionError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    OrderNotFoundError,
    OrderRejectedError,
)
from orderlane.testing import FailKind, VenueHarness
from orderlane_mock import MockVenue, VenueRequest
from orderlane_mock.adapter import CAPABILITIES
from orderlane_mock.harness import MockHarness

#: Seconds (real time) the adapter waits for an answer: more than a loaded machine ever takes.
ANSWER_TIMEOUT = 10.0
#: Seconds (real time) it waits for an answer the venue is scripted to withhold.
STALL_TIMEOUT = 0.25

_STATES = {
    OrderStatus.SUBMITTED: "accepted",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
}
_CODES = {
    "InsufficientBalanceError": "INSUFFICIENT_FUNDS",
    "InvalidSymbolError": "UNKNOWN_SYMBOL",
    "OrderValidationError": "INVALID_ORDER",
}
Answer = tuple[int, Any]  # an HTTP status and a JSON body (or raw bytes: not JSON)


class Stall(Exception):
    """The venue never answers this request."""


class Drop(Exception):
    """The venue resets the connection instead of answering."""


def money(value: Any) -> Any:
    """An amount as the venue's JSON carries it: decimal text. A float (a malformed answer the
    harness scripted) goes out as a JSON number, as a venue that sends numbers does."""
    return value if isinstance(value, float) else str(value)


def record(snapshot: OrderSnapshot) -> dict[str, Any]:
    """An order as the venue's JSON carries it."""
    return {
        "order_no": snapshot.broker_order_id,
        "state": _STATES[snapshot.status],
        "filled_qty": snapshot.filled_quantity,
        "filled_amount": money(snapshot.filled_notional or 0),
        "fees": money(snapshot.commission or 0),
        "time": snapshot.broker_time.isoformat() if snapshot.broker_time else None,
        "message": snapshot.reason,
        "executions": [
            {
                "exec_id": e.fill_id,
                "qty": e.quantity,
                "price": money(e.price),
                "fee": money(e.commission),
                "time": e.executed_at.isoformat() if e.executed_at else None,
            }
            for e in snapshot.executions
        ],
    }


class VenueServer:
    """The HTTP server: HTTP/1.1 with keep-alive, one JSON route per broker request."""

    def __init__(self, venue: MockVenue) -> None:
        self.venue = venue
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.closing = asyncio.Event()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        # Stalled and held answers wait for this; idle keep-alive connections are cut. Every
        # handler then ends by itself (a cancelled one is logged as an error on Python 3.11).
        self.closing.set()
        for writer in list(self.writers):
            writer.transport.abort()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            while request := await read_request(reader):
                # A place answer scripted to be slow: the venue takes the order at once, and
                # the answer waits at the socket until the harness releases it.
                gate = (
                    self.venue.take_answer_delay() if request[:2] == ("POST", "/orders") else None
                )
                try:
                    status, body = self.answer(*request)
                    if gate is not None and not await self.released(gate):
                        return
                except Stall:
                    await self.closing.wait()  # no answer, ever: until the server stops
                    return
                except Drop:
                    writer.transport.abort()
                    return
                await write_answer(writer, status, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.handlers.discard(task)
            self.writers.discard(writer)
            writer.close()

    async def released(self, gate: asyncio.Event) -> bool:
        """Wait for ``gate``; False when the server stops first."""
        waits = {asyncio.ensure_future(gate.wait()), asyncio.ensure_future(self.closing.wait())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in pending:
            wait.cancel()
        return gate.is_set()

    def answer(self, method: str, path: str, query: str, body: Any) -> Answer:
        try:
            return self.route(method, path, query, body)
        except BrokerRateLimitError as error:
            return 429, {"code": "RATE_LIMITED", "message": str(error)}
        except OrderRejectedError as error:
            code = _CODES.get(type(error).__name__, "REJECTED")
            return 422, {"code": code, "message": str(error)}
        except OrderNotFoundError as error:
            return 404, {"code": "NO_SUCH_ORDER", "message": str(error)}
        except BrokerTimeoutError:
            raise Stall from None  # scripted: no answer (the order taken or not)
        except BrokerConnectionError:
            raise Drop from None  # scripted: the connection drops after the venue took it
        except Exception:  # scripted: an answer that does not parse
            return 200, b"<html><body>502 Bad Gateway</body></html>"

    def route(self, method: str, path: str, query: str, body: Any) -> Answer:
        venue = self.venue
        parts = path.strip("/").split("/")
        if (method, parts) == ("POST", ["orders"]):
            return 200, record(venue.place(incoming_order(body)))
        if (method, parts) == ("POST", ["orders", "query"]):
            page, more = venue.statuses_page(body["order_nos"], body["page"])
            return 200, {"orders": [record(s) for s in page.values()], "more": more}
        if (method, parts) == ("POST", ["orders", "lookup"]):
            # One page of the day's orders matched against many client ids: "unsettled" lists
            # the ids the venue cannot answer for yet.
            answers, more = venue.lookup_page(body["client_ids"], body["page"])
            found = {
                i: record(a.snapshot())
                for i, a in answers.items()
                if a not in (None, "cannot_tell")
            }
            unsettled = [i for i, a in answers.items() if a == "cannot_tell"]
            return 200, {"orders": found, "unsettled": unsettled, "more": more}
        if (method, parts) == ("GET", ["orders"]):
            client_id = query.removeprefix("client_id=")
            found = venue.lookup(client_id)
            if found == "cannot_tell":
                return 200, {"orders": [], "complete": False}
            orders = [] if found is None else [record(found.snapshot())]
            return 200, {"orders": orders, "complete": True}
        if method == "GET" and len(parts) == 2:
            return 200, record(venue.status(parts[1]))
        if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
            cancelled = venue.cancel(parts[1])
            if cancelled is None:
                return 409, {"code": "NOT_OPEN", "message": f"order {parts[1]} is not open"}
            return 200, record(cancelled)
        return 400, {"code": "BAD_REQUEST", "message": f"no route {method} {path}"}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, str, Any] | None:
    """The next request on a keep-alive connection: method, path, query and JSON body."""
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = json.loads(await reader.readexactly(length)) if length else None
    path, _, query = target.partition("?")
    return method, path, query, body


async def write_answer(writer: asyncio.StreamWriter, status: int, body: Any) -> None:
    """One JSON answer (``body`` as JSON, or bytes sent as they are) on a keep-alive connection."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n"
    writer.write(f"{head}Content-Type: application/json\r\n\r\n".encode() + data)
    await writer.drain()


def incoming_order(body: Mapping[str, Any]) -> Order:
    """The order a place request describes, as the venue's books take it."""
    price = body["price"]
    return Order(
        id=body["client_id"],
        account_id="venue",
        session_id="",
        symbol=body["symbol"],
        side=Side(body["side"]),
        quantity=int(body["qty"]),
        order_type=OrderType(body["type"]),
        limit_price=None if price is None else Decimal(price),
    )


def is_place(request: httpx.Request) -> bool:
    return (request.method, request.url.path) == ("POST", "/orders")


class Door(httpx.AsyncBaseTransport):
    """The adapter's way to the venue: real HTTP over loopback, except for the place requests
    the harness scripted to fail. A refused one goes to a port on which nothing listens; one
    the venue withholds its answer from waits only :data:`STALL_TIMEOUT` for it."""

    def __init__(self, on_refused: Callable[[], None]) -> None:
        self.transport = httpx.AsyncHTTPTransport()
        self.on_refused = on_refused
        self.failures: collections.deque[FailKind] = collections.deque()
        self.closed_port = socket.socket()  # bound, never listening: connections are refused
        self.closed_port.bind(("127.0.0.1", 0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        failure = self.failures.popleft() if self.failures and is_place(request) else None
        if failure == "connection":
            self.on_refused()
            request.url = request.url.copy_with(port=self.closed_port.getsockname()[1])
        elif failure in ("timeout_before", "timeout_after"):
            timeouts = request.extensions.get("timeout", {})
            request.extensions["timeout"] = {**timeouts, "read": STALL_TIMEOUT}
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.transport.aclose()

    def close(self) -> None:
        self.closed_port.close()


class LoopbackHarness(MockHarness):
    """Scripts the fake broker for the conformance suite; builds on the mock's harness, whose
    scripting members act on the venue's books."""

    adapter_name = "loopback-http"
    capabilities: frozenset[Capability] = CAPABILITIES

    def __init__(self, *, client_order_id: bool = False) -> None:
        super().__init__(client_order_id=client_order_id)
        self.server = VenueServer(self.venue)
        self.door = Door(self._refused)
        self.base_url = ""

    async def start(self) -> None:
        self.base_url = await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
        self.door.close()

    def venue_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": ANSWER_TIMEOUT,
            "transport": self.door,
        }
        if Capability.CLIENT_ORDER_ID in self.capabilities:
            options["client_order_id"] = True
        return options

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        self.door.failures.extend([kind] * times)
        if kind != "connection":  # a refused request never reaches the venue
            super().fail_next(kind, times)

    def _refused(self) -> None:
        # A refused connection counts as a request, though the venue never saw it.
        refused = VenueRequest("place", None, None, self.venue.clock(), accepted=False)
        self.venue.requests.append(refused)


def create_harness(options: Mapping[str, Any]) -> VenueHarness:
    return LoopbackHarness(client_order_id=bool(options.get("client_order_id")))
