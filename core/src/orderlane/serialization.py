"""One cattrs converter for everything orderlane writes out: events, the journal, JSON output.

Decimals become strings (exact), datetimes ISO 8601 with offset, enums their value.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import cattrs

__all__ = ["converter", "to_json", "unstructure"]

converter = cattrs.Converter()
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda value, _: Decimal(str(value)))
converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
converter.register_unstructure_hook(date, lambda value: value.isoformat())
converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
converter.register_unstructure_hook(timedelta, lambda value: value.total_seconds())
converter.register_structure_hook(timedelta, lambda value, _: timedelta(seconds=float(value)))
converter.register_unstructure_hook(
    frozenset, lambda value: sorted(converter.unstructure(v) for v in value)
)


def unstructure(obj: Any) -> Any:
    """Plain JSON-ready data for an attrs object (or a list/dict of them)."""
    return converter.unstructure(obj)


def to_json(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(unstructure(obj), indent=indent, ensure_ascii=False)
