"""Orders that stay open at the venue: later fills, cancels from either side, a late rejection,
and status answers that are missing, repeated or out of date.

Where a row expects the tracker to notice what the venue did, the scenario runs one poll cycle
with ``engine.tracker.poll_once()`` (on the scenario's fake clock the tracker does not poll by
itself). Rows about single status answers ask with ``engine.refresh``, so each scripted answer
goes to exactly one inquiry.
"""

from __future__ import annotations

from decimal import Decimal

from orderlane.contract import Capability
from orderlane.errors import OrderNotFoundError
from orderlane.model import OrderStatus
from orderlane.testing.harness import COMMISSION, QUOTE, ScenarioRun
from orderlane.testing.scenarios.checks import (
    broker_id,
    buy,
    commission,
    executed,
    expect,
    expect_equal,
    expect_position,
    expect_reason,
    open_order,
    show,
    statuses_of,
    stored,
)
from orderlane.testing.scenarios.registry import ScenarioFailed, scenario

__all__: list[str] = []

#: The events that say an order or a position changed.
_ORDER_CHANGES = ("order_submitted", "order_status_changed", "order_filled", "position_changed")


@scenario(
    "partial-then-fill",
    proves="partial executions grow the order and the position at the weighted average price",
    requires={Capability.PARTIAL_FILLS},
)
async def partial_then_fill(run: ScenarioRun) -> None:
    run.harness.partial_fill_next(4, Decimal(71900))
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        expect_equal(order.status, OrderStatus.PARTIALLY_FILLED, "status after the first fill")
        expect_equal(order.filled_quantity, 4, "filled quantity after the first fill")
        await expect_position(engine, 4, Decimal(71900), "position after the first fill")
        run.harness.fill(broker_id(order), 6, Decimal(72100))
        await engine.tracker.poll_once()
        order = await stored(engine, order)
        await engine.flush_events()
        expect_equal(order.status, OrderStatus.FILLED, "status after the second fill")
        expect_equal(order.filled_quantity, 10, "filled quantity")
        # (4 x 71,900 + 6 x 72,100) / 10
        expect_equal(order.average_fill_price, Decimal(72020), "weighted average fill price")
        expect_equal(
            order.commission, commission(run, 2 * COMMISSION), "commission of both executions"
        )
        expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
        await expect_position(engine, 10, Decimal(72020), "position after the second fill")
    grown = [event["position"].quantity for event in run.events.of("position_changed")]
    expect_equal(grown, [4, 10], "position quantity at each change")
    expect_equal(
        statuses_of(run, order)[-2:],
        [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED],
        "the order's last status changes",
    )


@scenario(
    "cancel-open-order",
    proves="engine.cancel ends an open order CANCELLED with one cancel request",
    requires={Capability.CANCEL},
)
async def cancel_open_order(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, _ = await open_order(run, engine)
        cancelled = await engine.cancel(order.id)
        await engine.flush_events()
        expect_equal(cancelled.status, OrderStatus.CANCELLED, "order status")
        expect_equal(cancelled.filled_quantity, 0, "filled quantity")
        expect_equal(await engine.get_order(order.id), cancelled, "the stored order")
        expect_equal(await engine.positions(), [], "positions")
    expect_equal(run.harness.request_count("cancel"), 1, "cancel requests")
    expect_equal(
        statuses_of(run, order)[-2:],
        [OrderStatus.PENDING_CANCEL, OrderStatus.CANCELLED],
        "the order's last status changes",
    )


@scenario(
    "cancel-races-fill",
    proves="a cancel that finds the order filled leaves it FILLED, never FAILED",
    requires={Capability.CANCEL},
)
async def cancel_races_fill(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, broker_order_id = await open_order(run, engine)
        # The venue fills the order after accepting it, before the cancel arrives: the cancel
        # finds nothing left, and the status that follows decides.
        run.harness.fill(broker_order_id)
        after = await engine.cancel(order.id)
        await engine.flush_events()
        expect_equal(after.status, OrderStatus.FILLED, "order status")
        expect_equal(after.filled_quantity, 10, "filled quantity")
        expect_equal(await engine.get_order(order.id), after, "the stored order")
        await expect_position(engine, 10, QUOTE)
    expect_equal(run.harness.request_count("cancel"), 1, "cancel requests")
    expect_equal(statuses_of(run, order)[-1:], [OrderStatus.FILLED], "the last status change")
    expect(
        OrderStatus.FAILED not in statuses_of(run, order),
        f"the cancel's answer should be tolerated, the order went {show(statuses_of(run, order))}",
    )


@scenario(
    "broker-cancel",
    proves="a cancel by the venue itself reaches the order as CANCELLED with its reason",
)
async def broker_cancel(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, broker_order_id = await open_order(run, engine)
        run.harness.cancel_by_venue(broker_order_id, "trading halted")
        await engine.tracker.poll_once()
        after = await stored(engine, order)
        expect_equal(after.status, OrderStatus.CANCELLED, "order status")
        expect_reason(run, after, "trading halted")
        expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
        expect_equal(await engine.positions(), [], "positions")
    expect_equal(run.harness.request_count("cancel"), 0, "cancel requests")


@scenario(
    "reject-after-accept",
    proves="a rejection after acceptance reaches the order as REJECTED with its reason",
)
async def reject_after_accept(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, broker_order_id = await open_order(run, engine)
        run.harness.reject_open(broker_order_id, "price outside the daily band")
        await engine.tracker.poll_once()
        after = await stored(engine, order)
        await engine.flush_events()
        expect_equal(after.status, OrderStatus.REJECTED, "order status")
        expect_reason(run, after, "price outside the daily band")
        expect_equal(len(engine.tracker), 0, "orders the tracker still follows")
        expect_equal(await engine.positions(), [], "positions")
    expect_equal(
        statuses_of(run, order)[-2:],
        [OrderStatus.SUBMITTED, OrderStatus.REJECTED],
        "the order's last status changes",
    )


@scenario(
    "unknown-order-status",
    proves="a status answer of 'no such order' raises OrderNotFoundError, changes nothing",
)
async def unknown_order_status(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, broker_order_id = await open_order(run, engine)
        await engine.flush_events()
        before = run.events.names(_ORDER_CHANGES)
        run.harness.forget_order(broker_order_id)
        try:
            await engine.refresh(order.id)
        except OrderNotFoundError:
            pass
        else:
            raise ScenarioFailed("the status query of an order the venue lost did not raise")
        await engine.flush_events()
        expect_equal(await engine.get_order(order.id), order, "the stored order")
    expect(run.harness.request_count("status") >= 1, "no status request reached the venue")
    expect_equal(
        run.events.names(_ORDER_CHANGES), before, "order events after the failed status query"
    )


@scenario(
    "duplicate-fills",
    proves="repeated and out-of-date status answers never count a fill twice",
    requires={Capability.PARTIAL_FILLS},
)
async def duplicate_fills(run: ScenarioRun) -> None:
    # Only an open order can be over-counted: the engine never books more than the order's
    # quantity, so the repeated and the stale answers come while it is partly filled.
    run.harness.partial_fill_next(4)
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        venue_id = broker_id(order)
        # One inquiry after each change at the venue, each getting the answer scripted for it.
        run.harness.fill(venue_id, 3)
        run.harness.repeat_fill_in_next_status(venue_id)
        seven = await engine.refresh(order.id)
        expect_equal(
            (seven.status, seven.filled_quantity),
            (OrderStatus.PARTIALLY_FILLED, 7),
            "the order after a fill of 3 reported twice",
        )
        run.harness.stale_next_status(venue_id, 1)
        after_stale = await engine.refresh(order.id)
        expect_equal(after_stale, seven, "the order after an answer from before that fill")
        run.harness.fill(venue_id)
        run.harness.repeat_fill_in_next_status(venue_id)
        filled = await engine.refresh(order.id)
        expect_equal((filled.status, filled.filled_quantity), (OrderStatus.FILLED, 10), "order")
        expect_equal(
            filled.commission, commission(run, 3 * COMMISSION), "commission of the three executions"
        )
        run.harness.stale_next_status(venue_id, 2)
        after_filled = await engine.refresh(order.id)
        expect_equal(after_filled, filled, "the FILLED order after an older answer")
        await engine.flush_events()
        fills = [fill.quantity for fill in await engine.fills(order.id)]
        # Fills booked at one moment (a venue that gives no execution times) may list in any
        # order: what counts is that each was booked once.
        expect_equal(sorted(fills), [3, 3, 4], "stored fills")
        await expect_position(engine, 10, QUOTE)
    grown = [event["position"].quantity for event in run.events.of("position_changed")]
    expect_equal(grown, [4, 7, 10], "position quantity at each change")
    expect_equal(statuses_of(run, order).count(OrderStatus.FILLED), 1, "moves to FILLED")
    expect(run.harness.request_count("status") >= 4, "the status queries did not reach the venue")
