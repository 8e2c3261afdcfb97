"""One process of the multi-process limiter test. It connects to the test's venue, and for each
limiter named (redis, in-process), waits for "go", then sends COUNT requests, each after a
permit from that limiter, as lines naming the limiter.

    python limiter_worker.py LIMITERS REDIS_URL PREFIX KEY COUNT VENUE_PORT LIMIT PERIOD MARGIN
"""

from __future__ import annotations

import asyncio
import sys

from orderlane import RateLimit, RequestKind, SystemClock
from orderlane.limiter import RateLimiter
from orderlane.ratelimit import SlidingLogLimiter
from orderlane_redis import RedisLimiter, RedisLimiterOptions


async def main(argv: list[str]) -> None:
    names, url, prefix, key, count, port, limit, period, margin = argv
    limits = (RateLimit(int(limit), float(period)),)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    for name in names.split(","):
        limiter: RateLimiter
        if name == "redis":
            options = RedisLimiterOptions(url=url, prefix=prefix)
            limiter = RedisLimiter(key, limits, margin=float(margin), options=options)
        else:
            limiter = SlidingLogLimiter(limits, SystemClock(), margin=float(margin), name=key)
        await reader.readline()  # every process is ready: go

        async def send(limiter: RateLimiter = limiter, line: bytes = f"{name}\n".encode()) -> None:
            await limiter.acquire(RequestKind.ORDER)
            writer.write(line)

        await asyncio.gather(*(send() for _ in range(int(count))))
        await writer.drain()
        await limiter.close()
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
