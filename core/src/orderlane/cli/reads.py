"""Commands that read the journal: ``orderlane orders``, ``positions`` and ``watch``.

They never create nor change a journal: a mistyped path is an error, not "no orders".
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from orderlane.cli.common import (
    MAX_COUNT,
    DatabaseUrl,
    JsonFlag,
    database,
    finite,
    order_data,
    stdout_console,
    user_errors,
)
from orderlane.clock import SystemClock
from orderlane.journal import JournalRows
from orderlane.journal.reader import JournalReader
from orderlane.model import Order, printable
from orderlane.positions import Position
from orderlane.rendering import display_url, orders_table, positions_table
from orderlane.serialization import to_json

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(orders)
    app.command()(positions)
    app.command()(watch)


def _read_orders(url: str, limit: int) -> JournalRows[Order]:
    # Reads never create nor change a journal: a mistyped path is an error, not "no orders".
    with user_errors(), JournalReader(url) as reader, reader.view() as view:
        return view.orders(limit=limit)


def _read_positions(url: str, account: str | None) -> JournalRows[Position]:
    with user_errors(), JournalReader(url) as reader, reader.view() as view:
        return view.positions(account)


def _report_unreadable(rows: JournalRows[Any]) -> None:
    """After the rows that could be read were shown: name each row that could not, on stderr,
    and exit 1 (the journal needs attention)."""
    if not rows.unreadable:
        return
    console = Console(stderr=True)
    for row in rows.unreadable:
        console.print(Text(f"Error: {printable(str(row))}; not shown", style="bold red"))
    raise typer.Exit(1)


def orders(
    database_url: DatabaseUrl = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=MAX_COUNT, help="How many of the newest orders."),
    ] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Show the newest orders in the journal."""
    url = database(database_url)
    found = _read_orders(url, limit)
    if json_output:
        typer.echo(to_json([order_data(order) for order in found], indent=2))
    elif not found:
        stdout_console().print(Text(f"No orders in {display_url(url)}."))
    else:
        stdout_console().print(orders_table(found))
    _report_unreadable(found)


def positions(
    database_url: DatabaseUrl = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's positions.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Show positions (flat ones too: they carry realized P&L) from the journal."""
    url = database(database_url)
    found = _read_positions(url, account)
    if json_output:
        typer.echo(to_json(list(found), indent=2))
    elif not found:
        stdout_console().print(Text(f"No positions in {display_url(url)}."))
    else:
        stdout_console().print(positions_table(found))
    _report_unreadable(found)


def watch(
    database_url: DatabaseUrl = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's orders and positions.")
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", min=0.1, max=3600, callback=finite, help="Seconds between refreshes."
        ),
    ] = 1.0,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Session whose P&L to show. Default: the newest order's."),
    ] = None,
    order_timeout: Annotated[
        float,
        typer.Option(
            "--order-timeout",
            min=0,
            max=10**9,
            callback=finite,
            help="The engines' order timeout, in seconds.",
        ),
    ] = 300.0,
    once: Annotated[bool, typer.Option("--once", help="Print the view once and exit.")] = False,
) -> None:
    """Watch open orders, fills, positions and P&L live from the journal; Ctrl-C quits.

    Reads only (the database is opened read-only), so it runs beside any engine. UNKNOWN orders
    are listed with what orderlane resolve needs.
    """
    from orderlane.watch import watch as watch_journal

    url = database(database_url)
    console = stdout_console()
    try:
        with user_errors(), JournalReader(url) as reader:
            watch_journal(
                reader,
                console,
                interval=interval,
                zone=_local_zone(),
                now=SystemClock().now,
                account_id=account,
                session_id=session,
                order_timeout=order_timeout,
                once=once,
            )
    except KeyboardInterrupt:
        console.print(Text("Stopped watching.", style="dim"))


def _local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone
