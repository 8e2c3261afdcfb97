"""Hostile input, generated: signals, command lines and broker answers an attacker or a careless
user would produce.

Whatever comes in, the outcome is a clear error (an orderlane error, or a usage error and a
non-zero exit on the command line) or an order that is settled, now or by the tracker later:
never a crash of the engine, an order in a state the broker does not agree with, a symbol held
for good, or an order the broker holds that the journal does not know. Each property runs a
bounded number of examples on a fresh journal, so the file adds seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orderlane import Engine, FakeClock, OrderStatus, Signal
from orderlane.cli import app
from orderlane.errors import BrokerAnswerError, InvalidSignalError, OrderlaneError
from orderlane.model import TERMINAL_STATUSES, Execution, OrderSnapshot
from orderlane_mock import MockVenue

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: Text as a hostile user types it: any code point, escape sequences, lone surrogates.
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", " ", "005930\n", "\x1b[2J", "\u202e", "\udcff", "a" * 300]),
)
#: Numbers a slip or an attacker produces, in every type.
hostile_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [Decimal("1e400"), Decimal("1e-30"), Decimal("-0"), "1_000", "\uff11\uff10", True, None]
    ),
    st.text(max_size=12),
)


# ---------------------------------------------------------------- signals through an engine

signal_fields = st.fixed_dictionaries(
    {
        "symbol": st.one_of(hostile_text, st.sampled_from(["005930", "000660"])),
        "direction": st.one_of(st.sampled_from(["BUY", "sell", "HOLD"]), hostile_text),
        "quantity": st.one_of(hostile_numbers, st.integers(min_value=1, max_value=1000)),
        "order_type": st.sampled_from(["MARKET", "LIMIT", "limit", "STOP"]),
        "limit_price": st.one_of(st.none(), hostile_numbers, st.sampled_from(["72000", "1.5"])),
    },
    optional={
        "symbol_name": hostile_text,
        "session_id": hostile_text,
        "signal_id": st.one_of(st.none(), hostile_text),
    },
)

#: A field of a status answer and the hostile value it takes (None: the field left out).
answer_fields = st.sampled_from(
    [
        *("filled_quantity", "filled_notional", "average_price", "commission", "broker_time"),
        *("status", "broker_order_id", "executions", "reason", "execution.price"),
        *("execution.quantity", "execution.fill_id", "result"),
    ]
)
answer_values = st.one_of(
    hostile_numbers,
    hostile_text,
    st.just([object()]),
    st.just({"status": "FILLED"}),
)


def _corrupt(field: str, value: Any) -> Any:
    def change(snapshot: OrderSnapshot) -> Any:
        if field == "result":
            return value
        if field.startswith("execution."):
            name = field.partition(".")[2]
            executions = tuple(
                attrs.evolve(each, **{name: value}) for each in snapshot.executions
            ) or (Execution("x-1", 1, Decimal(1)),)
            return attrs.evolve(snapshot, executions=executions)
        return attrs.evolve(snapshot, **{field: value})

    return change


#: A place answer naming another well-formed broker id is a broker that lies about which order
#: it took: nothing can find that out. A malformed id is refused and the order looked up.
place_answer = st.one_of(
    st.tuples(
        st.just("place answer"),
        answer_fields.filter(lambda f: f != "broker_order_id"),
        answer_values,
    ),
    st.tuples(
        st.just("place answer"),
        st.just("broker_order_id"),
        st.sampled_from(["", "B\n1", "\x1b[2J", "x" * 200, 5, 1.5, b"M1"]),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("signal"), signal_fields),
        st.tuples(st.just("status answer"), answer_fields, answer_values),
        place_answer,
    ),
    min_size=1,
    max_size=5,
)


async def _settle(engine: Engine, clock: FakeClock) -> None:
    """Poll until nothing is in flight (bounded): the tracker settles what the answers left."""
    for _ in range(10):
        open_orders = list(await engine.open_orders())
        if all(o.status in (OrderStatus.SUBMITTED, OrderStatus.FILLED) for o in open_orders):
            return
        clock.advance(engine.config.lookup_interval)
        await engine.tracker.poll_once()


async def _play(path: Path, plan: list[tuple[Any, ...]]) -> None:
    venue, clock = MockVenue(), FakeClock()
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=f"sqlite:///{path}"
    ) as engine:
        symbols = {"005930"}
        refused: list[OrderlaneError] = []
        for step in plan:
            if step[0] == "signal":
                try:
                    signal = Signal(**step[1])
                    order = await engine.execute(signal)
                except InvalidSignalError as error:
                    refused.append(error)  # a clear error, nothing else
                    continue
                symbols.add(order.symbol)
                assert order.status is OrderStatus.FILLED, order  # the mock fills at once
            elif step[0] == "status answer":
                venue.hold_next()
                order = await engine.execute(Signal("005930", "BUY", 3))
                assert order.broker_order_id is not None
                venue.fill(order.broker_order_id)
                venue.corrupt_next_status(order.broker_order_id, _corrupt(step[1], step[2]))
                try:
                    await engine.refresh(order.id)
                except BrokerAnswerError as error:
                    refused.append(error)
            else:
                venue.corrupt_next_place(_corrupt(step[1], step[2]))
                order = await engine.execute(Signal("000660", "SELL", 2))
                symbols.add("000660")
            await _settle(engine, clock)

        assert all(str(error) for error in refused)
        assert all(
            (error.adapter, bool(error.field)) == ("mock", True)
            for error in refused
            if isinstance(error, BrokerAnswerError)
        )
        # Nothing left in flight; every order the venue holds is an order of the journal.
        stored = list(await engine.orders(1000))
        assert all(o.status in TERMINAL_STATUSES | {OrderStatus.SUBMITTED} for o in stored)
        owned = {o.broker_order_id for o in stored}
        assert set(venue.orders) <= owned
        # The books agree with the orders.
        for position in await engine.positions():
            filled = sum(
                o.filled_quantity * o.side.sign for o in stored if o.symbol == position.symbol
            )
            assert position.quantity == filled
        assert not (await engine.positions()).unreadable
        assert not (await engine.realized_pnl()).unreadable
        # No symbol is held: a plain order for each goes out and fills.
        for symbol in symbols:
            after = await engine.execute(Signal(symbol, "BUY", 1))
            assert after.status is OrderStatus.FILLED


@BOUNDED
@given(plan=steps)
def test_hostile_signals_and_broker_answers_never_crash_poison_or_lose_an_order(
    plan: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_play(Path(directory) / "journal.db", plan))


# ---------------------------------------------------------------- command lines

arguments = st.lists(
    st.one_of(
        hostile_text,
        st.sampled_from(["--limit", "-o", "--account", "--signal-id", "--session", "--name"]),
        st.sampled_from(["latency=abc", "rate_limit=1.5", "timezone=Bad/Zone", "1e-30", "1_000"]),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.floats().map(str),
    ),
    max_size=6,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from([["order", "buy"], ["order", "sell"], ["orders", "-n"], ["resolve"]]),
    args=arguments,
)
def test_hostile_command_lines_end_in_a_message_and_an_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], args: list[str]
) -> None:
    monkeypatch.delenv("ORDERLANE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    result = CliRunner().invoke(app, [*command, *args, "--database-url", url])
    assert result.exit_code in (0, 1, 2, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert "\x1b" not in result.output  # nothing typed reaches the terminal raw
    if result.exit_code == 0 and command[0] == "order":
        assert "FILLED" in result.stdout


# ---------------------------------------------------------------- answers on the wire (KIS)

#: What a broker's gateway sends when it cannot send the answer: every body is junk.
_ORDER_OK = {
    "rt_cd": "0",
    "msg_cd": "APBK0013",
    "msg1": "주문 전송 완료 되었습니다.",
    "output": {"KRX_FWDG_ORD_ORGNO": "91252", "ODNO": "0000117057", "ORD_TMD": "121052"},
}
_TEXT = json.dumps(_ORDER_OK, ensure_ascii=False)
junk_bodies = st.one_of(
    st.integers(min_value=0, max_value=len(_TEXT) - 1).map(lambda n: _TEXT[:n].encode()),
    st.sampled_from(
        [
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b"<!DOCTYPE html><title>Service Unavailable</title>",
            b"\xff\xfe\x00{",
            b"",
            b"null",
            b"[]",
            b'"text"',
            json.dumps({**_ORDER_OK, "output": None}).encode(),
            json.dumps({**_ORDER_OK, "output": {"ODNO": None}}).encode(),
            json.dumps({**_ORDER_OK, "output": {"ODNO": "12\n\x1b[2J"}}).encode(),
            json.dumps({**_ORDER_OK, "output": {"ODNO": 1.5e308}}).encode(),
            json.dumps({**_ORDER_OK, "output": {"ODNO": "9" * 400}}).encode(),
            json.dumps({"rt_cd": 0}).encode(),
        ]
    ),
    st.binary(max_size=64),
)


async def _kis_play(path: Path, answers: list[tuple[bytes, int, str, bool]], cache: Path) -> None:
    from kis.test_kis_adapter import options as kis_options

    from orderlane_kis.adapter import create_paper_adapter
    from orderlane_kis.fake import FakeKisVenue

    clock = FakeClock()
    async with (
        FakeKisVenue("paper", clock=clock, ping_interval=None) as venue,
        Engine.open(
            create_paper_adapter(kis_options(venue, cache)),
            clock=clock,
            database_url=f"sqlite:///{path}",
        ) as engine,
    ):
        for body, status, content_type, processed in answers:
            venue.add_raw_answer(
                "place", body, status=status, content_type=content_type, processed=processed
            )
            try:
                await engine.execute(Signal("005930", "BUY", 1))
            except OrderlaneError as error:  # pragma: no cover - a failure would show it
                pytest.fail(f"execute raised {error!r} instead of returning the order")
            await _settle(engine, clock)
        stored = list(await engine.orders(1000))
        owned = {o.broker_order_id for o in stored if o.broker_order_id}
        at_venue = {each["odno"] for each in venue.orders()}
        assert at_venue <= owned, (at_venue, [(o.status, o.reason) for o in stored])
        assert all(o.status in TERMINAL_STATUSES | {OrderStatus.SUBMITTED} for o in stored)
        after = await engine.execute(Signal("005930", "BUY", 1))
        assert after.status not in (OrderStatus.UNKNOWN, OrderStatus.FAILED), after


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    answers=st.lists(
        st.tuples(
            junk_bodies,
            st.sampled_from([200, 500, 502, 503]),
            st.sampled_from(["application/json", "text/html", "text/plain"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_junk_on_the_wire_never_loses_an_order(
    tmp_path: Path, answers: list[tuple[bytes, int, str, bool]]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as directory:
        asyncio.run(_kis_play(Path(directory) / "journal.db", answers, Path(directory) / "tok"))
