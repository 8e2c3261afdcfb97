"""Splitting an amount paid into parts that add up to it exactly, in the venue's minor unit.

A commission split across the two sides of a flip, a commission reported only as an order's
total and spread over its fills, opening fees released pro rata when part of a position closes:
each part is rounded to the venue's minor currency unit (KRW: 1, USD: 0.01) and the last part
takes what is left, so the parts always add up to what was paid, never to a 28-digit repeating
decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["minor_unit", "split"]


def minor_unit(decimals: int) -> Decimal:
    """The smallest amount of a currency with ``decimals`` digits after the point (KRW: 0)."""
    return Decimal(1).scaleb(-decimals)


def split(amount: Decimal, weights: Sequence[int], unit: Decimal) -> list[Decimal]:
    """``amount`` in parts proportional to ``weights``, each rounded to ``unit`` (half to even)
    but the last, which takes the rest: the parts add up to ``amount`` exactly."""
    if not weights:
        return []
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"weights must add up to more than zero, got {list(weights)}")
    parts = [(amount * weight / total).quantize(unit, ROUND_HALF_EVEN) for weight in weights[:-1]]
    return [*parts, amount - sum(parts, Decimal(0))]
