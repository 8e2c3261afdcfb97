"""Booking a broker snapshot: a pure function from what is known to what is to be committed.

:func:`book_snapshot` takes an order, a broker snapshot of it, the fill ids already booked and the
clock's and venue's values, and returns the :class:`Change` to commit (the order's next state,
its new fills, the events that report them), or None when the snapshot adds nothing. It reads no
clock, journal or broker: the blotter gathers the inputs and commits the result, so the rules
are tested on their own (tests/core/test_booking.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import attrs

from orderlane.events import Event, OrderStatusChanged, OrderSubmitted, OrderTimedOut
from orderlane.model import (
    TRANSITIONS,
    Fill,
    Order,
    OrderSnapshot,
    OrderStatus,
    fills_from_snapshot,
)

__all__ = ["TIMEOUT_REASON", "Change", "book_snapshot", "derive_status"]

#: The reason of an order ended for staying open too long (and of one whose timeout cancel is
#: not confirmed yet, which is UNKNOWN with this prefix until the broker settles it).
TIMEOUT_REASON = "timeout"


@attrs.frozen
class Change:
    """One planned write of one order: its new state, its events and fills."""

    order: Order
    events: tuple[Event, ...] = ()
    fills: tuple[Fill, ...] = ()
    #: Refuse the write while another order of the same instrument is UNKNOWN.
    hold_check: bool = False


def derive_status(order: Order, snapshot: OrderSnapshot) -> OrderStatus:
    """The status ``order`` (already holding the snapshot's fills) takes from ``snapshot``."""
    if order.filled_quantity >= order.quantity:
        return OrderStatus.FILLED
    reported = snapshot.status
    if reported in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        if reported is OrderStatus.REJECTED and order.filled_quantity:
            return OrderStatus.CANCELLED
        return reported
    if reported is OrderStatus.FAILED:
        return OrderStatus.FAILED
    if order.status is OrderStatus.PENDING_CANCEL or (
        reported is OrderStatus.PENDING_CANCEL
        and OrderStatus.PENDING_CANCEL in TRANSITIONS[order.status]
    ):
        return OrderStatus.PENDING_CANCEL
    if order.filled_quantity:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.SUBMITTED


def book_snapshot(
    order: Order,
    snapshot: OrderSnapshot,
    *,
    known_fill_ids: frozenset[str] | set[str],
    now: datetime,
    venue_timezone: tzinfo = UTC,
    currency_decimals: int = 2,
    timed_out: bool | None = None,
) -> Change | None:
    """What booking ``snapshot`` makes of ``order``: new fills, broker id, status, events.

    ``known_fill_ids``: the ids of the fills already booked for the order (each counts once).
    ``now``: the booking's time (``updated_at``, and the time of fills the broker gave none).
    ``currency_decimals``: the venue's minor unit, in which a commission reported only as a
    total is spread over the new fills.
    ``timed_out``: the order is being ended for its timeout, so a broker-side end that is not a
    complete fill (cancelled, rejected) makes it FAILED with reason ``timeout`` instead. None:
    as its reason says (an order whose timeout cancel was not confirmed yet). False: a cancel by
    hand, which ends it CANCELLED whatever the reason.

    Snapshots are cumulative: booking the same one again (or an older one) adds nothing.
    """
    fills = fills_from_snapshot(
        order,
        snapshot,
        known_fill_ids=known_fill_ids,
        now=now,
        venue_timezone=venue_timezone,
        currency_decimals=currency_decimals,
    )
    updated = order.with_fills(fills)
    broker_id = order.broker_order_id or snapshot.broker_order_id
    status = order.status if order.is_terminal else derive_status(updated, snapshot)
    reason = order.reason
    if status in (OrderStatus.REJECTED, OrderStatus.CANCELLED) and status is not order.status:
        reason = snapshot.reason or reason
    elif status is not order.status and order.status is OrderStatus.UNKNOWN:
        reason = None
    if timed_out is None:
        timed_out = (order.reason or "").startswith(TIMEOUT_REASON)
    ended_by_timeout = (
        timed_out
        and not order.is_terminal
        and status in (OrderStatus.CANCELLED, OrderStatus.REJECTED)
    )
    if ended_by_timeout:
        status, reason = OrderStatus.FAILED, TIMEOUT_REASON
    if not fills and status is order.status and broker_id == order.broker_order_id:
        return None
    after = updated.evolve(status, broker_order_id=broker_id, reason=reason, updated_at=now)
    events: list[Event] = []
    if (
        order.broker_order_id is None
        and broker_id is not None
        and status is not OrderStatus.REJECTED
    ):
        events.append(OrderSubmitted(after))
    if status is not order.status:
        events.append(OrderStatusChanged(after, order.status))
    if ended_by_timeout:
        events.append(OrderTimedOut(after, order.submitted_at or order.created_at))
    return Change(after, tuple(events), tuple(fills))
