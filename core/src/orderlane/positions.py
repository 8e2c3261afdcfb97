"""Positions: what fills add up to per (account, symbol), and the P&L they realize.

A fill in the position's direction opens or adds to it at a weighted average entry price; an
opposite fill reduces or closes it and realizes ``(fill price - average entry) * quantity -
commission`` for a long, mirrored for a short. A fill beyond zero closes the position and opens
the other side with what is left; its commission is split by quantity between the two parts.
The commission of an opening fill goes to the position's fees, never into the average price.
A fee-only fill (quantity 0: a commission reported after its order's executions) adds to the
fees of a position its order opened, and is realized at once otherwise.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from orderlane.model import Fill, Side

__all__ = ["Position", "PositionChange"]

ZERO = Decimal(0)


@attrs.frozen
class Position:
    """A signed holding: positive long, negative short, zero flat."""

    account_id: str
    symbol: str
    quantity: int = 0
    average_price: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    symbol_name: str = ""
    opened_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    #: What the open quantity cost (sum of entry price x quantity), kept exactly: P&L is taken
    #: from it, so a round trip realizes its exact result whatever the average's digits.
    cost_basis: Decimal = ZERO

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    @property
    def side(self) -> Side | None:
        if self.quantity == 0:
            return None
        return Side.BUY if self.quantity > 0 else Side.SELL

    def apply(self, fill: Fill, symbol_name: str = "") -> PositionChange:
        """Return the position after ``fill`` and the P&L the fill realized."""
        signed = fill.quantity * fill.side.sign
        name = symbol_name or self.symbol_name
        if not fill.quantity:
            return self._charge(fill, name)
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            return PositionChange(self._add(signed, fill, fill.commission, name), ZERO)

        closing = min(fill.quantity, abs(self.quantity))
        opening = fill.quantity - closing
        closing_commission = (
            fill.commission if opening == 0 else fill.commission * closing / fill.quantity
        )
        direction = 1 if self.quantity > 0 else -1
        held = abs(self.quantity)
        cost = self._cost()
        # The closed part's cost: all of it on a full close, so nothing is left over to drift.
        released = cost if closing == held else cost * closing / held
        realized = (fill.price * closing - released) * direction - closing_commission
        remaining = self.quantity + closing * fill.side.sign
        if remaining == 0:
            after = attrs.evolve(
                self,
                quantity=0,
                average_price=ZERO,
                cost_basis=ZERO,
                fees=ZERO,
                opened_at=None,
                realized_pnl=self.realized_pnl + realized,
                symbol_name=name,
                updated_at=fill.executed_at,
            )
        else:
            after = attrs.evolve(
                self,
                quantity=remaining,
                cost_basis=cost - released,
                realized_pnl=self.realized_pnl + realized,
                symbol_name=name,
                updated_at=fill.executed_at,
            )
        if opening:
            after = after._add(
                opening * fill.side.sign, fill, fill.commission - closing_commission, name
            )
        return PositionChange(after, realized)

    def _charge(self, fill: Fill, name: str) -> PositionChange:
        """A fee-only fill (a commission the broker reported after the order's executions):
        carried with the fees of a position its order opened, realized at once otherwise."""
        if self.quantity * fill.side.sign > 0:
            after = attrs.evolve(
                self,
                fees=self.fees + fill.commission,
                symbol_name=name,
                updated_at=fill.executed_at,
            )
            return PositionChange(after, ZERO)
        realized = -fill.commission
        after = attrs.evolve(
            self,
            realized_pnl=self.realized_pnl + realized,
            symbol_name=name,
            updated_at=fill.executed_at,
        )
        return PositionChange(after, realized)

    def _cost(self) -> Decimal:
        # Rows written before the cost basis was kept carry only the average.
        if self.cost_basis or not self.quantity:
            return self.cost_basis
        return self.average_price * abs(self.quantity)

    def _add(self, signed: int, fill: Fill, commission: Decimal, name: str) -> Position:
        held = abs(self.quantity)
        added = abs(signed)
        cost = self._cost() + fill.price * added
        return attrs.evolve(
            self,
            quantity=self.quantity + signed,
            average_price=cost / (held + added),
            cost_basis=cost,
            fees=self.fees + commission,
            opened_at=self.opened_at if self.quantity else fill.executed_at,
            symbol_name=name,
            updated_at=fill.executed_at,
        )


@attrs.frozen
class PositionChange:
    position: Position
    realized_pnl: Decimal
