"""The broker's rate limit: the engine paces a burst under the limit the adapter declares, and
a rate-limit answer from the venue slows it down."""

from __future__ import annotations

import asyncio

from orderlane.model import OrderStatus
from orderlane.testing.harness import ScenarioRun
from orderlane.testing.scenarios.checks import buy, executed, expect, expect_equal, settled
from orderlane.testing.scenarios.registry import scenario

__all__: list[str] = []

#: The limit the harness declares and enforces: requests per period (seconds).
LIMIT, PERIOD = 5, 1.0
#: Orders in the burst: six windows' worth, so pacing them takes several windows.
BURST = 30


@scenario(
    "rate-limit-answer",
    venue_time=True,
    proves="a rate-limit answer pauses the limiter and the place is retried to a fill",
)
async def rate_limit_answer(run: ScenarioRun) -> None:
    # The engine's limiter exists only for a declared limit; the venue never reaches it here.
    run.harness.enforce_rate_limit(LIMIT, PERIOD, run.time.monotonic)
    run.harness.fail_next("rate_limit")
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        limiter = engine.stats()["rate_limiter"]
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 2, "place requests")
    expect(
        limiter is not None and limiter["pauses"] >= 1,
        f"the limiter should pause after the rate-limit answer, its figures: {limiter}",
    )


@scenario(
    "rate-limit-burst",
    venue_time=True,
    proves="a burst is paced under the declared limit: no window over it, no rate-limit answer",
)
async def rate_limit_burst(run: ScenarioRun) -> None:
    run.harness.enforce_rate_limit(LIMIT, PERIOD, run.time.monotonic)
    async with run.engine() as engine:
        orders = await asyncio.gather(*(engine.execute(buy(1)) for _ in range(BURST)))
        orders = await settled(run, engine, orders)
        limiter = engine.stats()["rate_limiter"]
    expect_equal({order.status for order in orders}, {OrderStatus.FILLED}, "statuses of the burst")
    expect_equal(run.harness.request_count("place"), BURST, "place requests")
    expect_equal(run.harness.rate_limit_answers(), 0, "rate-limit answers")
    busiest = run.harness.max_arrivals_in_window()
    expect(
        0 < busiest <= LIMIT,
        f"no {PERIOD:g}s window may carry more than {LIMIT} requests, the busiest carried "
        f"{busiest}",
    )
    expect(
        limiter is not None and limiter["granted"].get("order") == BURST,
        f"the engine's limiter should have granted every order, its figures: {limiter}",
    )
