"""``orderlane watch``: a live terminal view of the journal, beside any running engine.

:func:`read_board` takes one consistent picture of the journal (one read transaction through a
:class:`~orderlane.journal.reader.JournalReader`); :func:`render_board` draws it with rich;
:func:`watch` redraws it every interval under ``rich.live.Live`` until Ctrl-C. Nothing here
writes: the reader's connections are read-only at the database's own level.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

import attrs
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orderlane.errors import JournalError
from orderlane.journal import PnLSummary
from orderlane.journal.reader import JournalReader
from orderlane.model import Fill, Order, OrderStatus, printable
from orderlane.positions import Position
from orderlane.rendering import cell, format_money

__all__ = ["Board", "read_board", "render_board", "watch"]

_STYLES = {
    OrderStatus.UNKNOWN: "bold magenta",
    OrderStatus.PARTIALLY_FILLED: "yellow",
    OrderStatus.PENDING_CANCEL: "yellow",
    OrderStatus.SUBMITTING: "cyan",
    OrderStatus.CREATED: "cyan",
    OrderStatus.FILLED: "green",
    OrderStatus.REJECTED: "red",
    OrderStatus.FAILED: "red",
    OrderStatus.CANCELLED: "dim",
}
# States the tracker times out (an order still open this long after submission is cancelled).
_TIMED = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


@attrs.frozen
class Board:
    """One picture of the journal, as the watch shows it."""

    taken_at: datetime
    open_orders: tuple[Order, ...]
    last_fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    counts: dict[OrderStatus, int]
    fills_today: PnLSummary | None
    session: PnLSummary | None
    marker: str

    @property
    def unknown(self) -> tuple[Order, ...]:
        return tuple(order for order in self.open_orders if order.status is OrderStatus.UNKNOWN)


def read_board(
    reader: JournalReader,
    *,
    now: datetime,
    account_id: str | None = None,
    session_id: str | None = None,
    fills: int = 8,
) -> Board:
    """What the watch shows, read in one transaction. "Today" is the newest trading day with
    fills; the session is ``session_id``, else the session of the newest order."""
    with reader.view() as view:
        by_day = view.realized_pnl("day", account_id)
        session = session_id or view.latest_session(account_id)
        by_session = {s.key: s for s in view.realized_pnl("session", account_id)}
        nothing = None if session is None else PnLSummary(session, Decimal(0), 0)
        return Board(
            taken_at=now,
            open_orders=tuple(view.open_orders(account_id)),
            last_fills=tuple(view.fills(account_id=account_id, limit=fills)),
            positions=tuple(
                p for p in view.positions(account_id) if p.quantity or p.realized_pnl or p.fees
            ),
            counts=view.status_counts(account_id),
            fills_today=by_day[-1] if by_day else None,
            session=by_session.get(session, nothing) if session else None,
            marker=view.change_marker(),
        )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m{seconds:02d}s"
    return f"{sign}{seconds}s"


def _pnl(value: Decimal) -> Text:
    return Text(format_money(value), style="green" if value > 0 else "red" if value < 0 else "")


def _open_table(board: Board, order_timeout: float) -> Table:
    table = Table(title=f"Open orders ({len(board.open_orders)})", title_justify="left")
    for column, justify in (
        ("ID", "left"),
        ("Account", "left"),
        ("Side", "left"),
        ("Symbol", "left"),
        ("Filled/Qty", "right"),
        ("Limit", "right"),
        ("Status", "left"),
        ("Age", "right"),
        ("Timeout in", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for order in board.open_orders:
        timeout = "-"
        if order.status in _TIMED and order.submitted_at is not None:
            left = order.submitted_at + timedelta(seconds=order_timeout) - board.taken_at
            timeout = _duration(left) if left > timedelta(0) else "due"
        table.add_row(
            order.id[:8],
            cell(order.account_id),
            order.side.value,
            cell(order.symbol),
            f"{order.filled_quantity:,}/{order.quantity:,}",
            format_money(order.limit_price) if order.limit_price is not None else "market",
            Text(order.status.value, style=_STYLES.get(order.status, "")),
            _duration(board.taken_at - order.created_at),
            timeout,
            style="on grey15" if order.status is OrderStatus.UNKNOWN else None,
        )
    return table


def _unknown_table(board: Board, zone: tzinfo) -> Table:
    table = Table(
        title=f"UNKNOWN: the broker may or may not have these ({len(board.unknown)})",
        title_justify="left",
        title_style="bold magenta",
        caption="Check the broker, then: orderlane resolve ID --account ACCOUNT "
        "(--adopt BROKER_ID | --absent)",
        caption_justify="left",
    )
    for column in ("Order ID", "Account", "Order", "Sent", "Broker ID", "Reason"):
        table.add_column(column, no_wrap=column != "Reason")
    for order in board.unknown:
        limit = f" limit {format_money(order.limit_price)}" if order.limit_price else ""
        sent = order.submitted_at or order.created_at
        table.add_row(
            order.id,
            cell(order.account_id),
            cell(f"{order.side.value} {order.quantity:,} x {order.symbol}{limit}"),
            sent.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            cell(order.broker_order_id or "-"),
            cell(order.reason or ""),
        )
    return table


def _fills_table(fills: Sequence[Fill], zone: tzinfo) -> Table:
    table = Table(title="Last fills", title_justify="left")
    for column in ("Time", "Order", "Side", "Symbol", "Qty", "Price", "Commission", "Net P&L"):
        numeric = column not in {"Time", "Order", "Side", "Symbol"}
        table.add_column(column, justify="right" if numeric else "left")
    for fill in fills:
        table.add_row(
            fill.executed_at.astimezone(zone).strftime("%H:%M:%S"),
            fill.order_id[:8],
            fill.side.value,
            cell(fill.symbol),
            f"{fill.quantity:,}",
            format_money(fill.price),
            format_money(fill.commission),
            _pnl(fill.net_pnl),
        )
    return table


def _positions_table(board: Board) -> Table:
    table = Table(title="Positions", title_justify="left")
    figures = ("Qty", "Avg price", "Gross P&L", "Commissions", "Net P&L")
    for column in ("Account", "Symbol", "Name", *figures):
        table.add_column(column, justify="right" if column in figures else "left")
    for position in board.positions:
        table.add_row(
            cell(position.account_id),
            cell(position.symbol),
            cell(position.symbol_name),
            f"{position.quantity:,}",
            format_money(position.average_price) if position.quantity else "-",
            _pnl(position.gross_pnl),
            format_money(position.commissions),
            _pnl(position.net_pnl),
        )
    return table


def _pnl_line(board: Board) -> Text:
    line = Text("Realized P&L  ")
    if board.fills_today is None:
        return line.append("no fills yet", style="dim")
    for label, summary in (("trading day", board.fills_today), ("session", board.session)):
        if summary is None:
            continue
        line.append(f"{label} {printable(summary.key)}: gross ").append_text(
            _pnl(summary.gross_pnl)
        )
        line.append(f", commissions {format_money(summary.commissions)}, net ")
        line.append_text(_pnl(summary.net_pnl)).append(f" ({summary.fills} fills)   ")
    return line


def _footer(board: Board) -> Text:
    counts = board.counts
    total = sum(counts.values())
    open_count = sum(n for status, n in counts.items() if not status.is_terminal)
    line = Text(f"{total} orders: {open_count} open", style="bold")
    for status in OrderStatus:
        if counts[status] and (status.is_terminal or status is OrderStatus.UNKNOWN):
            line.append("  ")
            line.append(f"{status.value} {counts[status]}", style=_STYLES.get(status, ""))
    return line


def render_board(
    board: Board,
    *,
    source: str,
    zone: tzinfo,
    order_timeout: float = 300.0,
    problem: str | None = None,
) -> RenderableType:
    """The whole screen for ``board``; ``problem`` is a failed refresh, shown above the footer."""
    stamp = board.taken_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    header = Text.assemble(("orderlane watch", "bold"), f"  {source}  {stamp}", style="")
    parts: list[RenderableType] = [header, _open_table(board, order_timeout)]
    if board.unknown:
        parts.append(_unknown_table(board, zone))
    parts += [_fills_table(board.last_fills, zone), _positions_table(board), _pnl_line(board)]
    if problem:
        parts.append(Text(f"Last refresh failed: {printable(problem)}", style="bold red"))
    parts.append(_footer(board))
    return Group(*parts)


def watch(
    reader: JournalReader,
    console: Console,
    *,
    interval: float,
    zone: tzinfo,
    now: Callable[[], datetime],
    account_id: str | None = None,
    session_id: str | None = None,
    order_timeout: float = 300.0,
    once: bool = False,
) -> None:
    """Draw the board and redraw it every ``interval`` seconds until KeyboardInterrupt.

    A refresh that fails (the database is briefly unreachable) keeps the last picture on screen
    with the error under it, and the next refresh tries again.
    """

    def board() -> Board:
        return read_board(reader, now=now(), account_id=account_id, session_id=session_id)

    def draw(shown: Board, problem: str | None = None) -> RenderableType:
        return render_board(
            shown,
            source=reader.display_url,
            zone=zone,
            order_timeout=order_timeout,
            problem=problem,
        )

    current = board()
    if once:
        console.print(draw(current))
        return
    with Live(draw(current), console=console, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            try:
                current = board()
            except JournalError as error:
                live.update(draw(attrs.evolve(current, taken_at=now()), str(error)), refresh=True)
            else:
                live.update(draw(current), refresh=True)
