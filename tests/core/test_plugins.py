"""Plugin loading, the adapter facade's checks and the observer contract."""

from __future__ import annotations

import logging
import re
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from orderlane import AdapterInfo, Engine, Order, OrderStatus, Signal, hookimpl, hookspecs
from orderlane import plugins as plugins_module
from orderlane.broker import BrokerContext
from orderlane.errors import BrokerError, ConfigurationError, OrderVetoedError
from orderlane.plugins import installed_adapters, load_adapter
from orderlane_mock import MockAdapter, MockVenue


def test_the_mock_adapter_is_installed() -> None:
    adapters = installed_adapters()
    assert "mock" in adapters
    entry = adapters["mock"]
    assert entry.distribution == "orderlane-mock"
    assert entry.value == "orderlane_mock.adapter:create_adapter"
    assert isinstance(entry.create({}), MockAdapter)


def test_unknown_adapter_names_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"no orderlane adapter named 'nope'.*mock"):
        load_adapter("nope")
    with pytest.raises(ConfigurationError, match=r"installed: .*mock"):
        Engine("nope")


def test_unknown_mock_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown mock adapter options"):
        load_adapter("mock", {"colour": "blue"})
    with pytest.raises(ConfigurationError, match="decimal"):
        load_adapter("mock", {"quote": "lots"})


def test_observer_plugins_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Audit:
        @hookimpl
        def orderlane_order_created(self, order: Order) -> None:
            seen.append(order.id)

    fake = EntryPoint(name="audit", value="tests.audit:plugin", group=plugins_module.PLUGIN_GROUP)
    monkeypatch.setattr(fake.__class__, "load", lambda self: Audit(), raising=False)

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [fake] if group == plugins_module.PLUGIN_GROUP else []

    monkeypatch.setattr(plugins_module, "entry_points", entry_points)
    engine = Engine(MockAdapter())
    assert engine.pm.has_plugin("audit")


def test_a_broken_entry_point_plugin_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = EntryPoint(name="broken", value="nowhere:thing", group=plugins_module.PLUGIN_GROUP)
    monkeypatch.setattr(
        plugins_module, "entry_points", lambda *, group: [fake] if "plugins" in group else []
    )
    with pytest.raises(ConfigurationError, match="plugin 'broken'"):
        Engine(MockAdapter())


async def test_observer_exceptions_are_logged_and_others_still_hear(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    class Broken:
        @hookimpl
        def orderlane_order_created(self, order: Order) -> None:
            raise RuntimeError("observer bug")

    class Listener:
        @hookimpl
        async def orderlane_order_created(self, order: Order) -> None:
            heard.append(order.id)

    engine.register(Broken())
    engine.register(Listener())
    with caplog.at_level(logging.ERROR, logger="orderlane.events"):
        order = await engine.execute(Signal("005930", "BUY", 1))
        await engine.flush_events()
    assert order.status is OrderStatus.FILLED
    assert heard == [order.id]
    assert "observer bug" in caplog.text


async def test_a_validate_hook_vetoes_before_anything_is_stored(
    engine: Engine, venue: MockVenue
) -> None:
    class MaxSize:
        @hookimpl
        def orderlane_validate_order(self, order: Order) -> None:
            if order.quantity > 100:
                raise ValueError("order too large")

    engine.register(MaxSize())
    with pytest.raises(OrderVetoedError, match="order too large"):
        await engine.execute(Signal("005930", "BUY", 101))
    assert await engine.orders() == []
    assert venue.requests == []
    assert (await engine.execute(Signal("005930", "BUY", 100))).status is OrderStatus.FILLED


async def test_status_handlers_sync_and_async(engine: Engine) -> None:
    changes: list[tuple[str, str]] = []

    async def async_handler(order: Order, previous: OrderStatus) -> None:
        changes.append(("async", f"{previous}->{order.status}"))

    def failing_handler(order: Order, previous: OrderStatus) -> None:
        raise RuntimeError("handler bug")

    engine.add_status_handler(lambda o, p: changes.append(("sync", f"{p}->{o.status}")))
    engine.add_status_handler(failing_handler)
    engine.add_status_handler(async_handler)
    await engine.execute(Signal("005930", "BUY", 1))
    await engine.flush_events()
    assert changes == [
        ("sync", "CREATED->SUBMITTING"),
        ("async", "CREATED->SUBMITTING"),
        ("sync", "SUBMITTING->FILLED"),
        ("async", "SUBMITTING->FILLED"),
    ]


class Minimal:
    """An adapter with only the required hooks, answering garbage on purpose."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def orderlane_adapter_info(self) -> AdapterInfo:
        return AdapterInfo(name="minimal", version="1")

    @hookimpl
    def orderlane_place_order(self, ctx: BrokerContext, order: Order) -> Any:
        return self.answer


async def test_the_facade_checks_what_hooks_return(sqlite_url: str) -> None:
    async with Engine.open(Minimal({"status": "filled"}), database_url=sqlite_url) as engine:
        order = await engine.execute(Signal("005930", "BUY", 1))
        # A malformed answer after the request went out is ambiguous, never a guess; this
        # adapter cannot look orders up, so the order stays UNKNOWN for recovery.
        assert order.status is OrderStatus.UNKNOWN
        assert "bad result: dict" in (order.reason or "")
        with pytest.raises(ConfigurationError, match="does not implement orderlane_cancel_order"):
            await engine.broker.cancel_order(order)
        assert await engine.broker.order_statuses([]) == {}


async def test_an_adapter_with_a_bad_info_hook_fails_at_build() -> None:
    class BadInfo(Minimal):
        @hookimpl
        def orderlane_adapter_info(self) -> Any:
            return "mock"

    with pytest.raises(BrokerError, match="expected AdapterInfo"):
        Engine(BadInfo(None))


async def test_execute_needs_a_started_engine_and_a_signal(sqlite_url: str) -> None:
    engine = Engine(MockAdapter(), database_url=sqlite_url)
    with pytest.raises(ConfigurationError, match="not started"):
        await engine.execute(Signal("005930", "BUY", 1))
    async with Engine.open(MockAdapter(), database_url=sqlite_url) as started:
        with pytest.raises(ValueError, match="takes a Signal"):
            await started.execute({"symbol": "005930"})  # type: ignore[arg-type]
        assert "mock" in repr(started)


async def test_an_async_validate_hook_vetoes_too(engine: Engine, venue: MockVenue) -> None:
    class AsyncRisk:
        @hookimpl
        async def orderlane_validate_order(self, order: Order) -> None:
            raise ValueError("risk service says no")

    engine.register(AsyncRisk())
    with pytest.raises(OrderVetoedError, match="risk service says no"):
        await engine.execute(Signal("005930", "BUY", 1))
    assert venue.requests == []


@pytest.mark.parametrize("account", ["", "x" * 65, 7])
def test_account_ids_are_short_labels(account: object) -> None:
    from orderlane import EngineConfig

    with pytest.raises(ConfigurationError, match="account_id"):
        EngineConfig(account_id=account)  # type: ignore[arg-type]


def test_secrets_stay_out_of_reprs_and_printed_urls() -> None:
    from orderlane import EngineConfig, FakeClock
    from orderlane.broker import BrokerContext
    from orderlane.journal.sql import SqlJournal, safe_url

    url = "postgresql://trader:hunter2@db.example/ol?password=S3cret&sslmode=require"
    assert "hunter2" not in repr(EngineConfig(database_url=url))
    assert "S3cret" not in repr(SqlJournal(url))
    assert "hunter2" not in safe_url(url)
    assert "S3cret" not in safe_url(url)
    assert "sslmode=require" in safe_url(url)
    ctx = BrokerContext(account_id="a", options={"appsecret": "s3cr3t"}, clock=FakeClock())
    assert "s3cr3t" not in repr(ctx)


# ------------------------------------------------------------------ every hook is tested

TESTS = Path(__file__).resolve().parents[1]
CORE = TESTS.parent / "core" / "src" / "orderlane"


def test_every_hook_has_a_test_that_calls_it() -> None:
    """A hook added to orderlane.hookspecs without a test fails here: some test module must
    implement it (``def orderlane_...``) or name it where it drives it through the engine."""
    sources = "\n".join(path.read_text() for path in TESTS.rglob("*.py"))
    hooks = hookspecs.ADAPTER_HOOKS + hookspecs.RETRY_HOOKS + hookspecs.OBSERVER_HOOKS
    untested = [
        hook
        for hook in hooks
        if not re.search(rf"def {hook}\(|[\"']{hook}[\"']|\.{hook}\(", sources)
    ]
    assert untested == []


def test_only_the_two_facades_call_the_hook_relay() -> None:
    """Adapter hooks go through orderlane.broker.Broker, every other hook through
    orderlane.hooks.Hooks: nothing else in orderlane calls ``pm.hook`` itself."""
    callers = sorted(
        str(path.relative_to(CORE))
        for path in CORE.rglob("*.py")
        if re.search(r"pm\.hook\b", path.read_text())
    )
    assert callers == ["broker.py", "hooks.py"]


async def test_observers_hear_the_engine_start_and_close_and_their_failures_do_not_stop_it(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[tuple[str, bool, Any]] = []

    class Lifecycle:
        @hookimpl
        async def orderlane_engine_started(self, engine: Engine) -> None:
            heard.append(("started", engine.tracker is not None, engine.stats()["journal"]))

        @hookimpl
        def orderlane_engine_closing(self, engine: Engine) -> None:
            journal = engine.stats()["journal"]
            heard.append(("closing", True, journal["commit_seconds"]["count"]))

    class Broken:
        @hookimpl
        def orderlane_engine_started(self) -> None:
            raise RuntimeError("observer bug")

        @hookimpl
        def orderlane_engine_closing(self) -> None:
            raise RuntimeError("observer bug on close")

    plugins = [Broken(), Lifecycle()]
    async with Engine.open(MockAdapter(), plugins=plugins, database_url=sqlite_url) as engine:
        order = await engine.execute(Signal("005930", "BUY", 1))
    assert order.status is OrderStatus.FILLED
    assert [name for name, _, _ in heard] == ["started", "closing"]
    started_journal = heard[0][2]
    assert (
        started_journal["group_size"]["buckets"]["+Inf"] == started_journal["group_size"]["count"]
    )
    assert heard[1][2] >= 3  # created, submitting and filled were committed meanwhile
    assert "failed in orderlane_engine_started" in caplog.text
    assert "observer bug on close" in caplog.text
