"""``orderlane bench tracker``, ``recovery`` and ``memory``: open orders at scale, on the mock.

- tracker: broker status requests per poll cycle for N open orders, with the paged batch inquiry
  and with push, against the seed's design (one status request per open order per cycle, asked
  in the same run on the same venue).
- recovery: the time to reconcile N open orders after a crash (most still open at the venue,
  some filled while the engine was down, some sent but never answered, so looked up), against
  the standard library's sqlite3 reading the same open orders and committing the same changes
  one after another; and the broker requests it took, against the seed's one request per order.
- memory: resident memory per tracked open order after recovery of N open orders, against the
  same orders held as the rows sqlite3 returns. Each side runs in a fresh process of its own, so
  neither inherits the other's heap.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orderlane.bench.orders import _migrate, _sqlite_connect, bench_engine, journal_commits
from orderlane.bench.report import Goal, Report, figure
from orderlane.bench.seeding import mock_venue, seed_orders
from orderlane.model import TERMINAL_STATUSES, OrderStatus

__all__ = ["run_memory", "run_recovery", "run_tracker"]

#: Whole poll cycles the tracker bench counts at least, after the first.
_MIN_CYCLES = 5
_OPEN = tuple(status.value for status in OrderStatus if status not in TERMINAL_STATUSES)


@contextlib.contextmanager
def _directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="orderlane-bench-") as directory:
        yield Path(directory)


def _requests(venue: Any, operation: str | None = None) -> int:
    if operation is None:
        return len(venue.requests)
    return sum(1 for request in venue.requests if request.operation == operation)


# ------------------------------------------------------------------ tracker


async def _cycles(open_orders: int, push: bool, root: Path, window: float) -> dict[str, Any]:
    """Status requests per cycle of the running tracker, over whole cycles after its first.

    The venue's request count is noted as each cycle starts, so the requests between two starts
    are exactly one cycle's, however long a cycle takes on a busy machine.
    """
    url = f"sqlite:///{root / ('push.db' if push else 'poll.db')}"
    await _migrate(url)
    engine = bench_engine(url, push=push, poll_interval=0.05)
    venue = mock_venue(engine)
    seed_orders(url, venue, open_orders=open_orders)
    tracker = engine.tracker
    starts: list[int] = []
    poll_once = tracker.poll_once

    async def counted(**options: Any) -> None:
        starts.append(_requests(venue, "status"))
        await poll_once(**options)

    tracker.poll_once = counted  # type: ignore[method-assign]
    await engine.start()
    try:
        began = time.monotonic()
        # The cycles are counted as they start; there is no event to wait on.
        while time.monotonic() - began < 30 and (  # noqa: ASYNC110
            len(starts) < 2 + _MIN_CYCLES or time.monotonic() - began < window
        ):
            await asyncio.sleep(0.01)
        whole = starts[1:]
        cycles, requests = len(whole) - 1, whole[-1] - whole[0]
        tracked = len(tracker)
        seed_requests = _requests(venue, "status")
        t0 = time.perf_counter()
        for order in tracker.orders:  # the seed's cycle: one status request per open order
            await engine.broker.order_status(order)
        seed_seconds = time.perf_counter() - t0
        seed_requests = _requests(venue, "status") - seed_requests
        page_size = int(venue.page_size)
    finally:
        await engine.close()
    return {
        "tracked": tracked,
        "cycles": cycles,
        "requests": requests,
        "per_cycle": requests / cycles if cycles else math.nan,
        "seed_per_cycle": seed_requests,
        "seed_cycle_seconds": round(seed_seconds, 4),
        "page_size": page_size,
        "push_active": push,
    }


async def run_tracker(open_orders: int = 1000, *, window: float = 1.0) -> Report:
    if open_orders < 1:
        raise ValueError("open_orders must be at least 1")
    started = time.perf_counter()
    with _directory() as root:
        paged = await _cycles(open_orders, False, root, window)
        pushed = await _cycles(open_orders, True, root, window)
    pages = math.ceil(open_orders / paged["page_size"])
    return Report(
        bench="tracker",
        subject=f"broker status requests per poll cycle, {open_orders} open orders on the mock",
        baseline="the seed's design: one status request per open order per cycle, same venue",
        parameters={
            "open_orders": open_orders,
            "page_size": paged["page_size"],
            "window_s": window,
        },
        figures=(
            figure(
                "paged poll",
                "requests/cycle",
                paged["per_cycle"],
                paged["seed_per_cycle"],
                Goal("value", "<=", pages),
            ),
            figure(
                "push",
                "requests/cycle",
                pushed["per_cycle"],
                pushed["seed_per_cycle"],
                Goal("value", "<=", 1),
            ),
        ),
        raw={"paged": paged, "push": pushed, "pages": pages},
        seconds=round(time.perf_counter() - started, 3),
    )


# ------------------------------------------------------------------ recovery


def _raw_recovery(path: Path, changes: list[int]) -> float:
    """sqlite3 reading the open orders and committing ``changes`` updates one after another
    (one per order that changed at least once, ``changes[i]`` times): seconds taken."""
    conn = _sqlite_connect(path)
    try:
        t0 = time.perf_counter()
        marks = ", ".join("?" * len(_OPEN))
        query = f"SELECT * FROM orders WHERE status IN ({marks})"  # noqa: S608 - placeholders
        rows = conn.execute(query, _OPEN).fetchall()
        ids = [row[0] for row in rows]
        for order_id, times in zip(ids, changes, strict=False):
            for _ in range(times):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "UPDATE orders SET version = version + 1, updated_at = ? WHERE id = ?",
                    (time.time(), order_id),
                )
                conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


async def run_recovery(
    open_orders: int = 10_000, *, filled_share: float = 0.05, lookup_share: float = 0.05
) -> Report:
    """Recovery of ``open_orders`` open orders: most still open at the venue, ``filled_share``
    filled while the engine was down, ``lookup_share`` never answered (looked up)."""
    if open_orders < 1:
        raise ValueError("open_orders must be at least 1")
    filled = int(open_orders * filled_share)
    lookup = int(open_orders * lookup_share)
    still_open = open_orders - filled - lookup
    started = time.perf_counter()
    with _directory() as root:
        url = f"sqlite:///{root / 'engine.db'}"
        await _migrate(url)
        engine = bench_engine(url, track=False)
        venue = mock_venue(engine)
        seed_orders(url, venue, open_orders=still_open, filled=filled, lookup=lookup)
        shutil.copy(root / "engine.db", root / "raw.db")
        before = {"status": _requests(venue, "status"), "lookup": _requests(venue, "lookup")}
        t0 = time.perf_counter()
        await engine.start()
        seconds = time.perf_counter() - t0
        try:
            took = {op: _requests(venue, op) - count for op, count in before.items()}
            changes = engine.last_recovery
            tracked = len(engine.tracker)
            commits = journal_commits(engine)
        finally:
            await engine.close()
        # The same commits the engine needed: one per filled order, two per looked-up order.
        raw_seconds = _raw_recovery(root / "raw.db", [1] * filled + [2] * lookup)
    requests = took["status"] + took["lookup"]
    seed_requests = open_orders  # one status inquiry or lookup per order
    scale = 10_000 / open_orders
    return Report(
        bench="recovery",
        subject=f"reconcile {open_orders} open orders after a crash, mock adapter, SQLite",
        baseline="time: sqlite3 reading the open orders and committing the same changes one "
        "after another; requests: the seed's one request per order",
        parameters={
            "open_orders": open_orders,
            "still_open": still_open,
            "filled_while_down": filled,
            "needing_lookup": lookup,
            "page_size": int(venue.page_size),
        },
        figures=(
            figure(
                "time per 10,000 orders",
                "s",
                seconds * scale,
                raw_seconds * scale,
                Goal("value", "<=", 5.0),
            ),
            figure("broker requests", "requests", requests, seed_requests),
        ),
        raw={
            "orderlane": {
                "seconds": round(seconds, 4),
                "status_requests": took["status"],
                "lookups": took["lookup"],
                "changes": len(changes),
                "tracked_after": tracked,
                "commits": commits,
            },
            "baseline": {"seconds": round(raw_seconds, 4), "commits": filled + 2 * lookup},
        },
        seconds=round(time.perf_counter() - started, 3),
    )


# ------------------------------------------------------------------ memory


def _rss() -> int:
    """This process's resident memory in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux: the peak is the best we get
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def _settled_rss() -> int:
    gc.collect()
    return _rss()


async def _engine_memory(open_orders: int, root: str) -> dict[str, Any]:
    url = f"sqlite:///{Path(root) / 'engine.db'}"
    await _migrate(url)
    engine = bench_engine(url, track=False)
    seed_orders(url, mock_venue(engine), open_orders=open_orders)
    before = _settled_rss()
    t0 = time.perf_counter()
    await engine.start()
    seconds = time.perf_counter() - t0
    try:
        after = _settled_rss()
        tracked = len(engine.tracker)
    finally:
        await engine.close()
    return {"bytes": after - before, "tracked": tracked, "recovery_seconds": round(seconds, 3)}


def _raw_memory(open_orders: int, root: str) -> dict[str, Any]:
    url = f"sqlite:///{Path(root) / 'raw.db'}"
    asyncio.run(_migrate(url))
    seed_orders(url, None, open_orders=open_orders)
    conn = _sqlite_connect(Path(root) / "raw.db")
    try:
        before = _settled_rss()
        rows = conn.execute("SELECT * FROM orders").fetchall()
        after = _settled_rss()
    finally:
        conn.close()
    return {"bytes": after - before, "tracked": len(rows)}


def _measure(side: str, open_orders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orderlane-bench-") as root:
        if side == "engine":
            return asyncio.run(_engine_memory(open_orders, root))
        return _raw_memory(open_orders, root)


def run_memory(open_orders: int = 100_000, *, isolated: bool = True) -> Report:
    """Resident bytes per tracked open order (``isolated``: each side in a fresh process)."""
    if open_orders < 1:
        raise ValueError("open_orders must be at least 1")
    started = time.perf_counter()
    if isolated:
        context = multiprocessing.get_context("spawn")
        with context.Pool(1, maxtasksperchild=1) as pool:
            ours = pool.apply(_measure, ("engine", open_orders))
            raw = pool.apply(_measure, ("raw", open_orders))
    else:
        ours = _measure("engine", open_orders)
        raw = _measure("raw", open_orders)
    return Report(
        bench="memory",
        subject=f"resident memory per tracked open order, {open_orders} open orders "
        "recovered into the tracker",
        baseline="the same orders held as the rows sqlite3 returns (tuples)",
        parameters={"open_orders": open_orders, "isolated": isolated},
        figures=(
            figure(
                "per open order",
                "bytes",
                ours["bytes"] / open_orders,
                raw["bytes"] / open_orders,
                Goal("value", "<=", 2048),
            ),
        ),
        raw={"orderlane": ours, "baseline": raw},
        seconds=round(time.perf_counter() - started, 3),
    )
