"""Many signals at once: every order lands once, idempotent signal ids hold, observers are safe.

Runs on SQLite and PostgreSQL, where group commit, the unique signal index and the writer thread
meet real concurrency.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from orderlane import (
    BrokerContext,
    Engine,
    EngineConfig,
    FakeClock,
    Fill,
    Order,
    OrderSnapshot,
    OrderStatus,
    Position,
    Signal,
    hookimpl,
)
from orderlane.errors import DuplicateSignalError
from orderlane_mock import MockAdapter, MockVenue

SYMBOLS = ("005930", "000660", "035720", "051910", "068270")


@pytest.fixture
async def engine(venue: MockVenue, clock: FakeClock, database_url: str) -> AsyncIterator[Engine]:
    """An engine on the mock venue and fake time, on SQLite and on PostgreSQL."""
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=database_url
    ) as opened:
        yield opened


class Recorder:
    """An observer that writes down every event it hears, as (hook, order id, detail)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, str]] = []
        self.positions: list[int] = []

    @hookimpl
    def orderlane_order_created(self, order: Order) -> None:
        self.heard.append(("created", order.id, order.status.value))

    @hookimpl
    def orderlane_order_submitted(self, order: Order) -> None:
        self.heard.append(("submitted", order.id, order.broker_order_id or ""))

    @hookimpl
    def orderlane_order_status_changed(self, order: Order, previous: OrderStatus) -> None:
        self.heard.append(("status", order.id, f"{previous.value}->{order.status.value}"))

    @hookimpl
    async def orderlane_order_filled(self, order: Order, fill: Fill) -> None:
        await asyncio.sleep(0)  # async observers are awaited, and order is still kept
        self.heard.append(("filled", order.id, str(fill.quantity)))

    @hookimpl
    def orderlane_position_changed(
        self, position: Position, fill: Fill, realized_pnl: Decimal
    ) -> None:
        self.heard.append(("position", fill.order_id, str(fill.quantity)))
        self.positions.append(position.quantity)

    def for_order(self, order_id: str) -> list[tuple[str, str]]:
        return [(hook, detail) for hook, oid, detail in self.heard if oid == order_id]


class Exploding:
    """An observer that fails in every hook it implements."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def orderlane_order_created(self, order: Order) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")

    @hookimpl
    async def orderlane_order_filled(self, order: Order, fill: Fill) -> None:
        self.calls += 1
        raise ValueError("async observer bug")

    @hookimpl
    def orderlane_position_changed(
        self, position: Position, fill: Fill, realized_pnl: Decimal
    ) -> None:
        self.calls += 1
        raise KeyError("position observer bug")


def happy_path(order: Order) -> list[tuple[str, str]]:
    broker_id = order.broker_order_id or ""
    return [
        ("created", "CREATED"),
        ("status", "CREATED->SUBMITTING"),
        ("submitted", broker_id),
        ("status", "SUBMITTING->FILLED"),
        ("filled", str(order.quantity)),
        ("position", str(order.quantity)),
    ]


# ------------------------------------------------------------------ many orders at once


async def test_a_hundred_concurrent_orders_all_fill_and_add_up(
    engine: Engine, venue: MockVenue
) -> None:
    signals = [Signal("005930", "BUY", n % 7 + 1) for n in range(100)]
    orders = await asyncio.gather(*(engine.execute(s) for s in signals))

    assert [o.status for o in orders] == [OrderStatus.FILLED] * 100
    assert len({o.id for o in orders}) == 100
    assert len({o.broker_order_id for o in orders}) == 100
    assert len(venue.places) == 100
    assert Counter(p.client_order_id for p in venue.places) == Counter(o.id for o in orders)
    position = await engine.position("005930")
    assert position.quantity == sum(s.quantity for s in signals)
    assert position.fees == Decimal(100) * 100
    for order in orders:
        stored = await engine.get_order(order.id)
        assert stored == order
        assert [f.quantity for f in await engine.fills(order.id)] == [order.quantity]


async def test_concurrent_buys_and_sells_over_many_symbols_net_out(
    engine: Engine, venue: MockVenue
) -> None:
    signals = [
        Signal(SYMBOLS[n % len(SYMBOLS)], "BUY" if n % 3 else "SELL", n % 4 + 1) for n in range(100)
    ]
    orders = await asyncio.gather(*(engine.execute(s) for s in signals))

    assert all(o.status is OrderStatus.FILLED for o in orders)
    positions = {p.symbol: p.quantity for p in await engine.positions()}
    for symbol in SYMBOLS:
        expected = sum(s.quantity * s.direction.sign for s in signals if s.symbol == symbol)
        assert positions.get(symbol, 0) == expected


async def test_many_orders_share_commits(engine: Engine) -> None:
    before = engine.journal.commits
    await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 1)) for _ in range(64)))
    if engine.journal.dialect == "sqlite":
        assert engine.journal.commits - before < 3 * 64  # group commit at work
    assert (await engine.position("005930")).quantity == 64


# ------------------------------------------------------------------ idempotent signal ids


async def test_one_signal_id_executed_twenty_times_at_once_sends_once(
    engine: Engine, venue: MockVenue
) -> None:
    signal = Signal("005930", "BUY", 10, signal_id="sig-42")
    orders = await asyncio.gather(*(engine.execute(signal) for _ in range(20)))

    assert len({o.id for o in orders}) == 1
    assert len(venue.places) == 1
    assert venue.places[0].client_order_id == orders[0].id
    assert len(await engine.orders()) == 1
    assert (await engine.position("005930")).quantity == 10


async def test_one_signal_id_again_later_returns_the_stored_order(
    engine: Engine, venue: MockVenue
) -> None:
    signal = Signal("005930", "BUY", 10, signal_id="sig-1")
    first = await engine.execute(signal)
    again = await engine.execute(Signal("005930", "BUY", 10, signal_id="sig-1"))
    assert again == first
    assert len(venue.places) == 1


async def test_a_reused_signal_id_with_other_fields_is_refused(
    engine: Engine, venue: MockVenue
) -> None:
    await engine.execute(Signal("005930", "BUY", 10, signal_id="sig-1"))
    with pytest.raises(DuplicateSignalError, match="sig-1"):
        await engine.execute(Signal("005930", "BUY", 11, signal_id="sig-1"))
    with pytest.raises(DuplicateSignalError):
        await engine.execute(Signal("005930", "SELL", 10, signal_id="sig-1"))
    assert len(venue.places) == 1
    assert len(await engine.orders()) == 1


async def test_a_conflicting_signal_id_in_flight_is_refused(
    engine: Engine, venue: MockVenue
) -> None:
    outcomes = await asyncio.gather(
        engine.execute(Signal("005930", "BUY", 10, signal_id="sig-1")),
        engine.execute(Signal("005930", "BUY", 5, signal_id="sig-1")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], Order)
    assert outcomes[0].status is OrderStatus.FILLED
    assert isinstance(outcomes[1], DuplicateSignalError)
    assert len(venue.places) == 1


async def test_the_same_signal_id_on_two_engines_sends_once(
    database_url: str, venue: MockVenue
) -> None:
    """Two processes (engines) on one journal: the unique index decides, the loser sends nothing."""
    async with (
        Engine.open(
            "mock", adapter_options={"venue": venue}, clock=FakeClock(), database_url=database_url
        ) as one,
        Engine.open(
            "mock", adapter_options={"venue": venue}, clock=FakeClock(), database_url=database_url
        ) as two,
    ):
        signals = [Signal("005930", "BUY", 10, signal_id=f"sig-{n}") for n in range(10)]
        outcomes = await asyncio.gather(
            *(engine.execute(s) for s in signals for engine in (one, two))
        )

        for n in range(10):
            assert outcomes[2 * n].id == outcomes[2 * n + 1].id
        assert len(venue.places) == 10
        assert len(await one.orders()) == 10
        assert (await two.position("005930")).quantity == 100


class GatedAdapter(MockAdapter):
    """Holds every place at a gate until the test opens it."""

    def __init__(self, venue: MockVenue) -> None:
        super().__init__(venue)
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        self.reached.set()
        await self.gate.wait()
        return await super().orderlane_place_order(ctx, order)


async def test_a_waiting_duplicate_survives_the_cancellation_of_the_first_call(
    sqlite_url: str, venue: MockVenue
) -> None:
    adapter = GatedAdapter(venue)
    async with Engine.open(adapter, database_url=sqlite_url, clock=FakeClock()) as engine:
        signal = Signal("005930", "BUY", 10, signal_id="sig-1")
        first = asyncio.create_task(engine.execute(signal))
        await adapter.reached.wait()
        second = asyncio.create_task(engine.execute(signal))
        await asyncio.sleep(0)
        first.cancel()
        adapter.gate.set()
        order = await second  # the order, not the first caller's cancellation
        assert order.signal_id == "sig-1"
        # The first caller cancelled its wait, not the order: the engine settled it.
        assert order.status is OrderStatus.FILLED
        assert first.cancelled()
        assert len(venue.places) == 1


# ------------------------------------------------------------------ observers


async def test_observers_hear_each_order_in_commit_order(engine: Engine) -> None:
    recorder = Recorder()
    engine.register(recorder)
    order = await engine.execute(Signal("005930", "BUY", 10))
    await engine.flush_events()

    assert recorder.for_order(order.id) == happy_path(order)


async def test_without_observers_no_commit_wakes_the_event_delivery(
    venue: MockVenue, clock: FakeClock, database_url: str
) -> None:
    """An engine nobody observes (no observer plugins installed, no status handler) queues
    nothing for delivery; an observer registered later hears every commit from then on."""
    async with Engine.open(
        "mock",
        adapter_options={"venue": venue},
        clock=clock,
        database_url=database_url,
        config=EngineConfig(load_entry_point_plugins=False),
    ) as engine:
        await _observed_from_the_first_observer_on(engine)


async def _observed_from_the_first_observer_on(engine: Engine) -> None:
    queued: list[int] = []
    publish = engine.events._queue.put_nowait

    def counting(events: Any) -> None:
        if events is not None:  # (None ends the delivery when the engine closes)
            queued.append(len(events))
        publish(events)

    engine.events._queue.put_nowait = counting  # type: ignore[method-assign]
    await engine.execute(Signal("005930", "BUY", 10))
    await engine.flush_events()
    assert queued == []
    recorder = Recorder()
    engine.register(recorder)
    order = await engine.execute(Signal("005930", "BUY", 5))
    await engine.flush_events()
    assert recorder.for_order(order.id) == happy_path(order)
    assert len(queued) == 3  # the order's three commits, each delivered once


async def test_observers_keep_each_orders_order_under_concurrency(engine: Engine) -> None:
    recorder = Recorder()
    engine.register(recorder)
    orders = await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 1)) for _ in range(30)))
    await engine.flush_events()

    for order in orders:
        assert recorder.for_order(order.id) == happy_path(order)
    assert recorder.positions == list(range(1, 31))  # told in the order the position moved


async def test_a_failing_observer_breaks_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    exploding, recorder = Exploding(), Recorder()
    engine.register(exploding)
    engine.register(recorder)
    handler_calls: list[OrderStatus] = []

    def status_handler(order: Order, previous: OrderStatus) -> None:
        handler_calls.append(order.status)
        raise RuntimeError("status handler bug")

    engine.add_status_handler(status_handler)

    with caplog.at_level(logging.ERROR):
        order = await engine.execute(Signal("005930", "BUY", 10))
        second = await engine.execute(Signal("005930", "SELL", 4))
        await engine.flush_events()

    assert (order.status, second.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    assert (await engine.position("005930")).quantity == 6
    assert recorder.for_order(order.id) == happy_path(order)
    assert exploding.calls == 6  # created, filled, position changed for each order
    assert handler_calls == [OrderStatus.SUBMITTING, OrderStatus.FILLED] * 2
    assert "observer bug" in caplog.text
    assert "status handler bug" in caplog.text


async def test_a_failing_observer_before_others_does_not_starve_them(
    engine: Engine,
) -> None:
    recorder = Recorder()
    engine.register(recorder)
    engine.register(Exploding())  # registered last, so pluggy calls it first
    orders = await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 2)) for _ in range(5)))
    await engine.flush_events()
    for order in orders:
        assert recorder.for_order(order.id) == happy_path(order)
