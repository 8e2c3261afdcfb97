"""The journal's first schema: orders, fills, positions, order_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderlane.journal.types import Money, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("signal_id", sa.String(128), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("symbol_name", sa.String(256), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("limit_price", Money, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("broker_order_id", sa.String(128), nullable=True),
        sa.Column("filled_quantity", sa.BigInteger, nullable=False),
        sa.Column("filled_notional", Money, nullable=False),
        sa.Column("commission", Money, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("submitted_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("filled_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "signal_id", name="uq_orders_account_signal"),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_account_broker_id", "orders", ["account_id", "broker_order_id"])
    op.create_table(
        "fills",
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("fill_id", sa.String(160), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("price", Money, nullable=False),
        sa.Column("commission", Money, nullable=False),
        sa.Column("realized_pnl", Money, nullable=False),
        sa.Column("executed_at", UTCDateTime, nullable=False),
        sa.Column("trading_day", sa.String(10), nullable=False),
    )
    op.create_index("ix_fills_session", "fills", ["session_id"])
    op.create_index("ix_fills_trading_day", "fills", ["trading_day"])
    op.create_table(
        "positions",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("symbol_name", sa.String(256), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("average_price", Money, nullable=False),
        sa.Column("fees", Money, nullable=False),
        sa.Column("realized_pnl", Money, nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "order_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(36), nullable=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_order_events_order", "order_events", ["order_id"])


def downgrade() -> None:
    op.drop_table("order_events")
    op.drop_table("positions")
    op.drop_table("fills")
    op.drop_table("orders")
