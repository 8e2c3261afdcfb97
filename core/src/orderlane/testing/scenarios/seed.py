"""The seed's rows: a fill, a rejection, retries, signals that must not become orders twice (or
at all), and the P&L a closing fill realizes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import cast

from orderlane.errors import DuplicateSignalError, InvalidSignalError
from orderlane.model import OrderStatus, Side, Signal
from orderlane.testing.harness import COMMISSION, QUOTE, SYMBOL, RejectKind, ScenarioRun
from orderlane.testing.scenarios.checks import (
    buy,
    commission,
    executed,
    expect,
    expect_equal,
    expect_waited,
)
from orderlane.testing.scenarios.registry import ScenarioFailed, scenario

__all__: list[str] = []

#: The error an adapter raises for each scripted refusal, as the order's reason names it.
_REJECTION_ERRORS = {
    "insufficient_balance": "InsufficientBalanceError",
    "invalid_symbol": "InvalidSymbolError",
    "validation": "OrderValidationError",
}


@scenario(
    "seed-happy-path",
    proves="a fill at once books FILLED with price, commission, position and events in order",
)
async def seed_happy_path(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        await engine.flush_events()
        expect_equal(order.status, OrderStatus.FILLED, "order status")
        expect(order.broker_order_id is not None, "the filled order has no broker order id")
        expect_equal(order.average_fill_price, QUOTE, "average fill price")
        expect_equal(order.commission, commission(run, COMMISSION), "commission")
        expect_equal(await engine.get_order(order.id), order, "the stored order")
        expect_equal(run.harness.request_count("place"), 1, "place requests")
        position = await engine.position(SYMBOL)
        expect_equal((position.quantity, position.average_price), (10, QUOTE), "position")
    flow = ["order_created", "order_submitted", "order_filled", "position_changed"]
    expect_equal(run.events.names(flow), flow, "events")


@scenario(
    "seed-rejection",
    proves="a refusal books REJECTED with the venue's reason, logs it and opens no position",
)
async def seed_rejection(run: ScenarioRun) -> None:
    run.harness.reject_next("insufficient_balance", "not enough cash")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        expect_equal(order.status, OrderStatus.REJECTED, "order status")
        expect(
            order.reason is not None and "not enough cash" in order.reason,
            f"the reason should carry the venue's message, got {order.reason!r}",
        )
        expect_equal(await engine.get_order(order.id), order, "the stored order")
        expect_equal(run.harness.request_count("place"), 1, "place requests")
        expect_equal(await engine.positions(), [], "positions")
    expect(
        any("not enough cash" in record.getMessage() for record in run.logs),
        "the rejection's reason was not logged",
    )


@scenario(
    "seed-retry-success",
    proves="a refused connection is retried after 1 s and the second place fills",
)
async def seed_retry_success(run: ScenarioRun) -> None:
    run.harness.fail_next("connection")
    async with run.engine() as engine:
        order = await executed(run, engine, buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 2, "place requests")
    delays = [event["delay"] for event in run.events.of("retry_scheduled")]
    expect_equal(delays, [1.0], "retry-scheduled delays")
    expect_waited(run, [1.0])


@scenario(
    "seed-retry-exhausted",
    proves="three refused connections end FAILED with the attempts and the original error",
)
async def seed_retry_exhausted(run: ScenarioRun) -> None:
    run.harness.fail_next("connection", times=3)
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
        expect_equal(await engine.positions(), [], "positions")
    expect_equal(order.status, OrderStatus.FAILED, "order status")
    expect_equal(run.harness.request_count("place"), 3, "place requests")
    delays = [event["delay"] for event in run.events.of("retry_scheduled")]
    expect_equal(delays, [1.0, 2.0], "retry-scheduled delays")
    expect_waited(run, [1.0, 2.0])
    events = run.events.of("retry_exhausted")
    expect_equal(len(events), 1, "retry-exhausted events")
    exhausted = events[0]
    expect_equal(exhausted["attempts"], 3, "attempts on the retry-exhausted event")
    expect(
        exhausted["error"].startswith("BrokerConnectionError"),
        f"the retry-exhausted event should carry the original error, got {exhausted['error']!r}",
    )
    # The order's reason is the OrderRetryExhaustedError: the attempts and the original error.
    original = exhausted["error"].partition(": ")[2]
    expect(
        order.reason is not None and "3 attempts" in order.reason and original in order.reason,
        f"the reason should name 3 attempts and the original error, got {order.reason!r}",
    )


@scenario(
    "seed-non-retryable",
    proves="each rejection error of the adapter ends REJECTED at once, never retried",
    variants=("insufficient_balance", "invalid_symbol", "validation"),
)
async def seed_non_retryable(run: ScenarioRun) -> None:
    kind = cast(RejectKind, run.variant)
    run.harness.reject_next(kind, f"refused: {kind}")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.REJECTED, "order status")
    error = _REJECTION_ERRORS[kind]
    expect(
        order.reason is not None and error in order.reason,
        f"the adapter should raise {error} for this refusal; the reason is {order.reason!r}",
    )
    expect_equal(run.harness.request_count("place"), 1, "place requests")
    expect_equal(run.events.of("retry_scheduled"), [], "retry-scheduled events")
    # The rate limiter may pace the place after the adapter's start; no retry wait may come.
    retry_waits = [s for s in run.clock.sleeps if s in (1.0, 2.0, 4.0)]
    expect_equal(retry_waits, [], "retry waits before giving up")


@scenario(
    "invalid-signal",
    proves="a malformed signal is refused before anything is stored or sent",
)
async def invalid_signal(run: ScenarioRun) -> None:
    malformed: dict[str, tuple[str, Callable[[], Signal]]] = {
        "zero quantity": ("quantity", lambda: buy(0)),
        "negative quantity": ("quantity", lambda: buy(-10)),
        "LIMIT without price": ("limit_price", lambda: buy(order_type="LIMIT")),
        "unknown side": ("direction", lambda: Signal(SYMBOL, "HOLD", 10)),
    }
    async with run.engine() as engine:
        for what, (field, make) in malformed.items():
            try:
                await engine.execute(make())
            except InvalidSignalError as error:
                expect(field in str(error), f"{what}: the error should name {field}: {error}")
            else:
                raise ScenarioFailed(f"{what}: accepted instead of InvalidSignalError")
        expect_equal(await engine.orders(), [], "stored orders")
        await engine.flush_events()
    expect_equal(run.harness.request_count(), 0, "requests at the venue")
    expect_equal(run.events.names(), [], "events")


@scenario(
    "idempotent-signal",
    proves="one signal id sends one order: concurrently, again and after a restart",
)
async def idempotent_signal(run: ScenarioRun) -> None:
    signal = buy(signal_id="strategy-7:signal-1")
    async with run.engine() as engine:
        together = await asyncio.gather(engine.execute(signal), engine.execute(signal))
        again = await executed(run, engine, signal)
        expect_equal(len(await engine.orders()), 1, "stored orders")
    async with run.engine() as restarted:
        after_restart = await restarted.execute(signal)
    ids = {order.id for order in [*together, again, after_restart]}
    expect_equal(len(ids), 1, "orders the same signal id became")
    expect_equal(again.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario(
    "sell-realizes-pnl",
    proves="a closing fill realizes (exit - entry) x quantity - commission",
)
async def sell_realizes_pnl(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        bought = await executed(run, engine, buy())
        run.harness.fill_next(Decimal(73000), Decimal(50))
        sold = await executed(run, engine, Signal(SYMBOL, Side.SELL, 4))
        await engine.flush_events()
        position = await engine.position(SYMBOL)
        realized = sum((row.realized_pnl for row in await engine.realized_pnl()), Decimal(0))
    expect_equal((bought.status, sold.status), (OrderStatus.FILLED,) * 2, "order statuses")
    expect_equal((position.quantity, position.average_price), (6, QUOTE), "position")
    closing = Decimal(4000) - commission(run, Decimal(50))
    expect_equal(realized, closing, "realized P&L, (73000 - 72000) x 4 - 50")
    changes = [event["realized_pnl"] for event in run.events.of("position_changed")]
    expect_equal(changes, [Decimal(0), closing], "realized P&L per position change")


@scenario(
    "duplicate-signal-conflict",
    proves="a reused signal id with other fields raises DuplicateSignalError, sends nothing",
)
async def duplicate_signal_conflict(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        first = await engine.execute(buy(signal_id="strategy-7:signal-1"))
        try:
            await engine.execute(buy(11, signal_id="strategy-7:signal-1"))
        except DuplicateSignalError:
            pass
        else:
            raise ScenarioFailed("a reused signal id with another quantity was accepted")
        expect_equal([order.id for order in await engine.orders()], [first.id], "stored orders")
    expect_equal(run.harness.request_count("place"), 1, "place requests")
