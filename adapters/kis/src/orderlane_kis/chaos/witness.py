"""The checks after a crash trial: the journal against the venue's own record of orders.

The venue (in its own process, alive through every kill) is the witness of what was really
sent. A trial's signals have distinct quantities, so each order the venue holds names its
signal by its intent alone, without asking the journal. Counted:

- lost: a signal without an order in the journal, or an order the venue holds that no journal
  order owns (the engine sent it and lost track of it);
- duplicates: a signal with more than one order in the journal, or more than one order at the
  venue;
- mismatches: journal fills that differ from the venue's executions of the order (quantity or
  amount), a position that is not the net of the venue's fills, an order left non-terminal
  without a reason, an order ended in the journal that the venue still has open, a broker id
  the venue does not know, an order adopted for another signal's intent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from orderlane.journal.sql import SqlJournal
from orderlane.model import Order, OrderStatus
from orderlane_kis.chaos.plan import SignalSpec

__all__ = ["Verdict", "judge", "read_journal"]

NOT_SENT = "not sent"


@attrs.define
class Verdict:
    orders: int = 0
    lost: int = 0
    duplicates: int = 0
    mismatches: int = 0
    not_sent: int = 0
    problems: list[str] = attrs.Factory(list)

    def lose(self, text: str) -> None:
        self.lost += 1
        self.problems.append(f"lost: {text}")

    def duplicate(self, text: str, count: int = 1) -> None:
        self.duplicates += count
        self.problems.append(f"duplicate: {text}")

    def mismatch(self, text: str) -> None:
        self.mismatches += 1
        self.problems.append(f"mismatch: {text}")


@attrs.frozen
class JournalView:
    orders: tuple[Order, ...]
    #: order id -> (filled quantity, amount) of its fills
    fills: Mapping[str, tuple[int, Decimal]]
    #: symbol -> signed quantity
    positions: Mapping[str, int]


async def read_journal(database_url: str, account_id: str) -> JournalView:
    """What the journal holds for one account, read by a journal of its own."""
    async with SqlJournal(database_url) as journal:
        orders = tuple(o for o in await journal.list_orders(10**9) if o.account_id == account_id)
        fills: dict[str, tuple[int, Decimal]] = {}
        for order in orders:
            booked = await journal.fills(order.id)
            fills[order.id] = (
                sum(f.quantity for f in booked),
                sum((f.quantity * f.price for f in booked), Decimal(0)),
            )
        positions = {p.symbol: p.quantity for p in await journal.positions(account_id)}
    return JournalView(orders, fills, positions)


def _odno(value: str | None) -> str | None:
    if value is None:
        return None
    return f"{int(value):010d}" if value.isdigit() else value


def judge(
    signals: Sequence[SignalSpec], journal: JournalView, venue_orders: Iterable[Mapping[str, Any]]
) -> Verdict:
    """Compare what the journal holds with what the venue holds for one trial's account."""
    verdict = Verdict(orders=len(journal.orders))
    by_signal: dict[str, list[Order]] = defaultdict(list)
    for order in journal.orders:
        by_signal[order.signal_id or ""].append(order)
    planned = {spec.signal_id: spec for spec in signals}
    for spec in signals:
        found = by_signal.get(spec.signal_id, [])
        if not found:
            verdict.lose(f"signal {spec.signal_id} has no order in the journal")
        elif len(found) > 1:
            ids = ", ".join(o.id for o in found)
            verdict.duplicate(
                f"signal {spec.signal_id} has {len(found)} orders: {ids}", len(found) - 1
            )
    for signal_id, found in by_signal.items():
        if signal_id not in planned:
            verdict.mismatch(f"{len(found)} journal order(s) of no planned signal ({signal_id!r})")

    intents = {spec.intent: spec for spec in signals}
    at_venue: dict[tuple[str, str, int], list[Mapping[str, Any]]] = defaultdict(list)
    rows = [row for row in venue_orders if row["kind"] == "order"]
    for row in rows:
        at_venue[(row["symbol"], row["side"].upper(), int(row["quantity"]))].append(row)
    for intent, held in at_venue.items():
        named = intents.get(intent)
        if named is None:
            verdict.mismatch(f"the venue holds {len(held)} order(s) of no signal: {intent}")
        elif len(held) > 1:
            numbers = ", ".join(row["odno"] for row in held)
            verdict.duplicate(
                f"the venue holds {len(held)} orders for signal {named.signal_id}: {numbers}",
                len(held) - 1,
            )

    owners: dict[str, Order] = {}
    for order in journal.orders:
        odno = _odno(order.broker_order_id)
        if odno is not None:
            owners[odno] = order
    venue_numbers = {row["odno"] for row in rows}
    net: dict[str, int] = defaultdict(int)
    for row in rows:
        filled = int(row["filled"])
        net[row["symbol"]] += filled if row["side"] == "buy" else -filled
        intent = (row["symbol"], row["side"].upper(), int(row["quantity"]))
        signal = intents.get(intent)
        owner = owners.get(row["odno"])
        if owner is None:
            stored = by_signal.get(signal.signal_id, []) if signal else []
            state = ", ".join(f"{o.status.value} ({o.reason})" for o in stored) or "no order"
            verdict.lose(
                f"the venue holds order {row['odno']} ({intent}) that no journal order owns; "
                f"its signal's order: {state}"
            )
            continue
        if signal is not None and owner.signal_id != signal.signal_id:
            verdict.mismatch(
                f"order {owner.id} of signal {owner.signal_id} adopted venue order "
                f"{row['odno']} of signal {signal.signal_id}"
            )
        quantity, amount = journal.fills.get(owner.id, (0, Decimal(0)))
        if quantity != filled or amount != Decimal(int(row["amount"])):
            verdict.mismatch(
                f"order {owner.id} ({owner.signal_id}): journal fills {quantity} for {amount}, "
                f"the venue executed {filled} for {row['amount']}"
            )
        if owner.filled_quantity != filled:
            verdict.mismatch(
                f"order {owner.id} ({owner.signal_id}): filled_quantity "
                f"{owner.filled_quantity}, the venue executed {filled}"
            )
        if owner.is_terminal and int(row["remaining"]) > 0:
            verdict.mismatch(
                f"order {owner.id} ({owner.signal_id}) is {owner.status.value} in the journal "
                f"but venue order {row['odno']} still has {row['remaining']} open"
            )
    for order in journal.orders:
        odno = _odno(order.broker_order_id)
        if odno is not None and odno not in venue_numbers:
            verdict.mismatch(f"order {order.id} names broker order {odno}, unknown to the venue")
        if not order.is_terminal and not order.reason:
            verdict.mismatch(
                f"order {order.id} ({order.signal_id}) is {order.status.value} with no reason"
            )
        if order.status is OrderStatus.FAILED and (order.reason or "").startswith(NOT_SENT):
            verdict.not_sent += 1
    for symbol in sorted(set(net) | set(journal.positions)):
        if journal.positions.get(symbol, 0) != net.get(symbol, 0):
            verdict.mismatch(
                f"position {symbol}: journal {journal.positions.get(symbol, 0)}, "
                f"net of the venue's fills {net.get(symbol, 0)}"
            )
    return verdict
