"""``orderlane chaos crash``: crash trials with real process kills (see :mod:`orderlane_kis.chaos`).

Published under the entry-point group ``orderlane.commands`` by orderlane-kis.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderlane_kis.chaos.trials import CrashReport, CrashTrials

__all__ = ["app"]

app = typer.Typer(
    help="Chaos trials: the engine killed for real, the fake KIS venue as the witness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _group() -> None:
    """Chaos trials (a group, so ``crash`` stays a subcommand)."""


@app.command()
def crash(
    trials: Annotated[int, typer.Option("--trials", min=1, help="How many trials.")] = 10,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The journal (default: a SQLite file in a temporary directory). Give a fresh "
            "database: each run adds its own accounts to it.",
        ),
    ] = None,
    adapter: Annotated[
        str, typer.Option("--adapter", help="kis-paper or kis-live (against the fake venue).")
    ] = "kis-paper",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the trials' plans.")] = 0,
    signals: Annotated[int, typer.Option("--signals", min=1, help="Signals per trial.")] = 10,
    max_kills: Annotated[
        int, typer.Option("--max-kills", min=1, help="At most this many kills per trial.")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Kill an engine with SIGKILL again and again; check the journal against the venue."""
    if adapter not in ("kis-paper", "kis-live"):
        typer.echo(f"--adapter must be kis-paper or kis-live, not {adapter!r}", err=True)
        raise typer.Exit(2)
    runner = CrashTrials(
        adapter=adapter,
        database_url=database_url,
        seed=seed,
        signals=signals,
        max_kills=max_kills,
    )
    # A SIGTERM unwinds like Ctrl-C: the venue and the engine processes are stopped.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = _run(runner, trials, transient=as_json)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


def _run(runner: CrashTrials, trials: int, *, transient: bool) -> CrashReport:
    """Run the trials under a progress bar on stderr."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]crash trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as progress:
        task = progress.add_task("trials", total=trials, status="")

        def advance(report: CrashReport) -> None:
            progress.update(
                task,
                completed=report.trials,
                status=f"kills {report.kills} lost {report.lost} duplicates "
                f"{report.duplicates} mismatches {report.mismatches}",
            )

        return runner.run(trials, advance)


def _print(report: CrashReport) -> None:
    console = Console()
    table = Table(title=f"crash trials: {report.adapter} on {report.database}, seed {report.seed}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in (
        "trials",
        "kills",
        "signals",
        "orders",
        "lost",
        "duplicates",
        "mismatches",
        "not_sent",
        "hung",
        "aimed_not_reached",
        "seconds",
    ):
        table.add_row(name.replace("_", " "), str(getattr(report, name)))
    for point, count in report.kill_points.items():
        table.add_row(f"kills at {point}", str(count))
    console.print(table)
    for problem in report.problems[:50]:
        console.print(f"[red]{problem}[/red]")
