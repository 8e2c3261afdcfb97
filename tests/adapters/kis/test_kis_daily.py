"""What the KIS adapter remembers per order is kept for its trading day (orderlane_kis.daily):
an engine that runs for weeks holds at most two days of orders, and a running total from the
notices never carries over to another day's order of the same KIS order number. A running total
an inquiry raised after a gap never adds a notice that inquiry may already have counted, and an
engine on the fake venue, with the notice held on its way past the gap poll, books it once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from kis.kis_engines import adapter_and_engine, options
from orderlane import (
    CannotTell,
    Engine,
    EngineConfig,
    FakeClock,
    LookupWindow,
    NothingToCancel,
    Order,
    OrderSnapshot,
    OrderStatus,
    Position,
    Side,
    Signal,
    StreamGap,
)
from orderlane_kis.adapter import KisAdapter, create_paper_adapter
from orderlane_kis.daily import DayMap, TradingDay
from orderlane_kis.fake import FakeKisVenue
from orderlane_kis.notices import RunningTotals
from orderlane_kis.parsing import Notice

DAY = timedelta(days=1)


class Calendar:
    def __init__(self) -> None:
        self.day = date(2026, 1, 5)

    def __call__(self) -> date:
        return self.day


def test_a_day_map_keeps_today_and_reads_yesterday() -> None:
    calendar = Calendar()
    entries: DayMap[str, int] = DayMap(calendar)
    entries["a"] = 1
    entries["b"] = 2
    calendar.day += DAY
    entries["b"] = 20  # today's entry hides yesterday's
    entries["c"] = 3

    assert (entries["a"], entries["b"], entries["c"]) == (1, 20, 3)
    assert sorted(entries) == ["a", "b", "c"]
    assert len(entries) == 3
    assert entries.get("zzz") is None
    del entries["c"]
    assert "c" not in entries
    assert entries.pop("a") == 1, "yesterday's entry is removed like today's"
    assert entries.pop("a", None) is None

    calendar.day += DAY
    assert dict(entries) == {"b": 20}, "the day before yesterday is gone"
    entries.clear()
    assert len(entries) == 0
    calendar.day += 3 * DAY
    assert len(entries) == 0, "after a long weekend nothing is left"
    entries["d"] = 4
    calendar.day -= DAY  # a clock set back: nothing of the other day is trusted
    assert len(entries) == 0


def test_without_yesterday_a_day_map_reads_today_only() -> None:
    calendar = Calendar()
    entries: DayMap[str, int] = DayMap(calendar, keep_yesterday=False)
    entries["a"] = 1
    calendar.day += DAY
    assert "a" not in entries
    assert repr(entries) == "DayMap(day=2026-01-06, today=0, yesterday=1)"


def notice(odno: str, quantity: int, price: int, order_quantity: int) -> Notice:
    return Notice(
        broker_order_id=odno,
        original_order_id="",
        symbol="005930",
        side=Side.BUY,
        is_fill=True,
        refused=False,
        accept_code="2",
        quantity=quantity,
        price=Decimal(price),
        order_quantity=order_quantity,
        at="100000",
    )


def test_a_running_total_does_not_carry_over_to_the_next_days_order_of_that_number() -> None:
    calendar = Calendar()
    totals = RunningTotals(calendar)
    first = totals.add(notice("0000031001", 10, 71000, 10))
    calendar.day += DAY
    second = totals.add(notice("0000031001", 4, 70000, 10))  # another order, the same number

    assert (first.status, first.filled_quantity) == (OrderStatus.FILLED, 10)
    assert (second.status, second.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)
    assert second.filled_notional == Decimal(280000)
    assert len(totals) == 1


def notice_at(at: str, quantity: int) -> Notice:
    return attrs.evolve(notice("0000031001", quantity, 70000, 10), at=at)


def test_a_notice_the_gap_inquiry_already_counted_is_not_added_again() -> None:
    """The stream reconnected; the gap poll's inquiry, answered at 10:00:05 KST, says 7
    executed: 4 the notices told, and 3 executed at 10:00:04 whose notice was still on its way.
    Adding that notice would make 10, a fill that never happened: it asks for another poll
    instead. A notice of an execution clearly later than the answer adds as usual."""
    totals = RunningTotals(Calendar())
    assert isinstance(totals.add(notice_at("095950", 4)), OrderSnapshot)
    answered = datetime(2026, 1, 5, 1, 0, 5, tzinfo=UTC)  # 10:00:05 KST
    totals.resync_pending = True  # the stream reconnected
    totals.resync([snapshot(7)], answered)

    in_flight = totals.add(notice_at("100004", 3))
    within_margin = totals.add(notice_at("100007", 1))  # the clocks may be 2 s apart
    assert isinstance(in_flight, StreamGap)
    assert isinstance(within_margin, StreamGap)
    assert totals.held_back == 2

    totals.resync([snapshot(8)], answered + timedelta(seconds=10))  # the poll counted the 1
    assert isinstance(totals.add(notice_at("100016", 1)), StreamGap), "inside the new margin"
    totals.resync([snapshot(9)], answered + timedelta(seconds=20))
    later = totals.add(notice_at("100028", 1))
    assert isinstance(later, OrderSnapshot)
    assert (later.filled_quantity, later.status) == (10, OrderStatus.FILLED)


def test_an_inquiry_that_raises_nothing_leaves_the_doubt_to_the_notices() -> None:
    """A raise counted 3 executed at 10:00:04 whose notice is still on its way; a second
    inquiry, answered before that notice arrives, raises nothing. The notice must still not be
    added (10 for 7 executed); the first notice of a clearly later execution ends the doubt."""
    totals = RunningTotals(Calendar())
    assert isinstance(totals.add(notice_at("095950", 4)), OrderSnapshot)
    answered = datetime(2026, 1, 5, 1, 0, 5, tzinfo=UTC)  # 10:00:05 KST
    totals.resync_pending = True
    totals.resync([snapshot(7)], answered)
    totals.resync_pending = True
    totals.resync([snapshot(7)], answered + timedelta(seconds=30))  # raises nothing
    in_flight = totals.add(notice_at("100004", 3))
    later = totals.add(notice_at("100010", 2))
    malformed = totals.add(notice_at("", 1))  # after a later one: no doubt left
    assert isinstance(in_flight, StreamGap)
    assert isinstance(later, OrderSnapshot)
    assert isinstance(malformed, OrderSnapshot)
    assert (later.filled_quantity, malformed.filled_quantity) == (9, 10)
    assert totals.held_back == 1


def test_a_lagging_poll_is_made_good_by_the_next_one() -> None:
    """A poll whose figure lags raises nothing; a held-back execution is counted by the next
    poll whose figure has it (any poll, not only one after a gap)."""
    totals = RunningTotals(Calendar())
    answered = datetime(2026, 1, 5, 1, 0, 0, tzinfo=UTC)
    totals.resync_pending = True
    totals.resync([snapshot(4)], answered)
    assert isinstance(totals.add(notice_at("100001", 3)), StreamGap)  # 7 executed in truth
    totals.resync([snapshot(4)], answered + timedelta(seconds=1))  # a stale row: 4
    totals.resync([snapshot(7)], answered + timedelta(seconds=30))  # the safety poll
    assert isinstance(totals.add(notice_at("100031", 1)), StreamGap), "inside the margin"
    after = totals.add(notice_at("100040", 3))
    assert isinstance(after, OrderSnapshot)
    assert after.filled_quantity == 10


def test_without_a_gap_an_inquiry_ahead_of_the_notices_changes_nothing() -> None:
    """A safety poll reads 7 while the notice of the last 3 is on its way: the notices alone
    make the total (the notice adds once when it comes), no notice is held back, and no poll
    is asked for."""
    totals = RunningTotals(Calendar())
    assert isinstance(totals.add(notice_at("100000", 4)), OrderSnapshot)
    totals.resync([snapshot(7)], datetime(2026, 1, 5, 1, 0, 5, tzinfo=UTC))
    arrived = totals.add(notice_at("100004", 3))
    assert isinstance(arrived, OrderSnapshot)
    assert arrived.filled_quantity == 7
    assert totals.held_back == 0


def test_a_notice_lost_in_a_gap_is_counted_by_a_later_poll_though_others_hid_it() -> None:
    """The notice of 3 executed at 10:00:01 is lost in a reconnect; the notice of 3 more,
    executed after the gap poll read the order (7), arrives before that poll's answer and
    makes the total 7 as well. The poll raises nothing, but the lost 3 are counted by the next
    poll whose figure is higher."""
    totals = RunningTotals(Calendar())
    totals.add(notice_at("095950", 4))
    totals.resync_pending = True  # reconnect: the notice of 10:00:01 is lost
    totals.add(notice_at("100004", 3))
    totals.resync([snapshot(7)], datetime(2026, 1, 5, 1, 0, 5, tzinfo=UTC))
    assert totals.add(notice_at("100030", 1)).filled_quantity == 8  # type: ignore[union-attr]
    totals.resync([snapshot(11)], datetime(2026, 1, 5, 1, 0, 40, tzinfo=UTC))  # safety poll
    after = totals.add(notice_at("100050", 1))
    assert isinstance(after, OrderSnapshot)
    assert after.filled_quantity == 12


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (real time, 3 s at most: frames on their way over
    loopback)."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)


async def stored_when(engine: Engine, order_id: str, done: Callable[[Order], bool]) -> Order:
    """The order as the journal holds it once ``done`` says so (or after 3 s of real time)."""
    for _ in range(300):
        stored = await engine.get_order(order_id)
        if stored is not None and done(stored):
            return stored
        await asyncio.sleep(0.01)
    stored = await engine.get_order(order_id)
    assert stored is not None
    return stored


async def gap_poll_at_seven(
    paper: FakeKisVenue, engine: Engine, adapter: KisAdapter
) -> tuple[Order, datetime]:
    """An order of 10 filled 4 through its notice; the notice stream drops and, meanwhile, 3
    more execute at 70,300 whose notice is held at the venue (on its way); the stream is back
    and the engine's gap poll reads the order at 7. The order as booked, and the time once the
    poll was answered."""
    await engine.tracker.start(poll=False)  # push; the polls are the test's own
    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    order = await engine.execute(resting)
    assert order.broker_order_id is not None
    paper.fill(order.broker_order_id, 4, 71000)
    first = await stored_when(engine, order.id, lambda o: o.filled_quantity >= 4)
    assert first.filled_quantity == 4
    paper.hold_notices()
    paper.disconnect_notices()
    paper.fill(order.broker_order_id, 3, 70300)
    await until(lambda: adapter.notices.connections == 2)
    assert adapter.notices.connections == 2, "the stream is back"
    await engine.tracker.poll_once()  # the gap poll
    polled = await engine.get_order(order.id)
    assert polled is not None
    assert polled.filled_quantity == 7
    return polled, paper.clock.now()


async def after_the_asked_poll(engine: Engine, order_id: str) -> tuple[Order, Any, Position]:
    """The poll a held-back notice asked for, then the order, its fills and its position."""
    await engine.tracker.poll_once()
    stored = await engine.get_order(order_id)
    assert stored is not None
    return stored, await engine.fills(order_id), await engine.position(stored.symbol)


async def test_a_fill_notice_on_its_way_during_the_gap_poll_is_booked_once(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """The gap poll's figure (7) already counts the 3 whose notice was on its way; the notice
    arrives after the poll's answer and must not be added on top (10 for 7 executed). The
    engine keeps 7 at the average of both executions, and so do its fills and position."""
    hts = paper.credentials.hts_id
    adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts)
    await engine.start()
    try:
        order, _ = await gap_poll_at_seven(paper, engine, adapter)
        released = paper.release_notices()
        # A later notice on the same stream: once it is booked, the released one was read.
        marker = await engine.execute(Signal("000660", "BUY", 1))
        await stored_when(engine, marker.id, lambda o: o.status is OrderStatus.FILLED)
        after_notice = await engine.get_order(order.id)
        stored, fills, position = await after_the_asked_poll(engine, order.id)
    finally:
        await engine.close()
    assert released == 1
    assert after_notice is not None
    assert stored is not None
    assert after_notice.filled_quantity == 7, "the notice was added to the poll's figure"
    assert (stored.filled_quantity, stored.status) == (7, OrderStatus.PARTIALLY_FILLED)
    assert stored.average_fill_price == Decimal(70700)  # (4 x 71,000 + 3 x 70,300) / 7
    assert [(f.quantity, f.price) for f in fills] == [(4, Decimal(71000)), (3, Decimal(70300))]
    assert (position.quantity, position.average_price) == (7, Decimal(70700))
    assert paper.orders()[0]["filled"] == 7
    assert adapter.totals.held_back == 1


async def test_a_held_notice_of_an_execution_after_the_gap_poll_is_booked(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Behind the notice the gap poll counted comes one of 2 more executed 5 s after the poll's
    answer (clearly later, beyond KIS's 2 s of clock margin): that one is a fill the poll
    could not have counted, and it is booked (9), while the one before it is still not."""
    hts = paper.credentials.hts_id
    adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts)
    await engine.start()
    try:
        order, answered_at = await gap_poll_at_seven(paper, engine, adapter)
        assert order.broker_order_id is not None
        clock.advance(5)
        paper.fill(order.broker_order_id, 2, 70700)
        executed_at = paper.clock.now()
        released = paper.release_notices()
        booked = await stored_when(engine, order.id, lambda o: o.filled_quantity > 7)
        stored, fills, position = await after_the_asked_poll(engine, order.id)
    finally:
        await engine.close()
    assert released == 2
    assert executed_at - answered_at > timedelta(seconds=2), "beyond KIS's clock margin"
    assert stored is not None
    assert booked.filled_quantity == 9, "the later execution's notice was booked"
    assert (stored.filled_quantity, stored.status) == (9, OrderStatus.PARTIALLY_FILLED)
    assert stored.average_fill_price == Decimal(70700)  # (4 x 71,000 + 3 x 70,300 + 2 x 70,700)/9
    assert [(f.quantity, f.price) for f in fills] == [
        (4, Decimal(71000)),
        (3, Decimal(70300)),
        (2, Decimal(70700)),
    ]
    assert (position.quantity, position.average_price) == (9, Decimal(70700))
    assert paper.orders()[0]["filled"] == 9
    assert adapter.totals.held_back == 1, "only the notice the poll had counted"


def snapshot(quantity: int) -> OrderSnapshot:
    return OrderSnapshot(
        status=OrderStatus.PARTIALLY_FILLED,
        broker_order_id="0000031001",
        filled_quantity=quantity,
        filled_notional=Decimal(70000 * quantity),
    )


def test_the_trading_day_is_the_date_in_korea_by_the_engines_clock() -> None:
    today = TradingDay()
    clock = FakeClock()  # 2026-01-05 00:00 UTC: 09:00 in Seoul
    today.clock = clock
    assert today() == date(2026, 1, 5)
    clock.advance(15 * 3600)  # 15:00 UTC: midnight in Seoul
    assert today() == date(2026, 1, 6)


async def test_an_engine_running_for_days_keeps_two_days_of_orders_at_most(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    await engine.start()
    try:
        monday = await engine.execute(Signal("005930", "BUY", 1))
        assert monday.broker_order_id is not None
        assert monday.broker_order_id in adapter.branches
        assert (len(adapter.branches), len(adapter._sent)) == (1, 1)

        clock.advance(2 * 86400)  # Wednesday, 09:00 in Seoul
        assert (len(adapter.branches), len(adapter._sent)) == (0, 0)
        wednesday = await engine.execute(Signal("000660", "BUY", 1))
    finally:
        await engine.close()

    assert wednesday.status in (OrderStatus.SUBMITTED, OrderStatus.FILLED), wednesday.reason
    assert wednesday.broker_order_id in adapter.branches
    assert monday.broker_order_id not in adapter.branches
    assert (len(adapter.branches), len(adapter._sent)) == (1, 1)


async def test_a_poll_of_yesterdays_order_starts_no_running_total_today(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Recovery or the tracker the next morning polls yesterday's open orders after the notice
    stream's resubscription: their totals must not be taken into today's, where a new order
    may carry the same KIS order number and would count on from them."""
    adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    await engine.start()
    try:
        monday = await engine.execute(resting)
        assert monday.broker_order_id is not None
        paper.fill(monday.broker_order_id, 4, 71000)
        adapter.totals.resync_pending = True  # as after the stream's (re)subscription
        today = await engine.broker.order_statuses([monday])
        assert today[monday.id].filled_quantity == 4
        assert len(adapter.totals) == 1, "Monday's own order is counted on Monday"

        clock.advance(86400)  # Tuesday morning
        adapter.totals.resync_pending = True
        tuesday = await engine.broker.order_statuses([monday])
    finally:
        await engine.close()

    assert tuesday[monday.id].filled_quantity == 4, "the poll itself still answers"
    assert len(adapter.totals) == 0, "no total of Monday's order under Tuesday's numbers"


def inquiry_row(
    odno: str,
    day: str,
    side: str,
    quantity: int,
    filled: int,
    price: int,
    at: str = "093000",
) -> dict[str, str]:
    """One ``output1`` row as KIS lays it out (the fields the adapter reads)."""
    return {
        "ord_dt": day,
        "ord_gno_brno": "06010",
        "odno": odno,
        "orgn_odno": "",
        "sll_buy_dvsn_cd": side,
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "ord_qty": str(quantity),
        "ord_unpr": str(price),
        "ord_tmd": at,
        "tot_ccld_qty": str(filled),
        "avg_prvs": str(price if filled else 0),
        "cncl_yn": "N",
        "tot_ccld_amt": str(price * filled),
        "cnc_cfrm_qty": "0",
        "rmn_qty": str(quantity - filled),
        "rjct_qty": "0",
    }


def inquiry_answer(rows: list[dict[str, str]]) -> bytes:
    return json.dumps(
        {
            "rt_cd": "0",
            "msg_cd": "KIOK0460",
            "msg1": "조회 되었습니다.(마지막 자료)",
            "ctx_area_fk100": "",
            "ctx_area_nk100": "",
            "output1": rows,
            "output2": {},
        }
    ).encode()


async def test_a_poll_the_next_morning_is_not_answered_by_todays_order_of_that_number(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """An order number need not name one order across days: each inquiry row names its day
    (``ord_dt``). The poll of yesterday's open order spans yesterday and today, newest first,
    so a today's order that carries the same number comes first; it must not answer for
    yesterday's order (its fills would be booked on the wrong order)."""
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    await engine.start()
    try:
        monday = await engine.execute(resting)
        assert monday.broker_order_id is not None
        number = monday.broker_order_id
        clock.advance(86400)  # Tuesday morning
        paper.add_raw_answer(
            "inquiry",
            inquiry_answer(
                [
                    inquiry_row(number, "20260106", "01", 3, 3, 72000),  # Tuesday's sell
                    inquiry_row(number, "20260105", "02", 10, 4, 71000),  # Monday's buy
                ]
            ),
        )
        answered = await engine.broker.order_statuses([monday])
        paper.add_raw_answer(
            "inquiry", inquiry_answer([inquiry_row(number, "20260106", "01", 3, 3, 72000)])
        )
        unseen = await engine.broker.order_statuses([monday])
    finally:
        await engine.close()

    snapshot = answered[monday.id]
    # Monday's order is answered by Monday's row; what was left of it lapsed with its day.
    assert (snapshot.status, snapshot.filled_quantity) == (OrderStatus.CANCELLED, 4)
    assert snapshot.filled_notional == Decimal(4 * 71000)
    assert monday.id not in unseen, "Tuesday's order alone answers nothing for Monday's"


async def test_a_lookup_finds_todays_order_under_a_number_an_order_of_yesterday_owns(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Journal orders own their KIS numbers on the day they were sent only. On a venue that
    numbers each day's orders afresh, the send of Tuesday's order goes unanswered and the
    lookup finds it under the number Monday's order of the same instrument also had: it is
    found, not called absent (which would fail an order that stands at KIS)."""
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    paper.set_daily_numbers()
    resting = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(71000))
    await engine.start()
    try:
        monday = await engine.execute(resting)
        clock.advance(86400)  # Tuesday morning
        paper.add_fault("drop_after", "place")  # KIS takes the order; the answer is lost
        tuesday = await engine.execute(resting)
    finally:
        await engine.close()

    tuesdays = paper.orders()  # the venue's orders by today's numbers
    assert len(tuesdays) == 1, f"Tuesday's order was sent twice: {tuesdays}"
    assert monday.broker_order_id is not None
    assert tuesday.status is OrderStatus.SUBMITTED, tuesday.reason
    assert tuesday.broker_order_id == monday.broker_order_id == tuesdays[0]["odno"]


# ------------------------------------------------------------------ sent again on a later day

LIMIT_BUY = Signal("005930", "BUY", 10, order_type="LIMIT", limit_price=Decimal(70000))
#: Recovery sends an order the broker never got again, even a day after its first send (an
#: order within its timeout: here three days).
SEND_AGAIN: dict[str, Any] = {"resubmit_after_crash": True, "order_timeout": 3 * 86400.0}
#: Orders stay open (not timed out) across days.
OPEN_FOR_DAYS: dict[str, Any] = {"order_timeout": 3 * 86400.0}


def engine_on(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, **config: Any
) -> Engine:
    """An engine (not started) on a fresh paper adapter, as after a restart."""
    return Engine(
        create_paper_adapter(options(venue, cache)),
        clock=clock,
        database_url=url,
        config=EngineConfig(load_entry_point_plugins=False, **config),
    )


async def lost_overnight(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, count: int = 1
) -> list[Order]:
    """``count`` orders whose sends on Monday never reached KIS and whose lookups could not
    tell (every inquiry failed): UNKNOWN without a KIS number, overnight. Then Tuesday."""
    monday = engine_on(venue, clock, url, cache)
    await monday.start()
    try:
        venue.add_fault("drop_before", "place", times=count)
        venue.add_fault("http_error", "inquiry", times=1000)
        lost = list(await asyncio.gather(*(monday.execute(LIMIT_BUY) for _ in range(count))))
    finally:
        await monday.close()
    venue.clear_faults()
    assert [(o.status, o.broker_order_id) for o in lost] == [(OrderStatus.UNKNOWN, None)] * count
    clock.advance(86400)  # Tuesday morning
    return lost


MARKET_BUY = Signal("005930", "BUY", 10)


async def resent_under_mondays_number(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, monday: Signal
) -> tuple[Order, Engine, Order]:
    """On a venue that numbers each day afresh: ``monday``'s order takes Monday's first
    number, then an order is lost overnight; on Tuesday recovery sends it again and it gets
    that number too. Monday's order, the Tuesday engine (started: the caller closes it) and
    the order sent again."""
    venue.set_daily_numbers()
    first_day = engine_on(venue, clock, url, cache)
    await first_day.start()
    try:
        first = await first_day.execute(monday)
    finally:
        await first_day.close()
    clock.advance(1)
    [lost] = await lost_overnight(venue, clock, url, cache)
    tuesday = engine_on(venue, clock, url, cache, **SEND_AGAIN)
    await tuesday.start()
    resent = await tuesday.get_order(lost.id)
    assert resent is not None
    assert resent.broker_order_id == first.broker_order_id, "Tuesday's number is Monday's"
    return first, tuesday, resent


async def test_an_order_sent_again_the_next_day_is_answered_by_that_days_order(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Recovery sends Monday's lost order again on Tuesday, where it gets the number Monday's
    filled order had: the poll answers for it with Tuesday's row (resting, unfilled), not
    with Monday's filled one."""
    args = (paper, clock, sqlite_url, tmp_path)
    _filled, tuesday, resent = await resent_under_mondays_number(*args, MARKET_BUY)
    try:
        answers = await tuesday.broker.order_statuses([resent])
        await tuesday.tracker.poll_once()
        after = await tuesday.get_order(resent.id)
        position = await tuesday.position("005930")
    finally:
        await tuesday.close()
    answer = answers[resent.id]
    assert (answer.status, answer.filled_quantity) == (OrderStatus.SUBMITTED, 0)
    assert after is not None
    assert after.filled_quantity == 0
    assert position.quantity == 10, "Monday's fill is booked once, on Monday's order"


async def test_fills_of_an_order_sent_again_the_next_day_are_booked(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    [lost] = await lost_overnight(paper, clock, sqlite_url, tmp_path)
    tuesday = engine_on(paper, clock, sqlite_url, tmp_path, **SEND_AGAIN)
    await tuesday.start()
    try:
        resent = await tuesday.get_order(lost.id)
        assert resent is not None
        assert resent.broker_order_id is not None
        assert resent.attempts == 2
        paper.fill(resent.broker_order_id, 10, 70000)
        clock.advance(5)
        await tuesday.tracker.poll_once()
        after = await tuesday.get_order(lost.id)
    finally:
        await tuesday.close()
    assert after is not None
    assert (after.status, after.filled_quantity) == (OrderStatus.FILLED, 10)


async def test_an_order_sent_again_owns_its_number_on_the_day_it_got_it(
    paper: FakeKisVenue, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    """Two lost orders of one intent are sent again on Tuesday; the first gets a number, the
    second's send is lost again. The second's lookup must not take the first's Tuesday order
    for its own (one KIS order, two journal orders, and the second never sent)."""
    first, second = await lost_overnight(paper, clock, database_url, tmp_path, count=2)
    paper.add_fault("delay", "place", seconds=0)  # the first send again goes through
    paper.add_fault("drop_before", "place")  # the second is lost before KIS again
    tuesday = engine_on(paper, clock, database_url, tmp_path, **SEND_AGAIN)
    await tuesday.start()
    try:
        again = [await tuesday.get_order(first.id), await tuesday.get_order(second.id)]
    finally:
        await tuesday.close()
    numbers = [order.broker_order_id for order in again if order is not None]
    at_venue = sorted(v["odno"] for v in paper.orders())
    assert len(set(numbers)) == len(numbers), f"two journal orders own one KIS order: {numbers}"
    assert sorted(n for n in numbers if n is not None) == at_venue


async def test_a_row_that_does_not_parse_is_no_proof_that_the_order_is_absent(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """The send's answer is lost, and the inquiry's row of the order does not parse: the
    lookup cannot tell (the order stays UNKNOWN, never sent again) until a later lookup reads
    the row."""
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    bad = inquiry_row("0000031001", "20260105", "99", 10, 0, 70000)  # no such side
    await engine.start()
    try:
        paper.add_fault("drop_after", "place")
        paper.add_raw_answer("inquiry", inquiry_answer([bad]))
        order = await engine.execute(LIMIT_BUY)
        sent = len(paper.orders())
        clock.advance(engine.config.lookup_interval)
        await engine.tracker.poll_once()
        later = await engine.get_order(order.id)
    finally:
        await engine.close()
    assert (order.status, sent) == (OrderStatus.UNKNOWN, 1), order.reason
    assert later is not None
    assert later.status is OrderStatus.SUBMITTED
    assert [later.broker_order_id] == [v["odno"] for v in paper.orders()]


async def test_an_owner_whose_stored_times_do_not_read_leaves_lookups_working(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path, caplog: Any
) -> None:
    """A stored time changed by hand to something that is no time: that owner's number is
    owned on every day, logged, and the instrument's lookups go on."""
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    await engine.start()
    try:
        old = await engine.execute(LIMIT_BUY)
        with sqlite3.connect(sa.engine.make_url(sqlite_url).database or "") as db:
            db.execute("UPDATE orders SET submitted_at = 'garbage' WHERE id = ?", (old.id,))
        clock.advance(60)
        paper.add_fault("drop_after", "place")  # KIS takes the order; the answer is lost
        lost = await engine.execute(
            Signal("005930", "BUY", 5, order_type="LIMIT", limit_price=Decimal(70000))
        )
    finally:
        await engine.close()
    assert lost.status is OrderStatus.SUBMITTED, lost.reason
    assert f"order {old.id}: its stored times do not read as times" in caplog.text


async def test_orders_of_one_intent_and_number_on_two_days_are_told_apart_by_day(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Monday's open order and the order sent again on Tuesday share intent and number: each
    is answered by the row of its own day (the order sent again counts from that send)."""
    args = (paper, clock, sqlite_url, tmp_path)
    resting, tuesday, resent = await resent_under_mondays_number(*args, LIMIT_BUY)
    try:
        assert resent.broker_order_id is not None
        paper.fill(resent.broker_order_id, 4, 70000)  # Tuesday's order, by today's number
        monday = await tuesday.get_order(resting.id)
        assert monday is not None
        answers = await tuesday.broker.order_statuses([monday, resent])
    finally:
        await tuesday.close()
    assert resent.attempts == 2
    assert answers[resent.id].filled_quantity == 4
    assert answers[monday.id].filled_quantity == 0


async def test_a_row_naming_no_day_in_a_poll_of_two_days_answers_nothing(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path, caplog: Any
) -> None:
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path)
    await engine.start()
    try:
        monday = await engine.execute(LIMIT_BUY)
        assert monday.broker_order_id is not None
        clock.advance(86400)
        dateless = {**inquiry_row(monday.broker_order_id, "", "02", 10, 4, 70000), "ord_dt": ""}
        paper.add_raw_answer("inquiry", inquiry_answer([dateless]))
        answers = await engine.broker.order_statuses([monday])
    finally:
        await engine.close()
    assert monday.id not in answers
    assert f"the row of KIS order {monday.broker_order_id} names no day" in caplog.text


async def test_a_notice_under_yesterdays_number_is_no_late_fill_of_yesterdays_order(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """On a venue numbering each day afresh, an engine running overnight ended Monday's order
    under a number (cancelled, 2 of 10 filled). On Tuesday a new order gets that number, and
    its fill notice comes before the answer to its send: it is the new order's fill, not a late
    fill of Monday's."""
    paper.set_daily_numbers()
    hts = paper.credentials.hts_id
    _adapter, engine = adapter_and_engine(paper, clock, sqlite_url, tmp_path, push=True, hts_id=hts)
    await engine.start()
    try:
        await engine.tracker.start(poll=False)  # push; the polls are the test's own
        monday = await engine.execute(LIMIT_BUY)
        assert monday.broker_order_id is not None
        paper.fill(monday.broker_order_id, 2, 70000)
        await stored_when(engine, monday.id, lambda o: o.filled_quantity == 2)
        await engine.cancel(monday.id)
        await engine.tracker.poll_once()
        ended = await stored_when(engine, monday.id, lambda o: o.is_terminal)
        clock.advance(86400)  # Tuesday
        paper.add_fault("notices_first", "place")
        tuesday = await engine.execute(Signal("005930", "BUY", 5))  # fills at once
        booked = await stored_when(engine, tuesday.id, lambda o: o.filled_quantity == 5)
        await engine.tracker.poll_once()
        monday_after = await engine.get_order(monday.id)
        position = await engine.position("005930")
    finally:
        await engine.close()
    assert (ended.status, ended.filled_quantity) == (OrderStatus.CANCELLED, 2)
    assert tuesday.broker_order_id == monday.broker_order_id, "the venue gave the number again"
    assert monday_after is not None
    assert monday_after.filled_quantity == 2, "Tuesday's fill was booked on Monday's order"
    assert booked.filled_quantity == 5
    assert position.quantity == 7


async def monday_order_sent_twice_then_filled_while_down(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, **config: Any
) -> Order:
    """On a venue numbering each day afresh: Monday's order, its first send refused (a rate
    limit: sent twice, one number), fills 4 after its engine stopped. Then Tuesday."""
    venue.set_daily_numbers()
    monday = engine_on(venue, clock, url, cache, **config)
    await monday.start()
    try:
        venue.add_fault("rate_limit", "place")
        order = await monday.execute(LIMIT_BUY)
    finally:
        await monday.close()
    assert order.broker_order_id is not None
    assert order.attempts == 2
    venue.fill(order.broker_order_id, 4, 70000)
    clock.advance(86400)
    return order


async def test_an_order_sent_twice_on_monday_owns_its_number_on_monday_only(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Recovery books Monday's order's late fill on Tuesday (a change, not a send); Tuesday's
    order under the same number, its answer lost, is found and not sent again."""
    await monday_order_sent_twice_then_filled_while_down(paper, clock, sqlite_url, tmp_path)
    tuesday = engine_on(paper, clock, sqlite_url, tmp_path)
    await tuesday.start()
    try:
        paper.add_fault("drop_after", "place")  # KIS takes it; the answer is lost
        order = await tuesday.execute(
            Signal("005930", "BUY", 3, order_type="LIMIT", limit_price=Decimal(69000))
        )
    finally:
        await tuesday.close()
    at_kis = [o["odno"] for o in paper.orders() if o["quantity"] == 3]
    assert at_kis == [order.broker_order_id], "sent once, and found under today's number"


async def test_a_running_total_today_starts_from_todays_orders_only(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """After Tuesday's reconnect, the gap poll must not seed today's running totals with
    Monday's order (sent twice, changed today): Tuesday's order of the same number counts its
    own executions only."""
    await monday_order_sent_twice_then_filled_while_down(
        paper, clock, sqlite_url, tmp_path, **OPEN_FOR_DAYS
    )
    push = {"push": True, "hts_id": paper.credentials.hts_id}
    adapter = create_paper_adapter(options(paper, tmp_path, **push))
    config = EngineConfig(load_entry_point_plugins=False, **OPEN_FOR_DAYS)
    engine = Engine(adapter, clock=clock, database_url=sqlite_url, config=config)
    await engine.start()  # recovery books Monday's 4 today; the order stays open
    try:
        await engine.tracker.start(poll=False)
        await until(lambda: adapter.notices.connections >= 1)
        paper.disconnect_notices()
        await until(lambda: adapter.notices.connections >= 2)
        await engine.tracker.poll_once()  # the gap poll
        clock.advance(60)
        order = await engine.execute(
            Signal("005930", "BUY", 20, order_type="LIMIT", limit_price=Decimal(69000))
        )
        assert order.broker_order_id is not None
        clock.advance(5)
        paper.fill(order.broker_order_id, 10, 69000)
        await stored_when(engine, order.id, lambda o: o.filled_quantity >= 10)
        clock.advance(5)
        await engine.tracker.poll_once()
        booked = await engine.get_order(order.id)
        position = await engine.position("005930")
    finally:
        await engine.close()
    assert booked is not None
    assert booked.filled_quantity == 10
    assert position.quantity == 14


async def test_a_row_of_another_instrument_that_does_not_parse_leaves_lookups_alone(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """A row that does not parse only keeps from "absent" the orders it may be: one of
    another instrument does not hold this order's lookup (and its instrument) up."""
    engine = engine_on(paper, clock, sqlite_url, tmp_path)
    bad = {**inquiry_row("0000099999", "20260105", "99", 1, 0, 100000), "pdno": "000660"}
    await engine.start()
    try:
        paper.add_fault("drop_before", "place")  # the order never reaches KIS
        paper.add_raw_answer("inquiry", inquiry_answer([bad]))
        order = await engine.execute(LIMIT_BUY)
    finally:
        await engine.close()
    # Absent after a dropped connection: sent again, once (held back, it would stay UNKNOWN).
    assert order.status is OrderStatus.SUBMITTED, order.reason
    assert [o["odno"] for o in paper.orders()] == [order.broker_order_id]


async def test_a_status_poll_during_a_lookup_keeps_what_the_lookup_could_not_read(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """A lookup's pass and a status poll's run side by side; the poll does not make the
    lookup forget the row of its order that did not parse (which made it "absent" and sent
    the order again)."""
    engine = engine_on(paper, clock, sqlite_url, tmp_path)
    await engine.start()
    try:
        other = await engine.execute(
            Signal("000660", "BUY", 1, order_type="LIMIT", limit_price=Decimal(100000))
        )
        paper.add_fault("drop_after", "place")  # KIS takes it; the answer is lost
        paper.add_fault("http_error", "inquiry", times=1000)  # its lookups cannot tell
        lost = await engine.execute(LIMIT_BUY)
        paper.clear_faults()
        assert (lost.status, lost.broker_order_id) == (OrderStatus.UNKNOWN, None)
        [number] = [o["odno"] for o in paper.orders() if o["symbol"] == "005930"]
        paper.set_rate_limit(None)
        paper.set_page_size(1)  # its row (the newest) on page 1, the other order's on page 2
        paper.malform_next_status(number)
        paper.add_fault("delay", "inquiry", seconds=0.0)  # page 1
        paper.add_fault("delay", "inquiry", seconds=0.3)  # page 2: the poll comes meanwhile

        async def poll_meanwhile() -> None:
            await asyncio.sleep(0.1)
            await engine.broker.order_statuses([other])

        assert lost.submitted_at is not None
        window = {lost.id: LookupWindow(lost.submitted_at, clock.now())}
        owned = frozenset({str(other.broker_order_id)})
        results, _ = await asyncio.gather(
            engine.broker.lookup_orders([lost], window, owned, {}), poll_meanwhile()
        )
    finally:
        await engine.close()
    assert isinstance(results[lost.id], CannotTell), results[lost.id]


async def test_a_cancel_of_yesterdays_order_does_not_reach_todays_order_of_its_number(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """A KIS cancel names its order by number alone: cancelling Monday's order (still open in
    the journal, its timeout days long) on Tuesday must not cancel Tuesday's order that carries
    the same number."""
    paper.set_daily_numbers()
    engine = engine_on(paper, clock, sqlite_url, tmp_path, **OPEN_FOR_DAYS)
    await engine.start()
    try:
        monday = await engine.execute(LIMIT_BUY)
        clock.advance(86400)
        tuesday = await engine.execute(LIMIT_BUY)
        assert tuesday.broker_order_id == monday.broker_order_id
        answer = await engine.broker.cancel_order(monday)
    finally:
        await engine.close()
    assert isinstance(answer, NothingToCancel)
    assert "an earlier trading day" in answer.reason
    [standing] = paper.orders()
    assert (standing["odno"], standing["remaining"]) == (tuesday.broker_order_id, 10)


async def test_yesterdays_open_order_lapses_with_its_day(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """An order left resting when the engine stopped after the session: the next morning the
    poll ends it (what was left lapsed with KIS's trading day), rather than a timeout whose
    cancel can never be sent going round every cycle."""
    monday = engine_on(paper, clock, sqlite_url, tmp_path)
    await monday.start()
    try:
        order = await monday.execute(LIMIT_BUY)
    finally:
        await monday.close()
    clock.advance(86400)
    tuesday = engine_on(paper, clock, sqlite_url, tmp_path)
    await tuesday.start()
    try:
        for _ in range(3):
            await tuesday.tracker.poll_once()
            clock.advance(1)
        stored = await tuesday.get_order(order.id)
        today = await tuesday.execute(Signal("005930", "BUY", 1))
    finally:
        await tuesday.close()
    assert stored is not None
    assert stored.status is OrderStatus.CANCELLED
    assert stored.reason == "what was left lapsed with KIS's trading day 2026-01-05"
    assert today.status is OrderStatus.SUBMITTED, "nothing holds the stock"


async def test_an_order_ended_this_morning_takes_no_push_of_todays_order_of_its_number(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path
) -> None:
    """Monday's order, ended on Tuesday morning, is remembered for pushes only until the end
    of Monday, the day it was sent: Tuesday's order of its number, whose fill notice comes
    before the answer to its send, gets that fill."""
    paper.set_daily_numbers()
    monday = engine_on(paper, clock, sqlite_url, tmp_path, **OPEN_FOR_DAYS)
    await monday.start()
    try:
        first = await monday.execute(
            Signal("000660", "BUY", 10, order_type="LIMIT", limit_price=Decimal(100000))
        )
    finally:
        await monday.close()
    assert first.broker_order_id is not None
    clock.advance(86400 - 600)  # Tuesday, 08:50 KST
    push = {"push": True, "hts_id": paper.credentials.hts_id}
    adapter = create_paper_adapter(options(paper, tmp_path, **push))
    config = EngineConfig(load_entry_point_plugins=False, **OPEN_FOR_DAYS)
    engine = Engine(adapter, clock=clock, database_url=sqlite_url, config=config)
    await engine.start()
    try:
        await engine.tracker.start(poll=False)
        await until(lambda: adapter.notices.connections >= 1)
        paper.cancel_by_venue(first.broker_order_id)
        await engine.tracker.poll_once()
        clock.advance(700)  # 09:01:40 KST
        paper.add_fault("notices_first", "place")  # the fill notice beats the send's answer
        second = await engine.execute(Signal("005930", "BUY", 10))  # fills at once
        await stored_when(engine, second.id, lambda o: o.filled_quantity == 10)
        await engine.tracker.poll_once()
        ended = await engine.get_order(first.id)
        held = await engine.position("000660")
    finally:
        await engine.close()
    assert second.broker_order_id == first.broker_order_id
    assert ended is not None
    assert (ended.status, ended.filled_quantity, held.quantity) == (OrderStatus.CANCELLED, 0, 0)


@pytest.mark.parametrize(
    "rows",
    [{"odno": "0000031001"}, None],
    ids=["an-object-for-rows", "no-output1-without-KIOK0500"],
)
async def test_a_page_that_holds_no_rows_is_no_proof_that_the_order_is_absent(
    paper: FakeKisVenue, clock: FakeClock, sqlite_url: str, tmp_path: Path, rows: Any
) -> None:
    """A page whose ``output1`` is no list of rows, or missing while KIS's code is not its
    empty day's (``KIOK0500``): the lookup cannot call the order absent (it is at KIS)."""
    engine = engine_on(paper, clock, sqlite_url, tmp_path)
    page = json.loads(inquiry_answer([]))  # KIOK0460, "last page"
    if rows is None:
        del page["output1"]
    else:
        page["output1"] = rows
    await engine.start()
    try:
        paper.add_fault("drop_after", "place")  # KIS takes it; the answer is lost
        paper.add_raw_answer("inquiry", json.dumps(page).encode())
        order = await engine.execute(LIMIT_BUY)
    finally:
        await engine.close()
    assert order.status is OrderStatus.UNKNOWN, order.reason
    assert len(paper.orders()) == 1, "not sent again"
