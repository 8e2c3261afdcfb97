"""The engine: one adapter, one journal, observers, and the API a strategy calls.

::

    async with Engine.open(adapter="mock") as engine:
        order = await engine.execute(Signal("005930", "BUY", 10))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs

from orderlane.blotter import Blotter
from orderlane.broker import Broker
from orderlane.clock import Clock, FakeClock, SystemClock, wall_now
from orderlane.config import EngineConfig
from orderlane.contract import BrokerContext
from orderlane.defaults import DefaultRetryPolicy, InProcessLimiter
from orderlane.errors import (
    ConfigurationError,
    InvalidSignalError,
    UnknownOrderError,
)
from orderlane.events import EventBus
from orderlane.executor import Executor
from orderlane.hooks import Hooks, await_me_maybe
from orderlane.hookspecs import hookimpl
from orderlane.journal import Journal, JournalRows, PnLSummary
from orderlane.journal.sql import SqlJournal
from orderlane.limiter import RateLimiter
from orderlane.model import Fill, Order, OrderStatus, Signal
from orderlane.plugins import load_adapter, load_entry_point_plugins, make_plugin_manager
from orderlane.positions import Position
from orderlane.recovery import Recovery, RecoveryChange
from orderlane.tracker import OrderTracker

__all__ = ["Engine", "EngineConfig", "StatusHandler"]

log = logging.getLogger("orderlane.engine")

#: Most rows one read returns (a database's row limit is a signed 64-bit integer).
MAX_ROWS = 2**63 - 1


StatusHandler = Callable[[Order, OrderStatus], Awaitable[None] | None]


class _StatusHandlers:
    """The seed's observer style (``add_status_handler``) on top of the observer hooks."""

    def __init__(self) -> None:
        self.handlers: list[StatusHandler] = []

    @hookimpl
    async def orderlane_order_status_changed(self, order: Order, previous: OrderStatus) -> None:
        for handler in list(self.handlers):
            try:
                await await_me_maybe(handler(order, previous))
            except Exception:
                log.exception("status handler %r failed; execution goes on", handler)


class Engine:
    """Turns signals into orders at one broker, durably, and keeps positions and P&L."""

    def __init__(
        self,
        adapter: str | object = "mock",
        *,
        config: EngineConfig | None = None,
        adapter_options: Mapping[str, Any] | None = None,
        plugins: Iterable[object] = (),
        clock: Clock | None = None,
        journal: Journal | None = None,
        database_url: str | None = None,
        account_id: str | None = None,
    ) -> None:
        if config is None:
            config = EngineConfig()
        elif not isinstance(config, EngineConfig):
            raise ConfigurationError(
                f"config must be an EngineConfig, got {type(config).__name__}: build one with "
                "EngineConfig(...) (its fields are keyword arguments)"
            )
        if adapter_options is not None and not isinstance(adapter_options, Mapping):
            raise ConfigurationError(
                f"adapter_options must be a mapping of option names to values, "
                f"got {type(adapter_options).__name__}"
            )
        if database_url is not None:
            config = attrs.evolve(config, database_url=database_url)
        if account_id is not None:
            config = attrs.evolve(config, account_id=account_id)
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.pm = make_plugin_manager()
        self.pm.register(DefaultRetryPolicy(dict(config.retry)), name="orderlane-default-retry")
        self.pm.register(InProcessLimiter(), name="orderlane-default-limiter")
        # Registered with the first handler: an engine nobody observes has no observer hook.
        self._status_handlers = _StatusHandlers()
        if config.load_entry_point_plugins:
            load_entry_point_plugins(self.pm)
        for plugin in plugins:
            self.register(plugin)
        options = dict(adapter_options or {})
        if isinstance(adapter, str):
            self.adapter_name = adapter
            adapter_plugin = load_adapter(adapter, options)
        else:
            adapter_plugin = adapter
            self.adapter_name = getattr(adapter, "name", type(adapter).__name__)
        self.pm.register(adapter_plugin, name=f"adapter:{self.adapter_name}")
        self.adapter = adapter_plugin
        self.ctx = BrokerContext(account_id=config.account_id, options=options, clock=self.clock)
        self.broker = Broker(self.pm, adapter_plugin, self.ctx)
        self.broker.info  # noqa: B018 - fail now, not at the first order, if the adapter is broken
        self.broker.check_capabilities()
        self.journal: Journal = journal or SqlJournal(
            config.database_url,
            synchronous=config.sqlite_synchronous,
            create=config.create_journal,
            connect_timeout=config.database_connect_timeout,
            statement_timeout=config.database_statement_timeout,
        )
        self.hooks = Hooks(self.pm)
        self.events = EventBus(self.hooks)
        self.journal.set_listener(self.events.publish)
        # The parts share the blotter (the orders' state) and never reach back into the engine.
        self.blotter = Blotter(self.journal, self.clock, self.broker.info)
        self.executor = Executor(
            self.blotter, self.broker, self.hooks, self.journal, self.clock, config
        )
        self.tracker = OrderTracker(
            self.blotter, self.executor, self.broker, self.journal, self.clock, config
        )
        self.recovery = Recovery(self.blotter, self.executor, self.broker, self.journal, config)
        #: What recovery did when this engine started (one entry per order it found open).
        self.last_recovery: list[RecoveryChange] = []
        self.limiter: RateLimiter | None = None
        self._limiter_open = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._started = False

    def __repr__(self) -> str:
        return (
            f"Engine(adapter={self.adapter_name!r}, account={self.config.account_id!r}, "
            f"journal={self.journal!r})"
        )

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    @asynccontextmanager
    async def open(cls, adapter: str | object = "mock", **kwargs: Any) -> AsyncIterator[Engine]:
        """Build, start and (on exit) close an engine: ``async with Engine.open("mock") as e``."""
        engine = cls(adapter, **kwargs)
        await engine.start()
        try:
            yield engine
        finally:
            await engine.close()

    async def start(self) -> None:
        if self._started:
            return
        await self.journal.open()
        self.events.start()
        try:
            await self.journal.start_session(self.config.account_id, wall_now())
            await self._store_venue()
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat(), name="orderlane-heartbeat"
            )
            self.limiter = self._make_limiter()
            self._limiter_open = True
            self.ctx.use_limiter(self.limiter.acquire)
            self.broker.on_rate_limited = self.limiter.penalize
            await self.broker.start()
            if self.config.recover_on_start:
                self.last_recovery = await self.recovery.run()
            track = self.config.track
            if track is None:
                track = not isinstance(self.clock, FakeClock)
            if track:
                await self.tracker.start()
        except BaseException:
            await self.tracker.stop()
            await self._close_limiter()
            await self._stop_heartbeat()
            await self.events.stop()
            await self.journal.close()
            raise
        self._started = True
        log.debug("engine started: %r", self)
        await self.hooks.notify("orderlane_engine_started", {"engine": self})

    async def close(self) -> None:
        if not self._started:
            return
        await self.hooks.notify("orderlane_engine_closing", {"engine": self})
        self._started = False
        try:
            await self.tracker.stop()
            await self.executor.stop()
            # Sends whose outcome the journal refused: a last try, then say which are left.
            await self.tracker.settle_stranded()
            self.tracker.report_stranded()
            await self.broker.stop()
        finally:
            await self._close_limiter()
            await self._stop_heartbeat()
            await self.events.stop()
            await self.journal.close()

    def _make_limiter(self) -> RateLimiter:
        """The credential's limiter, from the first plugin that answers for its name."""
        config = self.config
        limits = config.rate_limits
        if limits is None:
            limits = tuple(self.broker.rate_limits())
        return self.hooks.rate_limiter(
            name=config.rate_limiter,
            key=config.credential_key or f"{self.adapter_name}:{config.account_id}",
            limits=limits,
            clock=self.clock,
            margin=config.rate_limit_margin,
            options=config.rate_limiter_options,
        )

    async def _close_limiter(self) -> None:
        # Closed once per start; it stays readable (``stats()`` after close shows what it did).
        limiter = self.limiter
        if limiter is None or not self._limiter_open:
            return
        self._limiter_open = False
        try:
            await limiter.close()
        except Exception:
            log.warning("closing the rate limiter failed", exc_info=True)

    async def _beat(self) -> None:
        """Refresh this engine's session on the database while it runs (real time)."""
        while True:
            await asyncio.sleep(self.config.engine_lease / 3)
            try:
                await self.journal.heartbeat(wall_now())
            except Exception:
                log.warning("engine heartbeat failed; retrying", exc_info=True)
                continue
            await self._store_limiter_figures()

    async def _store_venue(self) -> None:
        """Keep the account's venue and its time zone on the journal, where the journal can
        (an optional method of the Journal protocol): displays count "today" by the venue's
        trading day with it."""
        store = getattr(self.journal, "store_venue", None)
        if store is not None:
            info = self.broker.info
            await store(self.config.account_id, info.name, info.timezone, wall_now())

    async def _store_limiter_figures(self) -> None:
        """Store the limiter's figures beside the session after each heartbeat, for displays
        reading the journal (``orderlane watch``). A write of its own, after the heartbeat's:
        nothing about it can keep the heartbeat, which other engines' recovery relies on, from
        being stored."""
        limiter = self.limiter
        if limiter is None:
            return
        try:
            await self.journal.store_limiter(limiter.snapshot().as_dict())
        except Exception:
            log.debug("storing the rate limiter's figures failed", exc_info=True)

    async def _stop_heartbeat(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await self.journal.end_session()

    # ---------------------------------------------------------------- plugins

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register an observer or retry plugin (an object with ``@hookimpl`` methods)."""
        self.pm.register(plugin, name=name)

    def add_status_handler(self, handler: StatusHandler) -> None:
        """Call ``handler(order, previous_status)`` (sync or async) after every status change."""
        if not self.pm.is_registered(self._status_handlers):
            self.pm.register(self._status_handlers, name="orderlane-status-handlers")
        self._status_handlers.handlers.append(handler)

    async def validate(self, order: Order) -> None:
        """Run every ``orderlane_validate_order`` hook (sync or async); the first exception
        vetoes the order."""
        await self.hooks.validate(order)

    # ---------------------------------------------------------------- trading

    def _require_started(self) -> None:
        if not self._started:
            raise ConfigurationError(
                "the engine is not started: use 'async with Engine.open(...)' "
                "or 'await engine.start()'"
            )

    async def execute(self, signal: Signal) -> Order:
        """Turn ``signal`` into an order, persist it, send it and book the answer.

        Returns the order in whatever state the broker left it (FILLED, SUBMITTED, REJECTED,
        FAILED, UNKNOWN...). Raises only for an invalid signal, a veto, a signal id reused with
        other fields, a configuration error, or a journal that refused a write before anything
        was sent (:class:`~orderlane.errors.JournalError`; the running engine then ends the
        order FAILED "not sent" once the journal takes writes again). An order sent while the
        journal refuses writes (a full disk) is returned as last stored (SUBMITTING); the engine
        books the broker's answer once the journal takes writes again. Cancelling the call
        (``asyncio.wait_for``) ends only the caller's wait: the engine still finishes the send
        and books the answer.
        """
        self._require_started()
        if not isinstance(signal, Signal):
            raise InvalidSignalError(f"execute() takes a Signal, got {type(signal).__name__}")
        self.broker.check_signal(signal)
        return await self.executor.execute(signal)

    async def refresh(self, order_id: str) -> Order:
        """Ask the broker for the order's status now and book what changed (fills, status).

        Broker errors propagate (an :class:`~orderlane.errors.OrderNotFoundError` included) and
        leave the order as it was: an inquiry's failure never changes an order by itself.
        """
        self._require_started()
        async with self.blotter.lock(order_id):
            order = await self._stored(order_id)
            if order.broker_order_id is None:
                return order
            return await self.executor.status(order)

    async def cancel(self, order_id: str) -> Order:
        """Cancel what is left of an open order; returns the order as the broker then reports it.

        The order is PENDING_CANCEL while the request is out. A broker that answers "nothing to
        cancel" (filled or gone meanwhile) is asked for the order's status, which decides.
        """
        self._require_started()
        async with self.blotter.lock(order_id):
            order = await self._stored(order_id)
            if order.is_terminal or order.broker_order_id is None:
                return order
            return await self.executor.cancel(order)

    async def resolve(
        self, order_id: str, *, adopt: str | None = None, absent: bool = False
    ) -> Order:
        """Settle an UNKNOWN (or stuck SUBMITTING) order by hand, for an operator who checked
        the broker: ``adopt`` the broker order with that id (its status is fetched and booked),
        or declare it ``absent`` (FAILED "not sent"). Exactly one of the two.
        """
        self._require_started()
        if (adopt is None) == (not absent):
            raise ConfigurationError("resolve takes exactly one of adopt=BROKER_ID or absent=True")
        async with self.blotter.lock(order_id):
            order = await self._stored(order_id)
            if order.status not in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
                raise ConfigurationError(
                    f"order {order_id} is {order.status.value}: only UNKNOWN or SUBMITTING "
                    "orders are settled by hand"
                )
            if absent:
                log.warning("Order %s resolved by hand: the broker does not have it", order.id)
                return await self.blotter.move(
                    order, OrderStatus.FAILED, reason="not sent (resolved by hand)"
                )
            assert adopt is not None
            if adopt in await self.journal.owned_broker_ids(order.account_id, order.symbol):
                raise ConfigurationError(f"broker order {adopt} already belongs to another order")
            probe = attrs.evolve(order, broker_order_id=adopt)
            snapshot = await self.broker.order_status(probe)
            log.warning("Order %s resolved by hand: adopting broker order %s", order.id, adopt)
            return await self.executor.book_answer(
                order, attrs.evolve(snapshot, broker_order_id=adopt)
            )

    async def _stored(self, order_id: str) -> Order:
        order = await self.journal.get_order(order_id)
        if order is None:
            raise UnknownOrderError(f"no order {order_id!r} in the journal")
        return order

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: the limiter's queue and waits, the journal's commits (how
        long each transaction took and how many changes it carried, as histograms)."""
        limiter = self.limiter
        commit_stats = getattr(self.journal, "commit_stats", None)
        return {
            "journal_commits": getattr(self.journal, "commits", None),
            "journal": None if commit_stats is None else commit_stats.snapshot(),
            "rate_limiter": None if limiter is None else limiter.snapshot().as_dict(),
        }

    async def flush_events(self) -> None:
        """Wait until observers have received every event committed so far."""
        await self.events.flush()

    # ---------------------------------------------------------------- queries

    async def get_order(self, order_id: str) -> Order | None:
        return await self.journal.get_order(order_id)

    # List reads leave out a stored row that cannot be read (logged, and listed in the
    # result's ``unreadable``): one corrupted row never hides the others.

    async def orders(self, limit: int = 100) -> JournalRows[Order]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
            raise ConfigurationError(f"limit must be a whole number from 1 to {MAX_ROWS:,}")
        return await self.journal.list_orders(limit)

    async def open_orders(self) -> JournalRows[Order]:
        return await self.journal.open_orders(self.config.account_id)

    async def fills(self, order_id: str) -> JournalRows[Fill]:
        return await self.journal.fills(order_id)

    async def positions(self) -> JournalRows[Position]:
        return await self.journal.positions(self.config.account_id)

    async def position(self, symbol: str) -> Position:
        for position in await self.positions():
            if position.symbol == symbol:
                return position
        return Position(account_id=self.config.account_id, symbol=symbol)

    async def realized_pnl(self, by: str = "session") -> JournalRows[PnLSummary]:
        """Realized P&L summed per ``"session"`` (the closing order's) or per trading ``"day"``."""
        if by not in ("session", "day"):
            raise ConfigurationError(f"realized_pnl takes by='session' or by='day', got {by!r}")
        return await self.journal.realized_pnl(by)
