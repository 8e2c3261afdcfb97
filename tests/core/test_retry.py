"""Retry with backoff, classification and ambiguous sends, on the mock venue and fake time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orderlane import (
    Engine,
    EngineConfig,
    ErrorClass,
    FakeClock,
    Operation,
    Order,
    OrderSnapshot,
    OrderStatus,
    RetryConfig,
    Signal,
    hookimpl,
)
from orderlane.broker import BrokerContext
from orderlane.errors import (
    BrokerConnectionError,
    BrokerRateLimitError,
    ConfigurationError,
    InvalidTransitionError,
    OrderRetryExhaustedError,
)
from orderlane.retry import classify_default, run_with_retry
from orderlane_mock import MockAdapter, MockVenue


class Recorder:
    """An observer that keeps every retry event."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[int, float, str]] = []
        self.exhausted: list[tuple[int, str]] = []
        self.statuses: list[OrderStatus] = []

    @hookimpl
    def orderlane_retry_scheduled(self, attempt: int, delay: float, error: str) -> None:
        self.scheduled.append((attempt, delay, error))

    @hookimpl
    def orderlane_retry_exhausted(self, attempts: int, error: str) -> None:
        self.exhausted.append((attempts, error))

    @hookimpl
    def orderlane_order_status_changed(self, order: Order) -> None:
        self.statuses.append(order.status)


SIGNAL = Signal("005930", "BUY", 10)


async def open_engine(venue: MockVenue, clock: FakeClock, url: str, **kwargs: Any) -> Engine:
    engine = Engine(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=url, **kwargs
    )
    await engine.start()
    return engine


async def test_connection_refused_once_then_filled(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    recorder = Recorder()
    engine.register(recorder)
    venue.fail_next("connection")

    order = await engine.execute(SIGNAL)
    await engine.flush_events()

    assert order.status is OrderStatus.FILLED
    assert order.attempts == 2
    assert len(venue.places) == 2
    assert clock.sleeps == [1.0]
    assert [(a, d) for a, d, _ in recorder.scheduled] == [(1, 1.0)]
    assert "BrokerConnectionError" in recorder.scheduled[0][2]


async def test_three_refusals_exhaust_with_seed_delays(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    recorder = Recorder()
    engine.register(recorder)
    venue.fail_next("connection", times=3)

    order = await engine.execute(SIGNAL)
    await engine.flush_events()

    assert order.status is OrderStatus.FAILED
    assert order.reason is not None
    assert "failed after 3 attempts" in order.reason
    assert len(venue.places) == 3
    assert clock.sleeps == [1.0, 2.0]
    assert recorder.exhausted == [
        (3, "BrokerConnectionError: connection refused by the mock venue")
    ]
    assert recorder.statuses[-1] is OrderStatus.FAILED
    assert await engine.positions() == []


async def test_rate_limit_answer_honours_retry_after(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    class SlowDown(MockAdapter):
        calls = 0

        @hookimpl
        async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
            SlowDown.calls += 1
            if SlowDown.calls == 1:
                raise BrokerRateLimitError("too many requests", retry_after=5.0)
            return await super().orderlane_place_order(ctx, order)

    engine = Engine(SlowDown(venue), clock=clock, database_url=sqlite_url)
    await engine.start()
    try:
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FILLED
        assert clock.sleeps == [5.0]  # max(backoff 1 s, retry-after 5 s)
        assert engine.stats()["rate_limiter"]["pauses"] == 0  # no limits declared: nothing paused
    finally:
        await engine.close()


async def test_rate_limit_answer_pauses_the_limiter(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    engine = Engine(
        "mock",
        adapter_options={"venue": venue, "rate_limit": 5},
        clock=clock,
        database_url=sqlite_url,
    )
    await engine.start()
    try:
        venue.fail_next("rate_limit")
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FILLED
        assert len(venue.places) == 2
        assert engine.stats()["rate_limiter"]["pauses"] == 1
    finally:
        await engine.close()


async def test_timeout_after_accept_adopts_the_venue_order(
    engine: Engine, venue: MockVenue
) -> None:
    venue.fail_next("timeout_after")
    order = await engine.execute(SIGNAL)

    assert order.status is OrderStatus.FILLED
    assert len(venue.orders) == 1
    assert order.broker_order_id == next(iter(venue.orders))
    assert len(venue.places) == 1
    assert len(venue.requests_of("lookup")) == 1


async def test_timeout_before_accept_is_looked_up_then_sent_again(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    venue.fail_next("timeout_before")
    order = await engine.execute(SIGNAL)

    assert order.status is OrderStatus.FILLED
    assert len(venue.orders) == 1
    assert len(venue.places) == 2
    assert clock.sleeps == [1.0]


async def test_garbled_answer_is_unknown_then_adopted(engine: Engine, venue: MockVenue) -> None:
    recorder = Recorder()
    engine.register(recorder)
    venue.fail_next("garbled")
    order = await engine.execute(SIGNAL)
    await engine.flush_events()

    assert order.status is OrderStatus.FILLED
    assert OrderStatus.UNKNOWN in recorder.statuses
    assert OrderStatus.FAILED not in recorder.statuses
    assert len(venue.orders) == 1


async def test_unresolvable_order_holds_its_instrument(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    engine = await open_engine(
        venue, clock, sqlite_url, config=EngineConfig(instrument_hold_timeout=3.0)
    )
    try:
        venue.fail_next("drop_after_accept")
        venue.answer_lookup_next("cannot_tell")
        unknown = await engine.execute(SIGNAL)
        assert unknown.status is OrderStatus.UNKNOWN
        assert len(venue.places) == 1

        other_symbol = await engine.execute(Signal("000660", "BUY", 1))
        assert other_symbol.status is OrderStatus.FILLED

        held = await engine.execute(Signal("005930", "BUY", 5))
        assert held.status is OrderStatus.FAILED
        assert held.reason is not None
        assert "held by UNKNOWN order" in held.reason
        assert held.reason.startswith("not sent")
        assert [p.client_order_id for p in venue.places].count(held.id) == 0
        assert clock.sleeps == [0.5] * 6
    finally:
        await engine.close()


async def test_unexpected_error_then_absent_fails_without_retry(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    class Broken(MockAdapter):
        @hookimpl
        async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
            raise RuntimeError("adapter bug")

    engine = Engine(Broken(venue), clock=clock, database_url=sqlite_url)
    await engine.start()
    try:
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FAILED
        assert order.reason == "not sent: RuntimeError: adapter bug"
        assert clock.sleeps == []
        assert len(venue.requests_of("lookup")) == 1
    finally:
        await engine.close()


async def test_a_plugin_can_make_connection_errors_final(engine: Engine, venue: MockVenue) -> None:
    class NoRetry:
        @hookimpl
        def orderlane_classify_error(
            self, operation: Operation, error: BaseException
        ) -> ErrorClass | None:
            if isinstance(error, BrokerConnectionError):
                return ErrorClass.FINAL
            return None

    engine.register(NoRetry())
    venue.fail_next("connection", times=3)
    order = await engine.execute(SIGNAL)
    assert order.status is OrderStatus.FAILED
    assert len(venue.places) == 1


async def test_a_plugin_sets_the_retry_policy_of_one_operation(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    class Patient:
        @hookimpl
        def orderlane_retry_policy(self, operation: Operation) -> RetryConfig | None:
            if operation is Operation.PLACE:
                return RetryConfig(max_attempts=4, initial_delay=0.25)
            return None  # the other operations keep the default

    engine.register(Patient())
    venue.fail_next("connection", times=3)
    order = await engine.execute(SIGNAL)
    assert order.status is OrderStatus.FILLED
    assert clock.sleeps == [0.25, 0.5, 1.0]


async def test_a_retry_policy_that_is_not_a_retry_config_is_logged_and_the_default_used(
    engine: Engine, venue: MockVenue, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Mistaken:
        @hookimpl
        def orderlane_retry_policy(self, operation: Operation) -> object:
            return {"max_attempts": 9}

    engine.register(Mistaken())
    venue.fail_next("connection", times=1)
    order = await engine.execute(SIGNAL)
    assert order.status is OrderStatus.FILLED
    assert clock.sleeps == [1.0]  # the default: 3 attempts, 1 s then 2 s
    assert "orderlane_retry_policy answered dict for place, not a RetryConfig" in caplog.text


async def test_engine_config_overrides_the_policy(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    policy = RetryConfig(max_attempts=5, initial_delay=0.5)
    engine = await open_engine(
        venue, clock, sqlite_url, config=EngineConfig(retry={Operation.PLACE: policy})
    )
    try:
        venue.fail_next("connection", times=4)
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FILLED
        assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    finally:
        await engine.close()


def test_backoff_series_is_capped() -> None:
    config = RetryConfig(max_attempts=8)
    assert [config.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert config.delay(1, BrokerRateLimitError("slow down", retry_after=7)) == 7
    jittered = RetryConfig(jitter=0.5)
    assert all(2.0 <= jittered.delay(2) <= 3.0 for _ in range(50))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_delay": -1}, {"backoff_multiplier": 0.5}, {"jitter": 2}],
)
def test_bad_retry_config_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryConfig(**kwargs)


async def test_run_with_retry_reports_the_original_error() -> None:
    clock = FakeClock()
    error = BrokerConnectionError("down")

    async def always_down(attempt: int) -> None:
        raise error

    with pytest.raises(OrderRetryExhaustedError) as raised:
        await run_with_retry(
            always_down, config=RetryConfig(), should_retry=lambda e: True, clock=clock
        )
    assert raised.value.original_error is error
    assert raised.value.attempts == 3
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    ("operation", "error", "expected"),
    [
        (Operation.PLACE, BrokerConnectionError("refused"), ErrorClass.RETRYABLE),
        (
            Operation.PLACE,
            BrokerConnectionError("dropped", request_sent=True),
            ErrorClass.AMBIGUOUS,
        ),
        (
            Operation.STATUS,
            BrokerConnectionError("dropped", request_sent=True),
            ErrorClass.RETRYABLE,
        ),
        (Operation.PLACE, BrokerRateLimitError("slow"), ErrorClass.RETRYABLE),
        (Operation.PLACE, ValueError("bug"), ErrorClass.AMBIGUOUS),
        (Operation.CANCEL, ValueError("bug"), ErrorClass.FINAL),
        (Operation.PLACE, InvalidTransitionError("x"), ErrorClass.AMBIGUOUS),
    ],
)
def test_default_classification(
    operation: Operation, error: BaseException, expected: ErrorClass
) -> None:
    assert classify_default(operation, error) is expected


async def test_venue_quote_and_commission_reach_the_order(engine: Engine, venue: MockVenue) -> None:
    venue.set_quote("000660", 120_500)
    order = await engine.execute(Signal("000660", "BUY", 3))
    assert order.average_fill_price == Decimal(120_500)


async def test_lookup_is_retried_before_the_order_is_settled(
    engine: Engine, venue: MockVenue, clock: FakeClock
) -> None:
    venue.fail_next("timeout_after")
    venue.fail_next("connection", operation="lookup")
    order = await engine.execute(SIGNAL)

    assert order.status is OrderStatus.FILLED
    assert len(venue.orders) == 1
    assert clock.sleeps == [1.0]  # the lookup's retry, not a second place
    assert len(venue.places) == 1


async def test_lookup_exhausted_leaves_the_order_unknown(engine: Engine, venue: MockVenue) -> None:
    recorder = Recorder()
    engine.register(recorder)
    venue.fail_next("drop_after_accept")
    venue.fail_next("connection", times=3, operation="lookup")
    order = await engine.execute(SIGNAL)
    await engine.flush_events()

    assert order.status is OrderStatus.UNKNOWN
    assert recorder.exhausted[0][0] == 3
    assert len(venue.places) == 1


async def test_brokers_that_dedupe_client_ids_get_the_send_again(
    clock: FakeClock, sqlite_url: str
) -> None:
    venue = MockVenue(dedupe_client_ids=True)
    engine = await open_engine(venue, clock, sqlite_url)
    try:
        venue.fail_next("timeout_after")
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FILLED
        assert len(venue.places) == 2  # sent again: the venue answered with the same order
        assert len(venue.orders) == 1
        assert venue.requests_of("lookup") == []
    finally:
        await engine.close()


async def test_exhausted_resends_to_a_deduplicating_broker_look_up_before_failing(
    clock: FakeClock, sqlite_url: str
) -> None:
    venue = MockVenue(dedupe_client_ids=True)
    engine = await open_engine(venue, clock, sqlite_url)
    try:
        venue.fail_next("timeout_after")  # the venue accepted and filled; the answer was lost
        venue.fail_next("connection", times=2)  # the resends never got through
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.FILLED  # found at the broker, never FAILED on a guess
        assert order.broker_order_id == next(iter(venue.orders))
        assert (await engine.position("005930")).quantity == 10
    finally:
        await engine.close()


class PendingCancelAnswers(MockAdapter):
    """Answers as a broker that already has a cancel pending for the order (say, from its own
    trading screen): a status the engine did not ask for."""

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        import attrs

        snapshot = self.venue.place(order)
        return attrs.evolve(snapshot, status=OrderStatus.PENDING_CANCEL)


async def test_an_unexpected_answer_status_is_booked_not_failed(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    venue.partial_fill_next(4)
    engine = Engine(PendingCancelAnswers(venue), clock=clock, database_url=sqlite_url)
    await engine.start()
    try:
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.PARTIALLY_FILLED
        assert order.broker_order_id is not None
        assert (await engine.position("005930")).quantity == 4
    finally:
        await engine.close()


async def test_an_answer_that_cannot_be_booked_keeps_the_broker_id(
    venue: MockVenue, clock: FakeClock, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(MockAdapter(venue), clock=clock, database_url=sqlite_url)
    await engine.start()
    try:
        original = engine.blotter.book

        async def failing(order: Order, snapshot: OrderSnapshot, **kwargs: Any) -> Order:
            if order.status is OrderStatus.SUBMITTING:
                raise InvalidTransitionError("the journal refused the answer")
            return await original(order, snapshot, **kwargs)

        monkeypatch.setattr(engine.blotter, "book", failing)
        order = await engine.execute(SIGNAL)
        assert order.status is OrderStatus.UNKNOWN
        assert order.broker_order_id == next(iter(venue.orders))
        assert order.reason is not None
        assert order.reason.startswith("answer not booked")
        await engine.tracker.poll_once()  # the broker's status settles it
        settled = await engine.get_order(order.id)
        assert settled is not None
        assert settled.status is OrderStatus.FILLED
    finally:
        await engine.close()


async def test_a_retry_is_sent_while_another_order_holds_the_instrument_but_new_orders_wait(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    import asyncio

    engine = await open_engine(venue, clock, sqlite_url)
    try:
        venue.fail_next("connection")  # A's first send is refused; A retries after 1 s
        venue.fail_next("timeout_after")  # B is accepted, its answer lost
        venue.answer_lookup_next("cannot_tell", times=10)
        first = asyncio.ensure_future(engine.execute(SIGNAL))
        for _ in range(20):
            await asyncio.sleep(0)
        held_by = await engine.execute(Signal("005930", "BUY", 5))
        assert held_by.status is OrderStatus.UNKNOWN
        # A was in flight before B went UNKNOWN: its retry goes on (lookups on the symbol
        # wait for A's answer, so nothing confuses the two).
        a = await first
        assert a.status is OrderStatus.FILLED
        assert [r.accepted for r in venue.places if r.client_order_id == a.id] == [False, True]
        # A new order for the symbol waits while B is UNKNOWN, and is not sent past the hold.
        new = await engine.execute(Signal("005930", "BUY", 3))
        assert new.status is OrderStatus.FAILED
        assert new.reason is not None
        assert "held by UNKNOWN order" in new.reason
        assert not [r for r in venue.places if r.client_order_id == new.id]
    finally:
        await engine.close()


async def test_a_retry_in_flight_is_sent_while_another_order_is_looked_up(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    import asyncio

    engine = await open_engine(venue, clock, sqlite_url)
    try:
        venue.fail_next("connection")  # A's first send is refused; A retries after 1 s
        venue.fail_next("timeout_after")  # B is accepted, its answer lost: B is looked up
        first = asyncio.ensure_future(engine.execute(SIGNAL))
        for _ in range(20):
            await asyncio.sleep(0)
        second = await engine.execute(Signal("005930", "BUY", 5))
        a = await first
        # B's lookup waits for the answer of A, which is in flight and might own what the
        # lookup found; A's retry is that answer, so it goes on (A already is in flight: the
        # hold keeps new orders back). Before, each waited for the other for the whole hold
        # timeout: A ended FAILED "not sent" and B was adopted 30 s late.
        assert (a.status, second.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
        assert [r.accepted for r in venue.places if r.client_order_id == a.id] == [False, True]
        assert sum(clock.sleeps) < engine.config.instrument_hold_timeout
    finally:
        await engine.close()


async def test_two_lost_answers_for_one_symbol_do_not_hold_each_others_lookup(
    venue: MockVenue, clock: FakeClock, sqlite_url: str
) -> None:
    import asyncio

    engine = await open_engine(venue, clock, sqlite_url)
    try:
        venue.fail_next("timeout_after", times=2)  # both are accepted, both answers lost
        a, b = await asyncio.gather(
            engine.execute(SIGNAL), engine.execute(Signal("005930", "BUY", 5))
        )
        # A lookup matches by client order id or by intent (side, quantity, price): what it
        # finds for one order cannot be the other's when their intents differ, so neither
        # waits for the other's answer. Before, each waited for the other for the whole hold
        # timeout and both stayed UNKNOWN.
        assert (a.status, b.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
        assert len(venue.places) == 2
        assert sum(clock.sleeps) < engine.config.instrument_hold_timeout
    finally:
        await engine.close()
