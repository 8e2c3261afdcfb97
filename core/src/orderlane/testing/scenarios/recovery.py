"""Restarts: an engine stopped (or killed mid-flight with :meth:`ScenarioRun.crash`) leaves open
orders in its journal, and the next engine on the same database settles every one of them with
the venue before it takes a signal, without losing a fill or sending an order twice."""

from __future__ import annotations

from orderlane.contract import Capability
from orderlane.engine import Engine
from orderlane.model import Order, OrderStatus
from orderlane.recovery import RecoveryChange
from orderlane.testing.harness import QUOTE, ScenarioRun
from orderlane.testing.scenarios.ambiguous import leave_unknown
from orderlane.testing.scenarios.checks import (
    broker_id,
    buy,
    expect,
    expect_equal,
    expect_position,
    open_order,
    stored,
)
from orderlane.testing.scenarios.registry import ScenarioFailed, scenario

__all__: list[str] = []


async def the_order(engine: Engine) -> Order:
    """The one order in the journal."""
    orders = await engine.orders()
    expect_equal(len(orders), 1, "orders in the journal")
    return orders[0]


def recovered(engine: Engine, order: Order) -> RecoveryChange:
    """What recovery did to ``order`` when ``engine`` started."""
    changes = [change for change in engine.last_recovery if change.order_id == order.id]
    if len(changes) != 1:
        raise ScenarioFailed(
            f"recovery should have settled order {order.id} once at start, it reported "
            f"{engine.last_recovery}"
        )
    return changes[0]


async def expect_not_sent(run: ScenarioRun, before: OrderStatus) -> None:
    """After the restart: the order stored in ``before`` ended FAILED "not sent", unsent."""
    async with run.engine() as engine:
        order = await the_order(engine)
        expect_equal((order.status, order.reason), (OrderStatus.FAILED, "not sent"), "order")
        change = recovered(engine, order)
        expect_equal((change.before, change.after), (before, OrderStatus.FAILED), "recovery")
        expect_equal(await engine.positions(), [], "positions")
    expect_equal(run.harness.request_count("place"), 0, "place requests")
    expect_equal(run.harness.venue_order_ids(), [], "orders at the venue")


@scenario(
    "recover-created",
    proves="an order stored but not yet sending when the engine died ends FAILED 'not sent'",
)
async def recover_created(run: ScenarioRun) -> None:
    await run.crash(buy(), at="after_created")
    await expect_not_sent(run, OrderStatus.CREATED)


@scenario(
    "recover-submitting-absent",
    proves="an order the engine died before sending is looked up and ends FAILED 'not sent'",
    requires={Capability.LOOKUP},
)
async def recover_submitting_absent(run: ScenarioRun) -> None:
    await run.crash(buy(), at="after_submitting")
    await expect_not_sent(run, OrderStatus.SUBMITTING)


@scenario(
    "recover-submitting-present",
    proves="an order the venue took before the engine died is adopted and tracked, not resent",
    requires={Capability.LOOKUP},
)
async def recover_submitting_present(run: ScenarioRun) -> None:
    run.harness.hold_next()
    await run.crash(buy(), at="before_answer")
    venue_ids = run.harness.venue_order_ids()
    expect_equal(len(venue_ids), 1, "orders the venue took before the engine died")
    async with run.engine() as engine:
        order = await the_order(engine)
        expect_equal(
            (order.status, order.broker_order_id),
            (OrderStatus.SUBMITTED, venue_ids[0]),
            "the order adopted at restart (status, broker order id)",
        )
        change = recovered(engine, order)
        expect_equal(
            (change.before, change.after),
            (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED),
            "recovery",
        )
        expect_equal([o.id for o in engine.tracker.orders], [order.id], "orders tracked")
        run.harness.fill(broker_id(order))
        await engine.tracker.poll_once()
        after = await stored(engine, order)
        expect_equal((after.status, after.filled_quantity), (OrderStatus.FILLED, 10), "order")
        await expect_position(engine, 10, QUOTE)
    expect_equal(run.harness.request_count("place"), 1, "place requests")
    expect_equal(run.harness.venue_order_ids(), venue_ids, "orders at the venue")


@scenario(
    "recover-submitted-fills",
    proves="fills made while no engine ran are caught up at restart: FILLED, position updated",
)
async def recover_submitted_fills(run: ScenarioRun) -> None:
    async with run.engine() as engine:
        order, venue_id = await open_order(run, engine)
    run.harness.fill(venue_id)  # while no engine runs
    async with run.engine() as engine:
        after = await stored(engine, order)
        expect_equal((after.status, after.filled_quantity), (OrderStatus.FILLED, 10), "order")
        change = recovered(engine, order)
        expect_equal(
            (change.before, change.after), (OrderStatus.SUBMITTED, OrderStatus.FILLED), "recovery"
        )
        await expect_position(engine, 10, QUOTE)
        expect_equal(len(engine.tracker), 0, "orders the tracker follows")
    expect_equal(run.harness.request_count("place"), 1, "place requests")


@scenario(
    "recover-unknown",
    proves="an order left UNKNOWN is settled with the venue at restart, never sent again",
    proves_with_client_order_id="an order UNKNOWN after every resend is settled with the venue "
    "at restart, not sent again",
    requires={Capability.LOOKUP},
)
async def recover_unknown(run: ScenarioRun) -> None:
    sends = leave_unknown(run)
    async with run.engine() as engine:
        unknown = await engine.execute(buy())
        expect_equal(unknown.status, OrderStatus.UNKNOWN, "status the lookup could not settle")
    venue_ids = run.harness.venue_order_ids()
    expect_equal(len(venue_ids), 1, "orders the venue took")
    async with run.engine() as engine:
        after = await stored(engine, unknown)
        # The venue filled the order at once: settled, it is FILLED under the venue's id.
        expect_equal(
            (after.status, after.broker_order_id, after.filled_quantity),
            (OrderStatus.FILLED, venue_ids[0], 10),
            "the order settled at restart (status, broker order id, filled)",
        )
        change = recovered(engine, unknown)
        expect_equal(
            (change.before, change.after), (OrderStatus.UNKNOWN, OrderStatus.FILLED), "recovery"
        )
        await expect_position(engine, 10, QUOTE)
    expect_equal(run.harness.request_count("place"), sends, "place requests")
    expect_equal(run.harness.venue_order_ids(), venue_ids, "orders at the venue")


@scenario(
    "batch-lookup",
    proves="40 orders a crash left SUBMITTING settle by pages of the inquiry, not a lookup each",
    requires={Capability.LOOKUP, Capability.BATCH_STATUS},
)
async def batch_lookup(run: ScenarioRun) -> None:
    # Each order its own intent (quantity), so a broker without client order ids can tell them
    # apart by their attributes.
    present = [buy(quantity, signal_id=f"batch-{quantity}") for quantity in range(1, 21)]
    absent = [buy(quantity, signal_id=f"batch-{quantity}") for quantity in range(21, 41)]
    for _ in present:
        run.harness.hold_next()
    await run.crash_many(
        [(signal, "before_answer") for signal in present]
        + [(signal, "after_submitting") for signal in absent]
    )
    venue_ids = run.harness.venue_order_ids()
    expect_equal(len(venue_ids), len(present), "orders the venue took before the engine died")
    before = run.harness.request_count()
    async with run.engine() as engine:
        requests = run.harness.request_count() - before
        page_size = engine.broker.info.page_size or len(venue_ids)
        pages = -(-len(venue_ids) // page_size)
        expect(
            requests <= pages + 1,
            f"settling {len(present) + len(absent)} orders took {requests} requests; the venue's "
            "inquiry has "
            f"{pages} page(s) of {page_size}: a lookup per order does not scale (implement "
            "orderlane_lookup_orders: one pass over the inquiry for all of them)",
        )
        orders = {order.quantity: order for order in await engine.orders(limit=100)}
        expect_equal(len(orders), len(present) + len(absent), "orders in the journal")
        adopted = {orders[signal.quantity].broker_order_id for signal in present}
        expect_equal(adopted, set(venue_ids), "venue orders adopted, one each")
        for signal in present:
            expect_equal(orders[signal.quantity].status, OrderStatus.SUBMITTED, "an adopted order")
        for signal in absent:
            order = orders[signal.quantity]
            expect_equal((order.status, order.reason), (OrderStatus.FAILED, "not sent"), "order")
    expect_equal(run.harness.request_count("place"), len(present), "place requests")
