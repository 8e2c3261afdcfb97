"""Journals of several processes on one PostgreSQL meet each other's locks: a transaction that
PostgreSQL ends as a deadlock's victim wrote nothing, and the journal runs it again rather than
failing the order."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from orderlane import Order, OrderStatus, Signal
from orderlane.clock import wall_now
from orderlane.journal import Transition
from orderlane.journal.sql import SqlJournal
from orderlane.journal.transitions import _instrument_key

pytestmark = pytest.mark.postgres


async def test_a_deadlock_victim_is_run_again_and_commits(fresh_postgres_url: str) -> None:
    watcher = sa.create_engine(fresh_postgres_url, isolation_level="AUTOCOMMIT")
    with watcher.connect() as admin:
        # PostgreSQL looks for a deadlock once, this long after a wait began: long enough for
        # the lock cycle below to be closed by then on a busy machine.
        database = admin.execute(sa.text("SELECT current_database()")).scalar_one()
        admin.execute(sa.text(f"ALTER DATABASE \"{database}\" SET deadlock_timeout = '3s'"))
    journal = SqlJournal(fresh_postgres_url)
    await journal.open()
    other = sa.create_engine(fresh_postgres_url)
    try:
        order = Order.from_signal(Signal("005930", "BUY", 1), account_id="desk", now=wall_now())
        created = await journal.record(Transition(order, new=True))
        assert created.order is not None
        # Another process holds the order's row and will ask for the instrument's lock, which
        # the journal's send transition takes first: a lock cycle PostgreSQL must break.
        conn = other.connect()
        held = conn.begin()
        conn.execute(sa.text("SET LOCAL deadlock_timeout = '30s'"))  # the journal is the victim
        conn.execute(sa.text("UPDATE orders SET reason = reason WHERE id = :id"), {"id": order.id})
        sending = asyncio.create_task(
            journal.record(
                Transition(created.order.evolve(OrderStatus.SUBMITTING), hold_check=True)
            )
        )
        for _ in range(3000):  # the journal holds the instrument and waits for the row
            with watcher.connect() as probe:
                waiting = probe.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'UPDATE orders%'"
                    )
                ).scalar_one()
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1
        key = _instrument_key("desk", "005930")
        await asyncio.to_thread(
            conn.execute, sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key}
        )
        held.rollback()  # the other process gives up: the journal's second try goes through
        conn.close()
        committed = await asyncio.wait_for(sending, 60)
        stored = await journal.get_order(order.id)
    finally:
        await journal.close()
        other.dispose()
        with watcher.connect() as admin:
            admin.execute(sa.text(f'ALTER DATABASE "{database}" RESET deadlock_timeout'))
        watcher.dispose()
    assert committed.order is not None
    assert committed.order.status is OrderStatus.SUBMITTING
    assert stored is not None
    assert (stored.status, stored.version) == (OrderStatus.SUBMITTING, 2)
