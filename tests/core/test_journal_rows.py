"""Reading the journal never crashes on a stored row: a corrupted row is reported by its key and
the rest is still shown, by the library's list reads and by ``orderlane orders`` / ``positions``.

Rows are corrupted the way a hand edit or a disk fault does it: an UPDATE outside orderlane.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orderlane import Engine, FakeClock, Signal
from orderlane.cli import app
from orderlane.errors import JournalError
from orderlane.journal.reader import JournalReader
from orderlane.journal.sql import resolve_database_url
from orderlane_mock import MockVenue


def corrupt(url: str, statement: str, **params: Any) -> None:
    engine = sa.create_engine(resolve_database_url(url))
    with engine.begin() as conn:
        assert conn.execute(sa.text(statement), params).rowcount == 1
    engine.dispose()


async def three_round_trips(url: str) -> list[str]:
    """BUY then SELL 005930, BUY 000660: returns the order ids in that order."""
    venue = MockVenue(commission=Decimal(10))
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=FakeClock(), database_url=url
    ) as engine:
        ids = []
        for signal in (
            Signal("005930", "BUY", 10),
            Signal("005930", "SELL", 4),
            Signal("000660", "BUY", 3),
        ):
            ids.append((await engine.execute(signal)).id)
        return ids


async def test_a_nan_amount_in_one_order_row_is_reported_by_id_and_the_others_are_listed(
    database_url: str,
) -> None:
    bought, sold, other = await three_round_trips(database_url)
    corrupt(database_url, "UPDATE orders SET commission = 'NaN' WHERE id = :id", id=sold)

    async with Engine.open("mock", clock=FakeClock(), database_url=database_url) as engine:
        listed = await engine.orders()
        assert {o.id for o in listed} == {bought, other}
        [bad] = listed.unreadable
        assert (bad.table, bad.key) == ("orders", sold)
        assert "commission" in bad.problem
        assert "NaN" in bad.problem
        with pytest.raises(JournalError, match=f"orders row {sold} cannot be read: commission"):
            await engine.get_order(sold)


async def test_nan_pnl_in_a_fill_and_a_position_leaves_the_rest_of_the_books_readable(
    database_url: str,
) -> None:
    _, sold, _ = await three_round_trips(database_url)
    corrupt(database_url, "UPDATE fills SET realized_pnl = 'NaN' WHERE order_id = :id", id=sold)
    corrupt(database_url, "UPDATE positions SET realized_pnl = 'NaN' WHERE symbol = '005930'")

    async with Engine.open("mock", clock=FakeClock(), database_url=database_url) as engine:
        positions = await engine.positions()
        assert [p.symbol for p in positions] == ["000660"]
        assert [(r.table, r.key) for r in positions.unreadable] == [("positions", "default/005930")]
        summaries = await engine.realized_pnl()
        assert [(s.key, s.fills) for s in summaries] == [("default", 2)]  # the bad fill left out
        assert [r.table for r in summaries.unreadable] == ["fills"]
        assert sold in summaries.unreadable[0].key
        assert await engine.fills(sold) == []


async def test_the_read_only_reader_leaves_out_and_names_corrupted_rows(
    database_url: str,
) -> None:
    bought, sold, other = await three_round_trips(database_url)
    corrupt(database_url, "UPDATE orders SET filled_notional = 'NaN' WHERE id = :id", id=bought)
    corrupt(database_url, "UPDATE fills SET price = 'NaN' WHERE order_id = :id", id=sold)
    corrupt(database_url, "UPDATE order_events SET payload = '{' WHERE seq = 1")

    with JournalReader(database_url) as reader, reader.view() as view:
        listed = view.orders()
        assert {o.id for o in listed} == {sold, other}
        assert [r.key for r in listed.unreadable] == [bought]
        summaries = view.realized_pnl("session")
        assert [s.fills for s in summaries] == [2]
        assert [r.table for r in summaries.unreadable] == ["fills"]
        events = view.events(bought)
        assert [r.key for r in events.unreadable] == ["1"]
        assert len(events) >= 1


def test_orders_and_positions_commands_show_the_readable_rows_and_name_the_bad_ones(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.delenv("ORDERLANE_DATABASE_URL", raising=False)
    bought, sold, other = asyncio.run(three_round_trips(sqlite_url))
    corrupt(sqlite_url, "UPDATE orders SET filled_notional = 'abc' WHERE id = :id", id=bought)
    corrupt(sqlite_url, "UPDATE orders SET created_at = 'yesterday' WHERE id = :id", id=other)
    corrupt(sqlite_url, "UPDATE positions SET fees = 'NaN' WHERE symbol = '005930'")
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [*args, "--database-url", sqlite_url], env={"COLUMNS": "200"})

    orders = invoke("orders")
    assert orders.exit_code == 1
    assert sold[:8] in orders.stdout
    assert bought[:8] not in orders.stdout
    assert f"orders row {bought} cannot be read: filled_notional holds 'abc'" in orders.stderr
    assert f"orders row {other} cannot be read: created_at holds 'yesterday'" in orders.stderr
    assert "Traceback" not in orders.output

    positions = invoke("positions")
    assert positions.exit_code == 1
    assert "000660" in positions.stdout
    assert "positions row default/005930 cannot be read: fees" in positions.stderr

    as_json = invoke("positions", "--json")
    assert as_json.exit_code == 1
    assert '"symbol": "000660"' in as_json.stdout
    assert "005930" not in as_json.stdout
