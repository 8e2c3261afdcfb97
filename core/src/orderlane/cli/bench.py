"""The ``orderlane bench`` commands (added to the main CLI app).

Every subcommand prints one report: its figures (orderlane's value, the baseline's value
measured in the same run, their ratio, the DESIGN §12 goal and whether it was met), as a table
or, with ``--json``, as JSON with the raw numbers beside them. ``bench all`` runs every bench
with small defaults and prints one table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderlane.bench import Report, rate_limit_report, run_latency, run_rate_limit, run_throughput
from orderlane.bench.tracking import run_memory, run_recovery, run_tracker
from orderlane.cli.common import MAX_COUNT, finite, stdout_console
from orderlane.errors import OrderlaneError
from orderlane.serialization import unstructure

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Measure orderlane against a baseline in the same run (figure, baseline, ratio).",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (figures and raw numbers).")]
OpenOrders = Annotated[
    int | None, typer.Option("--open-orders", min=1, max=MAX_COUNT, help="Open orders to set up.")
]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "bytes" or (unit.startswith("requests") and float(value).is_integer()):
        return f"{value:,.0f}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"


def _verdict(met: bool | None) -> str:
    return {True: "[green]met[/]", False: "[bold red]missed[/]", None: ""}[met]


def report_table(reports: Sequence[Report], title: str) -> Table:
    """One table of every figure of ``reports``."""
    table = Table(title=title)
    for column in ("bench", "figure", "orderlane", "baseline", "ratio", "goal", ""):
        table.add_column(
            column, justify="left" if column in ("bench", "figure", "goal") else "right"
        )
    for report in reports:
        for position, fig in enumerate(report.figures):
            table.add_row(
                report.bench if position == 0 else "",
                f"{escape(fig.name)} [dim]({escape(fig.unit)})[/]",
                _number(fig.value, fig.unit),
                _number(fig.baseline, fig.unit),
                "-" if fig.ratio is None else f"{fig.ratio:.2f}x",
                escape(fig.goal or ""),
                _verdict(fig.met),
            )
    return table


def _baselines(reports: Sequence[Report]) -> str:
    lines = []
    for report in reports:
        lines.append(f"[dim]{report.bench}: {escape(report.baseline)}[/]")
        floor = report.raw.get("floor")
        if report.bench == "latency" and isinstance(floor, dict):
            alone = floor["journal_statements"]
            hopped = floor["journal_statements_with_thread_hops"]
            lines.append(
                f"[dim]latency floor (the journal's own statements per order, no engine logic): "
                f"p50 {alone['p50_ms']:.3f} ms = {alone['p50_ratio']:.2f}x on one thread, "
                f"{hopped['p50_ms']:.3f} ms = {hopped['p50_ratio']:.2f}x with a thread hop per "
                "commit[/]"
            )
    return "\n".join(lines)


@contextmanager
def _quiet() -> Iterator[None]:
    """The benches provoke nothing worth a log line; keep the table readable."""
    logger = logging.getLogger("orderlane")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run(measure: Callable[[], Report], json_output: bool, note: str) -> None:
    console = stdout_console()
    if not json_output:
        Console(stderr=True).print(f"[dim]{escape(note)}[/]")
    try:
        with _quiet():
            report = measure()
    except (OrderlaneError, ValueError) as error:
        Console(stderr=True).print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(unstructure(report), indent=2))
        return
    console.print(report_table([report], report.subject))
    console.print(_baselines([report]))


@bench_app.command("latency")
def latency(
    orders: Annotated[
        int, typer.Option("--orders", min=2, max=MAX_COUNT, help="Orders to time.")
    ] = 300,
    json_output: JsonFlag = False,
) -> None:
    """engine.execute p50/p99 against sqlite3 doing the same three commits (WAL, FULL)."""
    _run(lambda: asyncio.run(run_latency(orders)), json_output, f"Timing {orders} orders each...")


@bench_app.command("throughput")
def throughput(
    orders: Annotated[
        int, typer.Option("--orders", min=1, max=MAX_COUNT, help="Orders to persist.")
    ] = 2000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=10_000, help="Signals in flight.")
    ] = 64,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run on this database (PostgreSQL: in two scratch schemas, dropped after); "
            "default: SQLite files in a temporary directory.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Orders persisted per second with many signals in flight, against the raw driver's three
    commits per order one after another (sqlite3 or psycopg)."""
    _run(
        lambda: asyncio.run(
            run_throughput(orders, concurrency=concurrency, database_url=database_url)
        ),
        json_output,
        f"Persisting {orders} orders, {concurrency} in flight...",
    )


def _open_orders_bench(
    name: str, default: int, measure: Callable[[int], Report], note: str, doc: str
) -> None:
    """Add ``bench NAME [--open-orders N] [--json]``."""

    def command(open_orders: OpenOrders = None, json_output: JsonFlag = False) -> None:
        count = open_orders or default
        _run(lambda: measure(count), json_output, note.format(count))

    command.__doc__ = doc
    bench_app.command(name)(command)


_open_orders_bench(
    "tracker",
    1000,
    lambda count: asyncio.run(run_tracker(count)),
    "Tracking {} open orders, polled then pushed...",
    "Broker status requests per poll cycle for N open orders (default 1,000), paged and with push.",
)
_open_orders_bench(
    "recovery",
    10_000,
    lambda count: asyncio.run(run_recovery(count)),
    "Recovering {} open orders...",
    "Time and broker requests to reconcile N open orders (default 10,000) after a crash.",
)
_open_orders_bench(
    "memory",
    100_000,
    run_memory,
    "Recovering {} open orders to track...",
    "Resident memory per tracked open order, N open orders (default 100,000); each side in a "
    "fresh process.",
)


@bench_app.command("rate-limit")
def rate_limit(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_COUNT, help="Requests allowed per period.")
    ] = 20,
    requests: Annotated[
        int,
        typer.Option(
            "--requests", min=1, max=MAX_COUNT, help="Requests to drive through each limiter."
        ),
    ] = 200,
    period: Annotated[
        float,
        typer.Option(
            "--period", min=0.01, max=3600, callback=finite, help="The limit's window, in seconds."
        ),
    ] = 1.0,
    json_output: JsonFlag = False,
) -> None:
    """orderlane's limiter against a naive aiolimiter.AsyncLimiter, on real time.

    Both drive the same requests into a venue that timestamps arrivals and refuses what would
    exceed the limit in a rolling window, as a broker does.
    """
    seconds = 2 * requests * period / limit
    _run(
        lambda: _rate_limit(limit, requests, period),
        json_output,
        f"Driving {requests} requests through each limiter (about {seconds:.0f}s)...",
    )


def _rate_limit(limit: int, requests: int, period: float) -> Report:
    started = time.perf_counter()
    result = asyncio.run(run_rate_limit(limit, requests, period=period))
    return rate_limit_report(result, time.perf_counter() - started)


#: ``bench all``: (name, what runs) with its small defaults, under two minutes on 2 cores.
def _all_benches(database_url: str | None, scale: float) -> list[tuple[str, Callable[[], Report]]]:
    def size(count: int, least: int = 2) -> int:
        return max(least, round(count * scale))

    benches: list[tuple[str, Callable[[], Report]]] = [
        ("latency", lambda: asyncio.run(run_latency(size(200)))),
        ("throughput", lambda: asyncio.run(run_throughput(size(1000)))),
    ]
    if database_url is not None:
        benches.append(
            (
                "throughput",
                lambda: asyncio.run(run_throughput(size(1000), database_url=database_url)),
            )
        )
    benches += [
        ("tracker", lambda: asyncio.run(run_tracker(size(1000)))),
        ("recovery", lambda: asyncio.run(run_recovery(size(2000, 40)))),
        ("memory", lambda: run_memory(size(10_000))),
        ("rate-limit", lambda: _rate_limit(40, size(120, 80), 0.5)),
    ]
    return benches


@bench_app.command("all")
def run_all(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Also measure throughput on this (PostgreSQL) database, in scratch schemas.",
        ),
    ] = None,
    scale: Annotated[
        float,
        typer.Option(
            "--scale",
            min=0.001,
            max=100.0,
            callback=finite,
            help="Multiply every bench's size by this.",
        ),
    ] = 1.0,
    json_output: JsonFlag = False,
) -> None:
    """Every bench with small defaults (about a minute): one table, or JSON."""
    benches = _all_benches(database_url, scale)
    reports: list[Report] = []
    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=json_output,
    )
    try:
        with progress, _quiet():
            task = progress.add_task("bench", total=len(benches))
            for name, measure in benches:
                progress.update(task, description=f"bench {name}")
                reports.append(measure())
                progress.advance(task)
    except (OrderlaneError, ValueError) as error:
        Console(stderr=True).print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    seconds = round(time.perf_counter() - started, 1)
    if json_output:
        payload: dict[str, Any] = {"seconds": seconds, "reports": unstructure(reports)}
        typer.echo(json.dumps(payload, indent=2))
        return
    console = stdout_console()
    console.print(report_table(reports, f"orderlane bench all ({seconds:g}s)"))
    console.print(_baselines(reports))
