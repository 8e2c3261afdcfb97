"""What the venue answers, as the books take it: a malformed answer stays with its own order,
and a commission the venue reports only as a cumulative total is booked once, in full.
"""

from __future__ import annotations

import logging

from orderlane.contract import Capability
from orderlane.model import OrderStatus
from orderlane.testing.harness import QUOTE, ScenarioRun
from orderlane.testing.scenarios.checks import (
    broker_id,
    buy,
    expect,
    expect_equal,
    expect_position,
    stored,
)
from orderlane.testing.scenarios.registry import scenario

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
