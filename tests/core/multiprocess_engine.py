"""One engine process of the multi-process tests: ``python tests/multiprocess_engine.py CONFIG``.

It opens an engine (kis-paper, pointed at a fake KIS venue in its own process) on the shared
journal, recovery running first, and reports on stdout, one line each, written through at once
(the test may kill the process with SIGKILL at any moment):

- (with ``wait_for_start``: nothing until ``start`` comes on stdin: a replacement started in
  advance, so that its engine opens the moment the test wants it)
- ``ready <engine id>`` once started (recovery done), then it waits for ``go`` on stdin;
- ``recovery <order id> <before> <after> <action>`` for each order recovery found open;
- ``ack <signal id> <order id> <status>`` once ``execute`` returned (``error <signal id>
  <exception>`` if it raised);
- ``executed`` once every signal returned;
- ``done <orders left open>`` once the orders it acknowledged are settled (what rests at the
  venue is cancelled) and the engine is closed.

The config (JSON) names the database, the account, the adapter's options, the signals and the
engine settings the test wants (the limiter among them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from orderlane import Engine, EngineConfig, Order, RateLimit, RetryConfig, Signal
from orderlane.contract import Operation
from orderlane.model import OrderStatus

_RESTING = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


def emit(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _signal(spec: dict[str, Any]) -> Signal:
    price = spec.get("limit_price")
    return Signal(
        spec["symbol"],
        spec["side"],
        int(spec["quantity"]),
        order_type=spec.get("order_type", "MARKET"),
        limit_price=None if price is None else Decimal(price),
        signal_id=spec["signal_id"],
    )


def _config(config: dict[str, Any]) -> EngineConfig:
    settings: dict[str, Any] = {
        "account_id": config["account_id"],
        "database_url": config["database_url"],
        "load_entry_point_plugins": True,
        "rate_limits": (RateLimit(int(config["rate_limit"]), 1.0),),
        "credential_key": config["credential_key"],
        "rate_limit_margin": float(config.get("rate_limit_margin", 0.02)),
        "engine_lease": float(config.get("engine_lease", 3.0)),
        "poll_interval": 0.3,
        "lookup_interval": 0.5,
        "push_safety_interval": 2.0,
        "instrument_hold_timeout": 30.0,
        "instrument_hold_poll": 0.1,
        # A busy venue answers "too many requests" now and then: keep trying, it is not a
        # reason to give up an order.
        "retry": {
            operation: RetryConfig(max_attempts=12, initial_delay=0.2, max_delay=1.0, jitter=0.5)
            for operation in (Operation.PLACE, Operation.CANCEL, Operation.LOOKUP)
        },
    }
    limiter = config.get("rate_limiter")
    if limiter is not None:  # a limiter plugin (EngineConfig.rate_limiter, orderlane >= 0.x)
        settings["rate_limiter"] = limiter
        settings["rate_limiter_options"] = config.get("rate_limiter_options", {})
    return EngineConfig(**settings)


async def _settle(engine: Engine, order_ids: set[str], seconds: float) -> int:
    """Cancel what of ours rests at the venue; wait (at most ``seconds``) until all ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    asked: set[str] = set()
    while True:
        open_orders = [o for o in await engine.open_orders() if o.id in order_ids]
        if not open_orders or loop.time() >= deadline:
            return len(open_orders)
        for order in open_orders:
            if order.status in _RESTING and order.id not in asked:
                asked.add(order.id)
                try:
                    await engine.cancel(order.id)
                except Exception as error:  # the next pass asks again
                    emit(f"note cancel {order.id} {type(error).__name__}")
                    asked.discard(order.id)
        await asyncio.sleep(0.2)


async def _line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def run(config: dict[str, Any]) -> None:
    if config.get("wait_for_start", False) and (await _line()).strip() != "start":
        return  # a replacement kept in reserve, not needed
    engine = Engine("kis-paper", config=_config(config), adapter_options=config["options"])
    beat = engine.journal.heartbeat
    beats = logging.getLogger("multiprocess.heartbeat")

    async def heartbeat(*args: Any, **kwargs: Any) -> None:  # logged: a lapsed lease is checked
        now = args[0] if args else kwargs["now"]
        started = asyncio.get_running_loop().time()
        await beat(*args, **kwargs)
        beats.info(
            "heartbeat %s stored in %.3fs",
            now.isoformat(),
            asyncio.get_running_loop().time() - started,
        )

    engine.journal.heartbeat = heartbeat  # type: ignore[method-assign]
    await engine.start()
    for change in engine.last_recovery:
        emit(
            f"recovery {change.order_id} {change.before.value} {change.after.value} {change.action}"
        )
    emit(f"ready {getattr(engine.journal, 'engine_id', '-')}")
    if config.get("wait_for_go", True) and (await _line()).strip() != "go":
        await engine.close()
        return
    signals = [_signal(spec) for spec in config["signals"]]
    gate = asyncio.Semaphore(max(1, int(config.get("concurrency", 4))))
    acked: set[str] = set()

    async def one(signal: Signal) -> None:
        async with gate:
            try:
                order: Order = await engine.execute(signal)
            except Exception as error:
                emit(f"error {signal.signal_id} {type(error).__name__}: {error}")
                return
            acked.add(order.id)
            emit(f"ack {signal.signal_id} {order.id} {order.status.value}")

    await asyncio.gather(*(one(signal) for signal in signals))
    emit("executed")
    left = await _settle(engine, acked, float(config.get("settle_seconds", 20.0)))
    await engine.close()
    emit(f"done {left}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
