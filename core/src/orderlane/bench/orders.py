"""``orderlane bench latency`` and ``orderlane bench throughput``: the order path against the raw
database driver doing the seed's three commits per order, in the same process and run.

The baseline writes the same order rows as the engine (every column, the same values) into an
equal database (same schema, created by orderlane's migrations), in three transactions per
order: insert CREATED, update to SUBMITTING, update to FILLED, at the engine's durability (SQLite:
WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``; PostgreSQL: one transaction each). The engine
runs on the mock adapter filling every order at once. Baseline and engine alternate in blocks so
both see the same moments of a shared, noisy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from orderlane.bench.floor import JournalFloor
from orderlane.bench.report import Goal, Report, figure, percentile, summary_ms
from orderlane.engine import Engine, EngineConfig
from orderlane.journal.rows import order_row
from orderlane.journal.schema import orders as orders_table
from orderlane.journal.sql import SqlJournal
from orderlane.journal.url import resolve_database_url, safe_url
from orderlane.model import Order, OrderStatus, Signal

__all__ = ["RawWriter", "Workspace", "run_latency", "run_throughput", "workspace"]

_SYMBOLS = tuple(f"{n:06d}" for n in range(1, 9))
_PRICE = Decimal(72000)
_COMMISSION = Decimal(100)


def journal_commits(engine: Engine) -> int:
    """Transactions the engine's journal committed (the benchmarks run on the SQL journal)."""
    journal = engine.journal
    assert isinstance(journal, SqlJournal)
    return journal.commits


def bench_signal(number: int) -> Signal:
    """The ``number``-th signal of a run: market buys of 1-3 shares over eight symbols."""
    return Signal(_SYMBOLS[number % len(_SYMBOLS)], "BUY", 1 + number % 3, symbol_name="bench")


def bench_engine(url: str, *, push: bool = False, **options: Any) -> Engine:
    """An engine on the mock adapter (filling at once unless told otherwise), without
    entry-point plugins, at the default durability; ``options`` are EngineConfig fields."""
    return Engine(
        "mock",
        config=EngineConfig(database_url=url, load_entry_point_plugins=False, **options),
        adapter_options={"quote": str(_PRICE), "commission": str(_COMMISSION), "push": push},
    )


# ------------------------------------------------------------------ the raw baseline


class RawWriter:
    """The seed's three commits per order with the bare driver (sqlite3 or psycopg)."""

    def __init__(self, dialect: str, connect: Callable[[], Any]) -> None:
        self.dialect = dialect
        self._conn = connect()
        columns = [column.name for column in orders_table.columns]
        self._columns = columns
        marks = ", ".join("?" * len(columns))
        # Built from the table's own column names; values go through placeholders.
        insert = f"INSERT INTO orders ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        submitting = (
            "UPDATE orders SET status = ?, attempts = ?, submitted_at = ?, updated_at = ?, "
            "version = ? WHERE id = ? AND version = ?"
        )
        filled = (
            "UPDATE orders SET status = ?, broker_order_id = ?, filled_quantity = ?, "
            "filled_notional = ?, commission = ?, filled_at = ?, updated_at = ?, version = ? "
            "WHERE id = ? AND version = ?"
        )
        mark = "?" if dialect == "sqlite" else "%s"
        self._insert, self._submitting, self._filled = (
            sql.replace("?", mark) for sql in (insert, submitting, filled)
        )
        self._engine_id = secrets.token_hex(8)

    def close(self) -> None:
        self._conn.close()

    def _value(self, value: Any) -> Any:
        if self.dialect != "sqlite":
            return value
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        return value

    def _commit(self, sql: str, params: tuple[Any, ...]) -> None:
        conn = self._conn
        if self.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(sql, params)
            if cursor.rowcount != 1:
                raise AssertionError("the raw baseline lost a row")
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.rowcount != 1:
                    raise AssertionError("the raw baseline lost a row")
            conn.commit()

    def order(self, signal: Signal) -> None:
        """Insert, update to SUBMITTING, update to FILLED: three commits, one after another."""
        now = datetime.now(UTC)
        order = Order.from_signal(signal, account_id="raw", now=now)
        row = {**order_row(attrs.evolve(order, version=1)), "engine_id": self._engine_id}
        v = self._value
        self._commit(self._insert, tuple(v(row[name]) for name in self._columns))
        now = datetime.now(UTC)
        self._commit(
            self._submitting,
            (OrderStatus.SUBMITTING.value, 1, v(now), v(now), 2, order.id, 1),
        )
        now = datetime.now(UTC)
        notional = _PRICE * order.quantity
        self._commit(
            self._filled,
            (
                OrderStatus.FILLED.value,
                f"RAW-{order.id[:8]}",
                order.quantity,
                v(notional),
                v(_COMMISSION),
                v(now),
                v(now),
                3,
                order.id,
                2,
            ),
        )


# ------------------------------------------------------------------ scratch databases


def _no_floor() -> JournalFloor:
    raise NotImplementedError("the journal floor runs on SQLite only")


@attrs.frozen
class Workspace:
    """Two equal, empty journal databases: one for the engine, one for the raw baseline."""

    dialect: str
    engine_url: str
    raw: Callable[[], RawWriter]
    #: Where the databases live, for the report (passwords masked).
    where: str
    #: The journal's statements alone on a third equal database (SQLite only).
    floor: Callable[[], JournalFloor] = attrs.field(default=_no_floor)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


async def _migrate(url: str) -> None:
    journal = SqlJournal(url)
    await journal.open()
    await journal.close()


@contextlib.asynccontextmanager
async def workspace(database_url: str | None = None) -> AsyncIterator[Workspace]:
    """Scratch databases, dropped afterwards: two SQLite files in a temporary directory, or (for
    a PostgreSQL ``database_url``) two schemas of their own in that database."""
    if (
        database_url is None
        or sa.engine.make_url(resolve_database_url(database_url)).get_backend_name() == "sqlite"
    ):
        with tempfile.TemporaryDirectory(prefix="orderlane-bench-") as directory:
            root = Path(directory)
            engine_url = f"sqlite:///{root / 'engine.db'}"
            await _migrate(engine_url)
            await _migrate(f"sqlite:///{root / 'raw.db'}")
            await _migrate(f"sqlite:///{root / 'floor.db'}")
            yield Workspace(
                "sqlite",
                engine_url,
                lambda: RawWriter("sqlite", lambda: _sqlite_connect(root / "raw.db")),
                "SQLite files in a temporary directory",
                lambda: JournalFloor(
                    lambda: _sqlite_connect(root / "floor.db"), _PRICE, _COMMISSION
                ),
            )
        return
    async with _postgres_workspace(resolve_database_url(database_url)) as space:
        yield space


@contextlib.asynccontextmanager
async def _postgres_workspace(url: str) -> AsyncIterator[Workspace]:
    import psycopg

    parsed = sa.engine.make_url(url)
    conninfo = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    tag = secrets.token_hex(4)
    schemas = {"engine": f"orderlane_bench_{tag}_engine", "raw": f"orderlane_bench_{tag}_raw"}
    with psycopg.connect(conninfo, autocommit=True) as admin:
        for schema in schemas.values():
            admin.execute(f"CREATE SCHEMA {schema}")
    try:
        urls = {
            role: parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
            for role, schema in schemas.items()
        }
        for each in urls.values():
            await _migrate(each)
        yield Workspace(
            "postgresql",
            urls["engine"],
            lambda: RawWriter(
                "postgresql",
                lambda: psycopg.connect(conninfo, options=f"-csearch_path={schemas['raw']}"),
            ),
            f"two scratch schemas in {safe_url(conninfo)}",
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            for schema in schemas.values():
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# ------------------------------------------------------------------ latency


async def run_latency(orders: int = 300, *, blocks: int = 10, warmup: int = 20) -> Report:
    """``engine.execute`` one order at a time against the raw three commits, on SQLite."""
    if orders < 2:
        raise ValueError("latency needs at least 2 orders")
    started = time.perf_counter()
    ours: list[float] = []
    raw: list[float] = []
    floor_direct: list[float] = []
    floor_hopped: list[float] = []
    cpu = {"orderlane": 0.0, "baseline": 0.0}  # the process's CPU time in each side's orders
    async with workspace() as space, contextlib.AsyncExitStack() as opened:
        # Closed in the reverse order, each whatever the others do: floor, raw, engine.
        engine = bench_engine(space.engine_url)
        opened.push_async_callback(engine.close)
        writer = space.raw()
        opened.callback(writer.close)
        floor = space.floor()
        opened.callback(floor.close)
        await engine.start()
        number = 0
        for _ in range(warmup):
            await engine.execute(bench_signal(number))
            writer.order(bench_signal(number))
            floor.run(floor.plan(bench_signal(number)))
            await floor.run_hopped(floor.plan(bench_signal(number)))
            number += 1
        floor_number = number
        per_block = max(1, orders // blocks)
        while len(ours) < orders:
            count = min(per_block, orders - len(ours))
            cpu0 = time.process_time()
            for _ in range(count):
                signal = bench_signal(number)
                number += 1
                t0 = time.perf_counter()
                order = await engine.execute(signal)
                ours.append(time.perf_counter() - t0)
                if order.status is not OrderStatus.FILLED:
                    raise AssertionError(f"bench order ended {order.status.value}")
            cpu1 = time.process_time()
            for _ in range(count):
                signal = bench_signal(number)
                number += 1
                t0 = time.perf_counter()
                writer.order(signal)
                raw.append(time.perf_counter() - t0)
            cpu["orderlane"] += cpu1 - cpu0
            cpu["baseline"] += time.process_time() - cpu1
            # The floor's signals are numbered on their own (its database is its own).
            await _floor_block(floor, floor_number, count, floor_direct, floor_hopped)
            floor_number += 2 * count
        commits = journal_commits(engine)
        frames = await _wal_frames_per_order(space, engine, writer, number)
    ours_ms = {**summary_ms(ours), "cpu_ms_per_order": round(cpu["orderlane"] / orders * 1e3, 4)}
    raw_ms = {**summary_ms(raw), "cpu_ms_per_order": round(cpu["baseline"] / orders * 1e3, 4)}
    raw_p50 = percentile(raw, 0.5)
    floors = {
        name: {**summary_ms(samples), "p50_ratio": round(percentile(samples, 0.5) / raw_p50, 3)}
        for name, samples in (
            ("journal_statements", floor_direct),
            ("journal_statements_with_thread_hops", floor_hopped),
        )
    }
    return Report(
        bench="latency",
        subject="engine.execute, mock adapter filling at once, SQLite WAL synchronous=FULL",
        baseline="sqlite3 (standard library): the same three commits per order, same durability",
        parameters={"orders": orders, "database": "sqlite", "synchronous": "FULL"},
        figures=(
            figure("p50", "ms", ours_ms["p50_ms"], raw_ms["p50_ms"], Goal("ratio", "<=", 1.5)),
            figure("p99", "ms", ours_ms["p99_ms"], raw_ms["p99_ms"], Goal("ratio", "<=", 3.0)),
        ),
        raw={
            "orderlane": ours_ms,
            "baseline": raw_ms,
            "journal_commits": commits,
            "wal_frames_per_order": frames,
            "floor": floors,
        },
        seconds=round(time.perf_counter() - started, 3),
    )


async def _floor_block(
    floor: JournalFloor, first: int, count: int, direct: list[float], hopped: list[float]
) -> None:
    """``count`` orders of the journal's own statements on one thread, then ``count`` through a
    thread hop per commit (:mod:`orderlane.bench.floor`), each timed without its building."""
    for number in range(first, first + count):
        commits = floor.plan(bench_signal(number))
        t0 = time.perf_counter()
        floor.run(commits)
        direct.append(time.perf_counter() - t0)
    for number in range(first + count, first + 2 * count):
        commits = floor.plan(bench_signal(number))
        t0 = time.perf_counter()
        await floor.run_hopped(commits)
        hopped.append(time.perf_counter() - t0)


#: Orders each side runs for the write-ahead log's frame count (few enough that SQLite's
#: automatic checkpoint, at 1,000 frames, does not run in between).
WAL_SAMPLE = 20


async def _wal_frames_per_order(
    space: Workspace, engine: Engine, writer: RawWriter, first: int
) -> dict[str, float]:
    """Pages each side's three commits write to SQLite's write-ahead log per order (what each
    ``fsync`` carries): the log is emptied, ``WAL_SAMPLE`` orders run, its frames are counted."""
    engine_db = Path(sa.engine.make_url(space.engine_url).database or "")
    counts: dict[str, float] = {}
    for side, path in (("orderlane", engine_db), ("baseline", engine_db.with_name("raw.db"))):
        probe = sqlite3.connect(path, isolation_level=None)
        try:
            probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for number in range(first, first + WAL_SAMPLE):
                if side == "orderlane":
                    await engine.execute(bench_signal(number))
                else:
                    writer.order(bench_signal(number))
            _busy, frames, _done = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            probe.close()
        counts[side] = round(frames / WAL_SAMPLE, 2)
    return counts


# ------------------------------------------------------------------ throughput


async def _drive(
    engine: Engine, first: int, count: int, concurrency: int
) -> tuple[float, float, int]:
    """Execute ``count`` signals with ``concurrency`` in flight: (seconds, CPU seconds of the
    whole process, orders FILLED)."""
    numbers = iter(range(first, first + count))
    filled = 0

    async def worker() -> None:
        nonlocal filled
        for number in numbers:
            order = await engine.execute(bench_signal(number))
            filled += order.status is OrderStatus.FILLED

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, time.process_time() - cpu0, filled


async def run_throughput(
    orders: int = 2000,
    *,
    concurrency: int = 64,
    database_url: str | None = None,
    baseline_orders: int | None = None,
) -> Report:
    """Orders persisted per second with ``concurrency`` signals in flight, against the raw
    driver's rate of three commits per order one after another (half its orders before the
    engine's run, half after)."""
    if orders < 1 or concurrency < 1:
        raise ValueError("orders and concurrency must be at least 1")
    baseline_orders = baseline_orders or max(2, min(orders, 300))
    started = time.perf_counter()
    async with workspace(database_url) as space:
        engine = bench_engine(space.engine_url)
        writer = space.raw()
        await engine.start()
        try:
            await _drive(engine, 0, min(concurrency, orders), concurrency)  # warm up
            writer.order(bench_signal(0))
            raw_seconds = raw_cpu = 0.0
            half = baseline_orders // 2
            for numbers in (range(half), None, range(half, baseline_orders)):
                if numbers is None:
                    commits_before = journal_commits(engine)
                    seconds, cpu, filled = await _drive(engine, orders, orders, concurrency)
                    commits = journal_commits(engine) - commits_before
                    continue
                t0, cpu0 = time.perf_counter(), time.process_time()
                for number in numbers:
                    writer.order(bench_signal(number))
                raw_seconds += time.perf_counter() - t0
                raw_cpu += time.process_time() - cpu0
        finally:
            writer.close()
            await engine.close()
    ours_rate = orders / seconds
    raw_rate = baseline_orders / raw_seconds
    driver = "sqlite3 (standard library)" if space.dialect == "sqlite" else "psycopg 3"
    durability = "WAL, synchronous=FULL" if space.dialect == "sqlite" else "one commit each"
    return Report(
        bench="throughput",
        subject=f"orders persisted per second, {concurrency} signals in flight, "
        f"mock adapter filling at once, {space.dialect}",
        baseline=f"{driver}: three commits per order one after another ({durability})",
        parameters={
            "orders": orders,
            "concurrency": concurrency,
            "database": space.dialect,
            "where": space.where,
            "baseline_orders": baseline_orders,
        },
        figures=(figure("orders/s", "orders/s", ours_rate, raw_rate, Goal("ratio", ">=", 3.0)),),
        raw={
            "orderlane": {
                "orders": orders,
                "filled": filled,
                "seconds": round(seconds, 4),
                "commits": commits,
                "transitions_per_commit": round(3 * orders / commits, 2) if commits else None,
                "cpu_ms_per_order": round(cpu / orders * 1000, 4),
            },
            "baseline": {
                "orders": baseline_orders,
                "seconds": round(raw_seconds, 4),
                "commits": 3 * baseline_orders,
                "cpu_ms_per_order": round(raw_cpu / baseline_orders * 1000, 4),
            },
        },
        seconds=round(time.perf_counter() - started, 3),
    )
