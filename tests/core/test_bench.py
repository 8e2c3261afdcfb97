"""``orderlane bench``: every bench runs and reports well-formed figures (small sizes).

These tests check what the benches count and report, never how fast anything was: timing
thresholds on a shared machine would only measure the machine.
"""

from __future__ import annotations

import json
import math
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orderlane.bench import Report, run_latency, run_throughput, whole_window_fidelity
from orderlane.bench.floor import JournalFloor
from orderlane.bench.orders import _migrate, _sqlite_connect, bench_engine, bench_signal
from orderlane.bench.report import Goal, figure, percentile
from orderlane.bench.tracking import run_memory, run_recovery, run_tracker
from orderlane.cli import app
from orderlane.serialization import unstructure


def check_report(data: dict[str, Any], bench: str) -> list[dict[str, Any]]:
    """The shape every report has; returns its figures."""
    assert data["bench"] == bench
    assert data["subject"]
    assert data["baseline"]
    assert isinstance(data["parameters"], dict)
    assert isinstance(data["raw"], dict)
    assert data["seconds"] > 0
    assert data["figures"]
    for fig in data["figures"]:
        assert set(fig) == {"name", "unit", "value", "baseline", "ratio", "goal", "met"}
        assert math.isfinite(fig["value"])
        assert math.isfinite(fig["baseline"])
        if fig["baseline"]:
            assert fig["ratio"] == pytest.approx(fig["value"] / fig["baseline"], rel=1e-3)
        else:
            assert fig["ratio"] is None
        assert (fig["goal"] is None) == (fig["met"] is None)
    figures: list[dict[str, Any]] = data["figures"]
    return figures


def by_name(figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {fig["name"]: fig for fig in figures}


# ------------------------------------------------------------------ report pieces


def test_figure_ratio_and_goal() -> None:
    fast = figure("p50", "ms", 3.0, 2.0, Goal("ratio", "<=", 1.5))
    assert (fast.ratio, fast.goal, fast.met) == (1.5, "ratio <= 1.5", True)
    slow = figure("rate", "orders/s", 100.0, 50.0, Goal("ratio", ">=", 3))
    assert (slow.ratio, slow.met) == (2.0, False)
    no_baseline = figure("rejected", "requests", 0, 0, Goal("value", "<=", 0))
    assert (no_baseline.ratio, no_baseline.met) == (None, True)


def test_percentile_interpolates() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 0.5) == pytest.approx(50.5)
    assert percentile(samples, 0.99) == pytest.approx(99.01)
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_fidelity_counts_whole_windows_only() -> None:
    # Ten full windows of 10, then a last window with 3: the partial one is not lost capacity.
    times = [w + i / 100 for w in range(10) for i in range(10)] + [10.0, 10.01, 10.02]
    assert whole_window_fidelity(times, 10, 1.0) == pytest.approx(1.0)
    # A window left empty in the middle is capacity lost.
    gapped = [t for t in times if not 4 <= t < 5]
    assert whole_window_fidelity(gapped, 10, 1.0) == pytest.approx(0.9)
    # Everything within the first window: nothing whole to judge by.
    assert whole_window_fidelity([0.0, 0.1, 0.2], 10, 1.0) is None
    assert whole_window_fidelity([], 10, 1.0) is None


# ------------------------------------------------------------------ the benches


async def test_latency_reports_p50_and_p99_against_raw_sqlite() -> None:
    report = await run_latency(6, blocks=2, warmup=1)
    figures = by_name(check_report(unstructure(report), "latency"))
    assert set(figures) == {"p50", "p99"}
    assert figures["p50"]["goal"] == "ratio <= 1.5"
    assert figures["p99"]["goal"] == "ratio <= 3"
    assert report.raw["orderlane"]["samples"] == report.raw["baseline"]["samples"] == 6
    # Every order is its own three commits at least (nothing shares them one at a time).
    assert report.raw["journal_commits"] >= 3 * 7
    # The pages each side's commits carry: the baseline's three small updates write fewer
    # than the engine's (events, fills, positions too), and neither writes none.
    frames = report.raw["wal_frames_per_order"]
    assert 0 < frames["baseline"] < frames["orderlane"]
    # The floor: the journal's statements alone, on one thread and with a hop per commit.
    floor = report.raw["floor"]
    assert set(floor) == {"journal_statements", "journal_statements_with_thread_hops"}
    for side in floor.values():
        assert side["samples"] == 6
        assert side["p50_ratio"] == pytest.approx(
            side["p50_ms"] / report.raw["baseline"]["p50_ms"], rel=0.01
        )


async def test_the_floor_writes_what_the_engine_writes_for_an_order(tmp_path: Path) -> None:
    """The floor's three commits leave the rows the engine's leave for the same signal: the
    order FILLED at version 3, its six events in the engine's order, one fill, the position."""
    tables = ("orders", "order_events", "fills", "positions")
    journals = {}
    for name in ("engine", "floor"):
        await _migrate(f"sqlite:///{tmp_path / name}.db")
    engine = bench_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    await engine.start()
    try:
        await engine.execute(bench_signal(5))
    finally:
        await engine.close()
    floor = JournalFloor(
        lambda: _sqlite_connect(tmp_path / "floor.db"),
        Decimal(72000),
        Decimal(100),
    )
    try:
        commits = floor.plan(bench_signal(5))
        assert len(commits) == 3
        await floor.run_hopped(commits)
    finally:
        floor.close()
    for name in ("engine", "floor"):
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            journals[name] = {
                "counts": [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables],
                "order": conn.execute(
                    "SELECT status, version, filled_quantity FROM orders"
                ).fetchall(),
                "events": [
                    r[0] for r in conn.execute("SELECT type FROM order_events ORDER BY seq")
                ],
                "position": conn.execute(
                    "SELECT quantity, fees, version FROM positions"
                ).fetchall(),
            }
    assert journals["floor"] == journals["engine"]
    assert journals["floor"]["order"] == [("FILLED", 3, bench_signal(5).quantity)]


async def test_throughput_on_sqlite_persists_every_order() -> None:
    report = await run_throughput(24, concurrency=8, baseline_orders=4)
    check_report(unstructure(report), "throughput")
    ours = report.raw["orderlane"]
    assert ours["filled"] == 24
    assert report.raw["baseline"]["commits"] == 12
    assert report.figures[0].goal == "ratio >= 3"
    assert report.parameters["database"] == "sqlite"


@pytest.mark.postgres
async def test_throughput_on_postgres_leaves_no_schema_behind(postgres_url: str) -> None:
    report = await run_throughput(16, concurrency=4, baseline_orders=4, database_url=postgres_url)
    check_report(unstructure(report), "throughput")
    assert report.parameters["database"] == "postgresql"
    assert report.raw["orderlane"]["filled"] == 16
    assert "psycopg" in report.baseline
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'orderlane_bench_%'")
        ).all()
    engine.dispose()
    assert left == []


async def test_tracker_counts_pages_not_orders() -> None:
    report = await run_tracker(250, window=0.2)
    figures = by_name(check_report(unstructure(report), "tracker"))
    paged, pushed = report.raw["paged"], report.raw["push"]
    assert paged["tracked"] == pushed["tracked"] == 250
    assert paged["seed_per_cycle"] == 250  # the seed asks once per order
    assert paged["cycles"] >= 5
    assert figures["paged poll"]["value"] == 3  # 250 orders are 3 pages of 100, every cycle
    assert figures["push"]["value"] == 0  # with push, no inquiry between safety intervals


async def test_recovery_settles_every_kind_of_open_order() -> None:
    report = await run_recovery(200)
    figures = by_name(check_report(unstructure(report), "recovery"))
    ours = report.raw["orderlane"]
    assert ours["changes"] == 200
    # 10 (5%) sent but never answered: one batch lookup over the day's 200 orders, 2 pages.
    assert ours["lookups"] == 2
    # 190 orders with a broker id: two pages of the status inquiry.
    assert ours["status_requests"] == 2
    assert figures["broker requests"]["value"] == 4
    assert figures["broker requests"]["baseline"] == 200
    assert ours["tracked_after"] == 190  # the filled ones ended, the rest are followed


def test_memory_in_process_reports_bytes_per_order() -> None:
    report = run_memory(300, isolated=False)
    figures = check_report(unstructure(report), "memory")
    assert figures[0]["goal"] == "value <= 2048"
    assert report.raw["orderlane"]["tracked"] == report.raw["baseline"]["tracked"] == 300


# ------------------------------------------------------------------ the command line


def bench_json(*args: str) -> Any:
    result = CliRunner().invoke(app, ["bench", *args, "--json"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "bench"),
    [
        (["latency", "--orders", "4"], "latency"),
        (["throughput", "--orders", "8", "--concurrency", "4"], "throughput"),
        (["tracker", "--open-orders", "50"], "tracker"),
        (["recovery", "--open-orders", "60"], "recovery"),
        (["memory", "--open-orders", "200"], "memory"),
        (["rate-limit", "--limit", "20", "--requests", "30", "--period", "0.2"], "rate-limit"),
    ],
)
def test_every_subcommand_prints_figure_baseline_and_ratio(args: list[str], bench: str) -> None:
    check_report(bench_json(*args), bench)


def test_rate_limit_json_carries_both_limiters() -> None:
    data = bench_json("rate-limit", "--limit", "20", "--requests", "50", "--period", "0.2")
    figures = by_name(check_report(data, "rate-limit"))
    assert set(figures) == {"fidelity", "max in a window", "rejected by venue"}
    assert figures["max in a window"]["goal"] == "value <= 20"
    assert data["raw"]["orderlane"]["whole_windows"] >= 1
    assert data["raw"]["baseline"]["name"].startswith("aiolimiter")


def test_bench_all_prints_one_table() -> None:
    result = CliRunner().invoke(app, ["bench", "all", "--scale", "0.01"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for bench in ("latency", "throughput", "tracker", "recovery", "memory", "rate-limit"):
        assert bench in result.stdout
    assert result.stdout.count("orderlane bench all") == 1
    assert "latency floor (the journal's own statements per order" in result.stdout


def test_bench_all_json_holds_every_report() -> None:
    data = bench_json("all", "--scale", "0.01")
    benches = [report["bench"] for report in data["reports"]]
    assert benches == ["latency", "throughput", "tracker", "recovery", "memory", "rate-limit"]
    for report in data["reports"]:
        check_report(report, report["bench"])
    assert data["seconds"] > 0


def test_bad_sizes_are_refused_without_a_traceback() -> None:
    result = CliRunner().invoke(app, ["bench", "latency", "--orders", "1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_report_met_sums_up_goals() -> None:
    report = Report(
        bench="x",
        subject="s",
        baseline="b",
        parameters={},
        figures=(figure("a", "ms", 1, 1, Goal("ratio", "<=", 2)), figure("b", "ms", 1, 1)),
        raw={},
        seconds=0.1,
    )
    assert report.met is True
    assert Report("x", "s", "b", {}, (figure("b", "ms", 1, 1),), {}, 0.1).met is None
