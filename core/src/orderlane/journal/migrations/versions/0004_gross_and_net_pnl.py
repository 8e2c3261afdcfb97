"""Closing fills store gross and net P&L; positions carry gross, net and commissions paid.

Before, a position's opening fees were dropped when it closed, and the fills stored only the
seed's figure. This adds the columns and fills them in by replaying each instrument's fills in
the order they were executed under the rules of the time of this migration (opening fees
released pro rata into the closing fills' net). The venue's minor unit is not stored in a
journal: the replay splits in the finest unit the instrument's commissions were reported in
(whole won for KRW). An instrument whose replay does not end at the position's stored quantity
(fills missing from the journal) keeps its seed figures as gross and net, and is logged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from orderlane.journal.types import Money, UTCDateTime
from orderlane.model import Fill, Side
from orderlane.positions import Position

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("orderlane.journal")

_fills = sa.table(
    "fills",
    sa.column("order_id", sa.String),
    sa.column("fill_id", sa.String),
    sa.column("account_id", sa.String),
    sa.column("session_id", sa.String),
    sa.column("symbol", sa.String),
    sa.column("side", sa.String),
    sa.column("quantity", sa.BigInteger),
    sa.column("price", Money),
    sa.column("commission", Money),
    sa.column("realized_pnl", Money),
    sa.column("gross_pnl", Money),
    sa.column("net_pnl", Money),
    sa.column("executed_at", UTCDateTime),
)
_orders = sa.table("orders", sa.column("id", sa.String), sa.column("created_at", UTCDateTime))
_positions = sa.table(
    "positions",
    sa.column("account_id", sa.String),
    sa.column("symbol", sa.String),
    sa.column("quantity", sa.BigInteger),
    sa.column("fees", Money),
    sa.column("realized_pnl", Money),
    sa.column("gross_pnl", Money),
    sa.column("net_pnl", Money),
    sa.column("commissions", Money),
)


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("gross_pnl", Money, nullable=False, server_default="0"))
        batch.add_column(sa.Column("net_pnl", Money, nullable=False, server_default="0"))
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("gross_pnl", Money, nullable=False, server_default="0"))
        batch.add_column(sa.Column("net_pnl", Money, nullable=False, server_default="0"))
        batch.add_column(sa.Column("commissions", Money, nullable=False, server_default="0"))
    bind = op.get_bind()
    for row in bind.execute(sa.select(_positions.c.account_id, _positions.c.symbol)).all():
        try:
            _carry_over(bind, row.account_id, row.symbol)
        except (TypeError, ValueError, ArithmeticError) as error:  # a row changed by hand
            log.warning(
                "journal migration 0004: %s/%s not replayed (%s); its gross and net stay 0",
                row.account_id,
                row.symbol,
                error,
            )


def _carry_over(bind: sa.Connection, account_id: str, symbol: str) -> None:
    """Replay one instrument's fills and store what they realized under today's rules."""
    rows = bind.execute(
        sa.select(_fills, _orders.c.created_at.label("order_created_at"))
        .join(_orders, _orders.c.id == _fills.c.order_id)
        .where(_fills.c.account_id == account_id, _fills.c.symbol == symbol)
        .order_by(_fills.c.executed_at, "order_created_at", _fills.c.fill_id)
    ).all()
    stored = bind.execute(
        sa.select(_positions.c.quantity, _positions.c.fees).where(*_key(account_id, symbol))
    ).one()
    position = Position(account_id=account_id, symbol=symbol)
    booked: list[tuple[Any, Decimal, Decimal, Decimal]] = []
    unit = _finest_unit([Decimal(row.commission) for row in rows])
    for row in rows:
        change = position.apply(_fill(row), unit=unit)
        position = change.position
        booked.append((row, change.realized_pnl, change.gross_pnl, change.net_pnl))
    if position.quantity != stored.quantity:
        log.warning(
            "journal migration 0004: the fills of %s/%s add up to %d, the position holds %d; "
            "their seed P&L is kept as gross and net",
            account_id,
            symbol,
            position.quantity,
            stored.quantity,
        )
        booked = [(row, row.realized_pnl, row.realized_pnl, row.realized_pnl) for row in rows]
        position = Position(
            account_id=account_id,
            symbol=symbol,
            fees=Decimal(stored.fees),
            realized_pnl=sum((b[1] for b in booked), Decimal(0)),
            gross_pnl=sum((b[2] for b in booked), Decimal(0)),
            net_pnl=sum((b[3] for b in booked), Decimal(0)),
            commissions=sum((Decimal(row.commission) for row in rows), Decimal(0)),
        )
    for row, realized, gross, net in booked:
        bind.execute(
            _fills.update()
            .where(_fills.c.order_id == row.order_id, _fills.c.fill_id == row.fill_id)
            .values(realized_pnl=realized, gross_pnl=gross, net_pnl=net)
        )
    bind.execute(
        _positions.update()
        .where(*_key(account_id, symbol))
        .values(
            fees=position.fees,
            realized_pnl=position.realized_pnl,
            gross_pnl=position.gross_pnl,
            net_pnl=position.net_pnl,
            commissions=position.commissions,
        )
    )


def _key(account_id: str, symbol: str) -> tuple[Any, ...]:
    return (_positions.c.account_id == account_id, _positions.c.symbol == symbol)


def _finest_unit(commissions: Sequence[Decimal]) -> Decimal:
    exponent = min([0, *(int(c.as_tuple().exponent) for c in commissions if c.is_finite())])
    return Decimal(1).scaleb(exponent)


def _fill(row: Any) -> Fill:
    return Fill(
        fill_id=row.fill_id,
        order_id=row.order_id,
        account_id=row.account_id,
        session_id=row.session_id,
        symbol=row.symbol,
        side=Side(row.side),
        quantity=int(row.quantity),
        price=Decimal(row.price),
        commission=Decimal(row.commission),
        executed_at=row.executed_at,
        trading_day=row.executed_at.date(),
    )


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("commissions")
        batch.drop_column("net_pnl")
        batch.drop_column("gross_pnl")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("net_pnl")
        batch.drop_column("gross_pnl")
