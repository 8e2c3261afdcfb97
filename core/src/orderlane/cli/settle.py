"""Commands that settle orders with the broker: ``orderlane resolve`` (one order, by hand)
and ``orderlane recover`` (every open order, as an engine does when it starts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from orderlane.cli.common import (
    EXIT_UNKNOWN,
    Account,
    AdapterName,
    AdapterOptions,
    DatabaseUrl,
    JsonFlag,
    adapter_options,
    database,
    fail,
    order_data,
    run,
    stdout_console,
)
from orderlane.engine import Engine, EngineConfig
from orderlane.model import Order, OrderStatus
from orderlane.recovery import RecoveryChange
from orderlane.rendering import cell, describe_outcome, describe_request, display_url, status_text
from orderlane.serialization import to_json

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(resolve)
    app.command()(recover)


async def _resolve(
    order_id: str,
    adopt: str | None,
    absent: bool,
    adapter: str,
    options: Mapping[str, Any],
    url: str,
    account: str,
) -> Order:
    # Neither recovery nor the tracker runs: the operator decides this order, nothing else moves.
    # A journal that is not there is an error: settling never creates one.
    config = EngineConfig(
        account_id=account, track=False, recover_on_start=False, create_journal=False
    )
    async with Engine.open(adapter, adapter_options=options, database_url=url, config=config) as e:
        return await e.resolve(order_id, adopt=adopt, absent=absent)


def resolve(
    order_id: Annotated[str, typer.Argument(metavar="ORDER_ID", help="The order's id.")],
    adopt: Annotated[
        str | None,
        typer.Option("--adopt", metavar="BROKER_ID", help="The broker holds it under this id."),
    ] = None,
    absent: Annotated[
        bool, typer.Option("--absent", help="The broker does not have it: FAILED, not sent.")
    ] = False,
    adapter: AdapterName = "mock",
    adapter_option: AdapterOptions = None,
    account: Account = "default",
    database_url: DatabaseUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Settle an UNKNOWN (or stuck SUBMITTING) order by hand, after checking the broker.

    --adopt BROKER_ID books the broker's order (its status is fetched); --absent ends the order
    FAILED "not sent". Give exactly one.
    """
    if (adopt is None) == (not absent):
        fail("give exactly one of --adopt BROKER_ID or --absent", 2)
    url = database(database_url)
    options = adapter_options(adapter_option or ())
    order = run(_resolve(order_id, adopt, absent, adapter, options, url, account), adapter, options)
    if json_output:
        typer.echo(to_json(order_data(order), indent=2))
    else:
        console = stdout_console()
        console.print(Text.assemble(describe_request(order), ": ", describe_outcome(order)))
        console.print(cell(f"order {order.id}, broker order {order.broker_order_id or '-'}"))
    if order.status is OrderStatus.UNKNOWN:
        raise typer.Exit(EXIT_UNKNOWN)


# ---------------------------------------------------------------- recover


async def _recover(
    adapter: str, options: Mapping[str, Any], url: str, account: str
) -> list[RecoveryChange]:
    # A mistyped path must not become an empty journal with "nothing to recover".
    config = EngineConfig(account_id=account, track=False, create_journal=False)
    async with Engine.open(adapter, adapter_options=options, database_url=url, config=config) as e:
        return e.last_recovery


def recover(
    adapter: AdapterName = "mock",
    adapter_option: AdapterOptions = None,
    account: Account = "default",
    database_url: DatabaseUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Settle every open order in the journal with the broker now, and say what changed.

    The same reconciliation an engine runs when it starts: never-sent orders fail, orders the
    engine was sending are looked up, the others get their fills caught up.
    """
    url = database(database_url)
    options = adapter_options(adapter_option or ())
    changes = run(_recover(adapter, options, url, account), adapter, options)
    if json_output:
        typer.echo(to_json(changes, indent=2))
        _exit_unsettled(changes)
        return
    console = stdout_console()
    if not changes:
        console.print(Text(f"No open orders in {display_url(url)}: nothing to recover."))
        return
    table = Table(title=f"Recovered {len(changes)} open orders")
    for column in ("Order", "Symbol", "Before", "After", "Action", "Reason"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            change.order_id[:8],
            cell(change.symbol),
            status_text(change.before),
            status_text(change.after),
            Text(change.action),
            cell(change.reason),
        )
    console.print(table)
    _exit_unsettled(changes)


def _exit_unsettled(changes: Sequence[RecoveryChange]) -> None:
    """Exit 3 when recovery left an order UNKNOWN: the broker could not tell, it needs a look."""
    if any(change.after is OrderStatus.UNKNOWN for change in changes):
        raise typer.Exit(EXIT_UNKNOWN)
