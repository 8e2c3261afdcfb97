"""The daily order inquiry (``inquire-daily-ccld``): statuses and lookups, one request a page.

One inquiry returns every order of the day, so the tracker's statuses, a lookup and a batch of
lookups are each one paged pass (15 rows a page on paper, 100 live; ``tr_cont`` and the
continuation keys lead from page to page), each page taking an inquiry permit.

Lookup by attributes: KIS keeps no client order id, so an order whose place answer was lost is
matched by symbol, side, quantity, price and order time (within its send window), skipping the
KIS orders other journal orders own. A KIS order that more than one unresolved journal order
could own is no unique match (DESIGN §4): each of them is "cannot tell" until the others settle.
"Absent" is said only once the order's last send is older than the lag KIS's inquiry may show,
and never while an unowned KIS order of the same intent sits within a minute of the send window
(KIS stamps order times with its own clock: a machine clock a few seconds off would otherwise
call the order absent and send it twice).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, MutableMapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from orderlane import Absent, CannotTell, Found, LookupWindow, Order, OrderSnapshot, RequestKind
from orderlane.contract import BrokerContext, LookupResult
from orderlane.model import OrderStatus, OrderType
from orderlane_kis.errors import answer_error
from orderlane_kis.http import KisHttp
from orderlane_kis.krx import kst_day
from orderlane_kis.parsing import (
    KST,
    InquiryRow,
    RowFormatError,
    kst_date,
    parse_row,
    snapshot_from_row,
)

__all__ = [
    "INQUIRY_PATH",
    "DailyOrders",
    "Owned",
    "Pass",
    "Unparsed",
    "answer_for",
    "inquiry_params",
    "match_orders",
    "order_day",
]

log = logging.getLogger("orderlane.kis.inquiry")

INQUIRY_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
INQUIRY_TR = {"live": "TTTC0081R", "paper": "VTTC0081R"}
#: KIS's answer to an inquiry of a day without orders ("조회할 내용이 없습니다.").
INQUIRY_EMPTY = "KIOK0500"
#: How far a KIS order time may sit outside an order's send window and still match it: KIS
#: stamps whole seconds, with its own clock.
TIME_SLACK = timedelta(seconds=2)
#: How far apart this machine's clock and KIS's may be. An unowned KIS order of the same intent
#: this close to the send window (but outside TIME_SLACK) may be the order itself seen through
#: a clock that is off: the lookup cannot tell, rather than call the order absent and have it
#: sent twice.
CLOCK_SKEW = timedelta(seconds=60)


def order_day(order: Order) -> date:
    """The KST day ``order`` was sent (created, if it never was): the day its KIS number
    belongs to. An order sent again after KIS confirmed it never got it counts from that send
    (the engine starts its send window again)."""
    return kst_day(order.submitted_at or order.created_at)


def row_day(row: InquiryRow, first: date | None, last: date | None) -> date | None:
    """The KST day of ``row``'s order (its ``ord_dt``), or, when KIS named none, the day an
    inquiry of one day (``first`` to ``last``) asked for; None when it cannot be known."""
    if row.order_date is not None:
        return row.order_date
    if row.ordered_at is not None:
        return kst_day(row.ordered_at)
    return first if first is not None and first == last else None


@attrs.frozen
class Unparsed:
    """A row of the inquiry that does not parse, with what could be read of it."""

    number: str
    why: str
    symbol: str | None
    day: date | None


@attrs.define
class Pass:
    """What one paged pass over the daily inquiry could not read: rows that do not parse, pages
    that held no list of rows, and a pass that ended before KIS's last page."""

    unparsed: list[Unparsed] = attrs.field(factory=list)
    pages_unread: int = 0
    cut_short: bool = False

    def could_hide(self, order: Order, first: date, last: date) -> list[str]:
        """Why this pass is no proof that ``order`` (sent between the KST days ``first`` and
        ``last``) is absent: what the pass could not read that may be it."""
        reasons = []
        if self.cut_short:
            reasons.append("the inquiry's pages ended before its last")
        if self.pages_unread:
            reasons.append(f"{self.pages_unread} page(s) of the inquiry held no rows to read")
        for row in self.unparsed:
            symbol_fits = row.symbol is None or row.symbol == order.symbol
            day_fits = row.day is None or first <= row.day <= last
            if symbol_fits and day_fits:
                reasons.append(
                    f"the row of KIS order {row.number or '(no number)'} does not parse ({row.why})"
                )
        return reasons

    def why_unparsed(self, number: str) -> str | None:
        """Why a row of KIS order ``number`` did not parse, if one did not."""
        return next((row.why for row in self.unparsed if row.number == number), None)


def inquiry_params(
    cano: str,
    product: str,
    first: date,
    last: date,
    *,
    odno: str = "",
    fk: str = "",
    nk: str = "",
) -> dict[str, str]:
    """The query of one page: every parameter the document names, in KIS's uppercase."""
    return {
        "CANO": cano,
        "ACNT_PRDT_CD": product,
        "INQR_STRT_DT": first.strftime("%Y%m%d"),
        "INQR_END_DT": last.strftime("%Y%m%d"),
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00",
        "PDNO": "",
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": odno,
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "EXCG_ID_DVSN_CD": "KRX",
        "CTX_AREA_FK100": fk,
        "CTX_AREA_NK100": nk,
    }


class DailyOrders:
    """Reads the daily inquiry for one account; remembers each order's branch (for cancels)."""

    def __init__(self, http: KisHttp, branches: MutableMapping[str, str]) -> None:
        self.http = http
        self.branches = branches
        #: Inquiry pages requested so far (each one a request KIS counts).
        self.pages = 0

    def __repr__(self) -> str:
        return f"DailyOrders(pages={self.pages})"

    async def pages_of(
        self, ctx: BrokerContext, first: date, last: date, seen: Pass, *, odno: str = ""
    ) -> AsyncIterator[list[InquiryRow]]:
        """The rows of each page, newest first; what could not be read is logged and kept in
        ``seen`` (one pass's own record: passes may run side by side)."""
        settings = self.http.settings
        fk = nk = ""
        page = 0
        while True:
            page += 1
            params = inquiry_params(
                settings.cano, settings.product_code, first, last, odno=odno, fk=fk, nk=nk
            )
            answer = await self.http.call(
                ctx,
                RequestKind.INQUIRY,
                "GET",
                INQUIRY_PATH,
                INQUIRY_TR[settings.mode],
                params=params,
                tr_cont="N" if fk or nk else "",
            )
            self.pages += 1
            if not answer.ok:
                raise answer_error(answer.body, answer.status, settings, what="daily inquiry")
            raw = answer.body.get("output1")
            if raw is None or raw == "":
                if str(answer.body.get("msg_cd") or "") != INQUIRY_EMPTY:
                    # KIS names an empty day with its own code; a page of rows without them
                    # is no proof that the day holds none.
                    log.warning("daily inquiry: page %d has no output1; page ignored", page)
                    seen.pages_unread += 1
                raw = []
            yield self._rows(raw, seen)
            asked = (fk, nk)
            fk = str(answer.body.get("ctx_area_fk100") or "").strip()
            nk = str(answer.body.get("ctx_area_nk100") or "").strip()
            if not answer.more:
                return
            if not (fk or nk) or (fk, nk) == asked:
                # KIS says there is more but hands back no keys, or the keys it was asked
                # with: the next request would be the first page again, or this one, forever
                # (a permit each). Stop; the pass is incomplete, and the next poll reads the
                # inquiry afresh.
                log.warning(
                    "daily inquiry: page %d says more follows but %s its continuation keys; "
                    "the pass ends here",
                    page,
                    "repeats" if fk or nk else "leaves out",
                )
                seen.cut_short = True
                return

    def _rows(self, raw: object, seen: Pass) -> list[InquiryRow]:
        if not isinstance(raw, list):
            log.warning("daily inquiry: output1 is a %s, not a list; page ignored", type(raw))
            seen.pages_unread += 1
            return []
        rows = []
        for item in raw:
            try:
                row = parse_row(item)
            except RowFormatError as error:
                fields = item if isinstance(item, Mapping) else {}
                odno = str(fields.get("odno") or "").strip()
                log.warning("daily inquiry: row of order %s left out: %s", odno or "?", error)
                symbol = str(fields.get("pdno") or "").strip() or None
                day = kst_date(str(fields.get("ord_dt") or "").strip())
                seen.unparsed.append(Unparsed(odno, str(error), symbol, day))
                continue
            if row.branch and not row.is_cancel_order:
                self.branches[row.broker_order_id] = row.branch
            rows.append(row)
        return rows

    async def statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> dict[str, OrderSnapshot]:
        """Snapshots by ``order.id``; paging stops once every asked order was seen (newest
        first, so a cancel row, being newer than its order, is seen before the order).

        A row answers for the order of its number sent on the row's day (``ord_dt``): KIS does
        not promise that a number names one order across days, and a pass that spans
        yesterday and today may show a today's order of the same number first."""
        wanted: dict[tuple[date, str], list[Order]] = collections.defaultdict(list)
        for order in orders:
            if order.broker_order_id:
                wanted[order_day(order), order.broker_order_id].append(order)
        if not wanted:
            return {}
        last = kst_day(ctx.clock.now())
        first = min(min(day for day, _number in wanted), last)
        numbers = {number for _day, number in wanted}
        cancels: dict[tuple[date | None, str], list[InquiryRow]] = collections.defaultdict(list)
        rows_of: dict[tuple[date, str], list[InquiryRow]] = collections.defaultdict(list)
        odno = next(iter(numbers)) if len(numbers) == 1 else ""
        seen = Pass()
        async for page in self.pages_of(ctx, first, last, seen, odno=odno):
            for row in page:
                day = row_day(row, first, last)
                if row.is_cancel_order:
                    cancels[day, row.original_order_id].append(row)
                elif day is None and row.broker_order_id in numbers:
                    log.warning(
                        "daily inquiry: the row of KIS order %s names no day it reads as "
                        "(ord_dt), so it cannot be told from another day's order of that "
                        "number; nothing booked from it",
                        row.broker_order_id,
                    )
                elif day is not None and (day, row.broker_order_id) in wanted:
                    rows_of[day, row.broker_order_id].append(row)
            if len(rows_of) == len(wanted):
                break
        found: dict[str, OrderSnapshot] = {}
        for (day, number), owners in wanted.items():
            snapshot = answer_for(owners, rows_of.get((day, number), []), cancels[day, number])
            if snapshot is not None and day < last and not snapshot.status.is_terminal:
                # KRX orders last their trading day: what was left of an earlier day's order
                # lapsed with it (and a cancel by its number could reach today's order).
                snapshot = attrs.evolve(
                    snapshot,
                    status=OrderStatus.CANCELLED,
                    reason=f"what was left lapsed with KIS's trading day {day.isoformat()}",
                )
            if snapshot is not None:
                found[owners[0].id] = snapshot
            elif (why := seen.why_unparsed(number)) is not None:
                log.error(
                    "order %s: KIS's answer for %s does not parse (%s); nothing booked from it",
                    ", ".join(o.id for o in owners),
                    number,
                    why,
                )
        return found

    async def rows_between(
        self, ctx: BrokerContext, start: datetime, seen: Pass | None = None
    ) -> list[InquiryRow]:
        """Every row from ``start``'s KST day to today (one full paged pass)."""
        return await self._rows_in(ctx, _span(ctx, start), seen or Pass())

    async def _rows_in(
        self, ctx: BrokerContext, span: tuple[date, date], seen: Pass
    ) -> list[InquiryRow]:
        rows: list[InquiryRow] = []
        async for page in self.pages_of(ctx, *span, seen):
            rows.extend(page)
        return rows

    async def lookup(
        self,
        ctx: BrokerContext,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned: Owned,
        lag: timedelta,
        last_sent: Mapping[str, datetime],
    ) -> dict[str, LookupResult]:
        """Look every order up in one pass over the day's orders. An order the pass could not
        rule out (a row that does not parse and may be it, a page that did not read, a pass
        cut short) is "cannot tell", never absent: it would be sent again."""
        if not orders:
            return {}
        latest = max(_sent(o, windows[o.id], last_sent) for o in orders)
        wait = (latest + lag - ctx.clock.now()).total_seconds()
        if wait > 0:
            # KIS's inquiry may not show an order sent within its lag: wait that out first.
            await ctx.clock.sleep(wait)
        span = _span(ctx, min(w.start for w in windows.values()))
        seen = Pass()
        rows = await self._rows_in(ctx, span, seen)
        results = match_orders(orders, windows, rows, owned, span)
        for order in orders:
            if not isinstance(results[order.id], Absent):
                continue
            window = windows[order.id]
            reasons = seen.could_hide(
                order, kst_day(window.start - CLOCK_SKEW), kst_day(window.end + CLOCK_SKEW)
            )
            if reasons:
                log.warning(
                    "order %s: not found at KIS, but %s: it cannot be called absent",
                    order.id,
                    "; ".join(reasons),
                )
                results[order.id] = CannotTell(
                    "not found, but " + "; ".join(reasons) + ": it may be this order"
                )
        return results


def _span(ctx: BrokerContext, start: datetime) -> tuple[date, date]:
    """The first and last KST day of an inquiry from ``start`` to now."""
    today = kst_day(ctx.clock.now())
    return min(kst_day(start), today), today


def answer_for(
    owners: Sequence[Order], rows: Sequence[InquiryRow], cancels: Sequence[InquiryRow]
) -> OrderSnapshot | None:
    """The snapshot of the one order of a (day, number) from its row, or None (logged) when
    there is no single order and row to tell it from."""
    order = owners[0]
    if len(owners) > 1:
        log.error(
            "orders %s all name KIS order %s of one day; nothing booked for them",
            ", ".join(o.id for o in owners),
            order.broker_order_id,
        )
        return None
    if len(rows) > 1:
        rows = [row for row in rows if _same_intent(order, row)]
        if len(rows) != 1:
            log.error(
                "order %s: KIS shows more than one order numbered %s on its day, and not one "
                "of its intent alone; nothing booked from them",
                order.id,
                order.broker_order_id,
            )
            return None
    if not rows:
        return None
    try:
        return snapshot_from_row(rows[0], cancels)
    except RowFormatError as error:
        log.warning("daily inquiry: order %s left out: %s", rows[0].broker_order_id, error)
        return None


def _sent(order: Order, window: LookupWindow, last_sent: Mapping[str, datetime]) -> datetime:
    """When the order was last sent, as far as anyone knows."""
    return max(window.start, order.updated_at, last_sent.get(order.id, window.start))


def _same_intent(order: Order, row: InquiryRow) -> bool:
    price = order.limit_price if order.order_type is OrderType.LIMIT else Decimal(0)
    return (row.symbol, row.side, row.quantity, row.price) == (
        order.symbol,
        order.side,
        order.quantity,
        price,
    )


def _within(row: InquiryRow, window: LookupWindow, slack: timedelta) -> bool:
    if row.ordered_at is None:
        return True  # cannot be ruled out
    return window.start - slack <= row.ordered_at <= window.end + slack


def _matches(order: Order, row: InquiryRow, window: LookupWindow) -> bool:
    return _same_intent(order, row) and _within(row, window, TIME_SLACK)


def _near_miss(order: Order, rows: Sequence[InquiryRow]) -> CannotTell:
    row = rows[0]
    assert row.ordered_at is not None  # a row without a time always matches
    stamp = row.ordered_at.astimezone(KST).strftime("%H:%M:%S")
    return CannotTell(
        f"KIS order {row.broker_order_id} ({order.side.value} {order.quantity} {order.symbol}, "
        f"placed {stamp} KST) lies just outside the send window: it is this order if this "
        f"machine's clock is off KIS's by a few seconds, so the lookup cannot tell"
    )


@attrs.frozen
class Owned:
    """The KIS order numbers journal orders own, and when those orders were sent to get them:
    a number need not name one KIS order across days, so it is owned on the KST days of its
    owners' sends (on every day when the journal could not say)."""

    numbers: frozenset[str]
    windows: Mapping[str, tuple[LookupWindow, ...]] = attrs.field(factory=dict)

    def owns(self, row: InquiryRow, day: date | None) -> bool:
        """Whether ``row`` (of KST ``day``, if known) is an order a journal order owns."""
        if row.broker_order_id not in self.numbers:
            return False
        sends = self.windows.get(row.broker_order_id)
        if not sends or day is None:
            return True
        return any(kst_day(sent.start) <= day <= kst_day(sent.end) for sent in sends)


def match_orders(
    orders: Iterable[Order],
    windows: Mapping[str, LookupWindow],
    rows: Iterable[InquiryRow],
    owned: Owned | frozenset[str],
    span: tuple[date, date] | None = None,
) -> dict[str, LookupResult]:
    """Match journal orders to KIS orders by intent and time; a KIS order two unresolved
    orders could own settles neither, and no KIS order is given to two orders. A KIS order a
    journal order owns (on its owners' days: ``owned``) is no candidate. ``span``: the first
    and last day the inquiry asked for (a row naming no day is of that day when it is one)."""
    if not isinstance(owned, Owned):
        owned = Owned(frozenset(owned))
    all_rows = list(rows)
    first, last = span if span is not None else (None, None)
    cancels: dict[tuple[date | None, str], list[InquiryRow]] = collections.defaultdict(list)
    for row in all_rows:
        if row.is_cancel_order:
            cancels[row_day(row, first, last), row.original_order_id].append(row)
    free = [
        r for r in all_rows if not r.is_cancel_order and not owned.owns(r, row_day(r, first, last))
    ]
    orders = list(orders)
    candidates = {o.id: [r for r in free if _matches(o, r, windows[o.id])] for o in orders}
    claims = collections.Counter(r.broker_order_id for rs in candidates.values() for r in rs)
    results: dict[str, LookupResult] = {}
    for order in orders:
        found = candidates[order.id]
        # A KIS order near the window that an order of this batch matches is explained by it.
        near = [
            r
            for r in free
            if r.broker_order_id not in claims
            and _same_intent(order, r)
            and _within(r, windows[order.id], CLOCK_SKEW)
        ]
        if not found and near:
            results[order.id] = _near_miss(order, near)
        elif not found:
            results[order.id] = Absent()
        elif len(found) > 1:
            results[order.id] = CannotTell(
                f"{len(found)} KIS orders match {order.side.value} {order.quantity} "
                f"{order.symbol}: " + ", ".join(r.broker_order_id for r in found)
            )
        elif claims[found[0].broker_order_id] > 1:
            results[order.id] = CannotTell(
                f"KIS order {found[0].broker_order_id} matches "
                f"{claims[found[0].broker_order_id]} unresolved orders of the same intent"
            )
        else:
            row = found[0]
            try:
                own = cancels[row_day(row, first, last), row.broker_order_id]
                results[order.id] = Found(snapshot_from_row(row, own))
            except RowFormatError as error:
                results[order.id] = CannotTell(f"KIS order {row.broker_order_id}: {error}")
    return results
