"""FakeClock: simulated time moves only when the event loop is idle, never across I/O in flight."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import pytest

from orderlane import FakeClock
from orderlane.idle import LoopWatch


@pytest.fixture
async def echo() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A connection to an echo server on 127.0.0.1, in this process."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    yield reader, writer
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_time_stands_still_across_a_loopback_round_trip(
    echo: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    reader, writer = echo
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(1.0))

    for _ in range(50):  # far more loop turns than any fixed settling budget
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"ping\n"
        assert clock.monotonic() == 0.0

    await sleeper
    assert clock.monotonic() == 1.0


async def test_time_stands_still_while_a_thread_job_runs() -> None:
    clock = FakeClock()
    release = threading.Event()
    sleeper = asyncio.create_task(clock.sleep(5.0))
    loop = asyncio.get_running_loop()
    job = loop.run_in_executor(None, release.wait, 10.0)
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # real time: the loop waits for the thread, not idle
    assert clock.monotonic() == 0.0
    assert not sleeper.done()

    release.set()
    assert await job is True
    await sleeper
    assert clock.monotonic() == 5.0


async def test_a_dns_lookup_in_flight_holds_time() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(2.0))
    found = await asyncio.get_running_loop().getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert found
    assert clock.monotonic() == 0.0
    await sleeper
    assert clock.monotonic() == 2.0


async def test_sleepers_wake_in_order_and_overlap() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    await asyncio.gather(nap("late", 3.0), nap("early", 1.0), nap("also early", 1.0))

    assert woke == [("early", 1.0), ("also early", 1.0), ("late", 3.0)]
    assert clock.sleeps == [3.0, 1.0, 1.0]


async def test_a_cancelled_sleeper_leaves_the_others_alone() -> None:
    clock = FakeClock()
    first = asyncio.create_task(clock.sleep(1.0))
    second = asyncio.create_task(clock.sleep(2.0))
    await asyncio.sleep(0)
    first.cancel()
    await second
    assert first.cancelled()
    assert clock.monotonic() == 2.0


async def test_a_real_timer_does_not_hold_simulated_time() -> None:
    clock = FakeClock()
    loop = asyncio.get_running_loop()
    far = loop.call_later(3600, lambda: None)
    try:
        await asyncio.wait_for(clock.sleep(60.0), 5.0)
    finally:
        far.cancel()
    assert clock.monotonic() == 60.0


async def test_advance_by_hand_wakes_the_sleepers_it_passed() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(10.0))
    await asyncio.sleep(0)
    clock.advance(30.0)
    await sleeper
    assert clock.monotonic() == 30.0
    assert "monotonic=30" in repr(clock)


async def test_a_loop_without_a_selector_settles_by_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop and the proactor loop have no selector to watch: sleepers count loop turns.
    monkeypatch.setattr(LoopWatch, "install", classmethod(lambda cls, loop: None))
    clock = FakeClock()
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    await asyncio.gather(nap(2.0), nap(1.0))
    assert woke == [1.0, 2.0]
