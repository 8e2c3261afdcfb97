"""``orderlane kis-bench``: what KIS's limits cost, measured against the fake KIS venue.

- ``burst``: N market orders at once through ``kis-paper`` on real time; the venue counts
  arrivals per rolling second as KIS does. Prints the wall time, the rate-limit answers and the
  busiest second: the limit (1 a second on paper) should be the only cost.
- ``recovery``: an engine dies with N orders SUBMITTING (some at the venue, some never sent);
  the next engine settles every one. Prints how many inquiry requests that took, against the
  ceil(N/15) pages of paper's daily inquiry (simulated time: the venue keeps the engine's clock).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orderlane import Engine, EngineConfig, OrderStatus, Signal, SystemClock
from orderlane.testing.harness import ScenarioRun
from orderlane_kis.harness import KisHarness

app = typer.Typer(help="Measure what KIS's limits cost, against the fake KIS venue.")

__all__ = ["app", "measure_burst", "measure_recovery"]


async def measure_burst(orders: int) -> dict[str, Any]:
    """Send ``orders`` market orders at once through kis-paper on real time."""
    harness = KisHarness("paper")
    harness.enable_push()  # as with an HTS id: fills come pushed, the tracker does not poll
    harness.use_clock(SystemClock())
    await harness.start()
    directory = tempfile.mkdtemp(prefix="orderlane-kis-bench-")
    try:
        async with Engine.open(
            "kis-paper",
            adapter_options=harness.adapter_options(),
            database_url=f"sqlite:///{Path(directory) / 'journal.db'}",
            config=EngineConfig(load_entry_point_plugins=False),
        ) as engine:
            started = time.monotonic()
            placed = await asyncio.gather(
                *(engine.execute(Signal("005930", "BUY", 1)) for _ in range(orders))
            )
            seconds = time.monotonic() - started
        places = harness.venue.recorded_requests("place")
        trading = [
            r for r in harness.venue.recorded_requests() if r["operation"] in ("place", "inquiry")
        ]
        return {
            "orders": orders,
            "seconds": round(seconds, 2),
            "accepted": sum(o.status is OrderStatus.SUBMITTED for o in placed),
            "rate_limit_answers": sum(r["msg_cd"] == "EGW00201" for r in places),
            "inquiries": len(trading) - len(places),
            "busiest_second": _busiest([r["monotonic"] for r in trading], 1.0),
            "limit_per_second": 1,
        }
    finally:
        await harness.stop()


def _busiest(times: list[float], period: float) -> int:
    times = sorted(times)
    most = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= period:
            start += 1
        most = max(most, end - start + 1)
    return most


async def measure_recovery(present: int, absent: int) -> dict[str, Any]:
    """Leave ``present + absent`` orders SUBMITTING (``present`` of them at the venue) and
    count the inquiry requests of the restart that settles them."""
    harness = KisHarness("paper", offer_push=False)
    directory = tempfile.mkdtemp(prefix="orderlane-kis-bench-")
    run = ScenarioRun(harness, database_url=f"sqlite:///{Path(directory) / 'journal.db'}")
    harness.use_clock(run.clock)
    await harness.start()
    try:
        sent = [Signal("005930", "BUY", n, signal_id=f"r-{n}") for n in range(1, present + 1)]
        unsent = [
            Signal("005930", "BUY", n, signal_id=f"r-{n}")
            for n in range(present + 1, present + absent + 1)
        ]
        harness.venue.set_cash(10**13)  # quantities 1..N of one stock add up
        for _ in sent:
            harness.hold_next()
        await run.crash_many(
            [(s, "before_answer") for s in sent] + [(s, "after_submitting") for s in unsent]
        )
        before = harness.venue.request_count("inquiry")
        async with run.engine() as engine:
            inquiries = harness.venue.request_count("inquiry") - before
            stored = await engine.orders(limit=present + absent + 1)
        statuses = {status.value: 0 for status in OrderStatus}
        for order in stored:
            statuses[order.status.value] += 1
        total = present + absent
        return {
            "orders": total,
            "at_the_venue": present,
            "inquiry_requests": inquiries,
            "pages_of_the_orders": math.ceil(total / 15),
            "settled": {k: v for k, v in statuses.items() if v},
        }
    finally:
        await harness.stop()


@app.command()
def burst(
    orders: Annotated[int, typer.Option(min=1, max=10_000, help="Orders sent at once.")] = 30,
) -> None:
    """N market orders at once on kis-paper's fake venue, on real time (about N seconds)."""
    typer.echo(json.dumps(asyncio.run(measure_burst(orders)), indent=2))


@app.command()
def recovery(
    present: Annotated[
        int, typer.Option(min=0, max=100_000, help="Orders the venue took before the crash.")
    ] = 240,
    absent: Annotated[
        int, typer.Option(min=0, max=100_000, help="Orders never sent before the crash.")
    ] = 60,
) -> None:
    """Settle orders a crash left SUBMITTING; count the restart's inquiry requests."""
    typer.echo(json.dumps(asyncio.run(measure_recovery(present, absent)), indent=2))
