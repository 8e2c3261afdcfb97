"""Fixtures for the dashboard's tests: a journal filled by the demo session and a dashboard
served by uvicorn on a loopback port of its own, in a thread of the test process."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from rich.console import Console

from orderlane.demo import DemoResult, run_demo
from orderlane.journal.reader import JournalReader
from orderlane_web import create_app
from web.dashboards import Dashboard


@pytest.fixture
def demo(database_url: str) -> DemoResult:
    """The demo session's journal (SQLite and PostgreSQL)."""
    return asyncio.run(run_demo(database_url, Console(file=io.StringIO())))


@pytest.fixture
def sqlite_demo(sqlite_url: str) -> DemoResult:
    return asyncio.run(run_demo(sqlite_url, Console(file=io.StringIO())))


@pytest.fixture
def serve_dashboard() -> Iterator[Callable[..., Dashboard]]:
    """``serve_dashboard(url, token=None)`` starts a dashboard; all are stopped at the end."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(url: str, token: str | None = None) -> Dashboard:
        reader = JournalReader(url).open()
        app = create_app(reader, token=token, poll_interval=0.1)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the dashboard did not start"
            assert time.monotonic() < deadline, "the dashboard took too long to start"
            time.sleep(0.02)
        running.append((server, thread))
        return Dashboard(base=f"http://127.0.0.1:{port}", reader=reader, token=token)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=15)
