"""The server-side P&L chart: bars up for gains, down for losses, readable labels, valid SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

from orderlane.journal import PnLSummary
from orderlane_web.chart import pnl_chart

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ET.Element]:
    return [rect for rect in ET.fromstring(svg).iter(f"{SVG}rect")]


def test_gains_rise_above_the_zero_line_and_losses_fall_below_it() -> None:
    rows = [
        PnLSummary("2026-01-05", Decimal(4100), 3, Decimal(4200), Decimal(200), Decimal(4000)),
        PnLSummary("2026-01-06", Decimal(-1450), 2, Decimal(-1400), Decimal(100), Decimal(-1500)),
    ]

    svg = pnl_chart(rows)

    gain, loss = bars(svg)
    assert gain.get("class") == "bar gain"
    assert loss.get("class") == "bar loss"
    gain_bottom = float(gain.get("y", 0)) + float(gain.get("height", 0))
    assert abs(gain_bottom - float(loss.get("y", 0))) < 0.2, "both bars meet at zero"
    assert float(gain.get("height", 0)) > float(loss.get("height", 0))
    assert gain.findtext(f"{SVG}title") == (
        "2026-01-05: net 4,000 (gross 4,200, commissions 200, 3 fills)"
    ), "bars are the net figure, as the cards and tables show it"
    assert gain.get("data-pnl") == "4000"
    assert ">-1,500<" in svg, "the axis names the lowest value"


def test_an_empty_journal_says_so_and_a_flat_day_still_draws() -> None:
    empty = pnl_chart([])
    flat = pnl_chart([PnLSummary("2026-01-05", Decimal(0), 2)])

    assert "No fills yet" in empty
    assert bars(empty) == []
    [bar] = bars(flat)
    assert float(bar.get("height", 0)) >= 1.0


def test_only_the_last_days_are_drawn_and_labels_are_thinned() -> None:
    start = date(2026, 1, 1)
    rows = [
        PnLSummary((start + timedelta(days=n)).isoformat(), Decimal(0), 1, net_pnl=Decimal(n - 20))
        for n in range(45)
    ]

    svg = pnl_chart(rows, days=30)

    drawn = bars(svg)
    assert len(drawn) == 30
    assert drawn[0].get("data-day") == rows[15].key
    labels = [
        text.text for text in ET.fromstring(svg).iter(f"{SVG}text") if "-" in (text.text or "")
    ]
    assert 3 <= len([label for label in labels if label and label.startswith("2026")]) <= 10
