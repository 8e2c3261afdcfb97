"""Engine sessions carry their rate limiter's figures as of the last heartbeat.

A display reading the journal beside a running engine (``orderlane watch``) cannot ask the
engine for its limiter's use; the engine writes its limiter's snapshot (JSON) with every
heartbeat instead. The column is empty for sessions written by earlier versions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("engine_sessions") as batch:
        batch.add_column(sa.Column("limiter", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("engine_sessions") as batch:
        batch.drop_column("limiter")
