"""The mock adapter's paged batch status and push stream, driven through its hooks directly (no
engine): what each costs in venue requests and permits, and what the stream yields, in what
order, when notices are lost, and when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from orderlane import (
    BrokerContext,
    Capability,
    FakeClock,
    Order,
    OrderSnapshot,
    OrderStatus,
    RequestKind,
    Signal,
    StreamGap,
)
from orderlane.broker import CancelAccepted, PushItem
from orderlane.errors import BrokerTimeoutError, ConfigurationError
from orderlane_mock import MockAdapter, MockVenue, create_adapter
from orderlane_mock.harness import MockHarness

CLOCK = FakeClock()


class Permits:
    """Stands in for the engine's limiter: remembers every permit and how many status requests
    had reached the venue when it was taken."""

    def __init__(self, venue: MockVenue) -> None:
        self.venue = venue
        self.kinds: list[RequestKind] = []
        self.status_requests_before: list[int] = []

    async def __call__(self, kind: RequestKind) -> None:
        self.kinds.append(kind)
        self.status_requests_before.append(len(self.venue.requests_of("status")))


def make_ctx(venue: MockVenue) -> tuple[BrokerContext, Permits]:
    ctx = BrokerContext(account_id="a", options={}, clock=FakeClock())
    permits = Permits(venue)
    ctx.use_limiter(permits)
    return ctx, permits


def make_order(quantity: int = 10) -> Order:
    signal = Signal("005930", "BUY", quantity)
    return Order.from_signal(signal, account_id="a", now=CLOCK.now())


def make_venue(**options: Any) -> MockVenue:
    return MockVenue(clock=CLOCK.now, **options)


def open_orders(venue: MockVenue, count: int) -> list[Order]:
    """``count`` orders the venue accepted and holds open, each carrying its broker order id."""
    venue.hold_next(count)
    orders = []
    for _ in range(count):
        order = make_order()
        orders.append(order.evolve(broker_order_id=venue.place(order).broker_order_id))
    return orders


async def place(adapter: MockAdapter, ctx: BrokerContext, quantity: int = 10) -> Order:
    order = make_order(quantity)
    answer = await adapter.orderlane_place_order(ctx, order)
    return order.evolve(broker_order_id=answer.broker_order_id)


async def drain(stream: AsyncIterator[PushItem]) -> list[PushItem]:
    return [item async for item in stream]


def shown(items: list[PushItem]) -> list[tuple[str, ...]]:
    """Each item as (broker order id, status, cumulative filled quantity), or the gap's reason."""
    return [
        ("gap", item.reason)
        if isinstance(item, StreamGap)
        else (str(item.broker_order_id), item.status.value, str(item.filled_quantity))
        for item in items
    ]


# ------------------------------------------------------------------ paging


async def test_a_thousand_open_orders_cost_ten_status_requests_each_after_its_own_permit() -> None:
    venue = make_venue()
    orders = open_orders(venue, 1000)
    adapter = MockAdapter(venue)
    ctx, permits = make_ctx(venue)

    snapshots = await adapter.orderlane_order_statuses(ctx, orders)

    assert list(snapshots) == [order.id for order in orders]
    assert all(snapshots[o.id].broker_order_id == o.broker_order_id for o in orders)
    assert {s.status for s in snapshots.values()} == {OrderStatus.SUBMITTED}
    assert len(venue.requests_of("status")) == 10
    assert permits.kinds == [RequestKind.INQUIRY] * 10
    assert permits.status_requests_before == list(range(10))  # a permit before every page
    assert adapter.orderlane_adapter_info().page_size == 100


async def test_the_page_size_option_sets_the_venues_pages_and_the_declared_size() -> None:
    venue = make_venue()
    orders = open_orders(venue, 40)
    adapter = create_adapter({"venue": venue, "page_size": "15"})
    ctx, permits = make_ctx(venue)

    snapshots = await adapter.orderlane_order_statuses(ctx, orders)

    assert len(snapshots) == 40
    assert (venue.page_size, adapter.orderlane_adapter_info().page_size) == (15, 15)
    assert len(venue.requests_of("status")) == 3 == len(permits.kinds)
    assert create_adapter({"page_size": 7}).orderlane_adapter_info().page_size == 7


@pytest.mark.parametrize("size", [0, -3, "x", "1.5", 2.5, True, None])
def test_a_page_size_that_is_not_a_positive_whole_number_is_refused(size: object) -> None:
    with pytest.raises(ConfigurationError, match="page_size"):
        create_adapter({"page_size": size})
    with pytest.raises(ValueError, match="at least one order"):
        MockVenue(page_size=size)  # type: ignore[arg-type]


def test_each_page_is_one_request_saying_whether_more_follow() -> None:
    venue = make_venue(page_size=2)
    ids = [str(o.broker_order_id) for o in open_orders(venue, 3)]
    venue.forget(ids[1])
    asked = [*ids, "M-NOT-HELD"]

    first, more_after_first = venue.statuses_page(asked, 0)
    second, more_after_second = venue.statuses_page(asked, 1)
    beyond, more_after_beyond = venue.statuses_page(asked, 2)

    assert (list(first), more_after_first) == ([ids[0]], True)  # the forgotten one is missing
    assert (list(second), more_after_second) == ([ids[2]], False)
    assert (beyond, more_after_beyond) == ({}, False)
    assert len(venue.requests_of("status")) == 3
    with pytest.raises(ValueError, match="from 0"):
        venue.statuses_page(asked, -1)


def test_the_unpaged_inquiry_still_answers_everything_in_one_request() -> None:
    venue = make_venue(page_size=10)
    ids = [str(o.broker_order_id) for o in open_orders(venue, 25)]

    assert list(venue.statuses(ids)) == ids
    assert len(venue.requests_of("status")) == 1


async def test_orders_without_a_broker_id_cost_nothing_and_are_left_out() -> None:
    venue = make_venue(page_size=2)
    [held] = open_orders(venue, 1)
    adapter = MockAdapter(venue)
    ctx, permits = make_ctx(venue)

    assert await adapter.orderlane_order_statuses(ctx, [make_order()]) == {}
    assert (venue.requests_of("status"), permits.kinds) == ([], [])

    snapshots = await adapter.orderlane_order_statuses(ctx, [make_order(), held, make_order()])
    assert list(snapshots) == [held.id]
    assert len(permits.kinds) == 1


async def test_a_failed_page_fails_the_batch_after_its_permit() -> None:
    venue = make_venue(page_size=2)
    orders = open_orders(venue, 5)
    adapter = MockAdapter(venue)
    ctx, permits = make_ctx(venue)
    venue.fail_next("timeout_before", operation="status")

    with pytest.raises(BrokerTimeoutError):
        await adapter.orderlane_order_statuses(ctx, orders)
    assert permits.kinds == [RequestKind.INQUIRY]


# ------------------------------------------------------------------ push: declaring and ending


async def test_without_push_nothing_is_declared_and_the_stream_ends_at_once() -> None:
    venue = make_venue()
    adapter = create_adapter({"venue": venue})
    ctx, _ = make_ctx(venue)
    adapter.orderlane_adapter_start(ctx)

    await place(adapter, ctx)

    assert not adapter.orderlane_adapter_info().supports(Capability.PUSH)
    assert await drain(adapter.orderlane_order_updates(ctx)) == []
    assert len(venue.notices.sent) == 2  # the venue notified anyway, with nobody listening
    adapter.orderlane_adapter_stop(ctx)


@pytest.mark.parametrize(("value", "declared"), [(True, True), ("true", True), ("0", False)])
def test_the_push_option_declares_the_capability(value: object, declared: bool) -> None:
    info = create_adapter({"push": value}).orderlane_adapter_info()
    assert info.supports(Capability.PUSH) is declared
    assert info.supports(Capability.BATCH_STATUS)


def test_a_push_option_that_is_not_yes_or_no_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'push' must be true or false"):
        create_adapter({"push": "sometimes"})


async def test_the_stream_ends_when_the_adapter_stops_even_while_a_reader_waits() -> None:
    venue = make_venue()
    adapter = MockAdapter(venue, push=True)
    ctx, _ = make_ctx(venue)
    adapter.orderlane_adapter_start(ctx)
    readers = [asyncio.create_task(drain(adapter.orderlane_order_updates(ctx))) for _ in "ab"]
    await asyncio.sleep(0)  # both readers now wait on the empty stream

    adapter.orderlane_adapter_stop(ctx)

    assert await asyncio.wait_for(asyncio.gather(*readers), timeout=5) == [[], []]
    assert await drain(adapter.orderlane_order_updates(ctx)) == []


async def test_starting_or_stopping_twice_neither_doubles_nor_loses_notices() -> None:
    venue = make_venue()
    adapter = MockAdapter(venue, push=True)
    ctx, _ = make_ctx(venue)
    assert adapter.updates is not None
    adapter.orderlane_adapter_start(ctx)
    adapter.orderlane_adapter_start(ctx)
    assert adapter.updates.connected

    order = await place(adapter, ctx)
    adapter.orderlane_adapter_stop(ctx)
    adapter.orderlane_adapter_stop(ctx)

    assert not adapter.updates.connected
    assert shown(await drain(adapter.orderlane_order_updates(ctx))) == [
        (str(order.broker_order_id), "SUBMITTED", "0"),
        (str(order.broker_order_id), "FILLED", "10"),
    ]


async def test_a_restarted_adapter_streams_afresh_and_a_stopped_one_hears_nothing() -> None:
    venue = make_venue()
    first, second = MockAdapter(venue, push=True), MockAdapter(venue, push=True)
    ctx, _ = make_ctx(venue)
    first.orderlane_adapter_start(ctx)
    old_stream = first.orderlane_order_updates(ctx)
    first.orderlane_adapter_stop(ctx)

    venue.hold_next()
    before_restart = await place(first, ctx)  # nobody listens: the notice is not kept
    first.orderlane_adapter_start(ctx)
    second.orderlane_adapter_start(ctx)
    venue.fill(str(before_restart.broker_order_id))
    first.orderlane_adapter_stop(ctx)
    second.orderlane_adapter_stop(ctx)

    filled = [(str(before_restart.broker_order_id), "FILLED", "10")]
    assert await drain(old_stream) == []
    assert shown(await drain(first.orderlane_order_updates(ctx))) == filled
    assert shown(await drain(second.orderlane_order_updates(ctx))) == filled


# ------------------------------------------------------------------ push: what it yields


async def test_every_change_is_pushed_as_a_cumulative_snapshot_in_the_order_it_happened() -> None:
    venue = make_venue()
    adapter = MockAdapter(venue, push=True)
    ctx, permits = make_ctx(venue)
    adapter.orderlane_adapter_start(ctx)
    stream = adapter.orderlane_order_updates(ctx)

    filled_at_once = await place(adapter, ctx)
    venue.partial_fill_next(4)
    partly = await place(adapter, ctx)
    venue.hold_next(3)
    cancelled, by_venue, rejected = [await place(adapter, ctx) for _ in range(3)]
    venue.fill(str(partly.broker_order_id), 5, price=73000)
    assert isinstance(await adapter.orderlane_cancel_order(ctx, cancelled), CancelAccepted)
    venue.fill(str(partly.broker_order_id))
    venue.cancel_by_venue(str(by_venue.broker_order_id), "halted")
    venue.reject_open(str(rejected.broker_order_id), "no margin")
    adapter.orderlane_adapter_stop(ctx)
    items = await drain(stream)

    ids = [str(o.broker_order_id) for o in (filled_at_once, partly, cancelled, by_venue, rejected)]
    assert shown(items) == [
        (ids[0], "SUBMITTED", "0"),
        (ids[0], "FILLED", "10"),
        (ids[1], "SUBMITTED", "0"),
        (ids[1], "PARTIALLY_FILLED", "4"),
        (ids[2], "SUBMITTED", "0"),
        (ids[3], "SUBMITTED", "0"),
        (ids[4], "SUBMITTED", "0"),
        (ids[1], "PARTIALLY_FILLED", "9"),
        (ids[2], "CANCELLED", "0"),
        (ids[1], "FILLED", "10"),
        (ids[3], "CANCELLED", "0"),
        (ids[4], "REJECTED", "0"),
    ]
    snapshots = [item for item in items if isinstance(item, OrderSnapshot)]
    last_of_partly = [s for s in snapshots if s.broker_order_id == ids[1]][-1]
    assert [e.quantity for e in last_of_partly.executions] == [4, 5, 1]
    assert last_of_partly.filled_notional == Decimal(72000 * 5 + 73000 * 5)
    assert last_of_partly.commission == Decimal(300)
    ended = (OrderStatus.CANCELLED, OrderStatus.REJECTED)
    assert [s.reason for s in snapshots if s.status in ended] == [
        "cancelled on request",
        "halted",
        "no margin",
    ]
    assert RequestKind.INQUIRY not in permits.kinds  # none of it took a status request


async def test_lost_notices_are_followed_by_a_gap_when_the_stream_reconnects() -> None:
    venue = make_venue()
    adapter = MockAdapter(venue, push=True)
    ctx, _ = make_ctx(venue)
    adapter.orderlane_adapter_start(ctx)
    stream = adapter.orderlane_order_updates(ctx)
    venue.hold_next()
    order = await place(adapter, ctx)
    broker_id = str(order.broker_order_id)

    venue.drop_pushes(2)
    venue.fill(broker_id, 3)
    venue.fill(broker_id, 3)
    venue.reconnect_push()
    venue.fill(broker_id)
    adapter.orderlane_adapter_stop(ctx)

    assert shown(await drain(stream)) == [
        (broker_id, "SUBMITTED", "0"),
        ("gap", "reconnected"),
        (broker_id, "FILLED", "10"),
    ]
    assert venue.notices.dropped == 2
    assert [s.filled_quantity for s in venue.notices.sent] == [0, 3, 6, 10]
    with pytest.raises(ValueError, match="cannot drop"):
        venue.drop_pushes(-1)


async def test_the_notice_reaches_a_reader_before_the_answer_only_when_scripted() -> None:
    venue = make_venue()
    adapter = MockAdapter(venue, push=True)
    ctx, _ = make_ctx(venue)
    adapter.orderlane_adapter_start(ctx)
    seen: list[str] = []

    async def read() -> None:
        async for item in adapter.orderlane_order_updates(ctx):
            assert isinstance(item, OrderSnapshot)
            seen.append(f"notice {item.status.value}")

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)  # the reader waits on the stream

    await place(adapter, ctx)
    seen.append("answer")
    venue.push_before_answer_next()
    await place(adapter, ctx)
    seen.append("answer")
    await place(adapter, ctx)  # the script applied to one place only
    seen.append("answer")
    adapter.orderlane_adapter_stop(ctx)
    await asyncio.wait_for(reader, timeout=5)

    assert seen == [
        "answer",
        "notice SUBMITTED",
        "notice FILLED",
        "notice SUBMITTED",
        "notice FILLED",
        "answer",
        "answer",
        "notice SUBMITTED",
        "notice FILLED",
    ]


# ------------------------------------------------------------------ the conformance harness


async def test_the_harness_switches_push_and_paging_and_the_adapter_follows() -> None:
    harness = MockHarness(push=True, page_size=15)
    options = harness.adapter_options()
    adapter = create_adapter(options)
    ctx, _ = make_ctx(harness.venue)
    adapter.orderlane_adapter_start(ctx)
    stream = adapter.orderlane_order_updates(ctx)

    harness.hold_next()
    order = await place(adapter, ctx)
    harness.drop_pushes(1)
    harness.fill(str(order.broker_order_id), 2)
    harness.reconnect_push()
    harness.push_before_answer_next()
    adapter.orderlane_adapter_stop(ctx)

    assert options == {"venue": harness.venue, "push": True, "page_size": 15}
    assert Capability.PUSH in harness.capabilities
    assert adapter.orderlane_adapter_info().page_size == 15
    assert shown(await drain(stream)) == [
        (str(order.broker_order_id), "SUBMITTED", "0"),
        ("gap", "reconnected"),
    ]
    assert (harness.pushes_sent(), harness.pushes_dropped()) == (2, 1)
    assert harness.venue.notices.take_answer_after_push()  # scripted for exactly one place
    assert not harness.venue.notices.take_answer_after_push()


def test_a_default_harness_neither_pushes_nor_pages_until_told() -> None:
    harness = MockHarness()
    assert harness.adapter_options() == {"venue": harness.venue}
    assert Capability.PUSH not in harness.capabilities

    harness.set_page_size(40)
    harness.enable_push()

    assert harness.adapter_options() == {"venue": harness.venue, "push": True, "page_size": 40}
    assert Capability.PUSH in harness.capabilities
    assert Capability.PUSH not in MockHarness.capabilities


def test_enabling_push_keeps_what_a_harness_subclass_left_out() -> None:
    class NoLookup(MockHarness):
        capabilities = MockHarness.capabilities - {Capability.LOOKUP}

    harness = NoLookup(push=True)
    assert Capability.PUSH in harness.capabilities
    assert Capability.LOOKUP not in harness.capabilities
