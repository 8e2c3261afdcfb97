"""Positions: what fills add up to per (account, symbol), and the P&L they realize.

A fill in the position's direction opens or adds to it at a weighted average entry price; its
commission goes to the position's fees, never into the average price. An opposite fill reduces
or closes it, and stores three figures for the closed quantity: the gross P&L (``(fill price -
average entry) * quantity`` for a long, mirrored for a short), the seed's figure (gross minus
the closing commission, :attr:`PositionChange.realized_pnl`) and the net (the seed's figure
minus the opening fees carried for the closed quantity, released pro rata). So nothing paid
ever leaves the books: a round trip realizes gross 0 and net minus both commissions.

A fill beyond zero closes the position and opens the other side with what is left; its
commission is split by quantity between the two parts. Splits and pro rata releases are
allocated in the venue's minor currency unit with the remainder on the last part (see
:mod:`orderlane.money`), so the parts add up exactly to what was paid. A fee-only fill
(quantity 0: a commission reported after its order's executions) adds to the fees of a position
its order opened, and is realized at once otherwise.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from orderlane.evolve import evolver
from orderlane.model import Fill, Side
from orderlane.money import split

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
    #: Realized P&L before any commission, summed over the closing fills.
    gross_pnl: Decimal = ZERO
    #: Realized P&L after both sides' commissions (the opening fees released pro rata).
    net_pnl: Decimal = ZERO
    #: Every commission paid on the instrument, opening and closing fills alike.
    commissions: Decimal = ZERO

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    @property
    def side(self) -> Side | None:
        if self.quantity == 0:
            return None
        return Side.BUY if self.quantity > 0 else Side.SELL

    def apply(
        self, fill: Fill, symbol_name: str = "", unit: Decimal = Decimal("0.01")
    ) -> PositionChange:
        """Return the position after ``fill`` and what the fill realized; ``unit`` is the
        venue's minor currency unit, in which commissions and fees are split."""
        signed = fill.quantity * fill.side.sign
        name = symbol_name or self.symbol_name
        paid = _evolve_position(self, commissions=self.commissions + fill.commission)
        if not fill.quantity:
            return paid._charge(fill, name)
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            return PositionChange(paid._add(signed, fill, fill.commission, name))

        held = abs(self.quantity)
        closing = min(fill.quantity, held)
        opening = fill.quantity - closing
        closing_commission, opening_commission = fill.commission, ZERO
        if opening:
            closing_commission, opening_commission = split(
                fill.commission, [closing, opening], unit
            )
        released_fees = self.fees
        if closing < held:
            released_fees = split(self.fees, [closing, held - closing], unit)[0]
        direction = 1 if self.quantity > 0 else -1
        cost = self._cost()
        # The closed part's cost: all of it on a full close, so nothing is left over to drift.
        released = cost if closing == held else cost * closing / held
        gross = (fill.price * closing - released) * direction
        change = PositionChange(
            paid,
            realized_pnl=gross - closing_commission,
            gross_pnl=gross,
            net_pnl=gross - closing_commission - released_fees,
        )
        remaining = self.quantity + closing * fill.side.sign
        after = paid._realize(change, name, fill.executed_at)
        if remaining == 0:
            after = _evolve_position(
                after, quantity=0, average_price=ZERO, cost_basis=ZERO, fees=ZERO, opened_at=None
            )
        else:
            after = _evolve_position(
                after,
                quantity=remaining,
                cost_basis=cost - released,
                fees=self.fees - released_fees,
            )
        if opening:
            after = after._add(opening * fill.side.sign, fill, opening_commission, name)
        return _evolve_change(change, position=after)

    def _charge(self, fill: Fill, name: str) -> PositionChange:
        """A fee-only fill (a commission the broker reported after the order's executions):
        carried with the fees of a position its order opened, realized at once otherwise."""
        if self.quantity * fill.side.sign > 0:
            after = _evolve_position(
                self,
                fees=self.fees + fill.commission,
                symbol_name=name,
                updated_at=fill.executed_at,
            )
            return PositionChange(after)
        change = PositionChange(self, -fill.commission, ZERO, -fill.commission)
        return _evolve_change(change, position=self._realize(change, name, fill.executed_at))

    def _realize(self, change: PositionChange, name: str, at: datetime) -> Position:
        return _evolve_position(
            self,
            realized_pnl=self.realized_pnl + change.realized_pnl,
            gross_pnl=self.gross_pnl + change.gross_pnl,
            net_pnl=self.net_pnl + change.net_pnl,
            symbol_name=name,
            updated_at=at,
        )

    def _cost(self) -> Decimal:
        # Rows written before the cost basis was kept carry only the average.
        if self.cost_basis or not self.quantity:
            return self.cost_basis
        return self.average_price * abs(self.quantity)

    def _add(self, signed: int, fill: Fill, commission: Decimal, name: str) -> Position:
        held = abs(self.quantity)
        added = abs(signed)
        cost = self._cost() + fill.price * added
        return _evolve_position(
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
    """The position after a fill and what the fill realized: ``realized_pnl`` is the seed's
    figure (gross minus the closing commission), ``net_pnl`` also takes off the opening fees
    the fill released. All zero for a fill that only opens or adds."""

    position: Position
    realized_pnl: Decimal = ZERO
    gross_pnl: Decimal = ZERO
    net_pnl: Decimal = ZERO


_evolve_position = evolver(Position)
_evolve_change = evolver(PositionChange)
