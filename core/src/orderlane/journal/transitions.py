"""A transition's rows: the order's insert or versioned update, its fills, the positions they
move, and its events, written in the writer's group transaction (:mod:`orderlane.journal.writer`).

The order's write comes first and is refused (:class:`~orderlane.journal.writer.Refused`) before
anything else is written: a refused transition leaves nothing, and its group commit stands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from orderlane.events import Event, OrderFilled, PositionChanged, field_names
from orderlane.evolve import evolver
from orderlane.journal import (
    Committed,
    ConcurrentUpdateError,
    InstrumentHeldError,
    SignalTakenError,
    Transition,
)
from orderlane.journal.fastpath import FastPath, execute
from orderlane.journal.rows import (
    fill_row,
    order_row,
    order_state_row,
    position_from_mapping,
    position_row,
)
from orderlane.journal.writer import Group, Refused
from orderlane.model import Fill, Order, OrderStatus, utc_now
from orderlane.positions import Position
from orderlane.serialization import unstructure

__all__ = ["apply_transition", "payload_texts"]

_evolve_order = evolver(Order)
_evolve_fill = evolver(Fill)
_evolve_position = evolver(Position)

#: Events' payloads as stored (one encoder, not one per event).
_PAYLOAD = json.JSONEncoder(ensure_ascii=False)


def _instrument_key(account_id: str, symbol: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock on one (account, symbol)."""
    digest = hashlib.blake2b(f"{account_id}\x1f{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def apply_transition(
    conn: sa.Connection, group: Group, transition: Transition, engine_id: str
) -> Committed:
    """Write ``transition``'s rows in ``group``'s transaction (on the writer thread): the order's
    insert or versioned update (refused before anything is written: :class:`Refused`), its fills
    with the positions they move, and the events, kept for the group's one insert."""
    fast = group.fast
    cursor = group.cursor
    now_order = transition.order
    stored: Order | None = None
    if now_order is not None:
        if conn.dialect.name == "postgresql" and (
            transition.hold_check or now_order.status is OrderStatus.UNKNOWN
        ):
            # Serialize "may I send?" with "this instrument is now held" across processes:
            # without it two engines could both pass the hold check while the other goes
            # UNKNOWN. (SQLite needs nothing: BEGIN IMMEDIATE already serializes writes.)
            lock = _instrument_key(now_order.account_id, now_order.symbol)
            execute(cursor, fast.lock_instrument, (lock,))
        stored = _write_order(fast, cursor, transition, now_order, engine_id)
    events: list[Event] = list(transition.events)
    stored_fills: list[Fill] = []
    moved: list[Position] = []
    for fill in transition.fills:
        key = (fill.account_id, fill.symbol)
        position = group.positions.get(key) or _position_for_update(group, *key)
        change = position.apply(fill, stored.symbol_name if stored else "", transition.minor_unit)
        after = _evolve_position(change.position, version=position.version + 1)
        booked = _evolve_fill(
            fill,
            realized_pnl=change.realized_pnl,
            gross_pnl=change.gross_pnl,
            net_pnl=change.net_pnl,
        )
        fast.insert_fill(cursor, fill_row(booked))
        if not fast.update_position(cursor, position_row(after), *key, position.version):
            # pragma: no cover - the row is locked since it was read
            raise ConcurrentUpdateError(
                f"position {fill.account_id}/{fill.symbol} changed since version {position.version}"
            )
        group.positions[key] = after
        stored_fills.append(booked)
        moved.append(after)
        if stored is not None and fill.quantity:  # a fee-only fill executes nothing
            events.append(OrderFilled(order=stored, fill=booked))
        events.append(
            PositionChanged(position=after, fill=booked, realized_pnl=change.realized_pnl)
        )
    if events:
        recorded_at = stored.updated_at if stored is not None else _now()
        texts = payload_texts(events)
        group.events.extend(
            fast.event_row(ev.order_id, ev.type, text, recorded_at)
            for ev, text in zip(events, texts, strict=True)
        )
    return Committed(
        order=stored, fills=tuple(stored_fills), positions=tuple(moved), events=tuple(events)
    )


def payload_texts(events: Sequence[Event]) -> list[str]:
    """Each event's payload as stored, ``json.dumps(event.payload())`` to the character; an
    order, fill or position that several of the events carry (one transition's events share
    them) is converted and encoded once. An event carrying some other attrs value (a subclass
    of an order, say, which its payload converts as the declared class) is encoded whole."""
    encode = _PAYLOAD.encode
    seen: dict[int, str] = {}
    texts = []
    for event in events:
        parts = []
        for name in field_names(type(event)):
            value = getattr(event, name)
            kind = type(value)
            if kind in _SHARED:
                text = seen.get(id(value))
                if text is None:
                    text = seen[id(value)] = encode(unstructure(value))
            elif attrs.has(kind):
                break
            else:
                text = encode(unstructure(value))
            parts.append(f'"{name}": {text}')
        else:
            texts.append("{" + ", ".join(parts) + "}")
            continue
        texts.append(encode(event.payload()))
    return texts


#: What one transition's events share: encoded once per transition.
_SHARED = frozenset({Order, Fill, Position})


def _write_order(
    fast: FastPath, cursor: Any, transition: Transition, order: Order, engine_id: str
) -> Order:
    """Insert or update the order: its first write, so a refusal leaves nothing behind."""
    hold = (order.account_id, order.symbol) if transition.hold_check else None
    if transition.new:
        if hold is not None:
            blocker = fast.held_by(cursor, *hold, order.id)
            if blocker is not None:
                raise Refused(_held(order, blocker))
        stored = _evolve_order(order, version=1)
        if not fast.insert_order(cursor, {**order_row(stored), "engine_id": engine_id}):
            raise Refused(SignalTakenError("an order with this signal id is already stored"))
        return stored
    stored = _evolve_order(order, version=order.version + 1)
    row = {**order_state_row(stored), "engine_id": engine_id}
    if fast.update_order(cursor, row, order.id, order.version, hold):
        return stored
    blocker = None if hold is None else fast.held_by(cursor, *hold, order.id)
    if blocker is not None:
        raise Refused(_held(order, blocker))
    raise Refused(ConcurrentUpdateError(f"order {order.id} changed since version {order.version}"))


def _position_for_update(group: Group, account_id: str, symbol: str) -> Position:
    """The position's row (read on the driver's cursor), locked until the commit; a flat one is
    created if there is none.

    Creating it with "insert unless present" before locking it means two processes booking
    the first fills of one instrument at once (PostgreSQL) queue on the row instead of both
    inserting it and one failing with a duplicate key, its whole transition lost.
    """
    fast, cursor = group.fast, group.cursor
    found = fast.position(cursor, account_id, symbol)
    if found is None:
        fast.insert_position(cursor, position_row(Position(account_id=account_id, symbol=symbol)))
        found = fast.position(cursor, account_id, symbol)
        assert found is not None  # inserted (or another process's) and locked just now
    return position_from_mapping(found)


def _held(order: Order, blocker: str) -> InstrumentHeldError:
    return InstrumentHeldError(
        f"{order.symbol} is held by UNKNOWN order {blocker}", held_by=blocker
    )


def _now() -> Any:
    return utc_now()
