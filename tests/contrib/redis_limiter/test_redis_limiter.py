"""orderlane-redis: the broker's limit, priorities and pauses counted across processes through a
real Redis (127.0.0.1:6379, or ORDERLANE_TEST_REDIS_URL), by the Redis server's clock, and what
happens when Redis goes away."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from orderlane import Engine, EngineConfig, FakeClock, OrderStatus, RateLimit, RequestKind, Signal
from orderlane.errors import ConfigurationError
from orderlane.ratelimit import max_in_window
from orderlane_mock import MockAdapter, MockVenue
from orderlane_redis import RedisLimiter, RedisLimiterOptions
from orderlane_redis.scripts import RESTAMP
from redis_limiter.proxy import Proxy

LIMIT, PERIOD = 5, 0.5
LIMITS = (RateLimit(LIMIT, PERIOD),)
WORKER = Path(__file__).with_name("limiter_worker.py")


# One request at a time: grants leave one by one, so their order is the order they were given.
ONE_BY_ONE = (RateLimit(1, 0.25),)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most 30 s) until ``condition()`` holds."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still waiting for {what}")


def make(
    redis_url: str,
    prefix: str,
    limits: tuple[RateLimit, ...] = LIMITS,
    **options: Any,
) -> RedisLimiter:
    return RedisLimiter(
        "desk", limits, options=RedisLimiterOptions(url=redis_url, prefix=prefix, **options)
    )


@pytest.fixture
async def pair(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[RedisLimiter, ...]]:
    """Two participants on one credential key: what two processes are to each other."""
    limiters = (make(redis_url, redis_prefix), make(redis_url, redis_prefix))
    yield limiters
    for limiter in limiters:
        await limiter.close()


async def test_participants_on_one_key_stay_under_the_limit_together(
    pair: tuple[RedisLimiter, RedisLimiter],
) -> None:
    times: list[float] = []

    async def send(limiter: RedisLimiter) -> None:
        await limiter.acquire(RequestKind.ORDER)
        times.append(time.monotonic())

    await asyncio.wait_for(asyncio.gather(*(send(lim) for lim in pair for _ in range(9))), 60)
    assert len(times) == 18
    assert max_in_window(times, PERIOD) <= LIMIT
    granted = [lim.snapshot().granted.get("order", 0) for lim in pair]
    assert granted == [9, 9]


async def test_a_cancel_of_one_process_goes_before_the_orders_another_has_waiting(
    redis_url: str, redis_prefix: str
) -> None:
    busy = make(redis_url, redis_prefix, ONE_BY_ONE)
    other = make(redis_url, redis_prefix, ONE_BY_ONE)
    grants: list[str] = []

    async def send(limiter: RedisLimiter, kind: RequestKind) -> None:
        await limiter.acquire(kind)
        grants.append(kind.value)

    try:
        orders = [asyncio.create_task(send(busy, RequestKind.ORDER)) for _ in range(5)]
        await until(lambda: bool(grants), "the first order")  # four wait in the busy process
        late = [
            asyncio.create_task(send(other, RequestKind.INQUIRY)),
            asyncio.create_task(send(other, RequestKind.CANCEL)),
        ]
        await asyncio.wait_for(asyncio.gather(*orders, *late), 60)
    finally:
        await busy.close()
        await other.close()
    assert grants == ["order", "cancel", "order", "order", "order", "order", "inquiry"]


async def test_inquiries_keep_their_share_across_processes(
    redis_url: str, redis_prefix: str
) -> None:
    busy = make(redis_url, redis_prefix, ONE_BY_ONE, inquiry_share=0.25)
    tracker = make(redis_url, redis_prefix, ONE_BY_ONE, inquiry_share=0.25)
    grants: list[str] = []

    async def send(limiter: RedisLimiter, kind: RequestKind) -> None:
        await limiter.acquire(kind)
        grants.append(kind.value)

    try:
        orders = [asyncio.create_task(send(busy, RequestKind.ORDER)) for _ in range(9)]
        await until(lambda: bool(grants), "the first order")
        polls = [asyncio.create_task(send(tracker, RequestKind.INQUIRY)) for _ in range(2)]
        await asyncio.wait_for(asyncio.gather(*orders, *polls), 60)
    finally:
        await busy.close()
        await tracker.close()
    # At least one grant in four goes to a waiting inquiry although orders wait the whole time
    # (fewer orders between them if a permit went unused, as on a machine that stalls).
    inquiries = [i for i, kind in enumerate(grants) if kind == "inquiry"]
    assert len(inquiries) == 2
    assert inquiries[0] <= 4
    assert inquiries[1] - inquiries[0] <= 5
    assert grants[-1] == "order"  # they did not wait until the orders were done


async def test_a_rate_limit_answer_in_one_process_pauses_the_other(
    pair: tuple[RedisLimiter, RedisLimiter], redis_url: str, redis_prefix: str
) -> None:
    hit, other = pair
    await hit.acquire()  # connected, as a process that just sent a request
    hit.penalize(0.6)
    await asyncio.sleep(0)
    started = time.monotonic()
    await asyncio.wait_for(other.acquire(), 30)
    # The pause runs on the Redis server's clock; the other process's wait covers it.
    assert time.monotonic() - started >= 0.5
    assert hit.snapshot().pauses == 1
    client = redis.Redis.from_url(redis_url)
    assert client.hget(f"{redis_prefix}:{{desk}}:state", "pauses") == b"1"
    client.close()


async def test_permits_are_stamped_by_the_redis_server_clock_not_the_engines(
    redis_url: str, redis_prefix: str, sqlite_url: str
) -> None:
    """An engine on a fake clock (five years off, and frozen) still gets permits in real time,
    and the log holds Redis's own time."""
    clock = FakeClock(datetime(2001, 1, 1, tzinfo=UTC))
    venue = MockVenue()
    adapter = MockAdapter(venue, rate_limits=LIMITS)
    config = EngineConfig(
        rate_limiter="redis",
        rate_limiter_options={"url": redis_url, "prefix": redis_prefix},
        credential_key="desk",
        track=False,
    )
    async with Engine.open(adapter, config=config, clock=clock, database_url=sqlite_url) as e:
        orders = await asyncio.wait_for(
            asyncio.gather(*(e.execute(Signal("005930", "BUY", 1)) for _ in range(LIMIT + 2))), 60
        )
        stats = e.stats()["rate_limiter"]
    assert [order.status for order in orders] == [OrderStatus.FILLED] * (LIMIT + 2)
    assert stats["backend"] == "redis"
    assert stats["granted"] == {"order": LIMIT + 2}
    client = redis.Redis.from_url(redis_url)
    seconds, micros = client.time()
    log_key = f"{redis_prefix}:{{desk}}:log:0"
    logged = [score for _, score in client.zrange(log_key, 0, -1, withscores=True)]
    client.close()
    server_now = seconds * 1_000_000 + micros
    assert logged
    assert all(0 <= server_now - stamp < 60_000_000 for stamp in logged)
    assert clock.now().year == 2001


async def test_a_killed_connection_is_reopened_and_every_request_still_waits_its_turn(
    pair: tuple[RedisLimiter, RedisLimiter], redis_url: str
) -> None:
    times: list[float] = []

    async def send(limiter: RedisLimiter) -> None:
        await limiter.acquire()
        times.append(time.monotonic())

    tasks = [asyncio.create_task(send(lim)) for lim in pair for _ in range(8)]
    await until(lambda: len(times) >= 3, "three requests")
    admin = redis.Redis.from_url(redis_url)
    killed = 0
    for client in admin.client_list():
        if client["name"].startswith("orderlane-limiter:"):
            killed += admin.client_kill_filter(_id=client["id"])
    admin.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert killed >= 1
    assert len(times) == 16
    assert max_in_window(times, PERIOD) <= LIMIT


async def test_redis_away_nothing_is_sent_orders_wait_and_go_when_it_returns(
    redis_url: str, redis_prefix: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    proxy = Proxy(str(target.get("host", "127.0.0.1")), int(target.get("port", 6379)))
    await proxy.start()
    venue = MockVenue()
    venue.enforce_rate_limit(LIMIT, PERIOD, time.monotonic)
    adapter = MockAdapter(venue, rate_limits=LIMITS)
    config = EngineConfig(
        rate_limiter="redis",
        rate_limiter_options={"url": proxy.url, "prefix": redis_prefix, "socket_timeout": 0.5},
        credential_key="desk",
        track=False,
    )
    caplog.set_level(logging.WARNING, logger="orderlane.redis")
    try:
        async with Engine.open(adapter, config=config, database_url=sqlite_url) as engine:
            signals = [Signal("005930", "BUY", 1, signal_id=f"s{i}") for i in range(12)]
            runs = [asyncio.create_task(engine.execute(signal)) for signal in signals]
            await until(lambda: len(venue.arrival_times) >= 3, "three orders at the venue")
            await proxy.stop()
            stopped = time.monotonic()
            await asyncio.sleep(1.2)
            blocked = engine.stats()["rate_limiter"]["blocked"]
            sent_while_away = [t for t in venue.arrival_times if t > stopped + 0.2]
            pending = sum(1 for run in runs if not run.done())
            await proxy.start()
            restarted = time.monotonic()
            orders = await asyncio.wait_for(asyncio.gather(*runs), 60)
            stats = engine.stats()["rate_limiter"]
            stored = await engine.orders(limit=100)
    finally:
        await proxy.stop()
    assert sent_while_away == []
    assert pending > 0
    assert blocked is not None
    assert "unreachable since" in blocked
    assert "none is sent" in blocked
    assert stats["blocked"] is None
    assert stats["details"]["outages"] >= 1
    assert "is unreachable" in caplog.text
    assert "answers again" in caplog.text
    assert [order.status for order in orders] == [OrderStatus.FILLED] * 12
    assert len(stored) == 12
    assert any(t > restarted for t in venue.arrival_times)
    assert venue.max_arrivals_in_window() <= LIMIT
    assert venue.rate_limit_rejections == 0


async def test_processes_disagreeing_on_the_limits_are_refused(
    redis_url: str, redis_prefix: str
) -> None:
    first = make(redis_url, redis_prefix)
    second = RedisLimiter(
        "desk",
        (RateLimit(LIMIT * 2, PERIOD),),
        options=RedisLimiterOptions(url=redis_url, prefix=redis_prefix),
    )
    try:
        await first.acquire()
        with pytest.raises(ConfigurationError, match="must declare the same limits"):
            await asyncio.wait_for(second.acquire(), 30)
    finally:
        await first.close()
        await second.close()


async def test_a_permit_whose_window_passed_before_its_request_left_is_not_restamped(
    pair: tuple[RedisLimiter, RedisLimiter], redis_url: str, redis_prefix: str
) -> None:
    """A process that resumes more than a window after its grant must not send on that permit:
    its slot may have gone to another process meanwhile."""
    limiter = pair[0]
    await limiter.acquire()
    client = redis.Redis.from_url(redis_url)
    log_key = f"{redis_prefix}:{{desk}}:log:0"
    [(permit, stamp)] = client.zrange(log_key, 0, -1, withscores=True)
    restamp = client.register_script(RESTAMP)
    span = round(PERIOD * 1.02 * 1_000_000)
    assert restamp(keys=[log_key], args=[permit, span]) == 1  # in its window: stamped again
    restamped = client.zscore(log_key, permit)
    assert restamped is not None
    assert restamped > stamp
    await asyncio.sleep(PERIOD * 1.1)
    assert restamp(keys=[log_key], args=[permit, span]) == 0  # its window passed
    assert client.zscore(log_key, permit) == restamped
    client.close()


def test_unknown_options_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) \['host'\].*'url'"):
        RedisLimiterOptions.from_mapping({"host": "127.0.0.1"})


def test_the_url_password_stays_out_of_repr_and_stats() -> None:
    limiter = RedisLimiter(
        "desk", LIMITS, options=RedisLimiterOptions(url="redis://:s3cret@127.0.0.1:6379/2")
    )
    assert "s3cret" not in repr(limiter)
    assert "s3cret" not in repr(limiter.options)
    assert "s3cret" not in str(limiter.snapshot())
    assert limiter.snapshot().details["redis"] == "127.0.0.1:6379/2"


# ------------------------------------------------------------------ several processes


# The venue is another process on a machine the test suite keeps busy: what it stamps as an
# arrival can come tens of milliseconds after the permit. The margin is the limiter's allowance
# for that time (the 2% default suits a broker over a quiet network).
PROCESS_MARGIN = 0.1


async def run_processes(
    limiters: list[str], redis_url: str, prefix: str, processes: int = 4, each: int = 8
) -> dict[str, list[float]]:
    """``processes`` worker processes on one credential key send ``each`` requests to a venue
    (this process) that timestamps every arrival, once through each of ``limiters``, one
    limiter after the other; returns the arrival times under each."""
    arrivals: dict[str, list[float]] = {name: [] for name in limiters}
    connected: list[asyncio.StreamWriter] = []
    phase_done = asyncio.Event()

    async def venue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(writer)
        if len(connected) == processes:
            phase_done.set()
        while line := await reader.readline():
            times = arrivals[line.decode().strip()]
            times.append(time.monotonic())
            if len(times) == processes * each:
                phase_done.set()

    server = await asyncio.start_server(venue, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    args = [",".join(limiters), redis_url, prefix, "desk", str(each), str(port)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), *args, str(LIMIT), str(PERIOD), str(PROCESS_MARGIN)
        )
        for _ in range(processes)
    ]
    try:
        for _ in limiters:  # every process connected, then each phase's last arrival
            await asyncio.wait_for(phase_done.wait(), 90)
            phase_done.clear()
            for writer in connected:
                writer.write(b"go\n")
        await asyncio.wait_for(phase_done.wait(), 90)
        codes = await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers)), 90)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        server.close()
        await server.wait_closed()
    assert codes == [0] * processes
    return arrivals


async def test_four_processes_on_one_key_stay_under_the_venues_limit_together(
    redis_url: str, redis_prefix: str
) -> None:
    arrivals = await run_processes(["redis", "in-process"], redis_url, redis_prefix)
    assert [len(times) for times in arrivals.values()] == [32, 32]
    assert max_in_window(arrivals["redis"], PERIOD) <= LIMIT
    # What the plugin buys: each process's own limiter keeps to the limit, together they don't.
    assert max_in_window(arrivals["in-process"], PERIOD) > LIMIT
