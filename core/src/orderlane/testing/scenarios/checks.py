"""What scenarios check with: failures that say what was expected and what came, and the
catalogue's default signal and venue setup in one place."""

from __future__ import annotations

import asyncio
import enum
from decimal import Decimal
from typing import Any

from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus, Side, Signal
from orderlane.testing.harness import SYMBOL, ScenarioRun
from orderlane.testing.scenarios.registry import ScenarioFailed

__all__ = [
    "answer_status",
    "broker_id",
    "buy",
    "commission",
    "executed",
    "expect",
    "expect_equal",
    "expect_position",
    "expect_reason",
    "expect_waited",
    "open_order",
    "settled",
    "show",
    "statuses",
    "statuses_of",
    "stored",
    "until_status",
]

#: Real seconds a scenario waits for the engine's background work (a pushed update being
#: booked) before it fails; a passing run never waits for it to run out.
BACKGROUND_WORK_LIMIT = 5.0


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise ScenarioFailed(f"{what}: expected {show(expected)}, got {show(actual)}")


def show(value: Any) -> str:
    """A value as a failure message shows it: statuses by name, everything else by repr."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(show(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(show(item) for item in value)) + "}"
    return repr(value)


def buy(quantity: int = 10, **fields: Any) -> Signal:
    """The catalogue's default signal: BUY ``quantity`` x 005930 at market."""
    return Signal(SYMBOL, Side.BUY, quantity, **fields)


async def executed(run: ScenarioRun, engine: Engine, signal: Signal) -> Order:
    """``engine.execute(signal)``, as the venue left it at once: for a broker whose place answer
    only acknowledges (harness ``place_answer = "ack"``), one poll cycle books what the venue did
    at once (a fill, a partial fill). Returns the order as stored."""
    [order] = await settled(run, engine, [await engine.execute(signal)])
    return order


def answer_status(run: ScenarioRun) -> OrderStatus:
    """What a place answer books for an order the venue fills at once: FILLED, or SUBMITTED
    for a broker whose place answer only acknowledges (see :func:`executed`)."""
    acked = getattr(run.harness, "place_answer", "fills") == "ack"
    return OrderStatus.SUBMITTED if acked else OrderStatus.FILLED


async def settled(run: ScenarioRun, engine: Engine, orders: list[Order]) -> list[Order]:
    """``orders`` as the venue left them at once: for a broker whose place answer only
    acknowledges, after one poll cycle (see :func:`executed`)."""
    acked = getattr(run.harness, "place_answer", "fills") == "ack"
    if not acked or all(order.status is not OrderStatus.SUBMITTED for order in orders):
        return orders
    await engine.tracker.poll_once()
    return [await stored(engine, order) for order in orders]


def commission(run: ScenarioRun, charged: Decimal) -> Decimal:
    """What the engine books of ``charged``: all of it, or nothing for a broker whose answers
    carry no commission (harness ``reports_commission = False``)."""
    return charged if getattr(run.harness, "reports_commission", True) else Decimal(0)


def expect_reason(run: ScenarioRun, order: Order, reason: str) -> None:
    """The order's reason carries the venue's ``reason``; for a broker whose order inquiry
    gives no reason text (harness ``reports_reasons = False``), it carries a reason."""
    if getattr(run.harness, "reports_reasons", True):
        expect(
            order.reason is not None and reason in order.reason,
            f"the reason should carry the venue's, got {order.reason!r}",
        )
    else:
        expect(bool(order.reason), f"the {order.status.value} order should carry a reason")


def statuses(run: ScenarioRun) -> list[OrderStatus]:
    """Every status the orders moved to, in commit order."""
    return [event["order"].status for event in run.events.of("order_status_changed")]


def statuses_of(run: ScenarioRun, order: Order) -> list[OrderStatus]:
    """The statuses one order moved to, in commit order."""
    return [
        event["order"].status
        for event in run.events.of("order_status_changed")
        if event["order"].id == order.id
    ]


def expect_waited(run: ScenarioRun, delays: list[float]) -> None:
    """The engine's clock slept ``delays`` in this order (other sleeps may come between)."""
    slept = iter(run.clock.sleeps)
    expect(
        all(any(s == delay for s in slept) for delay in delays),
        f"the clock should have slept {delays} in order, slept {run.clock.sleeps}",
    )


async def expect_position(
    engine: Engine, quantity: int, average_price: Decimal, what: str = "position"
) -> None:
    """The default symbol's position holds ``quantity`` at ``average_price``."""
    position = await engine.position(SYMBOL)
    expect_equal((position.quantity, position.average_price), (quantity, average_price), what)


def broker_id(order: Order) -> str:
    """The broker order id the venue's own actions name ``order`` by."""
    if order.broker_order_id is None:
        raise ScenarioFailed(f"the {order.status.value} order has no broker order id")
    return order.broker_order_id


async def open_order(run: ScenarioRun, engine: Engine) -> tuple[Order, str]:
    """An order the venue accepted and holds open, unfilled, with its broker order id."""
    run.harness.hold_next()
    order = await engine.execute(buy())
    expect_equal(order.status, OrderStatus.SUBMITTED, "status of the order the venue holds")
    return order, broker_id(order)


async def stored(engine: Engine, order: Order) -> Order:
    """``order`` as the engine's journal holds it now."""
    found = await engine.get_order(order.id)
    if found is None:
        raise ScenarioFailed(f"order {order.id} is not in the journal")
    return found


async def until_status(engine: Engine, order: Order, status: OrderStatus, what: str) -> Order:
    """Wait until the engine, working in the background, has committed ``order`` in
    ``status``; returns the stored order. Fails, saying ``what`` and where the order stands,
    when that does not happen within :data:`BACKGROUND_WORK_LIMIT` seconds."""
    reached = asyncio.Event()

    def watch(changed: Order, previous: OrderStatus) -> None:
        if changed.id == order.id and changed.status is status:
            reached.set()

    engine.add_status_handler(watch)
    current = await stored(engine, order)
    if current.status is status:
        return current
    try:
        await asyncio.wait_for(reached.wait(), BACKGROUND_WORK_LIMIT)
    except TimeoutError:
        current = await stored(engine, order)
        raise ScenarioFailed(
            f"{what}: expected {status.value}, still {current.status.value} after "
            f"{BACKGROUND_WORK_LIMIT:g}s"
        ) from None
    return await stored(engine, order)
