"""A small HTTP/1.1 server on asyncio that writes header names exactly as it is given them.

KIS answers with its own header names in lowercase (``tr_cont``, ``tr_id``, ``gt_uid``) and the
standard ones capitalised (``Content-Type``, ``Content-Length``, ``Date``); KIS's own sample
client breaks on a lowercase ``content-type``. Common server stacks lowercase every name they
write, so the fake venue speaks HTTP itself: keep-alive, ``Content-Length`` and chunked request
bodies, one request at a time per connection. A handler answers with a :class:`Response`, or
with :data:`DROP` (close the connection without an answer) or :data:`STALL` (never answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qsl, urlsplit

import attrs

__all__ = ["DROP", "STALL", "Headers", "HttpServer", "Request", "Response"]

log = logging.getLogger("orderlane_kis.fake")

_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024


class Headers:
    """Header fields in the order and spelling they came in; lookups ignore case."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self.items: list[tuple[str, str]] = list(items or [])

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.items:
            if key.lower() == wanted:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Headers({[key for key, _ in self.items]})"


@attrs.frozen
class Request:
    """One HTTP request as it arrived."""

    method: str
    target: str
    headers: Headers
    body: bytes
    peer: str = ""
    version: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)


@attrs.frozen
class Response:
    """An answer; ``Date`` and ``Content-Length`` are added when the headers lack them."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Close the connection without answering (the peer sees the connection drop).
DROP: Final = _Marker("DROP")
#: Never answer; the connection stays open until the peer gives up or the server stops.
STALL: Final = _Marker("STALL")

Outcome = Response | _Marker
Handler = Callable[[Request], Awaitable[Outcome]]


class _BadRequest(Exception):
    pass


def _encode(response: Response) -> bytes:
    names = {name.lower() for name, _ in response.headers}
    headers = list(response.headers)
    if "date" not in names:
        headers.append(("Date", email.utils.formatdate(usegmt=True)))
    if "content-length" not in names:
        headers.append(("Content-Length", str(len(response.body))))
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + response.body


async def _read_body(reader: asyncio.StreamReader, headers: Headers) -> bytes:
    if (headers.get("transfer-encoding") or "").lower() == "chunked":
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await reader.readline()
            length = int(line.split(b";")[0].strip() or b"0", 16)
            if length == 0:
                while (await reader.readline()).strip():  # trailers
                    pass
                return b"".join(chunks)
            size += length
            if size > _MAX_BODY:
                raise _BadRequest("body too large")
            chunks.append(await reader.readexactly(length))
            await reader.readexactly(2)
    length_text = headers.get("content-length")
    if not length_text:
        return b""
    length = int(length_text)
    if length < 0 or length > _MAX_BODY:
        raise _BadRequest("bad content length")
    return await reader.readexactly(length)


async def _read_request(reader: asyncio.StreamReader, peer: str) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _BadRequest("incomplete request head") from error
        return None
    except asyncio.LimitOverrunError as error:
        raise _BadRequest("request head too large") from error
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"bad request line {lines[0][:80]!r}")
    items = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest("bad header line")
        items.append((name, value.strip()))
    headers = Headers(items)
    try:
        body = await _read_body(reader, headers)
    except (ValueError, asyncio.IncompleteReadError) as error:
        raise _BadRequest("bad body") from error
    return Request(parts[0], parts[1], headers, body, peer, parts[2])


class HttpServer:
    """Serves ``handler`` on ``host:port`` (0: an ephemeral port) until :meth:`stop`."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=_MAX_HEAD
        )
        self._port = self.port

    async def pause(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.drop_connections()

    async def resume(self) -> None:
        """Listen again on the same port."""
        if not self.listening:
            await self.start()

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else ""
        try:
            await self._converse(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        while True:
            try:
                request = await _read_request(reader, peer)
            except _BadRequest as error:
                body = f"bad request: {error}".encode()
                head = [("Content-Type", "text/plain"), ("Connection", "close")]
                writer.write(_encode(Response(400, head, body)))
                await writer.drain()
                return
            if request is None:
                return
            outcome = await self._handler(request)
            if outcome is DROP:
                return
            if outcome is STALL:
                while await reader.read(65536):  # until the peer leaves or the server stops
                    pass
                return
            assert isinstance(outcome, Response)
            writer.write(_encode(outcome))
            await writer.drain()
            connection = (request.headers.get("connection") or "").lower()
            if connection == "close" or (
                request.version == "HTTP/1.0" and connection != "keep-alive"
            ):
                return
