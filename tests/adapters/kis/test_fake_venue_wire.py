"""The fake KIS venue's own HTTP/1.1 server, over raw sockets."""

from __future__ import annotations

import asyncio

import pytest

from orderlane_kis.fake.wire import DROP, Headers, HttpServer, Request, Response


async def echo(request: Request) -> Response | object:
    if request.path == "/drop":
        return DROP
    body = f"{request.method} {request.path} {request.body.decode()}".encode()
    return Response(201, [("Content-Type", "text/plain"), ("x_seen", request.version)], body)


@pytest.fixture
async def server() -> HttpServer:
    served = HttpServer(echo)  # type: ignore[arg-type]
    await served.start()
    yield served  # type: ignore[misc]
    await served.stop()


async def exchange(port: int, data: bytes, read_all: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read() if read_all else reader.read(65536), 5)
    writer.close()
    return answer


async def test_keep_alive_and_two_requests_on_one_connection(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for body in (b"one", b"two"):
        writer.write(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n" + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nx_seen:")
        assert b"\r\nDate: " in head
        assert b"\r\nContent-Length: 11\r\n" in head
        assert await reader.readexactly(11) == b"POST /x " + body
    writer.close()


async def test_connection_close_and_http_10(server: HttpServer) -> None:
    closing = await exchange(server.port, b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", True)
    assert closing.endswith(b"GET /a ")
    old = await exchange(server.port, b"GET /b HTTP/1.0\r\n\r\n", read_all=True)
    assert b"x_seen: HTTP/1.0" in old


async def test_chunked_body_with_trailer(server: HttpServer) -> None:
    request = (
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert (await exchange(server.port, request, True)).endswith(b"POST /c abcde")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/2\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n bad: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    ],
)
async def test_malformed_requests_answer_400(server: HttpServer, request_bytes: bytes) -> None:
    answer = await exchange(server.port, request_bytes, read_all=True)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_drop_and_a_half_sent_head(server: HttpServer) -> None:
    assert await exchange(server.port, b"GET /drop HTTP/1.1\r\n\r\n", read_all=True) == b""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\n")
    writer.write_eof()
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400 ")
    writer.close()


async def test_pause_and_resume_listening(server: HttpServer) -> None:
    port = server.port
    await server.pause()
    assert not server.listening
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await server.resume()
    assert server.listening
    assert server.port == port


def test_headers_ignore_case_and_keep_spelling() -> None:
    headers = Headers([("Content-Type", "a"), ("tr_id", "b")])
    assert headers.get("content-type") == "a"
    assert "TR_ID" in headers
    assert 42 not in headers
    assert headers.get("missing", "d") == "d"
    assert repr(headers) == "Headers(['Content-Type', 'tr_id'])"
    assert Response(299, []).status == 299


async def test_unknown_status_and_port_before_start() -> None:
    async def odd(_: Request) -> Response:
        return Response(299, [])

    served = HttpServer(odd)
    with pytest.raises(RuntimeError, match="not started"):
        _ = served.port
    await served.start()
    try:
        answer = await exchange(served.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", True)
        assert answer.startswith(b"HTTP/1.1 299 Unknown\r\n")
    finally:
        await served.stop()
