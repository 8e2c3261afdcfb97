"""The ``orderlane bench`` and ``orderlane conformance`` commands (added to the main CLI app)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orderlane.bench import LimiterRun, run_rate_limit
from orderlane.serialization import unstructure

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Measure orderlane against a baseline in the same run.", no_args_is_help=True
)


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _run_row(table: Table, run: LimiterRun) -> None:
    table.add_row(
        run.name,
        f"{run.limit}/{run.period:g}s",
        f"{run.achieved_rate:.2f}/s",
        f"{run.fidelity:.1%}",
        str(run.max_in_window),
        str(run.rejections),
        f"{run.seconds:.2f}",
    )


@bench_app.command("rate-limit")
def rate_limit(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Requests allowed per period.")] = 20,
    requests: Annotated[
        int, typer.Option("--requests", min=1, help="Requests to drive through each limiter.")
    ] = 200,
    period: Annotated[
        float, typer.Option("--period", min=0.01, help="The limit's window, in seconds.")
    ] = 1.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """orderlane's limiter against a naive aiolimiter.AsyncLimiter, on real time.

    Both drive the same requests into a venue that timestamps arrivals and refuses what would
    exceed the limit in a rolling window, as a broker does.
    """
    console = _console()
    if not json_output:
        seconds = 2 * requests * period / limit
        console.print(f"Driving {requests} requests through each limiter (about {seconds:.0f}s)...")
    result = asyncio.run(run_rate_limit(limit, requests, period=period))
    if json_output:
        typer.echo(json.dumps(unstructure(result), indent=2))
        return
    table = Table(title=f"Rate limit {limit} per {period:g}s, {requests} requests")
    for column in ("limiter", "limit", "achieved", "fidelity", "max in window", "rejected", "s"):
        table.add_column(column, justify="left" if column == "limiter" else "right")
    _run_row(table, result.orderlane)
    _run_row(table, result.naive)
    console.print(table)
