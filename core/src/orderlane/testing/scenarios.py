"""The conformance scenarios, each written once against a venue harness and the public Engine API.

Every scenario carries its stable id from the catalogue (``CONFORMANCE.md``) and asserts what its
row says: the order, what reached the venue, the events in commit order, positions and P&L.
Unless a row says otherwise the signal is BUY 10 x ``005930`` at market, the venue fills at
72,000 with commission 100, and the retry policy is the seed's (3 attempts, 1 s then 2 s).
Failures raise :class:`ScenarioFailed` with what was expected and what came; a scenario that
needs a capability the harness lacks is never run (the runner and the pytest plugin skip it).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import attrs

from orderlane.broker import Capability
from orderlane.engine import Engine
from orderlane.errors import ConfigurationError, DuplicateSignalError, InvalidSignalError
from orderlane.model import Order, OrderStatus, Side, Signal
from orderlane.testing.harness import COMMISSION, QUOTE, SYMBOL, RejectKind, ScenarioRun

__all__ = [
    "SCENARIOS",
    "Case",
    "Scenario",
    "ScenarioFailed",
    "ScenarioSkipped",
    "expect",
    "expect_equal",
    "select_cases",
]

ScenarioFunction = Callable[[ScenarioRun], Awaitable[None]]


class ScenarioFailed(AssertionError):
    """The adapter (or the engine with it) did not do what the catalogue row says."""


class ScenarioSkipped(Exception):
    """The scenario cannot run against this harness; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Scenario:
    """One catalogue row: its id, what it needs, and the coroutine that checks it."""

    id: str
    run: ScenarioFunction = attrs.field(repr=False)
    requires: frozenset[Capability] = frozenset()
    #: Parametrized rows run once per variant (the variant is ``ScenarioRun.variant``).
    variants: tuple[str, ...] = ()
    #: Set while the engine is known to fall short of the row: the run is expected to fail.
    xfail: str | None = None

    def cases(self) -> list[Case]:
        return [Case(self, variant) for variant in self.variants or (None,)]

    def skip_reason(self, capabilities: frozenset[Capability]) -> str | None:
        missing = sorted(self.requires - capabilities)
        if not missing:
            return None
        names = ", ".join(capability.value for capability in missing)
        return f"needs the capability {names}, which the harness does not declare"


@attrs.frozen
class Case:
    """One run of a scenario: the scenario itself, or one variant of a parametrized one."""

    scenario: Scenario
    variant: str | None = None

    @property
    def id(self) -> str:
        if self.variant is None:
            return self.scenario.id
        return f"{self.scenario.id}[{self.variant}]"


#: Every scenario by catalogue id, in catalogue order.
SCENARIOS: dict[str, Scenario] = {}


def scenario(
    id: str,
    *,
    requires: Iterable[Capability] = (),
    variants: Sequence[str] = (),
    xfail: str | None = None,
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated coroutine as the scenario of catalogue row ``id``."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if id in SCENARIOS:
            raise ValueError(f"scenario {id!r} is registered twice")
        SCENARIOS[id] = Scenario(id, function, frozenset(requires), tuple(variants), xfail)
        return function

    return register


def select_cases(ids: Iterable[str] | None = None) -> list[Case]:
    """The cases to run: all, or those named by scenario id (every variant) or by case id."""
    every = [case for registered in SCENARIOS.values() for case in registered.cases()]
    if ids is None:
        return every
    wanted = list(ids)
    known = {case.id for case in every} | set(SCENARIOS)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigurationError(
            f"unknown conformance scenario {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(SCENARIOS)}"
        )
    return [case for case in every if case.id in wanted or case.scenario.id in wanted]


# ------------------------------------------------------------------ checks


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise ScenarioFailed(f"{what}: expected {_show(expected)}, got {_show(actual)}")


def _show(value: Any) -> str:
    """A value as a failure message shows it: statuses by name, everything else by repr."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_show(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def buy(quantity: int = 10, **fields: Any) -> Signal:
    return Signal(SYMBOL, Side.BUY, quantity, **fields)


def statuses(run: ScenarioRun) -> list[OrderStatus]:
    """Every status the orders moved to, in commit order."""
    return [event["order"].status for event in run.events.of("order_status_changed")]


def expect_adopted(run: ScenarioRun, order: Order) -> None:
    """The order went UNKNOWN, then took over the one order the venue holds."""
    expect(
        OrderStatus.UNKNOWN in statuses(run),
        f"the order should go UNKNOWN before the lookup, went {_show(statuses(run))}",
    )
    expect(
        order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED),
        f"order status: expected the venue's order adopted, got {order.status.value}",
    )
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect(OrderStatus.FAILED not in statuses(run), "the order was marked FAILED on a guess")


def expect_waited(run: ScenarioRun, delays: list[float]) -> None:
    """The engine's clock slept ``delays`` in this order (other sleeps may come between)."""
    slept = iter(run.clock.sleeps)
    expect(
        all(any(s == delay for s in slept) for delay in delays),
        f"the clock should have slept {delays} in order, slept {run.clock.sleeps}",
    )


#: The error an adapter raises for each scripted refusal, as the order's reason names it.
_REJECTION_ERRORS = {
    "insufficient_balance": "InsufficientBalanceError",
    "invalid_symbol": "InvalidSymbolError",
    "validation": "OrderValidationError",
}


# ------------------------------------------------------------------ the rows


@scenario("seed-happy-path")
async def seed_happy_path(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
        expect_equal(order.status, OrderStatus.FILLED, "order status")
        expect(order.broker_order_id is not None, "the filled order has no broker order id")
        expect_equal(order.average_fill_price, QUOTE, "average fill price")
        expect_equal(order.commission, COMMISSION, "commission")
        expect_equal(await engine.get_order(order.id), order, "the stored order")
        expect_equal(run.harness.request_count("place"), 1, "place requests")
        position = await engine.position(SYMBOL)
        expect_equal((position.quantity, position.average_price), (10, QUOTE), "position")
    flow = ["order_created", "order_submitted", "order_filled", "position_changed"]
    expect_equal(run.events.names(flow), flow, "events")


@scenario("seed-rejection")
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


@scenario("seed-retry-success")
async def seed_retry_success(run: ScenarioRun) -> None:
    run.harness.fail_next("connection")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 2, "place requests")
    delays = [event["delay"] for event in run.events.of("retry_scheduled")]
    expect_equal(delays, [1.0], "retry-scheduled delays")
    expect_waited(run, [1.0])


@scenario("seed-retry-exhausted")
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


@scenario("seed-non-retryable", variants=("insufficient_balance", "invalid_symbol", "validation"))
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
    expect_equal(run.clock.sleeps, [], "waits before giving up")


@scenario("ambiguous-accepted", requires={Capability.LOOKUP})
async def ambiguous_accepted(run: ScenarioRun) -> None:
    run.harness.fail_next("drop_after_accept")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
        expect_equal(await engine.get_order(order.id), order, "the stored order")
    expect_adopted(run, order)
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario("ambiguous-not-accepted", requires={Capability.LOOKUP})
async def ambiguous_not_accepted(run: ScenarioRun) -> None:
    run.harness.fail_next("timeout_before")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.venue_order_ids(), [order.broker_order_id], "orders at the venue")
    expect_equal(len(run.events.of("retry_scheduled")), 1, "retry-scheduled events")


async def unsettled_then_same_symbol(run: ScenarioRun, engine: Engine) -> tuple[Order, Order]:
    """Leave an order UNKNOWN (the venue took it, the lookup cannot tell), then send another
    for the same symbol; returns both once the second is done with."""
    run.harness.fail_next("drop_after_accept")
    run.harness.answer_lookup_next("cannot_tell")
    unknown = await engine.execute(buy())
    expect_equal(
        unknown.status, OrderStatus.UNKNOWN, "status of the order the lookup cannot settle"
    )
    held = await engine.execute(buy())
    await engine.flush_events()
    return unknown, held


def statuses_of(run: ScenarioRun, order: Order) -> list[OrderStatus]:
    """The statuses one order moved to, in commit order."""
    return [
        event["order"].status
        for event in run.events.of("order_status_changed")
        if event["order"].id == order.id
    ]


@scenario("ambiguous-unresolvable", requires={Capability.LOOKUP})
async def ambiguous_unresolvable(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown, held = await unsettled_then_same_symbol(run, engine)
        expect_equal(await engine.get_order(unknown.id), unknown, "the UNKNOWN order, stored")
    expect_equal(statuses_of(run, unknown)[-1:], [OrderStatus.UNKNOWN], "status-changed events")
    expect_equal(run.harness.request_count("place"), 1, "place requests")
    # The new order waited in CREATED the whole time: it never became SUBMITTING.
    expect(
        OrderStatus.SUBMITTING not in statuses_of(run, held),
        f"the order for the same symbol went {_show(statuses_of(run, held))} while it was held",
    )


@scenario("rate-limit-answer")
async def rate_limit_answer(run: ScenarioRun) -> None:
    # TODO(rate limiter): the row's "limiter slows down" needs the engine's rate limiter to
    # report its pauses publicly; check it once it does.
    run.harness.fail_next("rate_limit")
    async with run.engine() as engine:
        order = await engine.execute(buy())
    expect_equal(order.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 2, "place requests")


@scenario("invalid-signal")
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


@scenario("idempotent-signal")
async def idempotent_signal(run: ScenarioRun) -> None:
    signal = buy(signal_id="strategy-7:signal-1")
    async with run.engine() as engine:
        together = await asyncio.gather(engine.execute(signal), engine.execute(signal))
        again = await engine.execute(signal)
        expect_equal(len(await engine.orders()), 1, "stored orders")
    async with run.engine() as restarted:
        after_restart = await restarted.execute(signal)
    ids = {order.id for order in [*together, again, after_restart]}
    expect_equal(len(ids), 1, "orders the same signal id became")
    expect_equal(again.status, OrderStatus.FILLED, "order status")
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario("sell-realizes-pnl")
async def sell_realizes_pnl(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        bought = await engine.execute(buy())
        run.harness.fill_next(Decimal(73000), Decimal(50))
        sold = await engine.execute(Signal(SYMBOL, Side.SELL, 4))
        await engine.flush_events()
        position = await engine.position(SYMBOL)
        realized = sum((row.realized_pnl for row in await engine.realized_pnl()), Decimal(0))
    expect_equal((bought.status, sold.status), (OrderStatus.FILLED,) * 2, "order statuses")
    expect_equal((position.quantity, position.average_price), (6, QUOTE), "position")
    expect_equal(realized, Decimal(3950), "realized P&L, (73000 - 72000) x 4 - 50")
    changes = [event["realized_pnl"] for event in run.events.of("position_changed")]
    expect_equal(changes, [Decimal(0), Decimal(3950)], "realized P&L per position change")


@scenario("garbled-place-answer", requires={Capability.LOOKUP})
async def garbled_place_answer(run: ScenarioRun) -> None:
    run.harness.fail_next("garbled")
    async with run.engine() as engine:
        order = await engine.execute(buy())
        await engine.flush_events()
    expect_adopted(run, order)
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario("duplicate-signal-conflict")
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


@scenario("hold-timeout", requires={Capability.LOOKUP})
async def hold_timeout(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        unknown, held = await unsettled_then_same_symbol(run, engine)
        timeout = timedelta(seconds=engine.config.instrument_hold_timeout)
        poll = timedelta(seconds=engine.config.instrument_hold_poll)
    expect_equal(held.status, OrderStatus.FAILED, "status of the held order")
    expect_equal(statuses_of(run, held), [OrderStatus.FAILED], "its status-changed events")
    waited = held.updated_at - held.created_at
    expect(
        timeout <= waited <= timeout + poll,
        f"the held order should fail once held for {timeout}, it failed after {waited}",
    )
    expect(
        held.reason is not None and unknown.id in held.reason,
        f"the reason should name the UNKNOWN order holding the symbol, got {held.reason!r}",
    )
    expect_equal(run.harness.request_count("place"), 1, "place requests (none for the held order)")
