"""The sliding-log rate limiter: strict windows, queueing, priorities, pauses; and its bench."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orderlane
from orderlane import (
    Engine,
    EngineConfig,
    FakeClock,
    LimiterSnapshot,
    OrderStatus,
    RateLimit,
    RequestKind,
    Signal,
    hookimpl,
)
from orderlane.bench import max_in_window, run_rate_limit
from orderlane.errors import ConfigurationError
from orderlane.ratelimit import RateLimiter, SlidingLogLimiter, shared_limiter
from orderlane_mock import MockAdapter, MockVenue


async def grant_times(
    limiter: RateLimiter, clock: FakeClock, kinds: list[RequestKind]
) -> list[float]:
    times: list[float] = []

    async def one(kind: RequestKind) -> None:
        await limiter.acquire(kind)
        times.append(clock.monotonic())

    await asyncio.gather(*(one(kind) for kind in kinds))
    return times


async def test_a_loop_that_runs_late_mid_batch_does_not_bunch_the_next_window() -> None:
    """Waiters granted together resume one after another; if the loop stalls among them (a busy
    machine), the late ones go out late. The limiter logs when each one went out, so the next
    window's grants wait for the late ones to leave it."""
    import time

    from orderlane.clock import SystemClock

    limit, period = 10, 0.2
    limiter = RateLimiter([RateLimit(limit, period)], SystemClock(), margin=0.0)
    arrivals: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        arrivals.append(time.monotonic())
        if len(arrivals) == limit + 2:
            # The process is descheduled after the 2nd of the batch the dispatcher granted
            # (the first batch went out at once, without waiting).
            time.sleep(0.06)  # noqa: ASYNC251 (a stall of the whole loop is the point)

    await asyncio.gather(*(one() for _ in range(3 * limit)))
    assert max_in_window(arrivals, period) <= limit


async def test_no_window_carries_more_than_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(10, 1.0)], clock, margin=0.0)
    times = await grant_times(limiter, clock, [RequestKind.ORDER] * 100)

    assert len(times) == 100
    assert max_in_window(times, 1.0) == 10
    # Saturated: a new batch of 10 every window, so 100 requests take 9 windows after the first.
    assert times[-1] == pytest.approx(9.0)


async def test_several_scopes_all_hold() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(5, 1.0), RateLimit(12, 10.0)], clock, margin=0.0)
    times = await grant_times(limiter, clock, [RequestKind.ORDER] * 30)

    assert max_in_window(times, 1.0) <= 5
    assert max_in_window(times, 10.0) <= 12


async def test_margin_lengthens_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(2, 1.0)], clock, margin=0.1)
    times = await grant_times(limiter, clock, [RequestKind.ORDER] * 4)
    assert times[2] == pytest.approx(1.1)
    assert max_in_window(times, 1.1) == 2


async def test_cancels_go_first_then_orders_then_inquiries() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(1, 1.0)], clock, margin=0.0)
    await limiter.acquire(RequestKind.ORDER)  # fills the window: the rest must queue
    order: list[RequestKind] = []

    async def one(kind: RequestKind) -> None:
        await limiter.acquire(kind)
        order.append(kind)

    await asyncio.gather(one(RequestKind.INQUIRY), one(RequestKind.ORDER), one(RequestKind.CANCEL))
    assert order == [RequestKind.CANCEL, RequestKind.ORDER, RequestKind.INQUIRY]
    assert limiter.stats.max_waiting == 3
    assert limiter.stats.max_wait == pytest.approx(3.0)


async def test_inquiries_keep_a_share_under_order_pressure() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(1, 1.0)], clock, margin=0.0, inquiry_share=0.25)
    await limiter.acquire(RequestKind.ORDER)
    served: list[RequestKind] = []

    async def one(kind: RequestKind) -> None:
        await limiter.acquire(kind)
        served.append(kind)

    await asyncio.gather(*(one(RequestKind.ORDER) for _ in range(12)), one(RequestKind.INQUIRY))
    # Orders alone would keep the inquiry waiting until last; its share lets it in earlier.
    assert served.index(RequestKind.INQUIRY) < 4


async def test_penalize_pauses_every_grant() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(100, 1.0)], clock)
    limiter.penalize(retry_after=2.5)
    await limiter.acquire(RequestKind.ORDER)
    assert clock.monotonic() == pytest.approx(2.5)
    assert limiter.stats.pauses == 1
    limiter.penalize()  # no retry-after: one window
    await limiter.acquire(RequestKind.ORDER)
    assert clock.monotonic() == pytest.approx(3.5)


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    clock = FakeClock()
    limiter = RateLimiter([RateLimit(1, 1.0)], clock, margin=0.0)
    await limiter.acquire(RequestKind.ORDER)
    waiting = asyncio.ensure_future(limiter.acquire(RequestKind.ORDER))
    await asyncio.sleep(0)
    waiting.cancel()
    await limiter.acquire(RequestKind.ORDER)
    assert limiter.stats.granted == {"order": 2}
    assert limiter.queue_depth == 0


async def test_without_limits_nothing_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter([], clock)
    await asyncio.gather(*(limiter.acquire(RequestKind.ORDER) for _ in range(50)))
    assert clock.monotonic() == 0
    assert "unlimited" in repr(limiter)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        RateLimit(0, 1.0)
    with pytest.raises(ConfigurationError):
        RateLimiter([RateLimit(1)], FakeClock(), margin=1.5)
    with pytest.raises(ConfigurationError):
        RateLimiter([RateLimit(1)], FakeClock(), inquiry_share=0)


async def test_engines_on_one_credential_share_a_limiter() -> None:
    clock = FakeClock()
    first = shared_limiter("mock:acct", [RateLimit(3)], clock)
    assert shared_limiter("mock:acct", [RateLimit(3)], clock) is first
    assert shared_limiter("mock:other", [RateLimit(3)], clock) is not first
    # Another clock (a test's fake time) or margin is another limiter, not a shared one.
    assert shared_limiter("mock:acct", [RateLimit(3)], FakeClock()) is not first


async def test_a_burst_of_orders_queues_instead_of_failing(
    clock: FakeClock, sqlite_url: str
) -> None:
    venue = MockVenue()
    engine = Engine(
        "mock",
        adapter_options={"venue": venue, "rate_limit": 5},
        clock=clock,
        database_url=sqlite_url,
        account_id="burst",
    )
    await engine.start()
    try:
        orders = await asyncio.gather(
            *(engine.execute(Signal("005930", "BUY", 1)) for _ in range(23))
        )
        assert all(order.status is OrderStatus.FILLED for order in orders)
        stats = engine.stats()["rate_limiter"]
        assert stats["granted"] == {"order": 23}
        assert stats["max_queue_depth"] >= 1  # how many wait at once depends on commit timing
        assert stats["limits"] == ["5/1s"]
        # Fake time advanced by the limiter alone: 23 orders at 5 per (1.02 s) window.
        assert clock.monotonic() == pytest.approx(4 * 1.02)
    finally:
        await engine.close()


async def test_bench_orderlane_never_exceeds_while_naive_bursts() -> None:
    result = await run_rate_limit(limit=40, requests=120, period=0.5)
    assert result.orderlane.max_in_window <= 40
    assert result.orderlane.rejections == 0
    assert result.orderlane.fidelity >= 0.95
    assert result.naive.max_in_window > 40
    assert result.naive.rejections > 0


async def test_the_venue_never_sees_more_than_its_limit(clock: FakeClock, sqlite_url: str) -> None:
    venue = MockVenue()
    venue.enforce_rate_limit(5, 1.0, clock.monotonic)
    engine = Engine(
        "mock",
        adapter_options={"venue": venue, "rate_limit": 5},
        clock=clock,
        database_url=sqlite_url,
        account_id="window",
    )
    await engine.start()
    try:
        orders = await asyncio.gather(
            *(engine.execute(Signal("005930", "BUY", 1)) for _ in range(30))
        )
        assert {order.status for order in orders} == {OrderStatus.FILLED}
        assert venue.max_arrivals_in_window() == 5
        assert venue.rate_limit_rejections == 0
    finally:
        await engine.close()


async def test_without_a_limiter_the_venue_refuses_a_burst(
    clock: FakeClock, sqlite_url: str
) -> None:
    venue = MockVenue()
    venue.enforce_rate_limit(5, 1.0, clock.monotonic)
    engine = Engine(
        "mock",
        adapter_options={"venue": venue},
        clock=clock,
        database_url=sqlite_url,
        account_id="naive",
    )
    await engine.start()
    try:
        await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 1)) for _ in range(10)))
        assert venue.rate_limit_rejections > 0
        assert venue.max_arrivals_in_window() > 5
    finally:
        await engine.close()


def test_bench_command_prints_both_limiters() -> None:
    import json

    from typer.testing import CliRunner

    from orderlane.cli import app

    args = ["bench", "rate-limit", "--limit", "30", "--requests", "75", "--period", "0.25"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["raw"]["orderlane"]["max_in_window"] <= 30
    assert report["raw"]["orderlane"]["rejections"] == 0
    assert report["raw"]["baseline"]["name"] == "aiolimiter.AsyncLimiter(30, 0.25)"
    assert report["baseline"] == "aiolimiter.AsyncLimiter(30, 0.25)"

    table = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert table.exit_code == 0
    assert "max in a window" in table.output
    assert "aiolimiter" in table.output


async def test_two_engines_on_one_credential_stay_under_its_limit(tmp_path: Any) -> None:
    import time

    venue = MockVenue()
    venue.enforce_rate_limit(5, 1.0, time.monotonic)
    limits = (RateLimit(5, 1.0),)
    engines = [
        Engine(
            MockAdapter(venue, rate_limits=limits),
            database_url=f"sqlite:///{tmp_path / f'{name}.db'}",
            config=EngineConfig(track=False),
        )
        for name in ("a", "b")
    ]
    for engine in engines:
        await engine.start()
    try:
        assert engines[0].limiter is engines[1].limiter
        await asyncio.gather(
            *(engine.execute(Signal("005930", "BUY", 1)) for engine in engines for _ in range(6))
        )
        assert venue.max_arrivals_in_window() <= 5
        assert venue.rate_limit_rejections == 0
    finally:
        for engine in engines:
            await engine.close()


async def test_engines_disagreeing_on_a_credentials_limit_are_refused(tmp_path: Any) -> None:
    first = Engine(
        MockAdapter(rate_limits=(RateLimit(5, 1.0),)),
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        config=EngineConfig(track=False),
    )
    second = Engine(
        MockAdapter(rate_limits=(RateLimit(50, 1.0),)),
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        config=EngineConfig(track=False),
    )
    await first.start()
    try:
        with pytest.raises(ConfigurationError, match="already limited to 5/1s"):
            await second.start()
    finally:
        await first.close()


async def test_a_closed_engine_gives_its_credentials_limiter_back(tmp_path: Any) -> None:
    # Engines on one loop and credential share a limiter while they run; once the last of them
    # closes, a new engine on that credential may declare other limits.
    def engine(limit: int, name: str) -> Engine:
        return Engine(
            MockAdapter(rate_limits=(RateLimit(limit, 1.0),)),
            database_url=f"sqlite:///{tmp_path / name}",
            config=EngineConfig(track=False, load_entry_point_plugins=False),
        )

    first, second = engine(5, "a.db"), engine(5, "b.db")
    await first.start()
    await second.start()
    assert first.limiter is second.limiter
    await first.close()
    other_limits = engine(50, "c.db")
    with pytest.raises(ConfigurationError, match="already limited to 5/1s"):
        await other_limits.start()  # the second engine still uses 5/1s
    await second.close()
    await other_limits.start()
    try:
        assert other_limits.limiter is not None
        assert [str(limit) for limit in other_limits.limiter.limits] == ["50/1s"]
        assert other_limits.limiter is not first.limiter
    finally:
        await other_limits.close()
    # The same credential again, with the first limits: a fresh limiter, not the closed one.
    again = engine(5, "d.db")
    await again.start()
    try:
        assert again.limiter is not first.limiter
    finally:
        await again.close()


# ------------------------------------------------------------------ the limiter hook


class _CountingLimiter:
    """A limiter that counts what the engine asks of it, to see the hook's choice at work."""

    def __init__(self, limits: tuple[RateLimit, ...]) -> None:
        self.limits = limits
        self.acquired: list[RequestKind] = []
        self.penalties: list[float | None] = []
        self.closed = 0

    async def acquire(self, kind: RequestKind = RequestKind.ORDER) -> None:
        self.acquired.append(kind)

    def penalize(self, retry_after: float | None = None) -> None:
        self.penalties.append(retry_after)

    def snapshot(self) -> LimiterSnapshot:
        granted = {kind.value: self.acquired.count(kind) for kind in set(self.acquired)}
        return LimiterSnapshot(limits=self.limits, backend="counting", granted=granted)

    async def close(self) -> None:
        self.closed += 1


class _CountingPlugin:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.limiter: _CountingLimiter | None = None

    @hookimpl
    def orderlane_rate_limiter(
        self, name: str, key: str, limits: tuple[RateLimit, ...], margin: float
    ) -> _CountingLimiter | None:
        self.calls.append({"name": name, "key": key, "limits": limits, "margin": margin})
        if name != "counting":
            return None
        self.limiter = _CountingLimiter(limits)
        return self.limiter


async def test_a_plugin_limiter_named_in_the_config_counts_every_request(
    clock: FakeClock, sqlite_url: str
) -> None:
    venue = MockVenue()
    plugin = _CountingPlugin()
    adapter = MockAdapter(venue, rate_limits=(RateLimit(3, 1.0),))
    config = EngineConfig(rate_limiter="counting", credential_key="desk-1", rate_limit_margin=0.05)
    async with Engine.open(
        adapter, plugins=[plugin], config=config, clock=clock, database_url=sqlite_url
    ) as engine:
        order = await engine.execute(Signal("005930", "BUY", 1))
        venue.fail_next("rate_limit")
        await engine.execute(Signal("005930", "BUY", 2))
        stats = engine.stats()["rate_limiter"]
    limiter = plugin.limiter
    assert limiter is not None
    assert order.status is OrderStatus.FILLED
    assert plugin.calls == [
        {"name": "counting", "key": "desk-1", "limits": (RateLimit(3, 1.0),), "margin": 0.05}
    ]
    assert limiter.acquired.count(RequestKind.ORDER) == 3  # the refused place was retried
    assert len(limiter.penalties) == 1
    assert limiter.closed == 1
    assert stats["backend"] == "counting"
    assert stats["granted"] == {"order": 3}


async def test_the_in_process_limiter_is_the_default_and_a_plugin_may_decline(
    clock: FakeClock, sqlite_url: str
) -> None:
    plugin = _CountingPlugin()
    adapter = MockAdapter(MockVenue(), rate_limits=(RateLimit(3, 1.0),))
    async with Engine.open(adapter, plugins=[plugin], clock=clock, database_url=sqlite_url) as e:
        assert isinstance(e.limiter, SlidingLogLimiter)
        assert isinstance(e.limiter, orderlane.RateLimiter)
        stats = e.stats()["rate_limiter"]
    assert plugin.calls[0]["name"] == "in-process"
    assert stats["backend"] == "in-process"
    assert stats["limits"] == [str(RateLimit(3, 1.0))]
    assert stats["blocked"] is None
    assert RateLimiter is SlidingLogLimiter  # the old name still imports


async def test_a_limiter_nobody_supplies_is_refused_naming_the_plugin(sqlite_url: str) -> None:
    config = EngineConfig(rate_limiter="memcached", track=False)
    engine = Engine("mock", config=config, database_url=sqlite_url)
    with pytest.raises(ConfigurationError, match=r"no rate limiter named 'memcached'.*install"):
        await engine.start()


async def test_a_plugin_answering_with_something_else_is_refused(sqlite_url: str) -> None:
    class Broken:
        @hookimpl
        def orderlane_rate_limiter(self, name: str) -> object:
            return object()

    engine = Engine("mock", plugins=[Broken()], database_url=sqlite_url)
    with pytest.raises(ConfigurationError, match="lacks the RateLimiter methods"):
        await engine.start()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate_limiter", "", "names a limiter plugin"),
        ("rate_limiter", 3, "names a limiter plugin"),
        ("rate_limiter", "red\x1bis", "not printable text"),
        ("rate_limiter_options", ["url"], "mapping of option names"),
        ("rate_limiter_options", {1: "x"}, "mapping of option names"),
    ],
)
def test_limiter_settings_are_checked_when_the_config_is_built(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EngineConfig(**{field: value})  # type: ignore[arg-type]
