"""``orderlane watch``: a live terminal view of the journal, beside any running engine.

:func:`read_board` takes one consistent picture of the journal (one read transaction through a
:class:`~orderlane.journal.reader.JournalReader`); :func:`render_board` draws it with rich;
:func:`watch` redraws it every interval under ``rich.live.Live`` until Ctrl-C. Nothing here
writes: the reader's connections are read-only at the database's own level.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

import attrs
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orderlane.errors import JournalError
from orderlane.journal import PnLSummary
from orderlane.journal.reader import EngineSession, JournalReader
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


#: How many open orders and UNKNOWN orders a picture reads at most: a display shows a page of a
#: busy journal, never every row of it.
MAX_ROWS = 200


@attrs.frozen
class Board:
    """One picture of the journal, as the watch shows it.

    ``open_orders`` are the oldest open orders (at most the limit read); ``unknown`` the UNKNOWN
    ones, read on their own so that none hides behind the limit; ``counts`` count them all.
    """

    taken_at: datetime
    open_orders: tuple[Order, ...]
    unknown: tuple[Order, ...]
    last_fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    counts: dict[OrderStatus, int]
    today: PnLSummary
    session: PnLSummary | None
    marker: str
    #: The engines announced on the journal, each with its limiter's figures (newest first).
    engines: tuple[EngineSession, ...] = ()
    #: The time zone whose date ``today`` is (the venue's, where the journal records it).
    today_zone: str = "UTC"

    @property
    def open_count(self) -> int:
        return sum(n for status, n in self.counts.items() if not status.is_terminal)


def read_board(
    reader: JournalReader,
    *,
    now: datetime,
    zone: tzinfo | None = None,
    account_id: str | None = None,
    session_id: str | None = None,
    fills: int = 8,
    rows: int = MAX_ROWS,
) -> Board:
    """What the watch shows, read in one transaction, every query bounded.

    "Today" is the trading day of ``now`` at the venue: its date in the venue's time zone as the
    account's engines recorded it on the journal (else in ``zone``, default UTC), its P&L read
    from that day's fills alone; the session is ``session_id``, else the session of
    the newest order, read from its fills alone. At most ``rows`` open orders (the oldest) and
    ``rows`` UNKNOWN orders are read.
    """
    with reader.view() as view:
        venue = view.venue_timezone(account_id) or zone or UTC
        day = now.astimezone(venue).date().isoformat()
        session = session_id or view.latest_session(account_id)
        today = view.realized_pnl("day", account_id, keys=[day])
        by_session = view.realized_pnl("session", account_id, keys=[session]) if session else None
        return Board(
            taken_at=now,
            open_orders=tuple(view.open_orders(account_id, limit=rows)),
            unknown=tuple(view.open_orders(account_id, statuses=[OrderStatus.UNKNOWN], limit=rows)),
            last_fills=tuple(view.fills(account_id=account_id, limit=fills)),
            positions=tuple(
                p for p in view.positions(account_id) if p.quantity or p.realized_pnl or p.fees
            ),
            counts=view.status_counts(account_id),
            today=today[0] if today else PnLSummary(day, Decimal(0), 0),
            session=None
            if session is None
            else by_session[0]
            if by_session
            else PnLSummary(session, Decimal(0), 0),
            marker=view.change_marker(),
            engines=tuple(view.engine_sessions(account_id)),
            today_zone=str(venue),
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


def _open_table(board: Board, order_timeout: float, shown: int) -> Table:
    total = board.open_count
    title = f"Open orders ({total:,}{'' if shown >= total else ', oldest first'})"
    table = Table(title=title, title_justify="left")
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
    for order in board.open_orders[:shown]:
        timeout = "-"
        if order.status in _TIMED and order.submitted_at is not None:
            left = order.submitted_at + timedelta(seconds=order_timeout) - board.taken_at
            timeout = _duration(left) if left > timedelta(0) else "due"
        table.add_row(
            cell(order.id[:8]),
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
    if total > shown:
        table.add_row(Text(f"... and {total - shown:,} more", style="dim"))
    return table


def _resolve_hint(order: Order, source: str) -> Text:
    """The ``orderlane resolve`` command this order needs, all but the broker's answer filled in."""
    adopt = order.broker_order_id or "BROKER_ID"
    return Text.assemble(
        "  orderlane resolve ",
        (printable(order.id), "bold"),
        f" --account {printable(order.account_id)} --database-url {source} "
        f"--adapter ADAPTER (--adopt {printable(adopt)} | --absent)",
    )


def _unknown_part(board: Board, zone: tzinfo, source: str, shown: int) -> Group:
    total = board.counts[OrderStatus.UNKNOWN]
    table = Table(
        title=f"UNKNOWN: the broker may or may not have these ({total:,})",
        title_justify="left",
        title_style="bold magenta",
        border_style="magenta",
    )
    for column in ("Order ID", "Account", "Order", "Sent", "Broker ID", "Reason"):
        table.add_column(column, no_wrap=column != "Reason")
    listed = board.unknown[:shown]
    for order in listed:
        limit = f" limit {format_money(order.limit_price)}" if order.limit_price else ""
        sent = order.submitted_at or order.created_at
        table.add_row(
            cell(order.id),
            cell(order.account_id),
            cell(f"{order.side.value} {order.quantity:,} x {order.symbol}{limit}"),
            sent.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            cell(order.broker_order_id or "-"),
            cell(order.reason or ""),
            style="bold magenta",
        )
    if total > len(listed):
        table.add_row(Text(f"... and {total - len(listed):,} more", style="dim"))
    hints = [
        Text(
            "Check the broker (what was asked, when it was sent), then settle each with the "
            "engine's adapter and its -o options:",
            style="magenta",
        ),
        *(_resolve_hint(order, source) for order in listed),
    ]
    return Group(table, *hints)


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


def _positions_table(board: Board, shown: int) -> Table:
    table = Table(title="Positions", title_justify="left")
    figures = ("Qty", "Avg price", "Gross P&L", "Commissions", "Net P&L")
    for column in ("Account", "Symbol", "Name", *figures):
        table.add_column(column, justify="right" if column in figures else "left")
    for position in board.positions[:shown]:
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
    if len(board.positions) > shown:
        table.add_row(Text(f"... and {len(board.positions) - shown:,} more", style="dim"))
    return table


def _pnl_line(board: Board) -> Text:
    line = Text("Realized P&L  ")
    today = f"today {printable(board.today.key)} ({printable(board.today_zone)})"
    parts = [(today, board.today)]
    if board.session is not None:
        parts.append((f"session {printable(board.session.key)}", board.session))
    for label, summary in parts:
        line.append(f"{label}: gross ").append_text(_pnl(summary.gross_pnl))
        line.append(f", commissions {format_money(summary.commissions)}, net ")
        line.append_text(_pnl(summary.net_pnl)).append(f" ({summary.fills:,} fills)   ")
    return line


#: How many engines' limiter lines a screen shows (the rest are counted).
MAX_ENGINE_LINES = 3


def _limiter_lines(board: Board) -> list[Text]:
    """One line per engine announced on the journal: its rate limiter's use as of its last
    heartbeat (the engine writes it there; a display cannot ask the engine itself)."""
    if not board.engines:
        return [Text("Rate limiter  no engine has announced itself on this journal", style="dim")]
    lines = []
    for session in board.engines[:MAX_ENGINE_LINES]:
        age = _duration(board.taken_at - session.heartbeat_at)
        line = Text("Rate limiter  ")
        line.append(f"engine {printable(session.engine_id[:8])} ({printable(session.account_id)}")
        figures = session.limiter
        if figures is None:
            lines.append(line.append(f"): no figures yet, heartbeat {age} ago", style="dim"))
            continue
        limits = ", ".join(printable(str(limit)) for limit in figures.get("limits") or ())
        backend = printable(str(figures.get("backend", "")))
        line.append(f", {backend}): {limits or 'no limit'}")
        line.append(
            f" · waiting {_count(figures.get('queue_depth'))}"
            f" (most {_count(figures.get('max_queue_depth'))})"
        )
        granted = figures.get("granted")
        if isinstance(granted, dict) and granted:
            kinds = ", ".join(
                f"{printable(str(k))} {_count(n)}" for k, n in sorted(granted.items())
            )
            line.append(f" · granted {kinds}")
        line.append(
            f" · wait mean {_seconds(figures.get('mean_wait_s'))}"
            f", longest {_seconds(figures.get('max_wait_s'))}"
            f" · pauses {_count(figures.get('pauses'))}"
        )
        blocked = figures.get("blocked")
        if blocked:
            line.append(f" · BLOCKED: {printable(str(blocked))}", style="bold red")
        line.append(f" · as of {age} ago", style="dim")
        lines.append(line)
    if len(board.engines) > MAX_ENGINE_LINES:
        more = len(board.engines) - MAX_ENGINE_LINES
        lines.append(Text(f"Rate limiter  ... and {more} more engines", style="dim"))
    return lines


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _seconds(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f} s"
    return "?"


def _footer(board: Board) -> Text:
    counts = board.counts
    total = sum(counts.values())
    line = Text(f"{total:,} orders: {board.open_count:,} open", style="bold")
    for status in OrderStatus:
        if counts[status] and (status.is_terminal or status is OrderStatus.UNKNOWN):
            line.append("  ")
            line.append(f"{status.value} {counts[status]:,}", style=_STYLES.get(status, ""))
    return line


@attrs.define
class _Layout:
    """How many rows of each part a screen shows (None: the part is left out)."""

    open_rows: int
    unknown_rows: int
    fills: int | None
    positions: int | None


def _screen(
    board: Board,
    layout: _Layout,
    *,
    source: str,
    zone: tzinfo,
    order_timeout: float,
    problem: str | None,
) -> Group:
    stamp = board.taken_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    header = Text.assemble(("orderlane watch", "bold"), f"  {source}  {stamp}", style="")
    parts: list[RenderableType] = [header, _open_table(board, order_timeout, layout.open_rows)]
    if board.counts[OrderStatus.UNKNOWN]:
        parts.append(_unknown_part(board, zone, source, layout.unknown_rows))
    if layout.fills is not None:
        parts.append(_fills_table(board.last_fills[: layout.fills], zone))
    if layout.positions is not None:
        parts.append(_positions_table(board, layout.positions))
    if layout.fills is None or layout.positions is None:
        hidden = " and ".join(
            name
            for name, rows in (("fills", layout.fills), ("positions", layout.positions))
            if rows is None
        )
        parts.append(Text(f"({hidden} left out: the terminal is too short)", style="dim"))
    parts.extend(_limiter_lines(board))
    parts.append(_pnl_line(board))
    if problem:
        parts.append(Text(f"Last refresh failed: {printable(problem)}", style="bold red"))
    parts.append(_footer(board))
    return Group(*parts)


def render_board(
    board: Board,
    *,
    source: str,
    zone: tzinfo,
    order_timeout: float = 300.0,
    problem: str | None = None,
    console: Console | None = None,
) -> RenderableType:
    """The whole screen for ``board``; ``problem`` is a failed refresh, shown above the footer.

    Given a ``console``, the screen fits its height so that the P&L line and the footer always
    show: the open orders get the lines left over (the rest counted on a last row); when even
    that is not enough, fewer fills, UNKNOWN orders (one at least) and positions are shown, then
    the fills and the positions are left out, in that order.
    """
    layout = _Layout(
        len(board.open_orders), len(board.unknown), len(board.last_fills), len(board.positions)
    )

    def draw() -> Group:
        return _screen(
            board, layout, source=source, zone=zone, order_timeout=order_timeout, problem=problem
        )

    if console is None:
        return draw()
    height = console.size.height

    def over() -> int:
        return len(console.render_lines(draw(), console.options, pad=False)) - height

    layout.open_rows = 0
    excess = over()
    while excess > 0:
        if layout.fills:  # a fill is one line
            layout.fills = max(0, layout.fills - excess)
        elif layout.unknown_rows > 1:  # an UNKNOWN order is two lines at least
            layout.unknown_rows = max(1, layout.unknown_rows - max(1, excess // 2))
        elif layout.fills is not None:
            layout.fills = None
        elif layout.positions:
            layout.positions = max(0, layout.positions - excess)
        elif layout.positions is not None:
            layout.positions = None
        else:
            break  # a terminal this short shows the top of it
        excess = over()
    # One line per open order; the "... and N more" row goes once they are all shown.
    layout.open_rows = max(0, min(len(board.open_orders), 1 - excess))
    while layout.open_rows and over() > 0:
        layout.open_rows -= 1
    return draw()


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

    Live, the screen fits the terminal (see :func:`render_board`) and reads no more open orders
    than it has lines; ``once`` prints it in full up to :data:`MAX_ROWS` open orders. "Today" is
    the venue's trading day (see :func:`read_board`), else the date in ``zone``. A refresh that
    fails (the database is briefly unreachable) keeps the last picture on screen with the error
    under it, and the next refresh tries again.
    """

    def board() -> Board:
        rows = MAX_ROWS if once else max(1, min(MAX_ROWS, console.size.height))
        return read_board(
            reader,
            now=now(),
            zone=zone,
            account_id=account_id,
            session_id=session_id,
            rows=rows,
        )

    def draw(shown: Board, problem: str | None = None) -> RenderableType:
        return render_board(
            shown,
            source=reader.display_url,
            zone=zone,
            order_timeout=order_timeout,
            problem=problem,
            console=None if once else console,
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
