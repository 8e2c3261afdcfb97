"""Who may read the dashboard: loopback only without a token; with one, every request carries it.

``orderlane web`` runs as a real process for the refusal and for the token's round trip; nothing
here binds or reaches anything but loopback.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from rich.console import Console

from orderlane.demo import DemoResult, run_demo
from orderlane.errors import ConfigurationError
from orderlane_web import check_bind, is_loopback
from orderlane_web.security import COOKIE
from web.dashboards import Dashboard

Serve = Callable[..., Dashboard]
TOKEN = "correct-horse-battery-staple-42"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "desk.example"])
def test_anything_else_is_refused_without_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="not a loopback address, without a token"):
        check_bind(host, None)
    check_bind(host, TOKEN)


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        check_bind("0.0.0.0", "short")


def orderlane(*args: str, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "COLUMNS": "200", **env}
    environment.pop("ORDERLANE_WEB_TOKEN", None) if "ORDERLANE_WEB_TOKEN" not in env else None
    return subprocess.Popen(
        [sys.executable, "-m", "orderlane", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_orderlane_web_refuses_a_non_loopback_bind_without_a_token(
    sqlite_demo: DemoResult,
) -> None:
    process = orderlane("web", "--database-url", sqlite_demo.database_url, "--host", "0.0.0.0")

    out, err = process.communicate(timeout=60)

    assert process.returncode == 1
    assert "refusing to serve on 0.0.0.0, which is not a loopback address, without a token" in (
        " ".join(err.split())
    )
    assert "Traceback" not in err
    assert "http://" not in out, "nothing was served"


def test_orderlane_web_refuses_a_missing_journal(tmp_path: object) -> None:
    process = orderlane("web", "--database-url", f"sqlite:///{tmp_path}/none.db", "--port", "0")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "there is no journal at" in " ".join(err.split())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_orderlane_web_serves_with_a_token_and_stops_on_ctrl_c(sqlite_demo: DemoResult) -> None:
    port = free_port()
    process = orderlane(
        "web", "--database-url", sqlite_demo.database_url, "--port", str(port),
        ORDERLANE_WEB_TOKEN=TOKEN,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = httpx.get(f"{base}/api/summary", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline
                time.sleep(0.1)
        allowed = httpx.get(
            f"{base}/api/summary", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)

    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert allowed.json()["orders"] == 4
    assert process.returncode == 0, err
    assert TOKEN not in out + err
    assert "Traceback" not in err


def test_every_request_must_carry_the_token(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url, token=TOKEN)
    base = dashboard.base

    for path in ("/", "/api/orders", "/api/events", "/openapi.json", "/static/live.js"):
        bare = httpx.get(base + path, timeout=5)
        wrong = httpx.get(base + path, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert (bare.status_code, wrong.status_code) == (401, 401), path
        assert bare.headers["www-authenticate"].startswith("Bearer")
    bearer = httpx.get(base + "/api/orders", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200

    with httpx.Client(base_url=base, timeout=5, follow_redirects=True) as browser:
        opened = browser.get("/", params={"token": TOKEN, "status": "FILLED"})
        cookie = browser.cookies.get(COOKIE)
        again = browser.get("/api/summary")

    assert opened.history[0].status_code == 303
    assert opened.url.params.get("token") is None, "the token leaves the address bar"
    assert opened.url.params.get("status") == "FILLED"
    assert "httponly" in opened.history[0].headers["set-cookie"].lower()
    assert cookie == TOKEN
    assert again.status_code == 200
    assert TOKEN not in opened.text


def test_without_a_token_only_loopback_host_names_are_answered(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)

    rebound = httpx.get(dashboard.base + "/api/summary", headers={"Host": "evil.example"})
    local = httpx.get(dashboard.base + "/api/summary", headers={"Host": "localhost:8000"})

    assert rebound.status_code == 400
    assert local.status_code == 200


@pytest.mark.postgres
def test_the_database_password_is_never_shown(
    serve_dashboard: Serve, fresh_postgres_url: str
) -> None:
    asyncio.run(run_demo(fresh_postgres_url, Console(file=io.StringIO())))
    with_password = sa.engine.make_url(fresh_postgres_url).set(password="hunter2-secret")
    url = with_password.render_as_string(hide_password=False)
    dashboard = serve_dashboard(url)  # trust authentication: the password is not checked

    page = httpx.get(dashboard.base + "/", timeout=10)

    assert page.status_code == 200
    assert "hunter2-secret" not in page.text
    assert ":***@" in page.text
