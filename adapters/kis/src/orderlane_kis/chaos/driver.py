"""The engine process of a crash trial: ``python -m orderlane_kis.chaos.driver CONFIG.json``.

It opens an engine on the trial's database (recovery runs first), executes the signals it is
given a few at a time, acknowledges each on stdout once ``execute`` returned, then cancels what
still rests at the venue and waits for every order to settle. What it prints, one line each:
``ready``, ``ack <signal id> <order id> <status>``, ``kill <point>``, ``done <open orders>``.

The trial kills it with SIGKILL from outside (random moments), or it kills itself at an aimed
point when ``ORDERLANE_CHAOS_KILL=<point>:<n>`` names one: at the n-th passage of that point
it prints ``kill <point>`` and sends itself SIGKILL. The points sit in this module only (the
adapter's place hook and the journal's commit, seen from subclasses), never in the engine:

- ``before_send``: in the place hook, SUBMITTING committed, nothing sent yet;
- ``after_accept``: in the place hook, the venue's acceptance received, not yet committed;
- ``group_commit``: in the journal's writer thread, just before the COMMIT of a transaction
  that holds several orders' changes.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from orderlane import BrokerContext, Engine, EngineConfig, Order, OrderSnapshot, Signal, hookimpl
from orderlane.journal.sql import SqlJournal
from orderlane.journal.writer import Writer
from orderlane.model import OrderStatus
from orderlane_kis.adapter import KisAdapter
from orderlane_kis.chaos.plan import KILL_ENV
from orderlane_kis.config import Mode, load_settings

__all__ = ["KILL_ENV", "ChaosJournal", "ChaosKisAdapter", "KillSwitch", "main"]

_OPEN_AT_VENUE = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


def emit(line: str) -> None:
    """One line to the trial, written through at once (the process may die the next moment)."""
    os.write(1, (line + "\n").encode())


class KillSwitch:
    """Kills this process at the n-th passage of one point (``ORDERLANE_CHAOS_KILL``)."""

    def __init__(self, spec: str | None, action: Callable[[str], None] | None = None) -> None:
        self.point: str | None = None
        self.left = 0
        self._lock = threading.Lock()
        #: What happens at the point (a test watches instead of dying): SIGKILL by default.
        self.action = action or _die
        if spec:
            point, _, count = spec.partition(":")
            self.point, self.left = point, int(count or "1")

    @classmethod
    def from_env(cls) -> KillSwitch:
        return cls(os.environ.get(KILL_ENV))

    def passing(self, point: str) -> None:
        if point != self.point:
            return
        with self._lock:
            self.left -= 1
            if self.left != 0:
                return
        self.action(point)


def _die(point: str) -> None:
    emit(f"kill {point}")
    os.kill(os.getpid(), signal.SIGKILL)


class ChaosKisAdapter(KisAdapter):
    """The KIS adapter with the kill points around the place request."""

    kill: KillSwitch

    @hookimpl
    async def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> OrderSnapshot:
        self.kill.passing("before_send")
        snapshot = await super().orderlane_place_order(ctx, order)
        self.kill.passing("after_accept")
        return snapshot


class _KillingWriter(Writer):
    """The journal's writer thread, passing ``group_commit`` just before a group's COMMIT."""

    kill: KillSwitch

    def _committing(self, changes: int) -> None:
        self.kill.passing("group_commit")


class ChaosJournal(SqlJournal):
    """The SQL journal with a kill point just before the COMMIT of a group commit (SQLite's
    transitions commit on the driver, not through SQLAlchemy: its commit event never sees
    them, so the point sits in the writer itself)."""

    def __init__(self, url: str, kill: KillSwitch) -> None:
        super().__init__(url)
        self.kill = kill
        plain = self._writer
        self._writer = _KillingWriter(max_batch=plain._max_batch, aside_suffix=plain._aside_suffix)
        self._writer.kill = kill


def _signal(spec: dict[str, Any]) -> Signal:
    price = spec.get("limit_price")
    return Signal(
        spec["symbol"],
        spec["side"],
        int(spec["quantity"]),
        order_type=spec["order_type"],
        limit_price=None if price is None else Decimal(price),
        signal_id=spec["signal_id"],
    )


async def _settle(engine: Engine, seconds: float) -> int:
    """Cancel what rests at the venue and wait (at most ``seconds``) until nothing is open."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    asked: set[str] = set()
    while True:
        open_orders = list(await engine.open_orders())
        if not open_orders or loop.time() >= deadline:
            return len(open_orders)
        for order in open_orders:
            if order.status in _OPEN_AT_VENUE and order.id not in asked:
                asked.add(order.id)
                try:
                    await engine.cancel(order.id)
                except Exception as error:  # the tracker and the next pass go on
                    emit(f"note cancel {order.id} {type(error).__name__}")
                    asked.discard(order.id)
        await asyncio.sleep(0.2)


async def run(config: dict[str, Any], kill: KillSwitch) -> None:
    mode: Mode = "live" if config["adapter"] == "kis-live" else "paper"
    adapter = ChaosKisAdapter(load_settings(mode, config["options"]))
    adapter.kill = kill
    journal = ChaosJournal(config["database_url"], kill)
    engine = Engine(
        adapter,
        journal=journal,
        config=EngineConfig(
            account_id=config["account_id"],
            load_entry_point_plugins=False,
            engine_lease=float(config.get("engine_lease", 1.5)),
            poll_interval=0.2,
            lookup_interval=0.5,
            push_safety_interval=2.0,
            instrument_hold_timeout=float(config.get("hold_timeout", 20.0)),
        ),
    )
    _dump_stacks_on(signal.SIGUSR1)
    await engine.start()
    emit("ready")
    signals = [_signal(spec) for spec in config["signals"]]
    width = max(1, int(config.get("concurrency", 3)))
    for start in range(0, len(signals), width):
        group = signals[start : start + width]
        results = await asyncio.gather(
            *(engine.execute(one) for one in group), return_exceptions=True
        )
        for one, result in zip(group, results, strict=True):
            if isinstance(result, Order):
                emit(f"ack {one.signal_id} {result.id} {result.status.value}")
            else:
                emit(f"error {one.signal_id} {type(result).__name__}")
    left = await _settle(engine, float(config.get("settle_seconds", 20.0)))
    emit(f"settled {left}")
    await engine.close()
    emit(f"done {left}")


def _dump_stacks_on(number: signal.Signals) -> None:
    """On ``number``, write every thread's and every task's stack to stderr (the trial sends it
    to an engine that does not finish in time, before it kills it)."""
    loop = asyncio.get_running_loop()

    def dump() -> None:
        faulthandler.dump_traceback(all_threads=True)
        for task in asyncio.all_tasks(loop):
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()

    loop.add_signal_handler(number, dump)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    asyncio.run(run(config, KillSwitch.from_env()))


if __name__ == "__main__":
    main()
