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
from collections.abc import (
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from orderlane import Absent, CannotTell, Found, LookupWindow, Order, OrderSnapshot, RequestKind
from orderlane.contract import BrokerContext, LookupResult
from orderlane.model import OrderType
from orderlane_kis.errors import answer_error
from orderlane_kis.http import KisHttp
from orderlane_kis.krx import kst_day
from orderlane_kis.parsing import KST, InquiryRow, RowFormatError, parse_row, snapshot_from_row

__all__ = [
    "INQUIRY_PATH",
    "DailyOrders",
    "Owned",
    "inquiry_params",
    "match_orders",
    "order_day",
]

log = logging.getLogger("orderlane.kis.inquiry")

INQUIRY_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
INQUIRY_TR = {"live": "TTTC0081R", "paper": "VTTC0081R"}
#: How far a KIS order time may sit outside an order's send window and still match it: KIS
#: stamps whole seconds, with its own clock.
TIME_SLACK = timedelta(seconds=2)
#: How far apart this machine's clock and KIS's may be. An unowned KIS order of the same intent
#: this close to the send window (but outside TIME_SLACK) may be the order itself seen through
#: a clock that is off: the lookup cannot tell, rather than call the order absent and have it
#: sent twice.
CLOCK_SKEW = timedelta(seconds=60)


def order_day(order: Order) -> date:
    """The KST day ``order`` was first sent (created, if it never was)."""
    return kst_day(order.submitted_at or order.created_at)


def order_days(order: Order) -> tuple[date, date]:
    """The first and last KST day ``order``'s KIS number may belong to: the day of its one
    send, or, for an order sent more than once, every day from its first send to its last
    change (the send that got its number may have been any of them)."""
    first = order_day(order)
    if order.attempts <= 1:
        return first, first
    return first, max(first, kst_day(order.updated_at))


def row_day(row: InquiryRow, first: date | None, last: date | None) -> date | None:
    """The KST day of ``row``'s order (its ``ord_dt``), or, when KIS named none, the day an
    inquiry of one day (``first`` to ``last``) asked for; None when it cannot be known."""
    if row.order_date is not None:
        return row.order_date
    if row.ordered_at is not None:
        return kst_day(row.ordered_at)
    return first if first is not None and first == last else None


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
        #: KIS order number -> why its latest row did not parse.
        self.malformed: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"DailyOrders(pages={self.pages})"

    async def pages_of(
        self, ctx: BrokerContext, first: date, last: date, *, odno: str = ""
    ) -> AsyncIterator[list[InquiryRow]]:
        """The rows of each page, newest first; a malformed row is logged and left out."""
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
            yield self._rows(answer.body.get("output1"))
            asked = (fk, nk)
            fk = str(answer.body.get("ctx_area_fk100") or "").strip()
            nk = str(answer.body.get("ctx_area_nk100") or "").strip()
            if not answer.more or not (fk or nk):
                return
            if (fk, nk) == asked:
                # KIS says there is more but hands back the keys it was asked with: the next
                # request would be this one again, forever (a permit each). Stop; the next
                # poll reads the inquiry afresh.
                log.warning(
                    "daily inquiry: page %d says more follows but repeats its continuation "
                    "keys; the pass ends here",
                    page,
                )
                return

    def _rows(self, raw: object) -> list[InquiryRow]:
        if raw is None or raw == "":
            return []
        if not isinstance(raw, list):
            log.warning("daily inquiry: output1 is a %s, not a list; page ignored", type(raw))
            return []
        rows = []
        for item in raw:
            try:
                row = parse_row(item)
            except RowFormatError as error:
                odno = item.get("odno") if isinstance(item, Mapping) else None
                log.warning("daily inquiry: row of order %s left out: %s", odno, error)
                if odno:
                    self.malformed[str(odno).strip()] = str(error)
                continue
            if row.branch and not row.is_cancel_order:
                self.branches[row.broker_order_id] = row.branch
            rows.append(row)
        return rows

    async def statuses(
        self, ctx: BrokerContext, orders: Sequence[Order]
    ) -> dict[str, OrderSnapshot]:
        """Snapshots by ``order.id`` (newest first, so a cancel row, being newer than its
        order, is seen before the order).

        A row answers for the order of its number sent on the row's day (``ord_dt``): KIS does
        not promise that a number names one order across days, and a pass that spans
        yesterday and today may show a today's order of the same number first. Where rows of
        several days could be an order's (it was sent again on a later day), the one of its
        intent is; a row that could be two asked orders' answers for neither. Paging stops
        once every order sent on one day only has its row."""
        asked = [(o, order_days(o)) for o in orders if o.broker_order_id]
        if not asked:
            return {}
        last = kst_day(ctx.clock.now())
        first = min(min(days[0] for _o, days in asked), last)
        by_number: dict[str, list[tuple[Order, tuple[date, date]]]] = collections.defaultdict(list)
        for order, days in asked:
            by_number[str(order.broker_order_id)].append((order, days))
        settled_by_one_row = all(days[0] == days[1] for _o, days in asked)
        cancels: dict[tuple[date | None, str], list[InquiryRow]] = collections.defaultdict(list)
        candidates: dict[str, list[tuple[InquiryRow, date]]] = collections.defaultdict(list)
        odno = next(iter(by_number)) if len(by_number) == 1 else ""
        self.malformed.clear()
        async for page in self.pages_of(ctx, first, last, odno=odno):
            for row in page:
                day = row_day(row, first, last)
                if row.is_cancel_order:
                    cancels[day, row.original_order_id].append(row)
                    continue
                owners = by_number.get(row.broker_order_id, ())
                if owners and day is None:
                    log.warning(
                        "daily inquiry: the row of KIS order %s names no day it reads as "
                        "(ord_dt), so it cannot be told from another day's order of that "
                        "number; nothing booked from it",
                        row.broker_order_id,
                    )
                    continue
                for order, (since, until) in owners:
                    if day is not None and since <= day <= until:
                        candidates[order.id].append((row, day))
            if settled_by_one_row and len(candidates) == len(asked):
                break
        found = self._answers(asked, candidates, cancels)
        for order, _days in asked:
            why = self.malformed.get(str(order.broker_order_id))
            if why is not None and order.id not in found:
                log.error(
                    "order %s: KIS's answer for %s does not parse (%s); nothing booked from it",
                    order.id,
                    order.broker_order_id,
                    why,
                )
        return found

    @staticmethod
    def _answers(
        asked: Sequence[tuple[Order, tuple[date, date]]],
        candidates: Mapping[str, Sequence[tuple[InquiryRow, date]]],
        cancels: Mapping[tuple[date | None, str], Sequence[InquiryRow]],
    ) -> dict[str, OrderSnapshot]:
        """Each asked order's one row, made a snapshot with the cancels of its day."""
        chosen: dict[str, tuple[InquiryRow, date]] = {}
        for order, _days in asked:
            rows = list(candidates.get(order.id, ()))
            if len(rows) > 1:
                rows = [(row, day) for row, day in rows if _same_intent(order, row)]
            if len(rows) == 1:
                chosen[order.id] = rows[0]
            elif rows:
                log.error(
                    "order %s: %d KIS orders numbered %s on the days it may have been sent "
                    "(%s) match it; nothing booked from them",
                    order.id,
                    len(rows),
                    order.broker_order_id,
                    ", ".join(day.isoformat() for _row, day in rows),
                )
        claims = collections.Counter((day, row.broker_order_id) for row, day in chosen.values())
        found: dict[str, OrderSnapshot] = {}
        for order_id, (row, day) in chosen.items():
            if claims[day, row.broker_order_id] > 1:
                log.error(
                    "order %s: KIS order %s of %s could be the answer of %d orders; nothing "
                    "booked from it",
                    order_id,
                    row.broker_order_id,
                    day.isoformat(),
                    claims[day, row.broker_order_id],
                )
                continue
            try:
                found[order_id] = snapshot_from_row(
                    row, cancels.get((day, row.broker_order_id), ())
                )
            except RowFormatError as error:
                log.warning("daily inquiry: order %s left out: %s", row.broker_order_id, error)
        return found

    async def rows_between(self, ctx: BrokerContext, start: datetime) -> list[InquiryRow]:
        """Every row from ``start``'s KST day to today (one full paged pass)."""
        now = ctx.clock.now()
        rows: list[InquiryRow] = []
        async for page in self.pages_of(ctx, min(kst_day(start), kst_day(now)), kst_day(now)):
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
        """Look every order up in one pass over the day's orders."""
        if not orders:
            return {}
        latest = max(_sent(o, windows[o.id], last_sent) for o in orders)
        wait = (latest + lag - ctx.clock.now()).total_seconds()
        if wait > 0:
            # KIS's inquiry may not show an order sent within its lag: wait that out first.
            await ctx.clock.sleep(wait)
        start = min(w.start for w in windows.values())
        self.malformed.clear()
        rows = await self.rows_between(ctx, start)
        today = kst_day(ctx.clock.now())
        results = match_orders(orders, windows, rows, owned, (min(kst_day(start), today), today))
        if self.malformed:
            # A row that does not parse may be the very order: it is not proven absent.
            unread = ", ".join(sorted(self.malformed))
            for order_id, result in results.items():
                if isinstance(result, Absent):
                    results[order_id] = CannotTell(
                        f"KIS's answer holds rows that do not parse (orders {unread}): one of "
                        "them may be this order"
                    )
        return results


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


@attrs.define
class Owned:
    """The KIS order numbers journal orders own, and when those orders may have been sent to
    get them: a number need not name one KIS order across days, so it is owned on the KST days
    of its owners' send windows (on every day when the journal could not say)."""

    numbers: frozenset[str]
    windows: Mapping[str, tuple[LookupWindow, ...]] = attrs.field(factory=dict)
    _days: dict[str, frozenset[date] | None] = attrs.field(factory=dict, init=False)

    def days(self, number: str) -> frozenset[date] | None:
        """The KST days ``number`` is owned on; None: every day."""
        if number not in self._days:
            spans = self.windows.get(number)
            self._days[number] = None if not spans else frozenset(_days_of(spans))
        return self._days[number]

    def owns(self, row: InquiryRow, day: date | None) -> bool:
        """Whether ``row`` (of KST ``day``, if known) is an order a journal order owns."""
        if row.broker_order_id not in self.numbers:
            return False
        days = self.days(row.broker_order_id)
        return days is None or day is None or day in days


def _days_of(windows: Iterable[LookupWindow]) -> Iterator[date]:
    for window in windows:
        day, last = kst_day(window.start), kst_day(window.end)
        while day <= last:
            yield day
            day += timedelta(days=1)


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
