"""Four engine processes on one account, one PostgreSQL journal and one Redis limiter, against
one venue in its own process (the fake KIS venue, ``orderlane fake-kis serve``) that allows 10
requests a second: every signal becomes exactly one order, no update is lost, positions equal
the venue's fills, and no rolling second at the venue carries more than 10 requests while the
four keep it busy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orderlane.ratelimit import max_in_window
from orderlane_kis.fake.control import RemoteVenue
from orderlane_kis.fake.venue import TRADING_OPERATIONS

WORKER = Path(__file__).with_name("engine_worker.py")
LIMIT = 10
MARGIN = 0.1
PROCESSES = 4
OWN = 15  # signals of each process alone
SHARED = 5  # signals every process executes (the same signal ids)
SYMBOLS = ["005930", "000660", "035420"]


def signals_of(process: int) -> list[list[Any]]:
    own = [[f"p{process}-{i}", SYMBOLS[(i + process) % 3], 1 + i % 2] for i in range(OWN)]
    shared = [[f"shared-{i}", SYMBOLS[i % 3], 1] for i in range(SHARED)]
    return own + shared


def use_of_the_limit(times: list[float], busy_until: float, period: float = 1.0) -> float:
    """Requests that arrived in the whole windows while the engines still had orders to send
    (from the first arrival to the last order's), divided by what the limit allows in them."""
    start = times[0]
    windows = int((busy_until - start) // period)
    if windows == 0:
        return 0.0
    counted = sum(1 for t in times if t < start + windows * period)
    return counted / (LIMIT * windows)


async def start_venue() -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orderlane",
        "fake-kis",
        "serve",
        "--mode",
        "live",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    return process, json.loads(line)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.mark.postgres
async def test_four_engines_on_one_journal_and_one_redis_keep_the_venues_limit(
    fresh_postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    venue_process, venue = await start_venue()
    workers: list[asyncio.subprocess.Process] = []
    try:
        remote = RemoteVenue(venue["control_url"])
        await remote.acall("set_rate_limit", limit=LIMIT, period=1.0)
        for process in range(PROCESSES):
            settings = {
                "venue": venue,
                "database_url": fresh_postgres_url,
                "redis_url": redis_url,
                "prefix": redis_prefix,
                "token_cache": str(tmp_path / "tokens"),
                "limiter": "redis",
                "limit": LIMIT,
                "margin": MARGIN,
                "signals": signals_of(process),
                "warm_up": f"warm-{process}",
            }
            path = tmp_path / f"worker-{process}.json"
            path.write_text(json.dumps(settings))
            workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    str(path),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        for worker in workers:
            assert worker.stdout is not None
            assert (await asyncio.wait_for(worker.stdout.readline(), 90)).strip() == b"ready"
        # The warm-up's requests leave the venue's window before the measured run starts.
        await asyncio.sleep(1.5)
        await remote.acall("reset_record")  # count from the moment all four are busy
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        outputs = [
            json.loads(await asyncio.wait_for(worker.stdout.readline(), 180))  # type: ignore[union-attr]
            for worker in workers
        ]
        codes = [await asyncio.wait_for(worker.wait(), 60) for worker in workers]
        requests = await remote.acall("recorded_requests")
        venue_orders = await remote.acall("orders")
        counters = await remote.acall("counters")
    finally:
        for worker in workers:
            await stop(worker)
        await stop(venue_process)
    assert codes == [0] * PROCESSES

    # Every signal is exactly one order, in the journal and at the venue, and each process
    # executing a shared signal got that same order.
    signals = {s[0] for p in range(PROCESSES) for s in signals_of(p)}
    signals |= {f"warm-{p}" for p in range(PROCESSES)}
    engine = sa.create_engine(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, signal_id, status, broker_order_id, filled_quantity FROM orders")
        ).all()
        fills = dict(
            conn.execute(
                sa.text("SELECT order_id, sum(quantity) FROM fills GROUP BY order_id")
            ).all()
        )
        positions = dict(
            conn.execute(
                sa.text("SELECT symbol, quantity FROM positions WHERE account_id = 'desk'")
            ).all()
        )
    engine.dispose()
    assert sorted(row.signal_id for row in rows) == sorted(signals)
    by_signal = {row.signal_id: row.id for row in rows}
    for output in outputs:
        for signal_id, order_id in output["orders"]:
            assert by_signal[signal_id] == order_id
    assert len(venue_orders) == len(signals)  # nothing sent twice
    assert {row.status for row in rows} == {"FILLED"}

    # No lost update: each order's stored fill total is its fills' and the venue's.
    executed = {o["odno"]: o["filled"] for o in venue_orders}
    for row in rows:
        assert row.filled_quantity == fills[row.id] == executed[row.broker_order_id]
    venue_positions = Counter()
    for o in venue_orders:
        venue_positions[o["symbol"]] += o["filled"]
    assert positions == dict(venue_positions)

    # The venue's view: its worst rolling second, and how much of the limit was used.
    times = sorted(r["monotonic"] for r in requests if r["operation"] in TRADING_OPERATIONS)
    worst = max_in_window(times, 1.0)
    departures = sorted(t for o in outputs for t in o["departures"])
    permits_worst = max_in_window(departures, 1.0)
    last_place = max(r["monotonic"] for r in requests if r["operation"] == "place")
    used = use_of_the_limit(times, last_place)
    print(
        f"\nseveral engines: {len(rows)} orders, {len(times)} requests at the venue, worst "
        f"second at the venue {worst} (limit {LIMIT}; {permits_worst} as the engines took their "
        f"permits), use of the limit {used:.1%}, refused for rate "
        f"{counters['rate_limit_answers']}, lost 0, duplicates 0, position mismatches 0"
    )
    assert worst <= LIMIT
    assert counters["rate_limit_answers"] == 0
    assert used >= 0.9
