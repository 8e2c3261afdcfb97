"""Running the dashboard under uvicorn."""

from __future__ import annotations

import socket

import uvicorn

from orderlane.journal.reader import JournalReader
from orderlane_web.app import create_app
from orderlane_web.security import check_bind

__all__ = ["serve"]


def serve(
    reader: JournalReader,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve the dashboard over ``reader`` until interrupted (Ctrl-C); closes ``reader``.

    Refuses (:class:`~orderlane.errors.ConfigurationError`) a non-loopback ``host`` without a
    ``token``. uvicorn's access log stays off: a request line could carry the token.
    """
    check_bind(host, token)
    app = create_app(reader, token=token)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        # Open event streams never end by themselves: give them a second, then close them.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
