"""Sends whose outcome is unknown: the venue may hold the order, so it is looked up before any
second send, and new orders for the same instrument wait meanwhile."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from orderlane.broker import Capability
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.testing.harness import FailKind, ScenarioRun
from orderlane.testing.scenarios.checks import (
    buy,
    expect,
    expect_equal,
    show,
    statuses,
    statuses_of,
)
from orderlane.testing.scenarios.registry import scenario

__all__: list[str] = []


def expect_adopted(run: ScenarioRun, order: Order) -> None:
    """The order went UNKNOWN, then took over the one order the venue holds."""
    expect(
        OrderStatus.UNKNOWN in statuses(run),
        f"the order should go UNKNOWN before the lookup, went {show(statuses(run))}",
    )
    expect(
        order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED),
        f"order status: expected the venue's order adopted, got {order.status.value}",
    )
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect(OrderStatus.FAILED not in statuses(run), "the order was marked FAILED on a guess")


@scenario(
    "ambiguous-accepted",
    proves="an order taken before its answer was lost is looked up and adopted, not resent",
    requires={Capability.LOOKUP},
    # The venue accepted the order, then the connection dropped, or no answer came in time.
    variants=("drop_after_accept", "timeout_after"),
)
async def ambiguous_accepted(run: ScenarioRun) -> None:
    run.harness.fail_next(cast(FailKind, run.variant))
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
        expect_equal(await engine.get_order(order.id), order, "the stored order")
    expect_adopted(run, order)
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario(
    "ambiguous-not-accepted",
    proves="a send the venue never took is looked up, found absent, retried and FILLED",
    requires={Capability.LOOKUP},
)
async def ambiguous_not_accepted(run: ScenarioRun) -> None:
    run.harness.fail_next("timeout_before")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect_equal(len(run.events.of("retry_scheduled")), 1, "retry-scheduled events")


async def unsettled_then_same_symbol(run: ScenarioRun, engine: Engine) -> tuple[Order, Order]:
    """Leave an order UNKNOWN (the venue took it, the lookup cannot tell), then send another
    for the same symbol; returns both once the second is done with."""
    run.harness.fail_next("drop_after_accept")
    run.harness.answer_lookup_next("cannot_tell")
    unknown = await engine.execute(buy())
    expect_equal(
        unknown.status, OrderStatus.UNKNOWN, "status of the order the lookup cannot settle"
    )
    held = await engine.execute(buy())
    await engine.flush_events()
    return unknown, held


@scenario(
    "ambiguous-unresolvable",
    proves="an order the lookup cannot settle stays UNKNOWN and holds its symbol's next order",
    requires={Capability.LOOKUP},
)
async def ambiguous_unresolvable(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown, held = await unsettled_then_same_symbol(run, engine)
        expect_equal(await engine.get_order(unknown.id), unknown, "the UNKNOWN order, stored")
    expect_equal(statuses_of(run, unknown)[-1:], [OrderStatus.UNKNOWN], "status-changed events")
    expect_equal(run.harness.request_count("place"), 1, "place requests")
    # The new order waited in CREATED the whole time: it never became SUBMITTING.
    expect(
        OrderStatus.SUBMITTING not in statuses_of(run, held),
        f"the order for the same symbol went {show(statuses_of(run, held))} while it was held",
    )


@scenario(
    "garbled-place-answer",
    proves="an unreadable place answer goes UNKNOWN and is adopted after lookup, never FAILED",
    requires={Capability.LOOKUP},
)
async def garbled_place_answer(run: ScenarioRun) -> None:
    run.harness.fail_next("garbled")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_adopted(run, order)
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario(
    "hold-timeout",
    proves="an order held behind an UNKNOWN one fails unsent after instrument_hold_timeout",
    requires={Capability.LOOKUP},
)
async def hold_timeout(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown, held = await unsettled_then_same_symbol(run, engine)
        timeout = timedelta(seconds=engine.config.instrument_hold_timeout)
        poll = timedelta(seconds=engine.config.instrument_hold_poll)
    expect_equal(held.status, OrderStatus.FAILED, "status of the held order")
    expect_equal(statuses_of(run, held), [OrderStatus.FAILED], "its status-changed events")
    waited = held.updated_at - held.created_at
    expect(
        timeout <= waited <= timeout + poll,
        f"the held order should fail once held for {timeout}, it failed after {waited}",
    )
    expect(
        held.reason is not None and unknown.id in held.reason,
        f"the reason should name the UNKNOWN order holding the symbol, got {held.reason!r}",
    )
    expect_equal(run.harness.request_count("place"), 1, "place requests (none for the held order)")
