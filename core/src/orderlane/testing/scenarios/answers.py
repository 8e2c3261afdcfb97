"""What the venue answers, as the books take it: a malformed answer stays with its own order,
and a commission the venue reports only as a cumulative total is booked once, in full.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from orderlane.contract import Capability
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.testing.harness import COMMISSION, QUOTE, SYMBOL, ScenarioRun
from orderlane.testing.scenarios.checks import (
    broker_id,
    buy,
    expect,
    expect_equal,
    expect_position,
    open_order,
    stored,
)
from orderlane.testing.scenarios.registry import ScenarioSkipped, scenario

__all__: list[str] = []


@scenario(
    "bad-answer-isolated",
    proves="a malformed answer books nothing for its order; another fills in the same cycle",
    requires={Capability.BATCH_STATUS},
)
async def bad_answer_isolated(run: ScenarioRun) -> None:
    with run.capturing_logs():
        async with run.engine() as engine:
            run.harness.hold_next()
            run.harness.hold_next()
            bad = await engine.execute(buy(10))
            good = await engine.execute(buy(5))
            expect_equal(
                (bad.status, good.status), (OrderStatus.SUBMITTED,) * 2, "orders the venue holds"
            )
            run.harness.fill(broker_id(bad))
            run.harness.fill(broker_id(good))
            run.harness.malform_next_status(broker_id(bad))

            await engine.tracker.poll_once()

            after = await stored(engine, good)
            expect_equal(after.status, OrderStatus.FILLED, "the other order after that cycle")
            expect_equal(await stored(engine, bad), bad, "the order with the malformed answer")
            expect_equal(await engine.fills(bad.id), [], "fills booked from the malformed answer")
            await expect_position(engine, 5, QUOTE, "position after that cycle")
            logged = [r for r in run.logs if bad.id in r.getMessage()]
            expect(
                any(r.levelno >= logging.ERROR for r in logged),
                f"the malformed answer should be logged as an error naming order {bad.id}; "
                f"logged: {[r.getMessage() for r in run.logs]}",
            )

            await engine.tracker.poll_once()  # the venue answers truly again
            expect_equal(
                (await stored(engine, bad)).status, OrderStatus.FILLED, "the order, next cycle"
            )
            await expect_position(engine, 15, QUOTE, "position after the next cycle")


async def expect_commission(engine: Engine, order: Order, filled: int, charged: Decimal) -> None:
    """The stored order, its fills and the position carry ``charged`` for ``filled``."""
    after = await stored(engine, order)
    booked = await engine.fills(order.id)
    expect_equal(
        (after.filled_quantity, after.commission),
        (filled, charged),
        "the order's filled quantity and commission",
    )
    expect_equal(
        (sum(f.quantity for f in booked), sum((f.commission for f in booked), Decimal(0))),
        (filled, charged),
        "quantity and commission of its fills",
    )
    expect_equal((await engine.position(SYMBOL)).fees, charged, "the position's fees")


@scenario(
    "cumulative-commission",
    proves="a commission reported only as a cumulative total is booked once, rises too",
    requires={Capability.PARTIAL_FILLS},
)
async def cumulative_commission(run: ScenarioRun) -> None:
    harness = run.harness
    if not getattr(harness, "reports_commission", True):
        raise ScenarioSkipped(
            "the venue's answers carry no commission (harness reports_commission = False): "
            "there is no cumulative commission to book"
        )
    in_total = getattr(harness, "report_commission_in_total", None)
    charge = getattr(harness, "charge", None)
    if in_total is None or charge is None:
        raise ScenarioSkipped(
            "the harness cannot report a commission only as a cumulative total (it has no "
            "report_commission_in_total and charge members)"
        )
    async with run.engine() as engine:
        order, venue_id = await open_order(run, engine)
        in_total(venue_id)
        harness.fill(venue_id, 4, commission=Decimal(0))  # nothing charged yet
        await engine.tracker.poll_once()
        await expect_commission(engine, order, 4, Decimal(0))

        charge(venue_id, Decimal(40))  # the commission comes in a later answer, no new quantity
        await engine.tracker.poll_once()
        await engine.tracker.poll_once()  # the same total again adds nothing
        await expect_commission(engine, order, 4, Decimal(40))

        harness.fill(venue_id, 6, commission=COMMISSION - 40)  # shown in the total only
        await engine.tracker.poll_once()
        await expect_commission(engine, order, 10, COMMISSION)
        expect_equal((await stored(engine, order)).status, OrderStatus.FILLED, "the order")
        await expect_position(engine, 10, QUOTE)
