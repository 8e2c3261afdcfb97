"""Events: every committed step of an order, delivered to observers after its commit.

Each event names the observer hook it is delivered through. The journal stores every event in
``order_events`` in the transaction of the change it reports, and the :class:`EventBus` hands them
to observers in commit order, one at a time, off the order's own path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pluggy

from orderlane.contract import Operation
from orderlane.hooks import Hooks
from orderlane.model import Fill, Order, OrderStatus
from orderlane.positions import Position
from orderlane.serialization import unstructure

__all__ = [
    "Event",
    "EventBus",
    "OrderCreated",
    "OrderFilled",
    "OrderStatusChanged",
    "OrderSubmitted",
    "OrderTimedOut",
    "PositionChanged",
    "RetryExhausted",
    "RetryScheduled",
    "field_names",
]

log = logging.getLogger("orderlane.events")
#: Each event class's field names (its hook's keyword arguments).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """An event class's fields in order, those of its ``__init__``: its hook's keyword
    arguments, and the keys of its payload as cattrs writes it (identifiers: no escaping)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in attrs.fields(cls) if f.init)
    return names


@attrs.frozen
class Event:
    hook: ClassVar[str] = ""

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def order_id(self) -> str | None:
        order = getattr(self, "order", None)
        if isinstance(order, Order):
            return order.id
        fill = getattr(self, "fill", None)
        return fill.order_id if isinstance(fill, Fill) else None

    def hook_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = unstructure(self)
        return data


@attrs.frozen
class OrderCreated(Event):
    hook: ClassVar[str] = "orderlane_order_created"
    order: Order


@attrs.frozen
class OrderSubmitted(Event):
    hook: ClassVar[str] = "orderlane_order_submitted"
    order: Order


@attrs.frozen
class OrderStatusChanged(Event):
    hook: ClassVar[str] = "orderlane_order_status_changed"
    order: Order
    previous: OrderStatus


@attrs.frozen
class OrderFilled(Event):
    hook: ClassVar[str] = "orderlane_order_filled"
    order: Order
    fill: Fill


@attrs.frozen
class PositionChanged(Event):
    hook: ClassVar[str] = "orderlane_position_changed"
    position: Position
    fill: Fill
    realized_pnl: Decimal


@attrs.frozen
class RetryScheduled(Event):
    hook: ClassVar[str] = "orderlane_retry_scheduled"
    order: Order | None
    operation: Operation
    attempt: int
    delay: float
    error: str


@attrs.frozen
class RetryExhausted(Event):
    hook: ClassVar[str] = "orderlane_retry_exhausted"
    order: Order | None
    operation: Operation
    attempts: int
    error: str


@attrs.frozen
class OrderTimedOut(Event):
    hook: ClassVar[str] = "orderlane_order_timed_out"
    order: Order
    submitted_at: datetime


async def call_each(pm: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any]) -> None:
    """Call every implementation of an observer hook; log and swallow what each raises."""
    await Hooks(pm).notify(hook_name, kwargs)


class EventBus:
    """Delivers committed events to observers, in commit order, on one background task."""

    def __init__(self, hooks: Hooks | pluggy.PluginManager) -> None:
        self._hooks = hooks if isinstance(hooks, Hooks) else Hooks(hooks)
        #: One item per commit (its events), so a busy engine wakes the task once per commit.
        self._queue: asyncio.Queue[Sequence[Event] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="orderlane-events"
            )

    def publish(self, events: Sequence[Event]) -> None:
        """Queue one commit's events for the observers; a commit none of whose events anybody
        listens to (an engine without observers) does not wake the delivery task at all."""
        listens = self._hooks.listens
        if any(listens(event.hook) for event in events):
            self._queue.put_nowait(events)

    async def flush(self) -> None:
        """Wait until every event published so far has reached every observer."""
        await self._queue.join()

    async def stop(self) -> None:
        """Deliver what is queued, then end the delivery task (it returns; it is not cancelled)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._queue.put_nowait(None)
        await task

    async def _run(self) -> None:
        hooks = self._hooks
        while True:
            events = await self._queue.get()
            try:
                if events is None:
                    return
                for event in events:
                    # Nobody listening: no call at all, not even the keyword arguments built.
                    if hooks.listens(event.hook):
                        await hooks.notify(event.hook, event.hook_kwargs)
            finally:
                self._queue.task_done()
