"""The tracker: orders open past their timeout, and open orders polled a page at a time.

On the scenario's fake clock the tracker does not poll by itself: a scenario runs one poll cycle
with ``engine.tracker.poll_once()``, as the tracker's loop does every ``poll_interval``, and moves
time with ``run.clock.advance``.
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from orderlane.contract import Capability
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.testing.harness import QUOTE, ScenarioRun
from orderlane.testing.scenarios.checks import (
    broker_id,
    buy,
    executed,
    expect,
    expect_equal,
    expect_position,
    open_order,
    statuses_of,
    stored,
)
from orderlane.testing.scenarios.limits import LIMIT, PERIOD
from orderlane.testing.scenarios.registry import ScenarioFailed, scenario

__all__: list[str] = []

#: The engine's default order timeout: 5 minutes.
DEFAULT_TIMEOUT = 300.0
#: Open orders in the paging rows, and the page size the harness is asked for: three pages where
#: the venue lets the harness choose, so a cycle that asks per order cannot pass as paged.
OPEN_ORDERS, PAGE_SIZE = 40, 15


async def time_out(run: ScenarioRun, engine: Engine, order: Order) -> Order:
    """Run a poll cycle one second before ``order``'s timeout and one at it; returns the order
    as stored after the second, checking that the first left it open and sent no cancel."""
    timeout = engine.config.order_timeout
    expect_equal(timeout, DEFAULT_TIMEOUT, "the default order timeout, in seconds")
    submitted = order.submitted_at
    if submitted is None:
        raise ScenarioFailed("the order the venue accepted has no submission time")
    # The timeout counts from the submission, which a rate limiter may have kept waiting.
    run.clock.advance(timeout - 1 - (run.clock.now() - submitted).total_seconds())
    await engine.tracker.poll_once()
    early = await stored(engine, order)
    expect_equal(early.status, order.status, "status one second before the timeout")
    expect_equal(run.harness.request_count("cancel"), 0, "cancel requests before the timeout")
    run.clock.advance(1)
    await engine.tracker.poll_once()
    await engine.flush_events()
    after = await stored(engine, order)
    expect_equal((after.status, after.reason), (OrderStatus.FAILED, "timeout"), "order")
    expect(
        after.updated_at - submitted >= timedelta(seconds=timeout),
        f"the order ended {after.updated_at - submitted} after its submission",
    )
    expect_equal(run.harness.request_count("cancel"), 1, "cancel requests")
    timed_out = [e for e in run.events.of("order_timed_out") if e["order"].id == order.id]
    expect_equal(len(timed_out), 1, "order-timed-out events")
    expect_equal(timed_out[0]["submitted_at"], submitted, "submitted_at of the event")
    expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
    return after


@scenario(
    "seed-timeout",
    proves="an order open 5 minutes is cancelled at the venue and ends FAILED 'timeout'",
    requires={Capability.CANCEL},
)
async def seed_timeout(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, _ = await open_order(run, engine)
        after = await time_out(run, engine, order)
        expect_equal(after.filled_quantity, 0, "filled quantity")
        expect_equal(await engine.positions(), [], "positions")


@scenario(
    "partial-then-timeout",
    proves="a timeout keeps the fills that came: FAILED 'timeout' with 4 filled, position 4",
    requires={Capability.PARTIAL_FILLS, Capability.CANCEL},
)
async def partial_then_timeout(run: ScenarioRun) -> None:
    run.harness.partial_fill_next(4)
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        expect_equal(order.status, OrderStatus.PARTIALLY_FILLED, "status after the first fill")
        after = await time_out(run, engine, order)
        expect_equal(after.filled_quantity, 4, "filled quantity kept")
        expect_equal([f.quantity for f in await engine.fills(order.id)], [4], "stored fills")
        await expect_position(engine, 4, QUOTE)


@scenario(
    "late-fill-after-timeout",
    proves="a fill reported after the timeout's cancel is booked; the order stays FAILED",
    requires={Capability.CANCEL},
)
async def late_fill_after_timeout(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, venue_id = await open_order(run, engine)
        await time_out(run, engine, order)
        run.harness.report_late_fill(venue_id, 3)
        # An order that ended with quantity left stays on the tracker's slow watch: the late
        # report reaches it through the next watch inquiry, no refresh needed.
        run.clock.advance(engine.config.late_fill_poll_interval)
        await engine.tracker.poll_once()
        await expect_late_fill_booked(engine, order, 3)
    expect_equal(statuses_of(run, order).count(OrderStatus.FAILED), 1, "moves to FAILED")


async def expect_late_fill_booked(engine: Engine, order: Order, quantity: int) -> None:
    """The timed-out ``order`` stays FAILED 'timeout' with a late fill of ``quantity`` booked
    and in the position."""
    await engine.flush_events()
    after = await stored(engine, order)
    expect_equal(
        (after.status, after.reason, after.filled_quantity),
        (OrderStatus.FAILED, "timeout", quantity),
        "the order after the late report",
    )
    expect_equal([f.quantity for f in await engine.fills(order.id)], [quantity], "stored fills")
    await expect_position(engine, quantity, QUOTE)


async def open_many(run: ScenarioRun, engine: Engine) -> list[Order]:
    """:data:`OPEN_ORDERS` orders the venue accepted and holds open."""
    for _ in range(OPEN_ORDERS):
        run.harness.hold_next()
    orders = await asyncio.gather(*(engine.execute(buy(1)) for _ in range(OPEN_ORDERS)))
    expect_equal({o.status for o in orders}, {OrderStatus.SUBMITTED}, "statuses of the orders")
    expect_equal(len(engine.tracker), OPEN_ORDERS, "orders the tracker follows")
    return orders


def pages(engine: Engine) -> int:
    """How many pages of the adapter's inquiry :data:`OPEN_ORDERS` orders take."""
    size = engine.broker.info.page_size
    return 1 if size is None else math.ceil(OPEN_ORDERS / size)


async def status_requests_of_one_cycle(run: ScenarioRun, engine: Engine) -> int:
    before = run.harness.request_count("status")
    await engine.tracker.poll_once()
    return run.harness.request_count("status") - before


@scenario(
    "batch-status",
    proves="a poll cycle costs one status request per page of open orders, not one per order",
    requires={Capability.BATCH_STATUS},
)
async def batch_status(run: ScenarioRun) -> None:
    run.harness.set_page_size(PAGE_SIZE)
    async with run.engine() as engine:
        orders = await open_many(run, engine)
        per_cycle = f"status requests of one poll cycle over {OPEN_ORDERS} open orders"
        expect_equal(await status_requests_of_one_cycle(run, engine), pages(engine), per_cycle)
        for order in orders:
            run.harness.fill(broker_id(order))
        expect_equal(await status_requests_of_one_cycle(run, engine), pages(engine), per_cycle)
        after = [await stored(engine, order) for order in orders]
        expect_equal({o.status for o in after}, {OrderStatus.FILLED}, "statuses after the fills")
        expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
        await expect_position(engine, OPEN_ORDERS, QUOTE)


@scenario(
    "rate-limit-pages",
    venue_time=True,
    proves="every page of the status inquiry takes a permit: no window over the venue's limit",
    requires={Capability.BATCH_STATUS},
)
async def rate_limit_pages(run: ScenarioRun) -> None:
    run.harness.set_page_size(PAGE_SIZE)
    run.harness.enforce_rate_limit(LIMIT, PERIOD, run.time.monotonic)
    async with run.engine() as engine:
        orders = await open_many(run, engine)
        granted_before = inquiry_permits(engine)
        requests = await status_requests_of_one_cycle(run, engine)
        granted = inquiry_permits(engine) - granted_before
        expect_equal(requests, pages(engine), "status requests of one poll cycle")
        expect_equal(granted, requests, "inquiry permits the limiter granted for that cycle")
        after = [await stored(engine, order) for order in orders]
        expect_equal({o.status for o in after}, {OrderStatus.SUBMITTED}, "statuses after it")
    expect_equal(run.harness.rate_limit_answers(), 0, "rate-limit answers")
    busiest = run.harness.max_arrivals_in_window()
    expect(
        0 < busiest <= LIMIT,
        f"no {PERIOD:g}s window may carry more than {LIMIT} requests, the busiest carried "
        f"{busiest}",
    )


def inquiry_permits(engine: Engine) -> int:
    limiter = engine.stats()["rate_limiter"]
    expect(limiter is not None, "the engine has no rate limiter")
    return int(limiter["granted"].get("inquiry", 0))
