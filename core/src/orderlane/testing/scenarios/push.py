"""Venues that push order updates: the engine books them as they come, polls only to close gaps,
and counts a fill once however many ways it was reported.

Each row turns the harness's push stream on before the engine opens. On the scenario's fake
clock the tracker runs nothing by itself: ``engine.tracker.start(poll=False)`` has it consume the
stream in the background, and the polls the tracker makes once the stream is up and after a gap
are run as ``engine.tracker.poll_once()``. Pushed updates are booked in the background, so a
scenario waits for the status it expects (:func:`until_status`) instead of asking for it.
"""

from __future__ import annotations

from orderlane.contract import Capability
from orderlane.engine import Engine
from orderlane.model import OrderStatus
from orderlane.testing.harness import QUOTE, ScenarioRun
from orderlane.testing.scenarios.checks import (
    buy,
    expect,
    expect_equal,
    expect_position,
    open_order,
    statuses_of,
    stored,
    until_status,
)
from orderlane.testing.scenarios.registry import scenario

__all__: list[str] = []


async def read_stream(engine: Engine) -> None:
    """Have the tracker consume the adapter's push stream in the background."""
    await engine.tracker.start(poll=False)
    expect(
        engine.tracker.push_active,
        "the harness enabled push, but the engine got no stream from the adapter: it must "
        "declare the push capability and implement orderlane_order_updates",
    )


async def consume_stream(engine: Engine) -> None:
    """:func:`read_stream`, then the poll that closes whatever came before the stream was up."""
    await read_stream(engine)
    await engine.tracker.poll_once()


@scenario(
    "push-updates",
    proves="a pushed fill ends the order FILLED with no status request after the start poll",
    requires={Capability.PUSH},
)
async def push_updates(run: ScenarioRun) -> None:
    run.harness.enable_push()
    async with run.engine() as engine:
        await consume_stream(engine)
        polled = run.harness.request_count("status")
        order, venue_id = await open_order(run, engine)
        run.harness.fill(venue_id)
        filled = await until_status(engine, order, OrderStatus.FILLED, "the order after its push")
        expect_equal(filled.filled_quantity, 10, "filled quantity")
        await expect_position(engine, 10, QUOTE)
        expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
        expect_equal(
            run.harness.request_count("status") - polled, 0, "status requests after the start poll"
        )


@scenario(
    "push-gap",
    proves="a fill whose push was lost across a reconnect is found by the gap's poll",
    requires={Capability.PUSH},
)
async def push_gap(run: ScenarioRun) -> None:
    run.harness.enable_push()
    async with run.engine() as engine:
        await consume_stream(engine)
        order, venue_id = await open_order(run, engine)
        run.harness.drop_pushes(1)
        run.harness.fill(venue_id)
        run.harness.reconnect_push()
        lost = await stored(engine, order)
        expect_equal(lost.status, OrderStatus.SUBMITTED, "status while the fill's push is lost")
        before = run.harness.request_count("status")
        await engine.tracker.poll_once()  # the poll the gap calls for
        after = await stored(engine, order)
        expect_equal((after.status, after.filled_quantity), (OrderStatus.FILLED, 10), "order")
        expect_equal(run.harness.request_count("status") - before, 1, "status requests of the poll")
        await expect_position(engine, 10, QUOTE)


@scenario(
    "push-and-poll-same-fill",
    proves="a fill reported by a poll and again by push is booked once",
    requires={Capability.PUSH},
)
async def push_and_poll_same_fill(run: ScenarioRun) -> None:
    run.harness.enable_push()
    async with run.engine() as engine:
        # The tracker does not read the stream yet: the first order's notices wait in it, as
        # notices delayed on the way do, while a poll reports the same fill first.
        first, first_venue_id = await open_order(run, engine)
        run.harness.fill(first_venue_id)
        await engine.tracker.poll_once()
        polled = await stored(engine, first)
        expect_equal(polled.status, OrderStatus.FILLED, "status of the first order after a poll")
        await read_stream(engine)
        # The second order's fill comes after the first's notices on the stream: once it is
        # booked, the first order's pushed fill has been read as well.
        second, second_venue_id = await open_order(run, engine)
        run.harness.fill(second_venue_id)
        await until_status(engine, second, OrderStatus.FILLED, "the second order after its push")
        expect_equal(await stored(engine, first), polled, "the first order after its push")
        fills = [f.quantity for f in await engine.fills(first.id)]
        expect_equal(fills, [10], "stored fills of the first order")
        await expect_position(engine, 20, QUOTE)
        await engine.flush_events()
    filled = [e for e in run.events.of("order_filled") if e["order"].id == first.id]
    expect_equal(len(filled), 1, "order-filled events of the first order")
    expect_equal(statuses_of(run, first).count(OrderStatus.FILLED), 1, "its moves to FILLED")
    grown = [event["position"].quantity for event in run.events.of("position_changed")]
    expect_equal(grown, [10, 20], "position quantity at each change")


@scenario(
    "notice-before-answer",
    proves="a fill pushed before the place answer is booked once, after the broker id",
    requires={Capability.PUSH},
)
async def notice_before_answer(run: ScenarioRun) -> None:
    run.harness.enable_push()
    async with run.engine() as engine:
        await consume_stream(engine)
        run.harness.push_before_answer_next()
        order = await engine.execute(buy())
        if order.status is not OrderStatus.FILLED:  # an acknowledging answer: the held notice
            order = await until_status(engine, order, OrderStatus.FILLED, "the pushed fill")
        await engine.flush_events()
        expect_equal((order.status, order.filled_quantity), (OrderStatus.FILLED, 10), "order")
        expect_equal(await stored(engine, order), order, "the stored order")
        expect_equal([f.quantity for f in await engine.fills(order.id)], [10], "stored fills")
        await expect_position(engine, 10, QUOTE)
    names = [
        e.name
        for e in run.events.events
        if e.name in ("order_submitted", "order_filled") and e["order"].id == order.id
    ]
    expect_equal(names, ["order_submitted", "order_filled"], "the order's events")
    filled = run.events.of("order_filled")
    expect(
        all(e["order"].broker_order_id == order.broker_order_id for e in filled),
        "the fill was booked on an order without its broker id",
    )
