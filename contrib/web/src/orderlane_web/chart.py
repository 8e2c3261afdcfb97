"""Net realized P&L per trading day as an SVG bar chart, drawn on the server (no script, no fetch).

Bars show the net figure (after both sides' commissions, as the dashboard's cards and tables do);
they rise above the zero line for gains and fall below it for losses; every bar carries a
``<title>`` (its day, net, gross, commissions and fills) that browsers show on hover, and
``data-`` attributes that tests and scripts can read. Colours come from the page's stylesheet
(classes ``gain``/``loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from orderlane.cli import format_money
from orderlane.journal import PnLSummary

__all__ = ["pnl_chart"]

_WIDTH, _HEIGHT = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 84, 16, 16, 40
_MAX_LABELS = 10


def _y(value: Decimal, low: Decimal, high: Decimal) -> float:
    span = high - low
    plot = _HEIGHT - _TOP - _BOTTOM
    return _TOP + float((high - value) / span) * plot


def pnl_chart(rows: Sequence[PnLSummary], *, days: int = 30) -> str:
    """The chart of the last ``days`` trading days in ``rows`` (sorted by day), as SVG markup."""
    shown = list(rows)[-days:]
    label = "Net realized P&L per trading day"
    head = (
        f'<svg id="pnl-chart" class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    )
    if not shown:
        return (
            f'{head}<text class="empty" x="{_WIDTH / 2}" y="{_HEIGHT / 2}" '
            'text-anchor="middle">No fills yet: nothing realized.</text></svg>'
        )
    values = [row.net_pnl for row in shown]
    high, low = max(max(values), Decimal(0)), min(min(values), Decimal(0))
    if high == low:
        high = low + 1
    zero = _y(Decimal(0), low, high)
    slot = (_WIDTH - _LEFT - _RIGHT) / len(shown)
    bar = max(2.0, min(48.0, slot * 0.7))
    parts = [head]
    for value in sorted({high, low, Decimal(0)}):
        y = _y(value, low, high)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_money(value))}</text>"
        )
    every = max(1, -(-len(shown) // _MAX_LABELS))
    for index, row in enumerate(shown):
        x = _LEFT + slot * index + (slot - bar) / 2
        net = row.net_pnl
        top = _y(max(net, Decimal(0)), low, high)
        height = max(abs(_y(net, low, high) - zero), 1.0)
        kind = "loss" if net < 0 else "gain"
        day = escape(row.key)
        title = (
            f"{day}: net {format_money(net)} (gross {format_money(row.gross_pnl)}, "
            f"commissions {format_money(row.commissions)}, {row.fills} fills)"
        )
        parts.append(
            f'<rect class="bar {kind}" x="{x:.1f}" y="{top:.1f}" width="{bar:.1f}" '
            f'height="{height:.1f}" data-day="{day}" data-pnl="{escape(str(net))}">'
            f"<title>{escape(title, quote=False)}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{_HEIGHT - _BOTTOM + 18}" '
                f'text-anchor="middle">{day}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
