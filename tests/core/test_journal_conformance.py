"""The journal conformance suite (orderlane.testing.journal_suite) on the SQL journal, on SQLite
and on PostgreSQL: what every journal must do, as another store's tests would run it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orderlane.journal import Journal, SqlJournal
from orderlane.testing.journal_suite import JournalSuite


class TestSqlJournal(JournalSuite):
    @pytest.fixture
    def journal_factory(self, database_url: str) -> Callable[[], Journal]:
        return lambda: SqlJournal(database_url)
