"""Values the journal cannot hold, adapter settings and engine settings: refused up front.

A signal is held to what the journal can store (a quantity below 2**63, a price below 1E+20
with at most 28 decimal places, printable identifiers) and to the decimal places its adapter
declares, so nothing unbookable is ever sent. Broker answers are held to the same bounds. The
adapter's settings and the engine's are checked when the engine is built, never at the first
fill.
"""

from __future__ import annotations

import math
import sys
import unicodedata
from decimal import Decimal
from typing import Any

import attrs
import pytest

from orderlane import (
    Engine,
    EngineConfig,
    Operation,
    OrderStatus,
    RateLimit,
    RetryConfig,
    Signal,
    hookimpl,
)
from orderlane.broker import AdapterInfo
from orderlane.errors import BrokerAnswerError, ConfigurationError, InvalidSignalError
from orderlane.model import Execution, OrderSnapshot, check_text
from orderlane.plugins import load_adapter
from orderlane_mock import MockVenue
from orderlane_mock.adapter import MockAdapter

# ------------------------------------------------------------------ item 1: what the journal holds

#: A signed 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT); prices below 1E+20.
MAX_QUANTITY = 2**63 - 1
MAX_PRICE = Decimal(10) ** 20


def test_the_documented_bounds_are_the_models() -> None:
    from orderlane import model

    assert (model.MAX_QUANTITY, model.MAX_PRICE) == (MAX_QUANTITY, MAX_PRICE)
    assert model.MIN_PRICE_EXPONENT == -28


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": 2**63}, "quantity"),
        ({"quantity": 10**30}, "quantity"),
        ({"order_type": "LIMIT", "limit_price": "1e400"}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "1e9999999999"}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": Decimal("1E+20")}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "1e-30"}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "1." + "1" * 28}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "NaN"}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "1_000"}, "limit_price"),
        ({"order_type": "LIMIT", "limit_price": "\uff11\uff10"}, "limit_price"),  # fullwidth 10
    ],
)
def test_a_signal_beyond_what_the_journal_holds_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    fields: dict[str, Any] = {"symbol": "005930", "direction": "BUY", "quantity": 1}
    fields.update(changes)
    with pytest.raises(InvalidSignalError, match=field):
        Signal(**fields)


def test_the_largest_signal_values_are_accepted() -> None:
    signal = Signal(
        "005930", "BUY", MAX_QUANTITY, "LIMIT", limit_price=MAX_PRICE - Decimal("0.0001")
    )
    assert signal.quantity == 2**63 - 1


async def test_an_order_of_the_largest_quantity_is_sent_filled_and_booked(
    database_url: str, venue: MockVenue, clock: Any
) -> None:
    """The bound is what the journal holds: such an order books on SQLite and PostgreSQL."""
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=database_url
    ) as engine:
        order = await engine.execute(
            Signal("005930", "BUY", MAX_QUANTITY, "LIMIT", limit_price="99999999999999999999")
        )
        assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, MAX_QUANTITY)
        stored = await engine.get_order(order.id)
        assert stored == order
        assert (await engine.position("005930")).quantity == MAX_QUANTITY


async def test_an_answer_for_a_large_order_whose_notional_passes_1e20_is_booked(
    engine: Engine,
) -> None:
    """10**16 shares at 72,000 is a notional of 7.2E+20: an amount, not a price, and bookable."""
    order = await engine.execute(Signal("005930", "BUY", 10**16))
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 10**16)
    assert order.filled_notional == Decimal(72000) * 10**16
    assert (await engine.position("005930")).quantity == 10**16


async def test_an_answer_with_a_quantity_beyond_the_journal_is_refused(engine: Engine) -> None:
    order = await engine.execute(Signal("005930", "BUY", 1))
    bad = OrderSnapshot(
        OrderStatus.FILLED,
        broker_order_id=order.broker_order_id,
        filled_quantity=2**63,
        average_price=Decimal(1),
    )
    with pytest.raises(BrokerAnswerError, match="filled_quantity"):
        engine.broker.check(bad, "orderlane_order_status")
    execution = Execution("f-1", 1, Decimal("1E-29"))
    with pytest.raises(BrokerAnswerError, match=r"executions\[0\]\.price"):
        engine.broker.check(
            OrderSnapshot(OrderStatus.FILLED, "B-1", 1, executions=(execution,)),
            "orderlane_order_status",
        )


# ------------------------------------------------------------------ item 2: adapter settings


def test_a_bad_mock_timezone_is_refused_when_the_adapter_is_built() -> None:
    with pytest.raises(ConfigurationError, match=r"timezone.*Bad/Zone"):
        Engine("mock", adapter_options={"timezone": "Bad/Zone"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Bad/Zone"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 9}, "timezone"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"price_places": -1}, "price_places"),
        ({"price_places": 29}, "price_places"),
        ({"new_order_lag": -1.0}, "new_order_lag"),
    ],
)
def test_adapter_info_the_engine_relies_on_is_checked_when_the_engine_is_built(
    changes: dict[str, Any], field: str
) -> None:
    class Declares(MockAdapter):
        @hookimpl
        def orderlane_adapter_info(self) -> AdapterInfo:
            return attrs.evolve(super().orderlane_adapter_info(), **changes)

    with pytest.raises(ConfigurationError, match=field) as caught:
        Engine(Declares(MockVenue()))
    assert "adapter 'mock'" in str(caught.value)


def test_an_adapter_object_with_a_bad_timezone_is_refused_before_any_order() -> None:
    with pytest.raises(ConfigurationError, match="timezone"):
        Engine(MockAdapter(MockVenue(), timezone="Bad/Zone"))


@pytest.mark.parametrize(
    "options",
    [
        {"latency": "abc"},
        {"latency": "-1"},
        {"latency": "nan"},
        {"latency": "inf"},
        {"quote": "abc"},
        {"quote": "0"},
        {"quote": "1e400"},
        {"commission": "-1"},
        {"rate_limit": "abc"},
        {"rate_limit": "1.5"},
        {"rate_limit": "5", "rate_period": "abc"},
        {"rate_limit": "5", "rate_period": "inf"},
        {"rate_limit": "5", "rate_period": "nan"},
    ],
)
def test_every_mock_option_is_checked_when_the_adapter_is_built(options: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        load_adapter("mock", options)


# ------------------------------------------------------------------ item 9: engine settings


@pytest.mark.parametrize(
    ("field", "value", "range_text"),
    [
        ("poll_interval", 0, "at least 0.01"),
        ("poll_interval", -1.0, "at least 0.01"),
        ("poll_interval", math.nan, "at least 0.01"),
        ("poll_interval", "0.5", "at least 0.01"),
        ("engine_lease", 0, "at least 0.3"),
        ("engine_lease", math.inf, "at least 0.3"),
        ("order_timeout", -5.0, "above 0"),
        ("order_timeout", 0, "above 0"),
        ("instrument_hold_timeout", -1, "at least 0"),
        ("instrument_hold_poll", 0, "at least 0.01"),
        ("push_safety_interval", 0, "at least 0.01"),
        ("lookup_interval", 0, "at least 0.01"),
        ("late_fill_window", -1.0, "at least 0"),
        ("late_fill_poll_interval", 0, "at least 0.01"),
        ("early_update_hold", -1, "at least 0"),
        ("rate_limit_margin", -0.1, "at least 0"),
        ("rate_limit_margin", 2.0, "from 0 to 1"),
        ("track", "yes", "True, False or None"),
        ("recover_on_start", 1, "True or False"),
        ("resubmit_after_crash", "no", "True or False"),
        ("load_entry_point_plugins", None, "True or False"),
        ("sqlite_synchronous", "OFF", "FULL, EXTRA or NORMAL"),
        ("rate_limits", (5,), "RateLimit"),
        ("retry", {"place": RetryConfig()}, "Operation"),
        ("credential_key", "", "non-empty"),
        ("account_id", "acct\x1b[2J", "U\\+001B"),
        ("database_url", 5, "URL string"),
        ("create_journal", "no", "True or False"),
        ("database_connect_timeout", 0, "above 0"),
        ("database_statement_timeout", -1.0, "above 0"),
    ],
)
def test_engine_config_names_the_field_and_its_range(
    field: str, value: Any, range_text: str
) -> None:
    with pytest.raises(ConfigurationError, match=range_text) as caught:
        EngineConfig(**{field: value})
    assert field in str(caught.value)
    # attrs.evolve checks as construction does
    with pytest.raises(ConfigurationError):
        attrs.evolve(EngineConfig(), **{field: value})


def test_the_floors_themselves_are_accepted() -> None:
    config = EngineConfig(poll_interval=0.01, engine_lease=0.3, order_timeout=0.1, track=None)
    assert config.poll_interval == 0.01
    assert EngineConfig(retry={Operation.PLACE: RetryConfig(max_attempts=5)}).retry


@pytest.mark.parametrize(
    "make",
    [
        lambda: RateLimit(1.5),  # type: ignore[arg-type]
        lambda: RateLimit(True),
        lambda: RateLimit(5, math.inf),
        lambda: RateLimit(5, math.nan),
        lambda: RateLimit(10**12),
        lambda: RetryConfig(initial_delay=math.nan),
        lambda: RetryConfig(max_attempts=10**20),
        lambda: RetryConfig(max_delay=math.inf),
        lambda: RetryConfig(jitter=math.nan),
    ],
)
def test_rate_limits_and_retry_settings_refuse_nan_infinity_and_wrong_types(make: Any) -> None:
    with pytest.raises(ConfigurationError):
        make()


def test_engine_refuses_a_config_that_is_not_an_engine_config() -> None:
    with pytest.raises(ConfigurationError, match="EngineConfig"):
        Engine("mock", config={"poll_interval": 0.5})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="adapter_options"):
        Engine("mock", adapter_options=["latency=1"])  # type: ignore[arg-type]


async def test_journal_queries_refuse_bad_arguments_with_orderlane_errors(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="'session' or by='day'"):
        await engine.realized_pnl("bogus")
    with pytest.raises(ConfigurationError, match="limit"):
        await engine.orders(10**20)
    with pytest.raises(ConfigurationError, match="limit"):
        await engine.orders(0)


# ------------------------------------------------------------------ item 11: the adapter's ticks


async def test_a_limit_price_finer_than_the_adapter_takes_is_refused_before_anything_is_stored(
    engine: Engine, venue: MockVenue
) -> None:
    assert engine.broker.info.price_places == 4
    with pytest.raises(InvalidSignalError, match="at most 4 decimal places"):
        await engine.execute(Signal("005930", "BUY", 1, "LIMIT", limit_price="72000.123456789"))
    assert venue.places == []
    assert list(await engine.orders()) == []
    # as many places as declared (trailing zeros do not count) go out
    order = await engine.execute(Signal("005930", "BUY", 1, "LIMIT", limit_price="72000.12340"))
    assert order.status is OrderStatus.FILLED


def test_kis_declares_whole_won_prices() -> None:
    engine = Engine("kis-paper")
    assert engine.broker.info.price_places == 0
    with pytest.raises(InvalidSignalError, match="whole units"):
        engine.broker.check_signal(Signal("005930", "BUY", 1, "LIMIT", limit_price="72000.5"))
    engine.broker.check_signal(Signal("005930", "BUY", 1, "LIMIT", limit_price="72000"))
    engine.broker.check_signal(Signal("005930", "BUY", 1, "LIMIT", limit_price="7.2E+4"))


# ------------------------------------------------------------------ item 12: printable identifiers


@pytest.mark.parametrize(
    "text", ["0059\x1b[31m30", "005930\nFILLED", "\u202e039500", "005\udcff930", "a\u2028b"]
)
@pytest.mark.parametrize("field", ["symbol", "symbol_name", "session_id", "signal_id"])
def test_control_characters_are_refused_in_identifiers(field: str, text: str) -> None:
    fields: dict[str, Any] = {"symbol": "005930", "direction": "BUY", "quantity": 1}
    fields[field] = text
    with pytest.raises(InvalidSignalError, match=f"{field} holds the character U\\+") as caught:
        Signal(**fields)
    assert "\x1b" not in str(caught.value)


def test_every_character_of_a_refused_category_is_refused_amid_printable_text() -> None:
    # check_text passes text that str.isprintable accepts without looking at each character:
    # every control, format, surrogate, line and paragraph separator must fail isprintable.
    refused = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    checked = 0
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if unicodedata.category(char) not in refused:
            continue
        checked += 1
        with pytest.raises(InvalidSignalError, match=f"U\\+{point:04X} at position 4"):
            check_text(f"삼성 {char}전자", "symbol_name", 64)
    assert checked > 2048  # the surrogates alone are 2,048


def test_printable_unicode_names_are_kept() -> None:
    assert Signal("005930", "BUY", 1, symbol_name="삼성전자 우").symbol_name == "삼성전자 우"


async def test_a_broker_id_with_control_characters_is_refused(engine: Engine) -> None:
    with pytest.raises(BrokerAnswerError, match="broker_order_id"):
        engine.broker.check(
            OrderSnapshot(OrderStatus.SUBMITTED, broker_order_id="B-1\n\x1b[2J"),
            "orderlane_order_status",
        )
