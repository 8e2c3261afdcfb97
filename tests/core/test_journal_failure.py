"""A journal that fails while an order is being sent: nothing is sent, ``execute`` raises
``JournalError``, and the running engine settles the order once the journal is back.

The journal fails for real: another connection holds the SQLite database's write lock (the
journal's writes time out as "database is locked"), or the PostgreSQL server ends the journal's
connection. The lock is taken the moment the CREATED commit is delivered, so the SUBMITTING
commit is the one that fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from orderlane import Engine, FakeClock, Signal
from orderlane.errors import JournalError
from orderlane.events import Event, OrderCreated
from orderlane.journal.sql import SqlJournal
from orderlane.model import OrderStatus
from orderlane_mock import MockVenue


def fail_after_created(engine: Engine, fail: Callable[[], None]) -> None:
    """Call ``fail`` once, as soon as an order's CREATED commit is delivered (before the
    executor can ask for SUBMITTING)."""
    publish = engine.events.publish
    done = False

    def listener(events: Sequence[Event]) -> None:
        nonlocal done
        if not done and any(isinstance(event, OrderCreated) for event in events):
            done = True
            fail()
        publish(events)

    engine.journal.set_listener(listener)


async def test_a_journal_failing_at_the_submitting_commit_ends_the_order_not_sent_once_back(
    venue: MockVenue, clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "journal.db"
    journal = SqlJournal(f"sqlite:///{path}", busy_timeout_ms=200)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, journal=journal
    ) as engine:
        holder = sqlite3.connect(path, isolation_level=None)
        fail_after_created(engine, lambda: holder.execute("BEGIN IMMEDIATE"))
        try:
            with pytest.raises(JournalError, match="locked"):
                await engine.execute(Signal("005930", "BUY", 10))
            [order] = await engine.orders()
            assert order.status is OrderStatus.CREATED
            await engine.tracker.poll_once()  # still locked: it waits, nothing is sent
            assert (await engine.get_order(order.id)) == order
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        await engine.tracker.poll_once()  # the journal is back

        settled = await engine.get_order(order.id)
        assert settled is not None
        assert settled.status is OrderStatus.FAILED
        assert (settled.reason or "").startswith("not sent")
        assert venue.places == []
        again = await engine.execute(Signal("005930", "BUY", 10))
        assert again.status is OrderStatus.FILLED


@pytest.mark.postgres
async def test_a_killed_journal_connection_at_the_submitting_commit_sends_nothing(
    venue: MockVenue, clock: FakeClock, fresh_postgres_url: str
) -> None:
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=fresh_postgres_url
    ) as engine:
        admin = sa.create_engine(fresh_postgres_url, isolation_level="AUTOCOMMIT")

        def kill_the_journal_connection() -> None:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )

        fail_after_created(engine, kill_the_journal_connection)
        try:
            try:
                order = await engine.execute(Signal("005930", "BUY", 10))
            except JournalError:
                [order] = await engine.orders()
            await engine.tracker.poll_once()
        finally:
            admin.dispose()

        settled = await engine.get_order(order.id)
        assert settled is not None
        assert settled.status is OrderStatus.FAILED
        assert (settled.reason or "").startswith("not sent")
        assert venue.places == []
