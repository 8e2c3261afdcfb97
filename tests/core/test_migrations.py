"""Schema upgrades keep what the journal already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from alembic import command

from orderlane.journal.migrate import _config, head_revision
from orderlane.journal.schema import positions
from orderlane.journal.sql import SqlJournal, resolve_database_url


async def test_upgrading_from_the_first_schema_keeps_positions_and_their_cost(
    database_url: str,
) -> None:
    engine = sa.create_engine(resolve_database_url(database_url))
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(
            positions.insert().values(
                account_id="a",
                symbol="005930",
                symbol_name="",
                quantity=-3,
                average_price=Decimal("100.5"),
                fees=Decimal(1),
                realized_pnl=Decimal(0),
                opened_at=datetime(2026, 1, 5, tzinfo=UTC),
                updated_at=datetime(2026, 1, 5, tzinfo=UTC),
                version=1,
            )
        )
    engine.dispose()

    async with SqlJournal(database_url) as journal:
        [position] = await journal.positions()
    assert (position.quantity, position.average_price) == (-3, Decimal("100.5"))
    assert position.cost_basis == Decimal("301.5")

    engine = sa.create_engine(resolve_database_url(database_url))
    with engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert revision == head_revision()


async def test_upgrading_to_gross_and_net_releases_the_opening_fees_of_stored_fills(
    database_url: str,
) -> None:
    """A journal written before gross and net were kept: buy 10 (commission 100), sell 10
    (commission 100) stored realized -100 and a flat position without fees. After the upgrade
    the sale holds gross 0 and net -200, and the position 200 paid, net -200."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    engine = sa.create_engine(resolve_database_url(database_url))
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0003")
        for number, (side, realized) in enumerate([("BUY", 0), ("SELL", -100)], 1):
            order_id = f"o{number}"
            conn.execute(
                sa.text(
                    "INSERT INTO orders (id, account_id, session_id, symbol, symbol_name, side, "
                    "order_type, quantity, status, filled_quantity, filled_notional, commission, "
                    "created_at, updated_at, attempts, version) VALUES (:id, 'a', 's', '005930', "
                    "'', :side, 'MARKET', 10, 'FILLED', 10, '720000', '100', :at, :at, 1, 3)"
                ),
                {"id": order_id, "side": side, "at": at + timedelta(minutes=number)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO fills (order_id, fill_id, account_id, session_id, symbol, side, "
                    "quantity, price, commission, realized_pnl, executed_at, trading_day) VALUES "
                    "(:id, :fill, 'a', 's', '005930', :side, 10, '72000', '100', :realized, :at, "
                    "'2026-01-05')"
                ),
                {
                    "id": order_id,
                    "fill": f"B{number}:10",
                    "side": side,
                    "realized": str(realized),
                    "at": at + timedelta(minutes=number),
                },
            )
        conn.execute(
            positions.insert().values(
                account_id="a",
                symbol="005930",
                symbol_name="",
                quantity=0,
                average_price=Decimal(0),
                cost_basis=Decimal(0),
                fees=Decimal(0),
                realized_pnl=Decimal(-100),
                opened_at=None,
                updated_at=at,
                version=2,
            )
        )
    engine.dispose()

    async with SqlJournal(database_url) as journal:
        [sale] = await journal.fills("o2")
        [position] = await journal.positions()
        [day] = await journal.realized_pnl("day")
    assert (sale.gross_pnl, sale.realized_pnl, sale.net_pnl) == (0, -100, -200)
    assert (position.fees, position.commissions, position.net_pnl) == (0, 200, -200)
    assert (day.gross_pnl, day.commissions, day.net_pnl) == (0, 200, -200)
