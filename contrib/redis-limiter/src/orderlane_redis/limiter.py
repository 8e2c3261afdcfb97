"""The Redis limiter: one sliding log, one priority queue and one pause per broker credential,
shared by every process that trades it.

Each engine's limiter is one participant. Its requests wait locally, by class (cancels, then
orders and token requests, then inquiries), and one task per limiter asks Redis, through the
``ACQUIRE`` script, for a permit for the classes it has waiting. The script decides on the Redis
server, atomically and by the server's clock (``TIME``): no permit while the broker's pause runs
or while a limit's window is full; otherwise the permit goes to the first waiter of the first
class across all processes (an inquiry first whenever ``1 / inquiry_share`` grants went by
without one), and is logged in every limit's window. When the granted request resumes, its permit
is logged again at that moment (``RESTAMP``), so a process that resumes late moves its logged time
with it; a request whose new stamp cannot be written takes a new permit instead of going out.

Redis unreachable: no permit, so no request goes out; requests wait (``engine.stats()`` says so in
``blocked``, the log says so once per outage) and proceed when Redis answers again. A permit the
script granted whose answer was lost is counted and unused: the broker sees fewer requests, never
more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from orderlane import LimiterSnapshot, RateLimit, RequestKind
from orderlane.errors import ConfigurationError
from orderlane.ratelimit import PRIORITY, LimiterStats
from orderlane_redis import scripts

__all__ = ["RedisLimiter", "RedisLimiterOptions"]

log = logging.getLogger("orderlane.redis")

BACKEND = "redis"
CLASSES = (0, 1, 2)  # cancels, orders (and token requests), inquiries


@attrs.frozen
class RedisLimiterOptions:
    """``EngineConfig.rate_limiter_options`` of the Redis limiter."""

    #: The Redis server every process on the credential uses (may hold a password: never logged).
    url: str = attrs.field(default="redis://127.0.0.1:6379/0", repr=False)
    #: Prefix of the keys (``<prefix>:{credential key}:...``).
    prefix: str = "orderlane:limiter"
    #: Least share of grants that go to waiting inquiries while orders also wait.
    inquiry_share: float = 0.1
    #: Seconds a waiting process keeps its place in the queue without asking again.
    lease: float = 5.0
    #: Seconds to wait for Redis's answer, or to connect, before counting it unreachable.
    socket_timeout: float = 2.0
    #: Most seconds between attempts while Redis is unreachable.
    retry_interval: float = 0.5
    #: Seconds between asks while another process's request is first in line.
    turn_poll: float = 0.005

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> RedisLimiterOptions:
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {unknown} for the redis rate limiter; it takes {sorted(known)}"
            )
        return cls(**dict(options))


@attrs.define
class _Waiter:
    kind: RequestKind
    future: asyncio.Future[int]
    since: float


def where(url: str) -> str:
    """Host, port and database of a Redis URL, without credentials (for logs and stats)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 6379}{parts.path or '/0'}"


class RedisLimiter:
    """A :class:`~orderlane.RateLimiter` whose log, queue and pause live in Redis."""

    def __init__(
        self,
        key: str,
        limits: Sequence[RateLimit],
        *,
        margin: float = 0.02,
        options: RedisLimiterOptions | None = None,
    ) -> None:
        options = options or RedisLimiterOptions()
        if not 0 <= margin < 1:
            raise ConfigurationError("rate-limit margin is a fraction between 0 and 1")
        if not 0 < options.inquiry_share <= 1:
            raise ConfigurationError("inquiry_share is a fraction in (0, 1]")
        if options.lease <= 0 or options.socket_timeout <= 0 or options.retry_interval <= 0:
            raise ConfigurationError("lease, socket_timeout and retry_interval must be positive")
        self.key = key
        self.limits = tuple(limits)
        self.margin = margin
        self.options = options
        self.where = where(options.url)
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        base = f"{options.prefix}:{{{key}}}"
        self._log_keys = [f"{base}:log:{index}" for index in range(len(self.limits))]
        self._pause_key, self._state_key = f"{base}:pause", f"{base}:state"
        self._queue_keys = [f"{base}:q{c}" for c in CLASSES]
        self._keys = [
            *self._queue_keys,
            f"{base}:lease",
            self._pause_key,
            self._state_key,
            *self._log_keys,
        ]
        spans = [round(limit.period * (1.0 + margin) * 1_000_000) for limit in self.limits]
        self._spans = spans
        self._limit_args = [
            value
            for span, lim in zip(spans, self.limits, strict=True)
            for value in (span, lim.limit)
        ]
        self._signature = f"{', '.join(map(str, self.limits))} (margin {margin:g})"
        self._every = max(1, round(1 / options.inquiry_share))
        self._ttl_ms = round((max(spans, default=0) * 2) / 1000 + options.lease * 1000)
        self._lease_us = round(options.lease * 1_000_000)
        self._waiting: dict[int, deque[_Waiter]] = {c: deque() for c in CLASSES}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._pending_pause = 0.0
        self._flushes: set[asyncio.Task[None]] = set()
        self._blocked_since: datetime | None = None
        self._outages = 0
        self._expired = 0
        self._closed = False
        self.stats = LimiterStats()

    def __repr__(self) -> str:
        limits = ", ".join(map(str, self.limits)) or "unlimited"
        return f"RedisLimiter({self.key!r}, {limits}, redis={self.where})"

    # ---------------------------------------------------------------- the protocol

    async def acquire(self, kind: RequestKind = RequestKind.ORDER) -> None:
        """Wait for a permit for one request of ``kind``, counted across every process."""
        if not self.limits:
            return
        if self._closed:
            raise ConfigurationError("the redis rate limiter is closed (its engine closed)")
        while True:
            permit = await self._granted(kind)
            try:
                stamped = await self._script("restamp", scripts.RESTAMP)(
                    keys=self._log_keys, args=[permit, *self._spans]
                )
            except (RedisError, OSError) as error:
                # Its logged time may be older than its departure: it takes a new permit.
                self._unreachable(error)
                continue
            self._reachable()
            if int(stamped):
                return
            self._expired += 1
            log.warning(
                "a permit of %r expired before its request resumed (this process ran more than "
                "a window late); the request waits for another",
                self.key,
            )

    def penalize(self, retry_after: float | None = None) -> None:
        """The broker answered "too many requests": every process pauses, on Redis's clock."""
        if not self.limits:
            return
        pause = retry_after if retry_after and retry_after > 0 else self._longest_period()
        self._pending_pause = max(self._pending_pause, pause)
        log.warning("broker rate limit hit; every process on %r pauses %.2fs", self.key, pause)
        task = asyncio.get_running_loop().create_task(self._flush_pause())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def snapshot(self) -> LimiterSnapshot:
        stats = self.stats
        blocked = None
        if self._blocked_since is not None:
            blocked = (
                f"redis {self.where} unreachable since {self._blocked_since.isoformat()}: "
                f"{self.queue_depth} requests wait for a permit, none is sent"
            )
        return LimiterSnapshot(
            limits=self.limits,
            backend=BACKEND,
            queue_depth=self.queue_depth,
            max_queue_depth=stats.max_waiting,
            granted=stats.granted,
            mean_wait_s=stats.mean_wait,
            max_wait_s=stats.max_wait,
            pauses=stats.pauses,
            blocked=blocked,
            details={
                "redis": self.where,
                "key": self.key,
                "outages": self._outages,
                "expired_permits": self._expired,
            },
        )

    async def close(self) -> None:
        """Stop asking, give up this process's places in the queue and disconnect."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in self._waiting.values():
            for waiter in waiters:
                waiter.future.cancel()
            waiters.clear()
        for flush in list(self._flushes):
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await flush
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(RedisError, OSError):
            entries = [f"{self.member}/{c}" for c in CLASSES]
            async with client.pipeline(transaction=False) as pipe:
                for c in CLASSES:
                    pipe.zrem(self._queue_keys[c], entries[c])
                pipe.hdel(self._keys[3], *entries)
                await pipe.execute()
        await client.aclose()

    # ---------------------------------------------------------------- waiting

    @property
    def queue_depth(self) -> int:
        return sum(1 for waiters in self._waiting.values() for w in waiters if not w.future.done())

    async def _granted(self, kind: RequestKind) -> int:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(kind, loop.create_future(), loop.time())
        self._waiting[PRIORITY[kind]].append(waiter)
        depth = self.queue_depth
        self.stats.waiting = depth
        self.stats.max_waiting = max(self.stats.max_waiting, depth)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name=f"orderlane-redis-{self.key}")
        return await waiter.future  # a cancelled waiter is skipped, and takes no permit

    def _count(self, c: int) -> int:
        return sum(1 for waiter in self._waiting[c] if not waiter.future.done())

    def _first(self, c: int) -> _Waiter | None:
        waiters = self._waiting[c]
        while waiters and waiters[0].future.done():
            waiters.popleft()
        return waiters[0] if waiters else None

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            counts = [self._count(c) for c in CLASSES]
            if not any(counts):
                self.stats.waiting = 0
                return
            self._wake.clear()
            try:
                await self._send_pause()
                answer = await self._script("acquire", scripts.ACQUIRE)(
                    keys=self._keys,
                    args=[
                        self.member,
                        " ".join(map(str, counts)),
                        self._lease_us,
                        self._every,
                        self._signature,
                        self._ttl_ms,
                        *self._limit_args,
                    ],
                )
            except (RedisError, OSError) as error:
                self._unreachable(error)
                failures += 1
                await self._sleep(min(self.options.retry_interval, 0.05 * 2**failures))
                continue
            failures = 0
            self._reachable()
            status = int(answer[0])
            if status == 1:
                self._hand_out(int(answer[1]), int(answer[2]), loop.time())
            elif status == 2:
                self._refuse_all(answer[1])
                return
            else:
                wait = int(answer[1])
                delay = self.options.turn_poll if wait < 0 else wait / 1_000_000
                await self._sleep(min(delay, self.options.lease / 2))

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a request of a class not waiting yet arrives."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _hand_out(self, c: int, permit: int, now: float) -> None:
        waiter = self._first(c)
        if waiter is None:  # its caller gave up meanwhile: the permit stays unused
            return
        self._waiting[c].popleft()
        kind = waiter.kind.value
        self.stats.granted[kind] = self.stats.granted.get(kind, 0) + 1
        waited = now - waiter.since
        self.stats.total_wait += waited
        self.stats.max_wait = max(self.stats.max_wait, waited)
        self.stats.waited += 1
        self.stats.waiting = self.queue_depth
        waiter.future.set_result(permit)

    def _refuse_all(self, agreed: bytes | str) -> None:
        text = agreed.decode() if isinstance(agreed, bytes) else str(agreed)
        error = ConfigurationError(
            f"broker credential {self.key!r} is limited to {text} by another process on redis "
            f"{self.where}; this one asks for {self._signature}. Every process on one "
            "credential must declare the same limits (or use another EngineConfig.credential_key)."
        )
        for waiters in self._waiting.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
            waiters.clear()

    # ---------------------------------------------------------------- pauses

    async def _flush_pause(self) -> None:
        try:
            await self._send_pause()
        except (RedisError, OSError) as error:
            self._unreachable(error)  # the dispatcher sends it before its next ask

    async def _send_pause(self) -> None:
        pause, self._pending_pause = self._pending_pause, 0.0
        if pause <= 0:
            return
        try:
            applied = await self._script("penalize", scripts.PENALIZE)(
                keys=[self._pause_key, self._state_key], args=[round(pause * 1_000_000)]
            )
        except BaseException:
            self._pending_pause = max(self._pending_pause, pause)
            raise
        if int(applied):
            self.stats.pauses += 1

    def _longest_period(self) -> float:
        return max((limit.period for limit in self.limits), default=1.0)

    # ---------------------------------------------------------------- redis

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self._redis().register_script(source)
        return script

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            timeout = self.options.socket_timeout
            self._client = aioredis.Redis.from_url(
                self.options.url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),  # a dropped connection is reopened once at once
                client_name=f"orderlane-limiter:{self.member}",
            )
        return self._client

    def _unreachable(self, error: BaseException) -> None:
        if self._blocked_since is not None:
            return
        self._blocked_since = datetime.now(UTC)
        self._outages += 1
        log.warning(
            "redis %s is unreachable (%s: %s): %d broker requests of %r wait for a permit; "
            "none is sent until redis answers",
            self.where,
            type(error).__name__,
            str(error)[:200],
            max(1, self.queue_depth),
            self.key,
        )

    def _reachable(self) -> None:
        since, self._blocked_since = self._blocked_since, None
        if since is not None:
            down = (datetime.now(UTC) - since).total_seconds()
            log.warning(
                "redis %s answers again after %.1fs; the %d waiting requests of %r proceed",
                self.where,
                down,
                self.queue_depth,
                self.key,
            )
