"""The ``orderlane conformance`` command: an installed adapter's harness through the scenarios."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from orderlane.cli.common import stdout_console
from orderlane.errors import ConfigurationError
from orderlane.testing.runner import Outcome, ScenarioResult, run_conformance
from orderlane.testing.scenarios import Case

__all__ = ["conformance"]


class _ProgressBar:
    """Shows on stderr which scenario runs and how many are done (a ConformanceListener).

    The bar appears with the first case, so an error found before any case ran (an unknown
    adapter, a bad ``-k``) prints alone.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def case_started(self, case: Case, position: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("", total=total)
        self.progress.update(self.task, description=escape(case.id))

    def case_finished(self, result: ScenarioResult) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def close(self, adapter: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=escape(f"conformance of {adapter}"))
            self.progress.stop()


def _progress(console: Console) -> Progress:
    # Off a terminal the bar cannot redraw: it prints its last state once, as a log line.
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=console.is_terminal,
    )


def _report(adapter: str, results: list[ScenarioResult]) -> dict[str, Any]:
    counts = {outcome: sum(r.outcome is outcome for r in results) for outcome in Outcome}
    return {
        "adapter": adapter,
        "passed": counts[Outcome.PASSED],
        "failed": counts[Outcome.FAILED],
        "skipped": counts[Outcome.SKIPPED],
        "scenarios": [result.to_dict() for result in results],
    }


def _table(adapter: str, results: list[ScenarioResult]) -> Table:
    table = Table(title=f"Conformance of adapter {adapter!r}")
    for column in ("scenario", "outcome", "reason", "s"):
        table.add_column(column, justify="right" if column == "s" else "left")
    styles = {Outcome.PASSED: "green", Outcome.FAILED: "bold red", Outcome.SKIPPED: "yellow"}
    for result in results:
        # A failure or a skip says why; a pass says, dimmed, what it proved.
        passed = result.outcome is Outcome.PASSED
        reason = f"[dim]{escape(result.proves)}[/]" if passed else escape(result.reason)
        table.add_row(
            escape(result.id),
            f"[{styles[result.outcome]}]{result.outcome.value}[/]",
            reason,
            f"{result.duration:.2f}",
        )
    return table


def conformance(
    adapter: Annotated[str, typer.Argument(help="Name of an installed adapter, e.g. mock.")],
    keyword: Annotated[
        str | None,
        typer.Option(
            "-k",
            metavar="EXPR",
            help="Run only scenarios whose id matches: words (parts of ids) combined with "
            "and, or, not and parentheses, e.g. -k 'cancel and not races'.",
        ),
    ] = None,
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="Run only this scenario id (repeatable)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the conformance scenarios against an installed adapter's harness.

    Exits 1 when a scenario fails; skipped scenarios (a capability the adapter lacks) do not fail.
    """
    console = stdout_console()
    listener = None if json_output else _ProgressBar(_progress(Console(stderr=True)))
    # Scenarios provoke rejections and failures on purpose: their log lines are the scenarios'
    # business (they capture them), not the operator's.
    package_logger = logging.getLogger("orderlane")
    handlers = package_logger.handlers[:]
    for handler in handlers:
        package_logger.removeHandler(handler)
    try:
        results = asyncio.run(
            run_conformance(adapter, ids or None, keyword=keyword, listener=listener)
        )
    except ConfigurationError as error:
        Console(stderr=True).print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if listener is not None:
            listener.close(adapter)
        for handler in handlers:
            package_logger.addHandler(handler)
    report = _report(adapter, results)
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        console.print(_table(adapter, results))
        console.print(
            f"{report['passed']} passed, {report['failed']} failed, {report['skipped']} skipped"
        )
    if report["failed"]:
        raise typer.Exit(1)
