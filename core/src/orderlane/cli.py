"""The ``orderlane`` command line: send an order, read the journal, list adapters, run the demo.

One typer app with one function per command; commands that group subcommands (``order buy`` /
``order sell``) are typer sub-apps added with ``app.add_typer``. A new command reuses
:data:`DatabaseUrl`, :data:`JsonFlag`, :func:`run` (asyncio plus error handling) and the table
builders below. Errors a user can cause are orderlane errors: they print one red line and exit 1
(2 for invalid input), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from orderlane import __version__
from orderlane.broker import Broker, redact
from orderlane.cli_bench import bench_app
from orderlane.cli_plugins import add_plugin_commands
from orderlane.cli_tools import MAX_COUNT, conformance, finite, stdout_console
from orderlane.clock import SystemClock
from orderlane.contract import AdapterInfo, BrokerContext
from orderlane.engine import Engine, EngineConfig
from orderlane.errors import InvalidSignalError, OrderlaneError
from orderlane.journal import JournalRows
from orderlane.journal.reader import JournalReader
from orderlane.journal.url import resolve_database_url
from orderlane.model import MAX_QUANTITY, Order, OrderStatus, OrderType, Side, Signal, printable
from orderlane.plugins import AdapterEntry, installed_adapters, make_plugin_manager
from orderlane.positions import Position
from orderlane.recovery import RecoveryChange
from orderlane.rendering import (
    FAILED,
    cell,
    describe_outcome,
    describe_request,
    display_url,
    format_money,
    orders_table,
    pnl_table,
    positions_table,
    status_text,
)
from orderlane.serialization import to_json, unstructure

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

T = TypeVar("T")

app = typer.Typer(
    name="orderlane",
    help="Order execution for trading systems: durable orders, pluggable brokers, P&L.",
    no_args_is_help=True,
    add_completion=False,
    # Locals of a crashed frame can hold credentials: never print them.
    pretty_exceptions_show_locals=False,
)
order_app = typer.Typer(
    help="Send one order through an adapter and print how it ended.", no_args_is_help=True
)
app.add_typer(order_app, name="order")
app.add_typer(bench_app, name="bench")
app.command("conformance")(conformance)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="ORDERLANE_DATABASE_URL",
        show_envvar=True,
        help="Journal database (sqlite:///path or postgresql://...). Default: ./orderlane.db",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AdapterName = Annotated[str, typer.Option("--adapter", help="Installed adapter name.")]
AdapterOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--adapter-option", "-o", metavar="KEY=VALUE", help="Adapter setting (repeatable)."
    ),
]
Account = Annotated[str, typer.Option("--account", help="Broker account.")]


def main() -> None:
    """Console-script entry point (``orderlane``, ``python -m orderlane``)."""
    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
    logging.getLogger("orderlane").addHandler(handler)
    logging.getLogger("orderlane").setLevel(logging.WARNING)
    add_plugin_commands(app)  # commands of installed plugins: orderlane web, ...
    app(prog_name="orderlane")


# ---------------------------------------------------------------- shared helpers


#: Exit codes (docs/quickstart.md#exit-codes): an error or a rejected or failed order, invalid
#: input, an order whose outcome is unknown (it needs orderlane recover or resolve).
EXIT_FAILED, EXIT_INVALID, EXIT_UNKNOWN = 1, 2, 3


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``message`` as one red line on stderr and exit with ``code``.

    Control characters in it (a symbol typed with an escape sequence) are shown escaped.
    """
    text = printable(message, keep_newlines=True)
    Console(stderr=True).print(Text(f"Error: {text}", style="bold red"))
    raise typer.Exit(code)


def _exit_for(status: OrderStatus) -> None:
    """Exit 3 if the order's outcome is unknown, 1 if it was rejected or failed."""
    if status is OrderStatus.UNKNOWN:
        raise typer.Exit(EXIT_UNKNOWN)
    if status in FAILED:
        raise typer.Exit(EXIT_FAILED)


@contextlib.contextmanager
def user_errors(
    adapter: str | None = None, options: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Turn orderlane errors into a message and an exit code instead of a traceback.

    Invalid input (a malformed signal) exits 2 like a usage error; every other orderlane error
    (unknown adapter, unusable database, duplicate signal id...) exits 1. With the ``adapter``
    and the ``options`` it was given, the value of every option the adapter does not mark as
    public is masked in the message.
    """
    try:
        yield
    except InvalidSignalError as error:
        fail(_masked(str(error), adapter, options), EXIT_INVALID)
    except OrderlaneError as error:
        fail(_masked(str(error), adapter, options), EXIT_FAILED)


def _masked(text: str, adapter: str | None, options: Mapping[str, Any] | None) -> str:
    if not options:
        return text
    public: frozenset[str] = frozenset()
    entry = installed_adapters().get(adapter or "")
    if entry is not None:
        with contextlib.suppress(Exception):  # an adapter that cannot describe itself: mask all
            public = _adapter_info(entry).public_options
    return redact(text, options, public)


def run(
    coroutine: Coroutine[Any, Any, T],
    adapter: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> T:
    """Run ``coroutine`` to completion under :func:`user_errors`."""
    with user_errors(adapter, options):
        return asyncio.run(coroutine)


def database(url: str | None) -> str:
    """The journal URL a command uses: ``--database-url``, the environment, or ./orderlane.db."""
    with user_errors():
        return resolve_database_url(url)


def _order_data(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(order)
    average = order.average_fill_price
    data["average_fill_price"] = None if average is None else str(average)
    return data


# ---------------------------------------------------------------- root


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"orderlane {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Order execution for trading systems: durable orders, pluggable brokers, P&L."""


# ---------------------------------------------------------------- adapters


def _adapter_info(entry: AdapterEntry) -> AdapterInfo:
    """What the adapter says of itself, built from no options (a factory takes empty options,
    so an adapter is described without being configured) and never started."""
    plugin = entry.create({})
    pm = make_plugin_manager()
    pm.register(plugin, name=f"adapter:{entry.name}")
    ctx = BrokerContext(account_id="default", options={}, clock=SystemClock())
    return Broker(pm, plugin, ctx).info


def _adapter_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, entry in sorted(installed_adapters().items()):
        row: dict[str, Any] = {
            "name": name,
            "distribution": entry.distribution,
            "version": entry.version,
            "entry_point": entry.value,
            "capabilities": [],
            "timezone": None,
            "description": "",
            "error": None,
        }
        try:
            info = _adapter_info(entry)
        except Exception as error:  # a broken adapter must not hide the others
            row["error"] = f"{type(error).__name__}: {error}"
        else:
            row["capabilities"] = unstructure(info.capabilities)
            row["timezone"] = info.timezone
            row["description"] = info.description
        rows.append(row)
    return rows


@app.command()
def adapters(json_output: JsonFlag = False) -> None:
    """List the installed broker adapters and what they can do."""
    rows = _adapter_rows()
    if json_output:
        typer.echo(to_json(rows, indent=2))
        return
    console = stdout_console()
    if not rows:
        console.print("No orderlane adapters are installed (try: pip install orderlane-mock).")
        return
    table = Table(title="Installed adapters", title_justify="left")
    table.add_column("Name", no_wrap=True)
    table.add_column("Distribution", no_wrap=True)
    table.add_column("Version", no_wrap=True)
    table.add_column("Capabilities")
    failed = any(row["error"] for row in rows)
    if failed:
        table.add_column("Factory error", style="red")
    for row in rows:
        cells = [
            cell(row["name"]),
            cell(row["distribution"] or "-"),
            cell(row["version"] or "-"),
            cell(", ".join(row["capabilities"]) or "-"),
        ]
        if failed:
            cells.append(cell(row["error"]))
        table.add_row(*cells)
    console.print(table)


# ---------------------------------------------------------------- journal reads


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


@app.command()
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
        typer.echo(to_json([_order_data(order) for order in found], indent=2))
    elif not found:
        stdout_console().print(Text(f"No orders in {display_url(url)}."))
    else:
        stdout_console().print(orders_table(found))
    _report_unreadable(found)


@app.command()
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


@app.command()
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


# ---------------------------------------------------------------- order buy / sell


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


def _adapter_options(pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--adapter-option takes KEY=VALUE, got {pair!r}", 2)
        options[key.strip()] = value
    return options


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
        options = _adapter_options(adapter_option or ())
        url = database(database_url)
        order = run(_execute(signal, adapter, options, url, account), adapter, options)
        if json_output:
            typer.echo(to_json(_order_data(order), indent=2))
        else:
            console = stdout_console()
            console.print(Text.assemble(describe_request(order), ": ", describe_outcome(order)))
            console.print(cell(f"order {order.id}, broker order {order.broker_order_id or '-'}"))
        _exit_for(order.status)

    place.__doc__ = (
        f"{side.value.capitalize()} QTY of SYMBOL now (market) or at --limit PRICE.\n\n"
        "Prints the order as the broker left it; exits 1 if it was rejected or failed, 3 if its "
        "outcome is unknown (see orderlane recover and orderlane resolve)."
    )
    return place


order_app.command("buy")(_order_command(Side.BUY))
order_app.command("sell")(_order_command(Side.SELL))


# ---------------------------------------------------------------- resolve


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


@app.command()
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
    options = _adapter_options(adapter_option or ())
    order = run(_resolve(order_id, adopt, absent, adapter, options, url, account), adapter, options)
    if json_output:
        typer.echo(to_json(_order_data(order), indent=2))
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


@app.command()
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
    options = _adapter_options(adapter_option or ())
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


# ---------------------------------------------------------------- demo


@app.command()
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
