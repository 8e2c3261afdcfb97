"""What the commands share: the common options, errors as one red line and an exit code,
running a coroutine, the journal URL, an adapter's description, a console for tables.

A new command reuses :data:`DatabaseUrl`, :data:`JsonFlag`, :func:`run` (asyncio plus error
handling) and :func:`fail`. Errors a user can cause are orderlane errors: they print one red line
and exit 1 (2 for invalid input), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from orderlane.broker import Broker, redact
from orderlane.clock import SystemClock
from orderlane.contract import AdapterInfo, BrokerContext
from orderlane.errors import InvalidSignalError, OrderlaneError
from orderlane.journal.url import resolve_database_url
from orderlane.model import Order, OrderStatus, printable
from orderlane.plugins import AdapterEntry, installed_adapters, make_plugin_manager
from orderlane.rendering import FAILED
from orderlane.serialization import unstructure

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_UNKNOWN",
    "MAX_COUNT",
    "Account",
    "AdapterName",
    "AdapterOptions",
    "DatabaseUrl",
    "JsonFlag",
    "adapter_info",
    "adapter_options",
    "database",
    "exit_for",
    "fail",
    "finite",
    "order_data",
    "run",
    "stdout_console",
    "user_errors",
]

T = TypeVar("T")

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

#: The largest count a command takes (orders to time, requests to drive, rows to show): enough
#: for any measurement, small enough that a typo does not run until killed.
MAX_COUNT = 1_000_000


def finite(value: float | None) -> float | None:
    """Option callback refusing NaN and infinity, which click's ranges let through
    (``--period inf`` would wait forever)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


def stdout_console() -> Console:
    """A console for tables: the terminal's width, or 120 columns when output is piped."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


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


def exit_for(status: OrderStatus) -> None:
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
        fail(masked(str(error), adapter, options), EXIT_INVALID)
    except OrderlaneError as error:
        fail(masked(str(error), adapter, options), EXIT_FAILED)


def masked(text: str, adapter: str | None, options: Mapping[str, Any] | None) -> str:
    if not options:
        return text
    public: frozenset[str] = frozenset()
    entry = installed_adapters().get(adapter or "")
    if entry is not None:
        with contextlib.suppress(Exception):  # an adapter that cannot describe itself: mask all
            public = adapter_info(entry).public_options
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


def order_data(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(order)
    average = order.average_fill_price
    data["average_fill_price"] = None if average is None else str(average)
    return data


def adapter_info(entry: AdapterEntry) -> AdapterInfo:
    """What the adapter says of itself, built from no options (a factory takes empty options,
    so an adapter is described without being configured) and never started."""
    plugin = entry.create({})
    pm = make_plugin_manager()
    pm.register(plugin, name=f"adapter:{entry.name}")
    ctx = BrokerContext(account_id="default", options={}, clock=SystemClock())
    return Broker(pm, plugin, ctx).info


def adapter_options(pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--adapter-option takes KEY=VALUE, got {pair!r}", 2)
        options[key.strip()] = value
    return options
