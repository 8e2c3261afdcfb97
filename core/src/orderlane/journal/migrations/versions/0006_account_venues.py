"""The venue each account trades at, with the venue's time zone.

A fill's trading day is its date in the venue's time zone. A display reading the journal
(``orderlane watch``) needs that zone to tell which trading day "today" is; the machine it runs
on may be anywhere. Engines record their venue for their account when they start. Journals
written by earlier versions have no rows until an engine of this version starts on them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderlane.journal.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
