"""Engine sessions and order ownership, so recovery leaves alone what a running engine is sending.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderlane.journal.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_sessions",
        sa.Column("engine_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_engine_sessions_account", "engine_sessions", ["account_id"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("engine_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("engine_id")
    op.drop_table("engine_sessions")
