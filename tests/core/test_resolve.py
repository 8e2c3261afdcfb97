"""Settling an UNKNOWN order by hand: ``engine.resolve`` and ``orderlane resolve``."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from orderlane import Engine, EngineConfig, FakeClock, OrderStatus, Signal
from orderlane.cli import app
from orderlane.errors import ConfigurationError, OrderNotFoundError
from orderlane_mock import MockVenue

BUY = Signal("005930", "BUY", 10)


async def unknown_order(engine: Engine, venue: MockVenue) -> str:
    venue.fail_next("drop_after_accept")
    venue.answer_lookup_next("cannot_tell")
    order = await engine.execute(BUY)
    assert order.status is OrderStatus.UNKNOWN
    return order.id


async def test_adopt_books_the_broker_order(engine: Engine, venue: MockVenue) -> None:
    order_id = await unknown_order(engine, venue)
    [broker_id] = list(venue.orders)

    order = await engine.resolve(order_id, adopt=broker_id)
    assert (order.status, order.broker_order_id) == (OrderStatus.FILLED, broker_id)
    assert (await engine.position("005930")).quantity == 10
    assert len(venue.places) == 1


async def test_absent_fails_the_order_without_sending(engine: Engine, venue: MockVenue) -> None:
    order_id = await unknown_order(engine, venue)
    order = await engine.resolve(order_id, absent=True)
    assert (order.status, order.reason) == (OrderStatus.FAILED, "not sent (resolved by hand)")
    assert len(venue.places) == 1
    # The instrument is free again: a new order goes out at once.
    assert (await engine.execute(Signal("005930", "BUY", 1))).status is OrderStatus.FILLED


async def test_resolve_refuses_what_it_cannot_do(engine: Engine, venue: MockVenue) -> None:
    earlier = await engine.execute(Signal("005930", "BUY", 2))
    assert earlier.broker_order_id is not None
    order_id = await unknown_order(engine, venue)
    with pytest.raises(ConfigurationError, match="exactly one"):
        await engine.resolve(order_id)
    with pytest.raises(ConfigurationError, match="exactly one"):
        await engine.resolve(order_id, adopt="X", absent=True)
    with pytest.raises(OrderNotFoundError):
        await engine.resolve(order_id, adopt="NO-SUCH-ID")
    filled = await engine.execute(Signal("000660", "BUY", 1))
    assert filled.broker_order_id is not None
    with pytest.raises(ConfigurationError, match="only UNKNOWN or SUBMITTING"):
        await engine.resolve(filled.id, absent=True)
    with pytest.raises(ConfigurationError, match="already belongs to another order"):
        await engine.resolve(order_id, adopt=earlier.broker_order_id)
    assert (await engine.get_order(order_id)).status is OrderStatus.UNKNOWN  # type: ignore[union-attr]


def test_resolve_command(sqlite_url: str) -> None:
    async def leave_unknown() -> str:
        venue = MockVenue()
        config = EngineConfig(track=False)
        async with Engine.open(
            "mock",
            adapter_options={"venue": venue},
            database_url=sqlite_url,
            clock=FakeClock(),
            config=config,
        ) as engine:
            return await unknown_order(engine, venue)

    order_id = asyncio.run(leave_unknown())
    runner = CliRunner()
    usage = runner.invoke(app, ["resolve", order_id, "--database-url", sqlite_url])
    assert usage.exit_code == 2
    assert "exactly one" in usage.output

    missing = runner.invoke(
        app, ["resolve", order_id, "--adopt", "M-GONE", "--database-url", sqlite_url]
    )
    assert missing.exit_code == 1  # this fresh mock venue has no such broker order

    done = runner.invoke(
        app, ["resolve", order_id, "--absent", "--database-url", sqlite_url, "--json"]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert (data["status"], data["reason"]) == ("FAILED", "not sent (resolved by hand)")
