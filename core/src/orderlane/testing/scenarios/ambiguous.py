"""Sends whose outcome is unknown: the venue may hold the order, so it is looked up before any
second send, and new orders for the same instrument wait meanwhile.

A broker that deduplicates client order ids (the adapter declares ``client_order_id``) makes a
second send harmless: there the engine sends an ambiguous order again instead of looking it up,
and these rows check that instead (``proves_with_client_order_id``). Such an order goes UNKNOWN
only when every attempt of its retry series was lost and the lookup then cannot tell.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from orderlane.contract import Capability
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.testing.harness import FailKind, ScenarioRun
from orderlane.testing.scenarios.checks import (
    buy,
    executed,
    expect,
    expect_equal,
    show,
    statuses,
    statuses_of,
)
from orderlane.testing.scenarios.registry import scenario

__all__: list[str] = []

#: Attempts of the seed's retry policy: how often an order whose every answer is lost is sent
#: to a broker that deduplicates client order ids before it is looked up.
ATTEMPTS = 3


def leave_unknown(run: ScenarioRun) -> int:
    """Script the venue so that the next order is taken, every answer to it is lost and the
    lookup cannot tell: the order ends UNKNOWN. Returns how many place requests that takes: 1,
    or every attempt of the retry series where the broker deduplicates client order ids (each
    send is retried, the venue answering each with its one order, until the series ends and
    the order is looked up)."""
    sends = ATTEMPTS if run.client_order_ids else 1
    run.harness.fail_next("drop_after_accept", times=sends)
    run.harness.answer_lookup_next("cannot_tell")
    return sends


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
    expect_equal(run.harness.request_count("place"), 1, "place requests")


def expect_resent(run: ScenarioRun, order: Order) -> None:
    """The broker deduplicates client order ids: the order was sent again at once, never
    looked up, and took over the one order the venue holds."""
    expect(
        OrderStatus.UNKNOWN not in statuses(run),
        "the adapter declares client_order_id, so the order should be sent again, not go "
        f"UNKNOWN and be looked up; it went {show(statuses(run))}",
    )
    expect_equal(run.harness.request_count("lookup"), 0, "lookup requests")
    expect_equal(run.harness.request_count("place"), 2, "place requests (the send, once again)")
    expect_equal(len(run.events.of("retry_scheduled")), 1, "retry-scheduled events")
    expect(
        order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED),
        f"order status: expected the venue's order booked, got {order.status.value}",
    )
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect(OrderStatus.FAILED not in statuses(run), "the order was marked FAILED on a guess")


def expect_settled(run: ScenarioRun, order: Order) -> None:
    """What the contract says for a send whose answer was lost, for either kind of broker."""
    if run.client_order_ids:
        expect_resent(run, order)
    else:
        expect_adopted(run, order)


@scenario(
    "ambiguous-accepted",
    proves="an order taken before its answer was lost is looked up and adopted, not resent",
    proves_with_client_order_id="a lost answer is resent under its client order id, not looked "
    "up; one venue order booked",
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
    expect_settled(run, order)


@scenario(
    "ambiguous-not-accepted",
    proves="a send the venue never took is looked up, found absent, retried and FILLED",
    proves_with_client_order_id="a send the venue never took is resent at once under its client "
    "order id and FILLED",
    requires={Capability.LOOKUP},
)
async def ambiguous_not_accepted(run: ScenarioRun) -> None:
    run.harness.fail_next("timeout_before")
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect_equal(len(run.events.of("retry_scheduled")), 1, "retry-scheduled events")
    expect_equal(run.harness.request_count("place"), 2, "place requests")
    looked_up = run.harness.request_count("lookup")
    if run.client_order_ids:
        expect_equal(looked_up, 0, "lookup requests (the order is simply sent again)")
        expect(OrderStatus.UNKNOWN not in statuses(run), "the order went UNKNOWN, not resent")
    else:
        expect(looked_up >= 1, "the order was sent again without a lookup")
        expect(OrderStatus.UNKNOWN in statuses(run), "the order was resent before going UNKNOWN")


async def unsettled_then_same_symbol(run: ScenarioRun, engine: Engine) -> tuple[Order, Order]:
    """Leave an order UNKNOWN (the venue took it, the lookup cannot tell; see
    :func:`leave_unknown`), then send another for the same symbol; returns both once the second
    is done with."""
    leave_unknown(run)
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
    proves_with_client_order_id="an order UNKNOWN after every resend, lookup unsure, stays so "
    "and holds its symbol",
    requires={Capability.LOOKUP},
)
async def ambiguous_unresolvable(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown, held = await unsettled_then_same_symbol(run, engine)
        expect_equal(await engine.get_order(unknown.id), unknown, "the UNKNOWN order, stored")
    expect_equal(statuses_of(run, unknown)[-1:], [OrderStatus.UNKNOWN], "status-changed events")
    sends = ATTEMPTS if run.client_order_ids else 1
    expect_equal(run.harness.request_count("place"), sends, "place requests")
    expect_equal(len(run.harness.venue_order_ids()), 1, "orders at the venue")
    # The new order waited in CREATED the whole time: it never became SUBMITTING.
    expect(
        OrderStatus.SUBMITTING not in statuses_of(run, held),
        f"the order for the same symbol went {show(statuses_of(run, held))} while it was held",
    )


@scenario(
    "garbled-place-answer",
    proves="an unreadable place answer goes UNKNOWN and is adopted after lookup, never FAILED",
    proves_with_client_order_id="an unreadable place answer is resent under its client order "
    "id; one venue order booked",
    requires={Capability.LOOKUP},
)
async def garbled_place_answer(run: ScenarioRun) -> None:
    run.harness.fail_next("garbled")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_settled(run, order)


@scenario(
    "hold-timeout",
    proves="an order held behind an UNKNOWN one fails unsent after instrument_hold_timeout",
    proves_with_client_order_id="an order held behind one UNKNOWN after every resend fails "
    "unsent after the hold timeout",
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
    sends = ATTEMPTS if run.client_order_ids else 1
    expect_equal(
        run.harness.request_count("place"), sends, "place requests (none for the held order)"
    )
