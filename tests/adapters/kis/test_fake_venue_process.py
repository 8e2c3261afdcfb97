"""The fake KIS venue as its own process (``orderlane fake-kis serve``), driven over its
control API; and how the ``orderlane`` command line finds that command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import typer

from orderlane.cli.plugins import add_plugin_commands
from orderlane_kis.fake import RemoteVenue


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "orderlane", "fake-kis", "serve", "--mode", "live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail(
                f"the venue did not start: {process.stderr.read() if process.stderr else ''}"
            )
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_serve_prints_where_it_listens(served: dict[str, Any]) -> None:
    assert served["mode"] == "live"
    assert served["page_size"] == 100
    assert served["rate_limit"] == [18, 1.0]
    for url in ("rest_url", "ws_url", "control_url"):
        assert "//127.0.0.1:" in served[url]
    assert len(served["app_key"]) == 36
    assert len(served["app_secret"]) == 180


def test_a_venue_in_another_process_takes_time_and_scripts_over_control(
    served: dict[str, Any],
) -> None:
    venue = RemoteVenue(served["control_url"])
    venue.call("set_time", now="2026-03-02T10:00:00+09:00", monotonic=1000.0)
    assert venue.call("time")["kst"].startswith("2026-03-02T10:00:00")
    venue.call("set_quote", symbol="005930", price=70_000)
    answer = httpx.post(
        f"{served['rest_url']}/oauth2/tokenP",
        json={
            "grant_type": "client_credentials",
            "appkey": served["app_key"],
            "appsecret": served["app_secret"],
        },
    )
    assert answer.json()["access_token_token_expired"] == "2026-03-03 10:00:00"
    token = answer.json()["access_token"]
    cano, product = served["account"].split("-")
    placed = httpx.post(
        f"{served['rest_url']}/uapi/domestic-stock/v1/trading/order-cash",
        json={
            "CANO": cano,
            "ACNT_PRDT_CD": product,
            "PDNO": "005930",
            "ORD_DVSN": "01",
            "ORD_QTY": "2",
            "ORD_UNPR": "0",
            "EXCG_ID_DVSN_CD": "KRX",
        },
        headers={
            "authorization": f"Bearer {token}",
            "appkey": served["app_key"],
            "appsecret": served["app_secret"],
            "tr_id": "TTTC0012U",
        },
    )
    assert placed.json()["output"]["ORD_TMD"] == "100000"
    [order] = venue.call("orders")
    assert (order["filled"], order["amount"]) == (2, 140_000)
    assert venue.call("request_count", operation="place") == 1
    venue.call("advance_time", seconds=61.0)
    venue.call("release_time")
    with pytest.raises(ValueError, match="no instrument"):
        venue.call("set_quote", symbol="999999", price=1)
    with pytest.raises(ValueError, match="no control method"):
        venue.call("shutdown")


async def test_remote_control_from_async_code(served: dict[str, Any]) -> None:
    venue = RemoteVenue(served["control_url"])
    assert (await venue.acall("describe"))["mode"] == "live"
    async with httpx.AsyncClient() as http:
        refused = await http.post(f"{served['control_url']}/_fake/set_quote", content=b"[1]")
    assert refused.status_code == 400


def test_plugin_commands_are_added_by_entry_point() -> None:
    target = typer.Typer()
    target.command("other")(lambda: None)
    assert "fake-kis" in add_plugin_commands(target)
    [group] = [info for info in target.registered_groups if info.name == "fake-kis"]
    assert group.typer_instance is not None
    commands = group.typer_instance.registered_commands
    assert [c.callback.__name__ for c in commands if c.callback] == ["serve"]


def test_serve_refuses_an_unknown_mode() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orderlane", "fake-kis", "serve", "--mode", "demo"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "paper or live" in result.stderr
