"""Who settles an order the venue may hold: never a guess, never a stranded order.

A sibling whose answer is still on its way, a resend the venue refuses as a duplicate, a caller
that stops waiting, an execution reported after the order ended, an UNKNOWN order an operator
cancels: in each the venue holds (or may hold) something the journal must end up agreeing with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orderlane.contract import Capability, Operation
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.testing.harness import QUOTE, SYMBOL, ScenarioRun
from orderlane.testing.scenarios.checks import (
    BACKGROUND_WORK_LIMIT,
    answer_status,
    buy,
    executed,
    expect,
    expect_equal,
    expect_position,
    open_order,
    settled,
    show,
    statuses_of,
    stored,
    until_status,
)
from orderlane.testing.scenarios.registry import ScenarioFailed, scenario
from orderlane.testing.scenarios.tracking import expect_late_fill_booked, time_out

__all__: list[str] = []


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (real time, bounded) until ``condition`` holds; fail saying ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BACKGROUND_WORK_LIMIT
    while not await condition():
        if loop.time() >= deadline:
            raise ScenarioFailed(f"{what}: not within {BACKGROUND_WORK_LIMIT:g}s")
        await asyncio.sleep(0.001)


async def sent_with_answer_delayed(run: ScenarioRun, engine: Engine) -> asyncio.Future[Order]:
    """Execute the default signal; return the call once the venue holds the order, its
    answer held back until ``run.harness.release_answers()``."""
    harness = run.harness
    harness.delay_answer_next()
    call = asyncio.ensure_future(engine.execute(buy()))

    async def at_venue() -> bool:
        return len(harness.venue_order_ids()) == 1

    await until(at_venue, "the order should reach the venue")
    return call


async def expect_one_owner_each(run: ScenarioRun, engine: Engine) -> None:
    """Each venue order belongs to exactly one journal order, and the position holds what the
    venue filled (every unscripted order fills in full: 10 each)."""
    owned = [o.broker_order_id for o in await engine.orders() if o.broker_order_id is not None]
    expect_equal(sorted(owned), sorted(run.harness.venue_order_ids()), "broker ids the orders own")
    filled = 10 * len(run.harness.venue_order_ids())
    position = await engine.position(SYMBOL)
    expect_equal(position.quantity, filled, "position (the quantity the venue filled)")


@scenario(
    "lookup-sibling-in-flight",
    proves="an UNKNOWN order never adopts a sibling's venue order whose answer is on its way",
    proves_with_client_order_id="a send lost while a sibling's answer is due is resent under "
    "its own client order id",
    requires={Capability.LOOKUP},
)
async def lookup_sibling_in_flight(run: ScenarioRun) -> None:
    harness = run.harness
    async with run.engine() as engine:
        slow = await sent_with_answer_delayed(run, engine)
        harness.fail_next("timeout_before")  # the sibling's send never reaches the venue
        lost = asyncio.ensure_future(engine.execute(buy()))

        async def looking() -> bool:
            open_now = await engine.open_orders()
            return lost.done() or any(o.status is OrderStatus.UNKNOWN for o in open_now)

        await until(looking, "the second order should go UNKNOWN")
        harness.release_answers()
        first, second = await settled(run, engine, list(await asyncio.gather(slow, lost)))
        await engine.flush_events()
        expect_equal(first.status, OrderStatus.FILLED, "status of the order the venue took")
        expect(
            second.broker_order_id != first.broker_order_id,
            f"both orders own venue order {first.broker_order_id}",
        )
        await expect_one_owner_each(run, engine)
    if run.client_order_ids:
        # The broker deduplicates client order ids: the lost send is simply sent again.
        expect_equal(second.status, OrderStatus.FILLED, "status of the order sent again")
        expect(
            OrderStatus.UNKNOWN not in statuses_of(run, second),
            "the adapter declares client_order_id, so the lost send should be sent again, not "
            f"go UNKNOWN; it went {show(statuses_of(run, second))}",
        )
        expect_equal(run.harness.request_count("lookup"), 0, "lookup requests")
        expect_equal(run.harness.request_count("place"), 3, "place requests")


@scenario(
    "resend-refused-after-accept",
    proves="a resend refused as a duplicate after a lost answer is looked up, never REJECTED",
    requires={Capability.CLIENT_ORDER_ID, Capability.LOOKUP},
)
async def resend_refused_after_accept(run: ScenarioRun) -> None:
    run.harness.fail_next("timeout_after")  # the venue took and filled it; the answer is lost
    run.harness.refuse_duplicate_next()
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
        expect_equal(order.status, OrderStatus.FILLED, "order status")
        expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "venue orders")
        await expect_position(engine, 10, QUOTE)
    expect(
        OrderStatus.REJECTED not in statuses_of(run, order),
        "the order was marked REJECTED while the venue held its fill",
    )
    expect_equal(run.harness.request_count("place"), 2, "place requests")


@scenario(
    "cancelled-caller",
    proves="a caller that cancels execute() leaves the order to the engine, which books it",
    requires={Capability.LOOKUP},
)
async def cancelled_caller(run: ScenarioRun) -> None:
    harness = run.harness
    async with run.engine() as engine:
        call = await sent_with_answer_delayed(run, engine)
        call.cancel()  # what asyncio.wait_for does when its time is up
        await asyncio.wait({call})
        expect(call.cancelled(), "the caller's wait should end cancelled")
        harness.release_answers()
        (order,) = await engine.orders()
        answered = until_status(engine, order, answer_status(run), "the order")
        [after] = await settled(run, engine, [await answered])
        expect_equal(after.status, OrderStatus.FILLED, "the order")
        expect_equal(after.broker_order_id, harness.venue_order_ids()[0], "its broker id")
        await expect_position(engine, 10, QUOTE)
    expect_equal(harness.request_count("place"), 1, "place requests")


async def watch_cycles(run: ScenarioRun, engine: Engine, count: int) -> None:
    """Run ``count`` poll cycles, each a late-fill interval after the last."""
    for _ in range(count):
        run.clock.advance(engine.config.late_fill_poll_interval)
        await engine.tracker.poll_once()


@scenario(
    "late-fill-on-poll",
    proves="a fill reported by the inquiry cycles after a timeout lands without a refresh",
    requires={Capability.CANCEL, Capability.BATCH_STATUS},
)
async def late_fill_on_poll(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, venue_id = await open_order(run, engine)
        await time_out(run, engine, order)
        await watch_cycles(run, engine, 3)  # nothing new yet
        run.harness.report_late_fill(venue_id, 3)
        await watch_cycles(run, engine, 2)
        await expect_late_fill_booked(engine, order, 3)
    expect_equal(statuses_of(run, order).count(OrderStatus.FAILED), 1, "moves to FAILED")


async def unknown_with_broker_id(run: ScenarioRun, engine: Engine) -> Order:
    """An order the venue holds open whose timeout cancel failed: UNKNOWN with its broker id."""
    order, venue_id = await open_order(run, engine)
    run.harness.fail_next_cancel(engine.executor.retry_config(Operation.CANCEL).max_attempts)
    run.clock.advance(engine.config.order_timeout)
    await engine.tracker.poll_once()
    unknown = await stored(engine, order)
    expect_equal(
        (unknown.status, unknown.broker_order_id),
        (OrderStatus.UNKNOWN, venue_id),
        "the order whose timeout cancel failed",
    )
    return unknown


@scenario(
    "cancel-unknown-with-id",
    proves="an UNKNOWN order with a broker id is cancelled by hand and frees its symbol",
    requires={Capability.CANCEL},
)
async def cancel_unknown_with_id(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown = await unknown_with_broker_id(run, engine)
        before = run.harness.request_count("cancel")
        cancelled = await engine.cancel(unknown.id)
        expect_equal(cancelled.status, OrderStatus.CANCELLED, "status after the cancel")
        expect_equal(await stored(engine, unknown), cancelled, "the stored order")
        expect_equal(run.harness.request_count("cancel") - before, 1, "cancel requests")
        places = run.harness.request_count("place")
        after = await executed(run, engine, buy())
        expect_equal(after.status, OrderStatus.FILLED, "a new order for the freed symbol")
        expect_equal(run.harness.request_count("place"), places + 1, "place requests")
