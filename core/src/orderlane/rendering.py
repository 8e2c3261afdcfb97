"""How the command line draws orders, positions and P&L: money, status colours, tables, one-line
outcomes. Only the command line (:mod:`orderlane.cli`, :mod:`orderlane.watch`,
:mod:`orderlane.demo`) imports it: the engine never renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from rich.table import Table
from rich.text import Text

from orderlane.journal import PnLSummary
from orderlane.journal.url import safe_url
from orderlane.model import Order, OrderStatus, printable
from orderlane.positions import Position

__all__ = [
    "FAILED",
    "STATUS_STYLES",
    "cell",
    "describe_outcome",
    "describe_request",
    "display_url",
    "format_money",
    "orders_table",
    "pnl_table",
    "pnl_text",
    "positions_table",
    "status_text",
]

STATUS_STYLES = {
    OrderStatus.FILLED: "green",
    OrderStatus.PARTIALLY_FILLED: "yellow",
    OrderStatus.UNKNOWN: "magenta",
    OrderStatus.REJECTED: "red",
    OrderStatus.FAILED: "red",
    OrderStatus.CANCELLED: "dim",
}
FAILED = frozenset({OrderStatus.REJECTED, OrderStatus.FAILED})
_DISPLAY_PLACES = Decimal("0.0001")


def format_money(value: Decimal | None) -> str:
    """Thousands separators, no exponent; more than four decimals (a weighted average) rounded.

    Tables only: JSON output carries the exact value as a plain string.
    """
    if value is None:
        return "-"
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    elif isinstance(exponent := value.as_tuple().exponent, int) and exponent < -4:
        value = value.quantize(_DISPLAY_PLACES, rounding=ROUND_HALF_EVEN)
    text = format(value + 0, ",f")  # + 0 turns -0 into 0
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def pnl_text(value: Decimal) -> Text:
    style = "green" if value > 0 else "red" if value < 0 else ""
    return Text(format_money(value), style=style)


def status_text(status: OrderStatus) -> Text:
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def display_url(url: str) -> str:
    """``url`` fit to print: the password and secret-like query values masked."""
    return printable(safe_url(url))


def cell(text: str | None) -> Text:
    """Stored text (a symbol, a reason) as a table cell: control characters shown escaped, so
    a row cannot drive the terminal or forge a line."""
    return Text(printable(text or ""))


# ---------------------------------------------------------------- tables


def orders_table(orders: Iterable[Order], title: str = "Orders") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Side", no_wrap=True)
    table.add_column("Symbol", no_wrap=True)
    table.add_column("Qty", justify="right", no_wrap=True)
    table.add_column("Filled", justify="right", no_wrap=True)
    table.add_column("Avg price", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Reason", overflow="fold")
    for order in orders:
        table.add_row(
            order.id[:8],
            order.side.value,
            cell(order.symbol),
            f"{order.quantity:,}",
            f"{order.filled_quantity:,}",
            format_money(order.average_fill_price),
            status_text(order.status),
            cell(order.reason),
        )
    return table


def positions_table(positions: Iterable[Position], title: str = "Positions") -> Table:
    """Positions with what they realized: gross, every commission paid on the instrument, and
    net of them (the fees of the open quantity are carried until it closes)."""
    table = Table(title=title, title_justify="left")
    table.add_column("Symbol", no_wrap=True)
    table.add_column("Name")
    for column in ("Qty", "Avg price", "Fees carried", "Gross P&L", "Commissions", "Net P&L"):
        table.add_column(column, justify="right", no_wrap=True)
    for position in positions:
        table.add_row(
            cell(position.symbol),
            cell(position.symbol_name),
            f"{position.quantity:,}",
            format_money(position.average_price if position.quantity else None),
            format_money(position.fees),
            pnl_text(position.gross_pnl),
            format_money(position.commissions),
            pnl_text(position.net_pnl),
        )
    return table


def pnl_table(summaries: Sequence[PnLSummary], by: str) -> Table:
    """Realized P&L per ``by`` ("session" or "trading day"): gross, commissions paid and net,
    with a total row."""
    table = Table(title=f"Realized P&L per {by}", title_justify="left", show_footer=True)

    def total(figure: Callable[[PnLSummary], Decimal]) -> Decimal:
        return sum((figure(summary) for summary in summaries), Decimal(0))

    table.add_column(by.capitalize(), footer="Total", no_wrap=True)
    table.add_column(
        "Fills", footer=str(sum(s.fills for s in summaries)), justify="right", no_wrap=True
    )
    gross = pnl_text(total(lambda s: s.gross_pnl))
    table.add_column("Gross P&L", footer=gross, justify="right", no_wrap=True)
    paid = format_money(total(lambda s: s.commissions))
    table.add_column("Commissions", footer=paid, justify="right", no_wrap=True)
    net = pnl_text(total(lambda s: s.net_pnl))
    table.add_column("Net P&L", footer=net, justify="right", no_wrap=True)
    for summary in summaries:
        table.add_row(
            cell(summary.key),
            str(summary.fills),
            pnl_text(summary.gross_pnl),
            format_money(summary.commissions),
            pnl_text(summary.net_pnl),
        )
    return table


def describe_request(order: Order) -> str:
    """What was asked: ``BUY 10 x 005930 Samsung Electronics limit 72,000``."""
    text = f"{order.side.value} {order.quantity:,} x {printable(order.symbol)}"
    if order.symbol_name:
        text += f" {printable(order.symbol_name)}"
    if order.limit_price is not None:
        text += f" limit {format_money(order.limit_price)}"
    return text


def describe_outcome(order: Order) -> Text:
    """How it stands: ``FILLED 10/10 @ 72,000, commission 100`` or ``REJECTED: why``."""
    line = Text(order.status.value, style=STATUS_STYLES.get(order.status, "bold"))
    if order.filled_quantity:
        line.append(
            f" {order.filled_quantity:,}/{order.quantity:,}"
            f" @ {format_money(order.average_fill_price)}"
            f", commission {format_money(order.commission)}"
        )
    if order.reason:
        line.append(f": {printable(order.reason)}", style="red" if order.status in FAILED else "")
    return line
