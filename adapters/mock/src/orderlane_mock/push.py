"""The mock venue's push channel: order notices as a broker's execution stream sends them.

The venue announces every change of an order's state (accepted, filled, cancelled, rejected) as
a cumulative :class:`~orderlane.model.OrderSnapshot` to whoever listens, so an engine can track
orders without polling. The adapter listens while it runs and queues what it hears; the venue
works the same with nobody listening, as a broker's stream does with no client connected.

Tests script how the channel misbehaves::

    venue.drop_pushes(2)             # the next two notices are lost, as across a reconnect
    venue.reconnect_push()           # the stream says it reconnected: updates may be missing
    venue.push_before_answer_next()  # the next place's notices beat its answer to the engine
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from orderlane.contract import PushItem, StreamGap
from orderlane.model import OrderSnapshot

__all__ = ["ANSWER_DELAY_TURNS", "OrderUpdateFeed", "PushListener", "PushNotices"]

PushListener = Callable[[PushItem], None]

#: How many event-loop turns a place answer waits after its notices were queued, when the venue
#: was told to push before answering: enough for a consumer to take the notice and act on it.
ANSWER_DELAY_TURNS = 8


class PushNotices:
    """The venue's sending end: who listens, and which notices the channel loses."""

    def __init__(self) -> None:
        self._listeners: list[PushListener] = []
        self._to_drop = 0
        self._early_answers = 0
        #: Every notice the venue sent, lost ones included, in the order it sent them.
        self.sent: list[OrderSnapshot] = []
        #: How many notices were lost on the way.
        self.dropped = 0

    def subscribe(self, listener: PushListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener: PushListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def send(self, snapshot: OrderSnapshot) -> None:
        self.sent.append(snapshot)
        if self._to_drop:
            self._to_drop -= 1
            self.dropped += 1
            return
        self._deliver(snapshot)

    def drop(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"cannot drop {count} notices")
        self._to_drop += count

    def gap(self, reason: str) -> None:
        """Tell every listener that notices may have been missed (the stream reconnected)."""
        self._deliver(StreamGap(reason))

    def answer_after_push_next(self) -> None:
        self._early_answers += 1

    def take_answer_after_push(self) -> bool:
        """Whether the place being sent now should answer only after its notices were read."""
        if not self._early_answers:
            return False
        self._early_answers -= 1
        return True

    def _deliver(self, item: PushItem) -> None:
        for listener in list(self._listeners):
            listener(item)


class OrderUpdateFeed:
    """The adapter's receiving end: the notices it heard since it connected, read as one stream.

    The queue belongs to the adapter, not the venue, so a venue shared by several engines (one
    after a restart, say) hands each running adapter its own copy of every notice.
    """

    def __init__(self, notices: PushNotices) -> None:
        self._notices = notices
        self._queue: asyncio.Queue[PushItem | None] = asyncio.Queue()
        self._closed = False
        self.connected = False

    def connect(self) -> None:
        if self._closed:  # a restarted adapter starts a fresh stream; old readers stay ended
            self._queue = asyncio.Queue()
            self._closed = False
        self._notices.subscribe(self._hear)
        self.connected = True

    def disconnect(self) -> None:
        """Stop listening and end the stream once what was already heard has been read."""
        self._notices.unsubscribe(self._hear)
        self.connected = False
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def stream(self) -> AsyncIterator[PushItem]:
        """The notices heard since the adapter (re)started; it ends when the adapter stops."""
        return _read(self._queue)

    async def let_readers_run(self) -> None:
        """Yield to the event loop so a reader takes queued notices before the caller goes on."""
        for _ in range(ANSWER_DELAY_TURNS):
            await asyncio.sleep(0)

    def _hear(self, item: PushItem) -> None:
        self._queue.put_nowait(item)


async def _read(queue: asyncio.Queue[PushItem | None]) -> AsyncIterator[PushItem]:
    while True:
        item = await queue.get()
        if item is None:
            queue.put_nowait(None)  # every other reader of this stream ends as well
            return
        yield item
