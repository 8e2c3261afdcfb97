"""The engine: one adapter, one journal, observers, and the API a strategy calls.

::

    async with Engine.open(adapter="mock") as engine:
        order = await engine.execute(Signal("005930", "BUY", 10))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs

from orderlane.broker import Broker
from orderlane.clock import Clock, FakeClock, SystemClock, wall_now
from orderlane.contract import BrokerContext, Operation, RateLimit, RetryConfig
from orderlane.defaults import DefaultRetryPolicy, InProcessLimiter
from orderlane.errors import (
    BrokerError,
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
from orderlane.journal.url import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from orderlane.limiter import DEFAULT_LIMITER, RateLimiter
from orderlane.model import MAX_ID_LENGTH, Fill, Order, OrderStatus, Signal, check_text
from orderlane.plugins import load_adapter, load_entry_point_plugins, make_plugin_manager
from orderlane.positions import Position
from orderlane.recovery import Recovery, RecoveryChange
from orderlane.tracker import OrderTracker

__all__ = ["Engine", "EngineConfig", "StatusHandler"]

log = logging.getLogger("orderlane.engine")

MAX_ACCOUNT_LENGTH = 64
#: Most rows one read returns (a database's row limit is a signed 64-bit integer).
MAX_ROWS = 2**63 - 1


StatusHandler = Callable[[Order, OrderStatus], Awaitable[None] | None]


def _check_number(
    name: str, value: object, *, least: float, above: bool = False, optional: bool = False
) -> None:
    """Refuse ``value`` for the setting ``name`` unless it is a finite number of at least
    ``least`` (above it, with ``above``), or None where ``optional``."""
    if value is None and optional:
        return
    bound = f"above {least:g}" if above else f"at least {least:g}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        assert isinstance(value, (int, float))
        ok = math.isfinite(value) and (value > least if above else value >= least)
    if not ok:
        none = " or None" if optional else ""
        raise ConfigurationError(
            f"EngineConfig.{name} must be a number of seconds {bound}{none}, got {value!r}"
        )


def _seconds(least: float, *, above: bool = False, optional: bool = False) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_number(attribute.name, value, least=least, above=above, optional=optional)

    return check


def _flag(*, optional: bool = False) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bool) and not (optional and value is None):
            what = "True, False or None" if optional else "True or False"
            raise ConfigurationError(f"EngineConfig.{attribute.name} must be {what}, got {value!r}")

    return check


def _check_rate_limits(_instance: object, _attribute: object, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(isinstance(each, RateLimit) for each in value):
        raise ConfigurationError(
            f"EngineConfig.rate_limits must be None or a tuple of RateLimit, got {value!r}"
        )


def _check_margin(_instance: object, _attribute: object, value: Any) -> None:
    _check_number("rate_limit_margin", value, least=0)
    assert isinstance(value, (int, float))
    if value > 1:
        raise ConfigurationError(
            f"EngineConfig.rate_limit_margin is a fraction from 0 to 1, got {value!r}"
        )


def _check_retry(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(key, Operation) and isinstance(each, RetryConfig) for key, each in value.items()
    ):
        raise ConfigurationError(
            "EngineConfig.retry must map Operation to RetryConfig, e.g. "
            "{Operation.PLACE: RetryConfig(max_attempts=5)}"
        )


def _check_credential_key(_instance: object, _attribute: object, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigurationError("EngineConfig.credential_key must be a non-empty string or None")
    try:
        check_text(value, "EngineConfig.credential_key", MAX_ID_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None


def _check_limiter_name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"EngineConfig.rate_limiter names a limiter plugin ({DEFAULT_LIMITER!r}, 'redis'...), "
            f"got {value!r}"
        )
    try:
        check_text(value, "EngineConfig.rate_limiter", MAX_ID_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None


def _check_limiter_options(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigurationError(
            "EngineConfig.rate_limiter_options is a mapping of option names to values"
        )


#: Floors of the intervals that set how often the engine wakes: below them the engine would
#: spin (a poll interval of 0 is a busy loop) or hammer the database with heartbeats.
MIN_INTERVAL = 0.01
#: The heartbeat is refreshed three times per lease: 0.3 s is ten fsync'd writes a second.
MIN_ENGINE_LEASE = 0.3


@attrs.frozen
class EngineConfig:
    """Settings of one engine. Every field has a default that works out of the box.

    Checked when built: a setting of the wrong type or outside its range raises
    :class:`~orderlane.errors.ConfigurationError` naming the field and its range.
    """

    #: The broker account this engine trades for; orders and positions are kept per account.
    #: A label of yours (at most 64 printable characters), not the broker's account number: it
    #: is stored in every order and event.
    account_id: str = attrs.field(default="default", validator=lambda _i, _a, v: _check_account(v))
    #: Journal database URL; None means ``ORDERLANE_DATABASE_URL`` or ``./orderlane.db``.
    database_url: str | None = attrs.field(default=None, repr=False)  # may hold a password
    #: SQLite durability: FULL (default) syncs each commit before the order is sent.
    sqlite_synchronous: str = attrs.field(default="FULL")
    #: Create the journal (SQLite file, schema) when there is none. False: a missing journal is
    #: an error, as for commands that only settle orders (``orderlane recover``, ``resolve``).
    create_journal: bool = attrs.field(default=True, validator=_flag())
    #: PostgreSQL: seconds to wait for the server to accept a session (whole seconds, at least
    #: 2) before opening the engine fails, unless the URL sets ``connect_timeout`` itself.
    database_connect_timeout: float = attrs.field(
        default=DEFAULT_CONNECT_TIMEOUT, validator=_seconds(0, above=True)
    )
    #: PostgreSQL: seconds one statement may run or wait for a lock before the server cancels
    #: it (the write fails with a JournalError); None: no limit.
    database_statement_timeout: float | None = attrs.field(
        default=DEFAULT_STATEMENT_TIMEOUT, validator=_seconds(0, above=True, optional=True)
    )
    #: Retry policy per operation; operations not named use the seed's default (3 x, 1 s, 2 s).
    retry: Mapping[Operation, RetryConfig] = attrs.field(factory=dict, validator=_check_retry)
    #: Load observer plugins published under the ``orderlane.plugins`` entry-point group.
    load_entry_point_plugins: bool = attrs.field(default=True, validator=_flag())
    #: Broker request limits; None means what the adapter declares (``orderlane_rate_limits``).
    rate_limits: tuple[RateLimit, ...] | None = attrs.field(
        default=None, validator=_check_rate_limits
    )
    #: Each limit's window is counted this fraction longer, for the time from grant to arrival
    #: (0 to 1).
    rate_limit_margin: float = attrs.field(default=0.02, validator=_check_margin)
    #: Key of the limiter shared by engines on one broker credential; None: adapter + account.
    credential_key: str | None = attrs.field(default=None, validator=_check_credential_key)
    #: Which limiter counts the credential's requests, by the name its plugin answers to:
    #: ``"in-process"`` (the core's, shared by the engines of one process) or a plugin's, such
    #: as ``"redis"`` (``pip install orderlane-redis``: shared by every process on the key).
    rate_limiter: str = attrs.field(default=DEFAULT_LIMITER, validator=_check_limiter_name)
    #: Options for that limiter's plugin (``{"url": "redis://..."}``); may hold a password.
    rate_limiter_options: Mapping[str, Any] = attrs.field(
        factory=dict, repr=False, validator=_check_limiter_options
    )
    #: How long a new order may wait behind an UNKNOWN order for the same instrument (>= 0).
    instrument_hold_timeout: float = attrs.field(default=30.0, validator=_seconds(0))
    #: How often a held order checks whether its instrument is free again (>= 0.01).
    instrument_hold_poll: float = attrs.field(default=0.5, validator=_seconds(MIN_INTERVAL))
    #: Seconds between poll cycles: statuses, timeouts, lookups of unplaced UNKNOWN orders
    #: (>= 0.01).
    poll_interval: float = attrs.field(default=0.5, validator=_seconds(MIN_INTERVAL))
    #: An order still open this many seconds after submission is cancelled and ends FAILED (> 0).
    order_timeout: float = attrs.field(default=300.0, validator=_seconds(0, above=True))
    #: With push updates, the broker is still asked for statuses this often, to be safe
    #: (>= 0.01).
    push_safety_interval: float = attrs.field(default=30.0, validator=_seconds(MIN_INTERVAL))
    #: How often an UNKNOWN order the broker could not place yet is looked up again (>= 0.01).
    lookup_interval: float = attrs.field(default=5.0, validator=_seconds(MIN_INTERVAL))
    #: How long an order that ended with quantity left (FAILED on timeout, CANCELLED) is still
    #: asked about, so an execution the broker reports late is booked. None: until the venue's
    #: trading day ends (midnight in the adapter's timezone).
    late_fill_window: float | None = attrs.field(default=None, validator=_seconds(0, optional=True))
    #: How often those orders join the status inquiry (>= 0.01).
    late_fill_poll_interval: float = attrs.field(default=5.0, validator=_seconds(MIN_INTERVAL))
    #: How long a pushed update for a broker id not stored yet is held for its place answer.
    early_update_hold: float = attrs.field(default=10.0, validator=_seconds(0))
    #: On start, send again an order the engine was sending when it stopped, if the broker
    #: confirms it never got it. Off: such an order ends FAILED "not sent".
    resubmit_after_crash: bool = attrs.field(default=False, validator=_flag())
    #: Reconcile the journal's open orders with the broker on start, before any signal.
    recover_on_start: bool = attrs.field(default=True, validator=_flag())
    #: Seconds an engine's heartbeat stays valid (>= 0.3). Recovery leaves alone the orders
    #: another engine with a live heartbeat is sending, and waits up to this long after a crash
    #: for the dead engine's heartbeat to lapse before settling its orders.
    engine_lease: float = attrs.field(default=15.0, validator=_seconds(MIN_ENGINE_LEASE))
    #: Run the tracker in the background. None: yes, unless the clock is a FakeClock (tests
    #: then drive it with ``await engine.tracker.poll_once()``).
    track: bool | None = attrs.field(default=None, validator=_flag(optional=True))

    @sqlite_synchronous.validator
    def _check_synchronous(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or value.upper() not in {"FULL", "EXTRA", "NORMAL"}:
            raise ConfigurationError(
                f"EngineConfig.sqlite_synchronous must be FULL, EXTRA or NORMAL, got {value!r}"
            )

    @database_url.validator
    def _check_url(self, _attribute: object, value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(
                f"EngineConfig.database_url must be a URL string or None, "
                f"got {type(value).__name__}"
            )


def _check_account(value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_ACCOUNT_LENGTH:
        raise ConfigurationError(
            f"account_id must be a non-empty label of at most {MAX_ACCOUNT_LENGTH} characters, "
            f"got {value!r}"
        )
    try:
        check_text(value, "account_id", MAX_ACCOUNT_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None


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
        self._status_handlers = _StatusHandlers()
        self.pm.register(self._status_handlers, name="orderlane-status-handlers")
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
        self.executor = Executor(self)
        self.tracker = OrderTracker(self)
        self.recovery = Recovery(self)
        #: What recovery did when this engine started (one entry per order it found open).
        self.last_recovery: list[RecoveryChange] = []
        self._fill_ids: dict[str, set[str]] = {}
        self.limiter: RateLimiter | None = None
        self._limiter_open = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
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
        was sent (:class:`~orderlane.errors.JournalError`). An order sent while the journal
        refuses writes (a full disk) is returned as last stored (SUBMITTING); the engine books
        the broker's answer once the journal takes writes again. Cancelling the call
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
        async with self.order_lock(order_id):
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
        async with self.order_lock(order_id):
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
        async with self.order_lock(order_id):
            order = await self._stored(order_id)
            if order.status not in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
                raise ConfigurationError(
                    f"order {order_id} is {order.status.value}: only UNKNOWN or SUBMITTING "
                    "orders are settled by hand"
                )
            if absent:
                log.warning("Order %s resolved by hand: the broker does not have it", order.id)
                return await self.executor.move(
                    order, OrderStatus.FAILED, reason="not sent (resolved by hand)"
                )
            assert adopt is not None
            if adopt in await self.owned_broker_ids(order):
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

    def order_lock(self, order_id: str) -> asyncio.Lock:
        """The lock that serializes every write to one order within this process."""
        lock = self._locks.get(order_id)
        if lock is None:
            lock = self._locks[order_id] = asyncio.Lock()
        return lock

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

    # ---------------------------------------------------------------- helpers for the executor

    async def known_fill_ids(self, order: Order) -> set[str]:
        cached = self._fill_ids.get(order.id)
        if cached is not None:
            return cached
        if order.filled_quantity == 0:
            return set()
        ids = {fill.fill_id for fill in await self.journal.fills(order.id)}
        self._fill_ids[order.id] = ids
        return ids

    def forget_fills(self, order_id: str) -> None:
        self._fill_ids.pop(order_id, None)

    def remember_fills(self, committed: Order, fills: Iterable[Fill]) -> None:
        if committed.is_terminal:
            self._fill_ids.pop(committed.id, None)
            return
        ids = self._fill_ids.setdefault(committed.id, set())
        ids.update(fill.fill_id for fill in fills)

    async def owned_broker_ids(self, order: Order) -> frozenset[str]:
        return await self.journal.owned_broker_ids(order.account_id, order.symbol)

    def transient(self, error: BaseException) -> bool:
        """Whether an ambiguous failure was a transport problem (retry once the broker says
        it has nothing), rather than an unexpected exception (fail once it says so)."""
        return isinstance(error, BrokerError)
