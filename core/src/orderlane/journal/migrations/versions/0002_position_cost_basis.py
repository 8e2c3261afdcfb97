"""Positions keep their exact cost basis, so realized P&L does not depend on the average's digits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from orderlane.journal.types import Money

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("cost_basis", Money, nullable=False, server_default="0"))
    # Existing positions: the best known cost is the average times the open quantity, computed
    # here in Decimal (SQLite's arithmetic on the TEXT money columns would go through float).
    positions = sa.table(
        "positions",
        sa.column("account_id", sa.String),
        sa.column("symbol", sa.String),
        sa.column("quantity", sa.BigInteger),
        sa.column("average_price", Money),
        sa.column("cost_basis", Money),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            positions.c.account_id,
            positions.c.symbol,
            positions.c.quantity,
            positions.c.average_price,
        )
    ).all()
    for account_id, symbol, quantity, average in rows:
        bind.execute(
            positions.update()
            .where(positions.c.account_id == account_id, positions.c.symbol == symbol)
            .values(cost_basis=Decimal(average) * abs(int(quantity)))
        )


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("cost_basis")
