"""Recovery on start: an engine abandoned at any step leaves nothing lost and nothing doubled."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from orderlane import (
    Engine,
    EngineConfig,
    FakeClock,
    Order,
    OrderSnapshot,
    OrderStatus,
    Signal,
    hookimpl,
)
from orderlane.broker import BrokerContext
from orderlane.journal import Committed, Transition
from orderlane.journal.sql import SqlJournal
from orderlane_mock import MockAdapter, MockVenue

BUY = Signal("005930", "BUY", 10)


class Stall(Exception):
    pass


class StallingAdapter(MockAdapter):
    """The mock adapter, stopping dead at a chosen point of a place request."""

    def __init__(self, venue: MockVenue, point: str | None = None) -> None:
        super().__init__(venue)
        self.point = point
        self.reached = asyncio.Event()

    async def _stall(self) -> None:
        self.reached.set()
        await asyncio.Event().wait()  # until the task is cancelled: the engine "dies" here

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        if self.point == "before_send":
            await self._stall()
        snapshot = self.venue.place(order)
        if self.point == "after_accept":
            await self._stall()
        return snapshot


class StallingJournal(SqlJournal):
    """A journal that stops dead before writing a chosen status (the engine dies there)."""

    def __init__(self, url: str, stall_before: OrderStatus | None) -> None:
        super().__init__(url)
        self.stall_before = stall_before
        self.reached = asyncio.Event()

    async def record(self, transition: Transition) -> Committed:
        order = transition.order
        if order is not None and order.status is self.stall_before:
            self.reached.set()
            await asyncio.Event().wait()
        return await super().record(transition)


async def abandon(engine: Engine, task: asyncio.Task[Any]) -> None:
    """Kill the flow mid-step and drop the engine's connections without a clean shutdown."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.tracker.stop()
    await engine.journal.end_session()  # its heartbeat lapses: no wait for the lease
    await engine.journal.close()


async def die_before_sending(url: str) -> MockVenue:
    """An engine commits an order as SUBMITTING and dies before any byte reaches the venue."""
    venue = MockVenue()
    adapter = StallingAdapter(venue, "before_send")
    first = Engine(adapter, database_url=url, clock=FakeClock())
    await first.start()
    task = asyncio.ensure_future(first.execute(BUY))
    await adapter.reached.wait()
    await abandon(first, task)
    return venue


async def restart(venue: MockVenue, url: str, **config: Any) -> Engine:
    engine = Engine(
        MockAdapter(venue), database_url=url, clock=FakeClock(), config=EngineConfig(**config)
    )
    await engine.start()
    return engine


def assert_consistent(venue: MockVenue, orders: list[Order], position: int) -> None:
    sent = Counter(request.client_order_id for request in venue.places if request.accepted)
    assert all(count == 1 for count in sent.values()), f"sent twice: {sent}"
    held = Counter(order.client_order_id for order in venue.orders.values())
    assert all(count == 1 for count in held.values()), f"two venue orders for one: {held}"
    assert sum(o.filled_quantity * o.side.sign for o in orders) == position


@pytest.mark.parametrize(
    ("journal_stall", "adapter_stall", "expected", "places"),
    [
        (OrderStatus.CREATED, None, None, 0),  # died before anything was stored
        (OrderStatus.SUBMITTING, None, OrderStatus.FAILED, 0),  # stored CREATED only
        (None, "before_send", OrderStatus.FAILED, 0),  # SUBMITTING stored, nothing sent
        (None, "after_accept", OrderStatus.FILLED, 1),  # the venue has it, no answer stored
        (OrderStatus.FILLED, None, OrderStatus.FILLED, 1),  # answer received, not stored
    ],
    ids=["before-created", "after-created", "after-submitting", "after-accept", "before-answer"],
)
async def test_an_engine_abandoned_at_each_step_recovers(
    database_url: str,
    journal_stall: OrderStatus | None,
    adapter_stall: str | None,
    expected: OrderStatus | None,
    places: int,
) -> None:
    venue = MockVenue()
    adapter = StallingAdapter(venue, adapter_stall)
    journal = StallingJournal(database_url, journal_stall)
    first = Engine(adapter, journal=journal, clock=FakeClock())
    await first.start()
    task = asyncio.ensure_future(first.execute(BUY))
    await asyncio.wait(
        [
            asyncio.ensure_future(adapter.reached.wait()),
            asyncio.ensure_future(journal.reached.wait()),
        ],
        return_when=asyncio.FIRST_COMPLETED,
    )
    await abandon(first, task)

    second = await restart(venue, database_url)
    try:
        orders = await second.orders()
        if expected is None:
            assert orders == []
        else:
            [order] = orders
            assert order.status is expected
            if expected is OrderStatus.FAILED:
                assert order.reason == "not sent"
        assert len(venue.places) == places
        assert all(order.is_terminal for order in orders)
        position = (await second.position("005930")).quantity
        assert_consistent(venue, orders, position)
        # Executing again afterwards works and sends exactly once more.
        again = await second.execute(Signal("005930", "BUY", 1))
        assert again.status is OrderStatus.FILLED
        assert len(venue.places) == places + 1
    finally:
        await second.close()


async def test_resubmit_after_crash_sends_once_more(sqlite_url: str) -> None:
    venue = await die_before_sending(sqlite_url)

    second = await restart(venue, sqlite_url, resubmit_after_crash=True)
    try:
        [order] = await second.orders()
        assert order.status is OrderStatus.FILLED
        assert len(venue.places) == 1
        assert second.last_recovery[0].action == "looked up: absent, sent again"
    finally:
        await second.close()


async def resent_after(seconds: float, url: str) -> tuple[Order, MockVenue, str, datetime]:
    """An order died before its send; an engine with ``resubmit_after_crash`` starts
    ``seconds`` later. The order then, the venue, recovery's action, and when it started."""
    venue = await die_before_sending(url)
    clock = FakeClock()
    clock.advance(seconds)
    restarted_at = clock.now()
    config = EngineConfig(resubmit_after_crash=True)
    second = Engine(MockAdapter(venue), database_url=url, clock=clock, config=config)
    await second.start()
    try:
        [order] = await second.orders()
        action = second.last_recovery[0].action
    finally:
        await second.close()
    return order, venue, action, restarted_at


async def test_an_order_sent_again_counts_its_send_window_from_that_send(sqlite_url: str) -> None:
    """The broker confirmed that no earlier send reached it: the send again is the order's
    submission (its lookups, its timeout and a venue's day count from it)."""
    order, _venue, action, restarted_at = await resent_after(60, sqlite_url)
    assert (order.status, order.attempts, action) == (
        OrderStatus.FILLED,
        2,
        "looked up: absent, sent again",
    )
    assert order.submitted_at is not None
    assert order.submitted_at >= restarted_at > order.created_at


async def test_an_order_past_its_timeout_is_not_sent_again_after_a_crash(sqlite_url: str) -> None:
    """The timeout counts from the submission: an order the broker never got, found after its
    timeout, would be cancelled as soon as it was sent again, so it is not sent."""
    late = EngineConfig().order_timeout + 1
    order, venue, action, _restarted_at = await resent_after(late, sqlite_url)
    assert (order.status, order.reason) == (OrderStatus.FAILED, "not sent: past its timeout")
    assert venue.places == []
    assert action == "looked up: absent"


async def test_fills_that_happened_while_down_are_caught_up(sqlite_url: str) -> None:
    venue = MockVenue()
    venue.hold_next(2)
    first = Engine(MockAdapter(venue), database_url=sqlite_url, clock=FakeClock())
    await first.start()
    held = await first.execute(BUY)
    partly = await first.execute(Signal("000660", "BUY", 8))
    await first.close()
    assert held.broker_order_id is not None
    assert partly.broker_order_id is not None
    venue.fill(held.broker_order_id)
    venue.fill(partly.broker_order_id, 5)

    second = await restart(venue, sqlite_url)
    try:
        by_id = {o.id: o for o in await second.orders()}
        assert by_id[held.id].status is OrderStatus.FILLED
        assert by_id[partly.id].status is OrderStatus.PARTIALLY_FILLED
        assert (await second.position("000660")).quantity == 5
        assert [o.id for o in second.tracker.orders] == [partly.id]  # back to the tracker
        actions = {c.order_id: (c.before, c.after, c.action) for c in second.last_recovery}
        assert actions[held.id] == (OrderStatus.SUBMITTED, OrderStatus.FILLED, "caught up")
        assert len(venue.places) == 2
    finally:
        await second.close()


async def test_catching_up_many_orders_shares_commits(sqlite_url: str) -> None:
    venue = MockVenue()
    venue.hold_next(60)
    first = Engine(MockAdapter(venue), database_url=sqlite_url, clock=FakeClock())
    await first.start()
    held = await asyncio.gather(
        *(first.execute(Signal(f"{n % 12:06d}", "BUY", 1 + n % 3)) for n in range(60))
    )
    await first.close()
    for order in held:
        assert order.broker_order_id is not None
        venue.fill(order.broker_order_id)

    second = Engine(
        MockAdapter(venue),
        database_url=sqlite_url,
        clock=FakeClock(),
        journal=SqlJournal(sqlite_url),
    )
    await second.start()
    try:
        assert {o.status for o in await second.orders(limit=100)} == {OrderStatus.FILLED}
        assert [c.order_id for c in second.last_recovery] == [o.id for o in held]
        # Sixty fills booked while instruments are worked side by side: shared transactions.
        assert second.journal.commits < 30
        assert sum(p.quantity for p in await second.positions()) == sum(o.quantity for o in held)
    finally:
        await second.close()


async def test_an_unknown_order_is_settled_at_restart(sqlite_url: str) -> None:
    venue = MockVenue()
    first = Engine(MockAdapter(venue), database_url=sqlite_url, clock=FakeClock())
    await first.start()
    venue.fail_next("drop_after_accept")
    venue.answer_lookup_next("cannot_tell")
    order = await first.execute(BUY)
    assert order.status is OrderStatus.UNKNOWN
    await first.close()

    second = await restart(venue, sqlite_url)
    try:
        settled = await second.get_order(order.id)
        assert settled is not None
        assert settled.status is OrderStatus.FILLED
        assert len(venue.places) == 1
    finally:
        await second.close()


async def test_an_unsettled_order_keeps_being_looked_up(sqlite_url: str) -> None:
    venue = MockVenue()
    first = Engine(MockAdapter(venue), database_url=sqlite_url, clock=FakeClock())
    await first.start()
    venue.fail_next("drop_after_accept")
    venue.answer_lookup_next("cannot_tell", times=2)
    order = await first.execute(BUY)
    await first.close()

    clock = FakeClock()
    second = Engine(MockAdapter(venue), database_url=sqlite_url, clock=clock)
    await second.start()
    try:
        assert (await second.get_order(order.id)).status is OrderStatus.UNKNOWN  # type: ignore[union-attr]
        assert [o.id for o in second.tracker.orders] == [order.id]
        await second.tracker.poll_once()  # looks again: the venue's inquiry now finds it
        settled = await second.get_order(order.id)
        assert settled is not None
        assert settled.status is OrderStatus.FILLED
        assert len(second.tracker) == 0
    finally:
        await second.close()


async def test_recovery_can_be_switched_off(sqlite_url: str) -> None:
    venue = await die_before_sending(sqlite_url)

    second = await restart(venue, sqlite_url, recover_on_start=False)
    try:
        [order] = await second.orders()
        assert order.status is OrderStatus.SUBMITTING
        assert second.last_recovery == []
    finally:
        await second.close()


async def test_recovery_leaves_alone_what_a_running_engine_is_sending(sqlite_url: str) -> None:
    venue = MockVenue()
    adapter = StallingAdapter(venue, "before_send")
    config = EngineConfig(engine_lease=0.3, track=False)
    running = Engine(adapter, database_url=sqlite_url, clock=FakeClock(), config=config)
    await running.start()
    sending = asyncio.ensure_future(running.execute(BUY))
    await adapter.reached.wait()

    second = await restart(venue, sqlite_url, engine_lease=0.3)
    try:
        [change] = second.last_recovery
        assert change.action.startswith("left to running engine")
        [order] = await second.orders()
        assert order.status is OrderStatus.SUBMITTING  # not failed under the sender's feet
    finally:
        await second.close()
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await running.close()


CRASHING_ENGINE = """
import asyncio, sys
from orderlane import Engine, EngineConfig, Signal, hookimpl
from orderlane_mock import MockAdapter

class Stalls(MockAdapter):
    @hookimpl
    async def orderlane_place_order(self, ctx, order):
        print("sending", flush=True)
        await asyncio.Event().wait()

async def main():
    config = EngineConfig(engine_lease=0.5, track=False)
    async with Engine.open(Stalls(), database_url=sys.argv[1], config=config) as engine:
        await engine.execute(Signal("005930", "BUY", 10))

asyncio.run(main())
"""


async def test_a_killed_engines_orders_are_recovered_once_its_lease_lapses(
    sqlite_url: str, tmp_path: Any
) -> None:
    import signal
    import sys

    script = tmp_path / "crashing_engine.py"
    script.write_text(CRASHING_ENGINE)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), sqlite_url, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line.strip() == b"sending"  # SUBMITTING is committed; the send is under way
    process.send_signal(signal.SIGKILL)  # a real crash: nothing is cleaned up
    await process.wait()

    venue = MockVenue()
    second = await restart(venue, sqlite_url, engine_lease=0.5)
    try:
        [order] = await second.orders()
        assert (order.status, order.reason) == (OrderStatus.FAILED, "not sent")
        assert venue.places == []
        assert await second.journal.other_sessions("default") == {}  # the dead session is gone
    finally:
        await second.close()


async def test_an_order_whose_sends_keep_getting_lost_is_sent_again_within_one_timeout(
    sqlite_url: str,
) -> None:
    """Each send again starts the order's timeout anew, so whether to send again counts from
    the order's creation: a signal is not sent again and again past its timeout."""
    venue, clock = MockVenue(), FakeClock()
    config = EngineConfig(resubmit_after_crash=True, order_timeout=300.0)
    engine = Engine(MockAdapter(venue), database_url=sqlite_url, clock=clock, config=config)
    await engine.start()
    try:
        venue.fail_next("timeout_before")  # lost on its way: the venue never got it
        venue.answer_lookup_next("cannot_tell")
        order = await engine.execute(BUY)
        assert order.status is OrderStatus.UNKNOWN
        clock.advance(290)
        venue.fail_next("timeout_before")  # sent again (290 s old), lost again
        venue.answer_lookup_next("absent")  # the tracker's lookup
        venue.answer_lookup_next("cannot_tell")  # the lookup after the lost send again
        await engine.tracker.poll_once()
        again = await engine.get_order(order.id)
        clock.advance(290)
        await engine.tracker.poll_once()  # 580 s old: absent once more, not sent
        last = await engine.get_order(order.id)
    finally:
        await engine.close()
    assert again is not None
    assert (again.status, again.attempts) == (OrderStatus.UNKNOWN, 2)
    assert last is not None
    assert (last.status, last.reason) == (OrderStatus.FAILED, "not sent: past its timeout")
    assert venue.orders == {}
