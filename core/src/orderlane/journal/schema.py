"""The journal's tables. Changes to them go through a new Alembic migration in ``migrations/``."""

from __future__ import annotations

import sqlalchemy as sa

from orderlane.journal.types import Money, UTCDateTime

__all__ = [
    "accounts",
    "engine_sessions",
    "fills",
    "metadata",
    "order_events",
    "orders",
    "positions",
]

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
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
    #: The engine session that last wrote the order (recovery leaves a live one's sends alone).
    sa.Column("engine_id", sa.String(36), nullable=True),
    sa.UniqueConstraint("account_id", "signal_id", name="uq_orders_account_signal"),
)
sa.Index("ix_orders_status", orders.c.status)
sa.Index("ix_orders_account_broker_id", orders.c.account_id, orders.c.broker_order_id)

fills = sa.Table(
    "fills",
    metadata,
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
    sa.Column("gross_pnl", Money, nullable=False),
    sa.Column("net_pnl", Money, nullable=False),
    sa.Column("executed_at", UTCDateTime, nullable=False),
    sa.Column("trading_day", sa.String(10), nullable=False),
)
sa.Index("ix_fills_session", fills.c.session_id)
sa.Index("ix_fills_trading_day", fills.c.trading_day)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("symbol", sa.String(64), primary_key=True),
    sa.Column("symbol_name", sa.String(256), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("average_price", Money, nullable=False),
    sa.Column("cost_basis", Money, nullable=False),
    sa.Column("fees", Money, nullable=False),
    sa.Column("realized_pnl", Money, nullable=False),
    sa.Column("gross_pnl", Money, nullable=False),
    sa.Column("net_pnl", Money, nullable=False),
    sa.Column("commissions", Money, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)

engine_sessions = sa.Table(
    "engine_sessions",
    metadata,
    sa.Column("engine_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    #: The engine's rate limiter's figures as of its last heartbeat (JSON), for displays.
    sa.Column("limiter", sa.Text, nullable=True),
)
sa.Index("ix_engine_sessions_account", engine_sessions.c.account_id)

#: The venue each account trades at, as its engines last announced it: a display reading the
#: journal learns from it in which time zone "today" is the venue's trading day.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("venue", sa.String(64), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(36), nullable=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)
sa.Index("ix_order_events_order", order_events.c.order_id)
