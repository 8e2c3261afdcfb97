"""Open orders for the tracker, recovery and memory benches, written straight into a journal and
the mock venue as an engine that stopped would have left them.

Kinds of seeded order:

- ``open``: SUBMITTED with a broker id; the venue holds it open and unfilled.
- ``filled``: SUBMITTED with a broker id; the venue filled it while the engine was down.
- ``lookup``: SUBMITTING without a broker id (the engine stopped while sending); the venue has it,
  so recovery finds it by lookup and adopts it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from orderlane.engine import Engine
from orderlane.errors import ConfigurationError
from orderlane.journal.rows import order_row
from orderlane.journal.schema import orders as orders_table
from orderlane.journal.url import resolve_database_url
from orderlane.model import Order, OrderStatus, Side

__all__ = ["mock_venue", "seed_orders"]

#: Seeded orders spread over this many symbols (an engine trades a book, not one line).
SYMBOLS = 200
_CHUNK = 5000


def mock_venue(engine: Engine) -> Any:
    """The mock adapter's venue behind ``engine`` (the benches script it)."""
    venue = getattr(engine.adapter, "venue", None)
    if venue is None or not hasattr(venue, "hold_next"):
        raise ConfigurationError("this bench runs on the mock adapter (pip install orderlane-mock)")
    return venue


def seed_orders(
    database_url: str,
    venue: Any | None,
    *,
    open_orders: int = 0,
    filled: int = 0,
    lookup: int = 0,
    account_id: str = "default",
) -> None:
    """Write the orders into the (migrated) journal and, if ``venue`` is given, place them there.

    With no venue only the journal rows are written (``open`` and ``filled`` then differ in
    nothing): enough for a baseline that reads them back.
    """
    created = datetime.now(UTC) - timedelta(seconds=5)
    kinds = ["open"] * open_orders + ["filled"] * filled + ["lookup"] * lookup
    engine = sa.create_engine(resolve_database_url(database_url))
    try:
        for start in range(0, len(kinds), _CHUNK):
            rows = []
            for number, kind in enumerate(kinds[start : start + _CHUNK], start):
                order = Order(
                    id=str(uuid.uuid4()),
                    account_id=account_id,
                    session_id="bench",
                    symbol=f"{number % SYMBOLS:06d}",
                    symbol_name="bench",
                    side=Side.BUY,
                    quantity=1 + number % 3,
                    status=OrderStatus.SUBMITTING,
                    created_at=created,
                    submitted_at=created,
                    updated_at=created,
                    attempts=1,
                    version=2,
                )
                if venue is not None:
                    venue.hold_next()
                    snapshot = venue.place(order)
                    if kind == "filled":
                        venue.fill(snapshot.broker_order_id)
                    if kind != "lookup":
                        order = attrs.evolve(
                            order,
                            status=OrderStatus.SUBMITTED,
                            broker_order_id=snapshot.broker_order_id,
                            version=3,
                        )
                elif kind != "lookup":
                    order = attrs.evolve(order, status=OrderStatus.SUBMITTED, version=3)
                rows.append({**order_row(order), "engine_id": None})
            with engine.begin() as conn:
                conn.execute(orders_table.insert(), rows)
    finally:
        engine.dispose()
