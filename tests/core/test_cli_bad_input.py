"""Bad input on the command line: a message naming what is wrong and a non-zero exit, never a
traceback; stored text printed with its control characters escaped; exit 3 for an order whose
outcome is unknown."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from orderlane import Engine, Order, OrderStatus, Signal


def _refused(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    said = " ".join(result.output.split())  # as one line, however the console wrapped it
    for word in words:
        assert word in said, result.output


# ---------------------------------------------------------------- item 10: messages, not tracebacks


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["-o", "latency=abc"], ["latency", "'abc'"]),
        (["-o", "rate_limit=abc"], ["rate_limit", "'abc'"]),
        (["-o", "rate_limit=1.5"], ["rate_limit", "'1.5'"]),
        (["-o", "rate_limit=2", "-o", "rate_period=abc"], ["rate_period", "'abc'"]),
        (["-o", "rate_limit=2", "-o", "rate_period=inf"], ["period", "inf"]),
        (["-o", "quote=abc"], ["quote", "'abc'"]),
        (["-o", "timezone=Bad/Zone"], ["timezone", "Bad/Zone"]),
    ],
)
def test_a_bad_adapter_option_is_a_message_and_exit_1(
    cli: Any, sqlite_url: str, options: list[str], words: list[str]
) -> None:
    result = cli("order", "buy", "005930", "1", *options, "--database-url", sqlite_url)
    _refused(result, 1, *words)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite://orderlane.db", ["sqlite:///orderlane.db", "three slashes"]),
        ("postgresql://u:secret@localhost:abc/db", ["port is not a number"]),
    ],
)
@pytest.mark.parametrize("command", [["orders"], ["positions"], ["order", "buy", "005930", "1"]])
def test_a_malformed_database_url_is_a_message_and_exit_1(
    cli: Any, url: str, words: list[str], command: list[str]
) -> None:
    result = cli(*command, "--database-url", url)
    _refused(result, 1, *words)
    assert "secret" not in result.output


def test_a_journal_path_under_a_regular_file_is_a_message(cli: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker}/journal.db"
    result = cli("order", "buy", "005930", "1", "--database-url", url)
    _refused(result, 1, "cannot create the journal's directory", str(blocker))


def test_a_journal_path_under_proc_is_a_message(cli: Any) -> None:
    result = cli("order", "buy", "005930", "1", "--database-url", "sqlite:////proc/orderlane/j.db")
    _refused(result, 1, "journal")


@pytest.mark.parametrize(
    "args",
    [
        ["orders", "-n", "100000000000000000000"],
        ["orders", "-n", "0"],
        ["bench", "rate-limit", "--period", "inf"],
        ["bench", "rate-limit", "--period", "nan"],
        ["bench", "rate-limit", "--requests", "99999999999999999999"],
        ["bench", "latency", "--orders", "99999999999999999999"],
        ["bench", "throughput", "--concurrency", "99999999999"],
        ["bench", "recovery", "--open-orders", "99999999999999999999"],
        ["bench", "all", "--scale", "nan"],
        ["watch", "--interval", "inf", "--once"],
        ["watch", "--order-timeout", "nan", "--once"],
    ],
)
def test_out_of_range_numbers_are_usage_errors(cli: Any, args: list[str], sqlite_url: str) -> None:
    result = cli(*args)
    _refused(result, 2)


def test_a_symbol_that_is_not_utf8_is_refused(cli: Any, sqlite_url: str) -> None:
    # What Python makes of the bytes ff fe on the command line (surrogateescape).
    symbol = b"\xff\xfe005930".decode("utf-8", "surrogateescape")
    result = cli("order", "buy", symbol, "1", "--database-url", sqlite_url)
    _refused(result, 2, "U+DCFF", "not UTF-8")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing stored


# ---------------------------------------------------------------- item 11: silent nonsense


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["1_000"], ["QTY", "'1_000'"]),
        (["\uff11\uff10"], ["QTY", "0-9"]),  # fullwidth 10
        (["\u0661\u0660"], ["QTY", "0-9"]),  # Arabic-Indic 10
        (["-5"], []),
        (["9223372036854775808"], ["quantity", "9,223,372,036,854,775,807"]),
        (["100000000000000000000000000000"], ["QTY", "at most"]),
        (["1", "--limit", "1e-30"], ["limit_price", "28 decimal places"]),
        (["1", "--limit", "1e400"], ["limit_price", "beyond"]),
        (["1", "--limit", "72000.123456789"], ["4 decimal places", "'mock'"]),
        (["1", "--limit", "7_2000"], ["--limit", "'7_2000'"]),
        (["1", "--limit", "\uff17\uff12"], ["--limit"]),
    ],
)
def test_silent_nonsense_is_refused_with_exit_2_and_nothing_sent(
    cli: Any, sqlite_url: str, args: list[str], words: list[str]
) -> None:
    result = cli("order", "buy", "005930", *args, "--database-url", sqlite_url)
    _refused(result, 2, *words)
    if Path(sqlite_url.removeprefix("sqlite:///")).exists():  # refused by the engine it opened
        orders = cli("orders", "--database-url", sqlite_url, "--json")
        assert orders.exit_code == 0
        assert json.loads(orders.stdout) == []


def _unknown_venue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock venue takes the order, loses the answer and cannot tell on lookups."""
    import orderlane_mock.adapter
    from orderlane_mock import MockVenue

    class LosingVenue(MockVenue):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.fail_next("timeout_after")
            self.answer_lookup_next("cannot_tell", times=50)

    monkeypatch.setattr(orderlane_mock.adapter, "MockVenue", LosingVenue)


def test_an_order_ending_unknown_exits_3(
    cli: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unknown_venue(monkeypatch)
    result = cli("order", "buy", "005930", "1", "--database-url", sqlite_url)
    assert result.exit_code == 3, result.output
    assert "UNKNOWN" in result.stdout
    json_result = cli("order", "buy", "000660", "1", "--database-url", sqlite_url, "--json")
    assert json_result.exit_code == 3
    assert json.loads(json_result.stdout)["status"] == "UNKNOWN"


def test_recover_that_leaves_an_order_unknown_exits_3(
    cli: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unknown_venue(monkeypatch)
    assert cli("order", "buy", "005930", "1", "--database-url", sqlite_url).exit_code == 3
    # A fresh venue in the recover process cannot tell either.
    result = cli("recover", "--database-url", sqlite_url)
    assert result.exit_code == 3, result.output
    assert "UNKNOWN" in result.stdout


# ---------------------------------------------------------------- item 12: terminal injection


def test_stored_control_characters_are_printed_escaped(
    cli: Any, sqlite_url: str, venue: Any, clock: Any
) -> None:
    """A row written before symbols were checked (or by hand) cannot drive the terminal."""

    async def trade() -> tuple[Order, Order]:
        async with Engine.open(
            "mock", adapter_options={"venue": venue}, clock=clock, database_url=sqlite_url
        ) as engine:
            order = await engine.execute(Signal("005930", "BUY", 1))
            venue.reject_next("invalid_symbol", "bad \x1b]0;pwned\x07 symbol\nFILLED")
            return order, await engine.execute(Signal("000660", "BUY", 1))

    order, rejected = asyncio.run(trade())
    assert rejected.status is OrderStatus.REJECTED

    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as raw:
        raw.execute(
            "UPDATE orders SET symbol = ? WHERE id = ?", ("00\x1b[2J59\n30\u202e", order.id)
        )
        raw.execute(
            "UPDATE positions SET symbol_name = ? WHERE symbol = '005930'", ("evil\x1b[31m",)
        )
    for command in (["orders"], ["positions"], ["watch", "--once"]):
        result = cli(*command, "--database-url", sqlite_url)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout
        assert "\u202e" not in result.stdout
        assert "\x07" not in result.stdout
    shown = cli("orders", "--database-url", sqlite_url).stdout
    assert "\\x1b[2J" in shown
    assert "\\n" in shown


def test_control_characters_typed_in_identifiers_are_refused_and_not_echoed(
    cli: Any, sqlite_url: str
) -> None:
    for args in (
        ["order", "buy", "00\x1b[31m5930", "1"],
        ["order", "buy", "005930\nFILLED", "1"],
        ["order", "buy", "005930", "1", "--signal-id", "a\x1b[2Jb"],
        ["order", "buy", "005930", "1", "--session", "s\u202e"],
        ["order", "buy", "005930", "1", "--name", "n\x07"],
    ):
        result = cli(*args, "--database-url", sqlite_url)
        _refused(result, 2, "not printable text")
        assert "\x1b" not in result.output
    result = cli(
        "order", "buy", "005930", "1", "--account", "a\x1b[2J", "--database-url", sqlite_url
    )
    _refused(result, 1, "U+001B")
    assert "\x1b" not in result.output
