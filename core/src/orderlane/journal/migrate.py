"""Bring a journal database to the schema this orderlane expects, safely under concurrency.

Runs at first use: under a lock (a PostgreSQL advisory lock; on SQLite the write transaction's
own lock) it reads the current revision again, upgrades to head when it is older, and refuses a
database whose revision this code does not know (it was written by a newer orderlane).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from orderlane.errors import JournalError

__all__ = ["head_revision", "known_revisions", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x6F72_6465_726C  # "orderl"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> frozenset[str]:
    """Every schema revision this orderlane's migrations know (a database at another is newer)."""
    script = ScriptDirectory.from_config(_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def upgrade(connection: sa.Connection) -> str | None:
    """Upgrade the database behind ``connection`` to head; return the revision it started at.

    ``connection`` must not be in a transaction: this opens its own and commits it.
    """
    from alembic import command

    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        # On SQLite the journal's engine opens every transaction with BEGIN IMMEDIATE, which
        # already holds the database's write lock here.
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return current
        if current is not None and current not in known_revisions():
            raise JournalError(
                f"the journal database is at schema revision {current!r}, which this orderlane "
                f"(schema {head!r}) does not know: it was written by a newer orderlane. "
                "Upgrade orderlane, or point ORDERLANE_DATABASE_URL at another database."
            )
        command.upgrade(_config(connection), "head")
        return current
