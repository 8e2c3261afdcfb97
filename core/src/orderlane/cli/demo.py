"""``orderlane demo``: a scripted session on the mock venue (or an adapter's harness venue)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from orderlane.cli.common import run, stdout_console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run on this (empty) journal instead of a fresh one in a temporary directory.",
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary journal and print where it is.")
    ] = False,
    adapter: Annotated[
        str,
        typer.Option(
            "--adapter",
            help="Run through this adapter against the venue its conformance harness starts "
            "(kis-paper: a fake KIS venue on loopback); prints the requests it received.",
        ),
    ] = "mock",
) -> None:
    """Run a scripted session on the mock venue: fills, a partial fill, a sale, a rejection."""
    from orderlane.demo import run_demo

    # The demo reports its rejection itself; the engine's warning about it would say it twice.
    logger = logging.getLogger("orderlane")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        run(run_demo(database_url, stdout_console(), keep=keep, adapter=adapter))
    finally:
        logger.setLevel(level)
