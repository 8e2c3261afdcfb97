"""``orderlane recover``: reconcile the journal's open orders on demand."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from orderlane import Engine, FakeClock, Order, OrderSnapshot, Signal, hookimpl
from orderlane.broker import BrokerContext
from orderlane.cli import app
from orderlane_mock import MockAdapter, MockVenue


class DiesBeforeSending(MockAdapter):
    def __init__(self) -> None:
        super().__init__(MockVenue())
        self.reached = asyncio.Event()

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        self.reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def leave_an_order_submitting(url: str) -> str:
    adapter = DiesBeforeSending()
    engine = Engine(adapter, database_url=url, clock=FakeClock())
    await engine.start()
    task = asyncio.ensure_future(engine.execute(Signal("005930", "BUY", 3)))
    await adapter.reached.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    order_id = (await engine.orders())[0].id
    await engine.journal.end_session()  # its heartbeat lapses: no wait for the lease
    await engine.journal.close()
    return order_id


def test_recover_reports_what_it_settled(sqlite_url: str) -> None:
    order_id = asyncio.run(leave_an_order_submitting(sqlite_url))

    result = CliRunner().invoke(app, ["recover", "--database-url", sqlite_url, "--json"])
    assert result.exit_code == 0, result.output
    [change] = json.loads(result.output)
    assert change["order_id"] == order_id
    assert (change["before"], change["after"]) == ("SUBMITTING", "FAILED")
    assert change["action"] == "looked up: absent"
    assert change["reason"] == "not sent"

    again = CliRunner().invoke(app, ["recover", "--database-url", sqlite_url])
    assert again.exit_code == 0
    assert "nothing to" in again.output


def test_recover_table(sqlite_url: str) -> None:
    asyncio.run(leave_an_order_submitting(sqlite_url))
    result = CliRunner().invoke(app, ["recover", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "Recovered 1 open orders" in result.output
    assert "SUBMITTING" in result.output
    assert "not sent" in result.output
