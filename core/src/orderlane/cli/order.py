"""``orderlane order buy`` and ``orderlane order sell``: send one order through an adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.text import Text

from orderlane.cli.common import (
    EXIT_INVALID,
    Account,
    AdapterName,
    AdapterOptions,
    DatabaseUrl,
    JsonFlag,
    adapter_options,
    database,
    exit_for,
    fail,
    order_data,
    run,
    stdout_console,
)
from orderlane.engine import Engine
from orderlane.errors import InvalidSignalError
from orderlane.model import MAX_QUANTITY, Order, OrderType, Side, Signal
from orderlane.rendering import cell, describe_outcome, describe_request
from orderlane.serialization import to_json

__all__ = ["order_app"]

order_app = typer.Typer(
    help="Send one order through an adapter and print how it ended.", no_args_is_help=True
)


def _price(text: str) -> Decimal:
    """--limit as typed: a decimal number in ASCII digits (Decimal() would also take ``7_2000``
    and other scripts' digits). Its bounds are the Signal's to check."""
    price = text.strip()
    try:
        if price.isascii() and "_" not in price:
            return Decimal(price)
    except ArithmeticError:
        pass
    fail(f"--limit must be a decimal price like 72000 or 72000.5, got {text!r}", EXIT_INVALID)


def _quantity(text: str) -> int:
    """QTY as typed: ASCII digits only (``int()`` would also take ``1_000`` and other scripts'
    digits, which are slips, not quantities)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        fail(
            f"QTY must be a whole number of shares written with the digits 0-9, got {text!r}",
            EXIT_INVALID,
        )
    if len(digits) > len(str(MAX_QUANTITY)):
        fail(
            f"QTY must be at most {MAX_QUANTITY:,} (what the journal holds), got {text}",
            EXIT_INVALID,
        )
    return int(digits)


async def _execute(
    signal: Signal, adapter: str, options: Mapping[str, Any], url: str, account: str
) -> Order:
    async with Engine.open(
        adapter, adapter_options=options, database_url=url, account_id=account
    ) as engine:
        return await engine.execute(signal)


def _order_command(side: Side) -> Callable[..., None]:
    def place(
        symbol: Annotated[
            str, typer.Argument(metavar="SYMBOL", help="The instrument, e.g. 005930.")
        ],
        quantity: Annotated[
            str, typer.Argument(metavar="QTY", help="Shares, a positive whole number.")
        ],
        limit: Annotated[
            str | None,
            typer.Option("--limit", metavar="PRICE", help="Limit price; market order without it."),
        ] = None,
        adapter: AdapterName = "mock",
        adapter_option: AdapterOptions = None,
        account: Account = "default",
        signal_id: Annotated[
            str | None,
            typer.Option("--signal-id", help="Idempotency key: the same id never sends twice."),
        ] = None,
        session: Annotated[
            str, typer.Option("--session", help="Session that realized P&L is summed under.")
        ] = "default",
        name: Annotated[str, typer.Option("--name", help="The instrument's name.")] = "",
        database_url: DatabaseUrl = None,
        json_output: JsonFlag = False,
    ) -> None:
        try:
            signal = Signal(
                symbol,
                side,
                _quantity(quantity),
                order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
                limit_price=None if limit is None else _price(limit),
                symbol_name=name,
                session_id=session,
                signal_id=signal_id,
            )
        except InvalidSignalError as error:
            fail(str(error), EXIT_INVALID)
        options = adapter_options(adapter_option or ())
        url = database(database_url)
        order = run(_execute(signal, adapter, options, url, account), adapter, options)
        if json_output:
            typer.echo(to_json(order_data(order), indent=2))
        else:
            console = stdout_console()
            console.print(Text.assemble(describe_request(order), ": ", describe_outcome(order)))
            console.print(cell(f"order {order.id}, broker order {order.broker_order_id or '-'}"))
        exit_for(order.status)

    place.__doc__ = (
        f"{side.value.capitalize()} QTY of SYMBOL now (market) or at --limit PRICE.\n\n"
        "Prints the order as the broker left it; exits 1 if it was rejected or failed, 3 if its "
        "outcome is unknown (see orderlane recover and orderlane resolve)."
    )
    return place


order_app.command("buy")(_order_command(Side.BUY))
order_app.command("sell")(_order_command(Side.SELL))
