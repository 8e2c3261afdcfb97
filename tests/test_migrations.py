"""Schema upgrades keep what the journal already holds."""

from __future__ import annotations

from datetime import UTC, datetime
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
