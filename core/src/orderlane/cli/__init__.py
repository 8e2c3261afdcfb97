"""The ``orderlane`` command line: send an order, read the journal, list adapters, run the demo.

One typer app; each group of commands is a module of this package that registers its commands
on it: :mod:`~orderlane.cli.adapters`, :mod:`~orderlane.cli.reads` (orders, positions, watch),
:mod:`~orderlane.cli.order` (order buy / sell), :mod:`~orderlane.cli.settle` (resolve,
recover), :mod:`~orderlane.cli.demo`, :mod:`~orderlane.cli.bench`,
:mod:`~orderlane.cli.conformance`; :mod:`~orderlane.cli.plugins` adds installed plugins'
commands. A new command reuses what :mod:`orderlane.cli.common` offers (:data:`DatabaseUrl`,
:data:`JsonFlag`, :func:`run`, :func:`fail`...), importable from here too, and renders through
:mod:`orderlane.rendering`.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from orderlane import __version__
from orderlane.cli import adapters, demo, reads, settle
from orderlane.cli.bench import bench_app
from orderlane.cli.common import DatabaseUrl, JsonFlag, database, fail, run, user_errors
from orderlane.cli.conformance import conformance
from orderlane.cli.order import order_app
from orderlane.cli.plugins import add_plugin_commands
from orderlane.rendering import (
    describe_outcome,
    describe_request,
    display_url,
    format_money,
    orders_table,
    pnl_table,
    positions_table,
)

__all__ = [
    "DatabaseUrl",
    "JsonFlag",
    "app",
    "database",
    "describe_outcome",
    "describe_request",
    "display_url",
    "fail",
    "format_money",
    "main",
    "order_app",
    "orders_table",
    "pnl_table",
    "positions_table",
    "run",
    "user_errors",
]

app = typer.Typer(
    name="orderlane",
    help="Order execution for trading systems: durable orders, pluggable brokers, P&L.",
    no_args_is_help=True,
    add_completion=False,
    # Locals of a crashed frame can hold credentials: never print them.
    pretty_exceptions_show_locals=False,
)
app.add_typer(order_app, name="order")
app.add_typer(bench_app, name="bench")
app.command("conformance")(conformance)


def main() -> None:
    """Console-script entry point (``orderlane``, ``python -m orderlane``)."""
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
    logging.getLogger("orderlane").addHandler(handler)
    logging.getLogger("orderlane").setLevel(logging.WARNING)
    add_plugin_commands(app)  # commands of installed plugins: orderlane web, ...
    app(prog_name="orderlane")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"orderlane {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Order execution for trading systems: durable orders, pluggable brokers, P&L."""


app.callback()(_root)
for group in (adapters, reads, settle, demo):
    group.register(app)
