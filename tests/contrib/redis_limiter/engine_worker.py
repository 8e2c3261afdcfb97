"""One engine process of the several-engines test: an engine on the kis-live adapter, against the
fake KIS venue of the test, on the test's PostgreSQL journal and Redis limiter. It starts, says
"ready", waits for a line on its standard input, executes its signals all at once, waits until
every order it got is FILLED in the journal, and prints what it saw as one JSON line.

    python engine_worker.py SETTINGS_JSON_FILE
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from orderlane import Engine, EngineConfig, OrderStatus, RateLimit, RequestKind, Signal


async def main(settings: dict[str, Any]) -> None:
    venue = settings["venue"]
    options = {
        "app_key": venue["app_key"],
        "app_secret": venue["app_secret"],
        "account": venue["account"],
        "rest_url": venue["rest_url"],
        "ws_url": venue["ws_url"],
        "live_trading": venue["account"],
        "token_cache": settings["token_cache"],
        "timeout": "10",
        "new_order_lag": "0",
        "push": False,
    }
    config = EngineConfig(
        account_id="desk",
        credential_key="kis-live:desk",
        rate_limits=(RateLimit(settings["limit"], 1.0),),
        rate_limit_margin=settings["margin"],
        rate_limiter=settings["limiter"],
        rate_limiter_options={"url": settings["redis_url"], "prefix": settings["prefix"]},
        poll_interval=0.25,
        order_timeout=120.0,
        load_entry_point_plugins=True,
    )
    async with Engine.open(
        "kis-live", adapter_options=options, config=config, database_url=settings["database_url"]
    ) as engine:
        # One order first, so the connection to the venue and the token are there when the
        # measured run starts (a new connection's setup runs between the permit and the bytes).
        warm = await engine.execute(Signal("005930", "BUY", 1, signal_id=settings["warm_up"]))
        for _ in range(600):
            current = await engine.get_order(warm.id)
            if current is not None and current.status is OrderStatus.FILLED:
                break
            await asyncio.sleep(0.1)
        departures: list[float] = []
        limiter = engine.limiter
        assert limiter is not None

        async def permit(kind: RequestKind = RequestKind.ORDER) -> None:
            await limiter.acquire(kind)
            departures.append(time.monotonic())

        engine.ctx.use_limiter(permit)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        signals = [
            Signal(symbol, "BUY", quantity, signal_id=signal_id)
            for signal_id, symbol, quantity in settings["signals"]
        ]
        orders = await asyncio.gather(*(engine.execute(signal) for signal in signals))
        for _ in range(1200):  # the tracker books the fills its inquiries find (at most 2 min)
            stored = [await engine.get_order(order.id) for order in orders]
            if all(o is not None and o.status is OrderStatus.FILLED for o in stored):
                break
            await asyncio.sleep(0.1)
        stats = engine.stats()["rate_limiter"]
    result = {
        "orders": [[o.signal_id, o.id] for o in orders],
        "limiter": {key: stats[key] for key in ("backend", "granted", "pauses", "blocked")},
        "departures": departures,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
