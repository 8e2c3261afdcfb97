"""The ``orderlane`` command line and its demo, run in process (and once as a real script)."""

from __future__ import annotations

import io
import json
import logging
import runpy
import subprocess
import sys
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.testing import Result

from orderlane import OrderStatus, __version__
from orderlane.cli import format_money, run
from orderlane.demo import run_demo
from orderlane.errors import ConfigurationError, InvalidSignalError
from orderlane.plugins import AdapterEntry, installed_adapters

MOCK_CAPABILITIES = [
    "batch_status",
    "cancel",
    "limit_orders",
    "lookup",
    "market_orders",
    "partial_fills",
]


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------- basics


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"orderlane {__version__}"


def test_no_command_shows_help(cli: Any) -> None:
    result = cli()
    assert "order" in result.output
    assert "adapters" in result.output


def test_python_dash_m_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("orderlane")
    handlers, level = list(logger.handlers), logger.level
    monkeypatch.setattr(sys, "argv", ["orderlane", "--version"])
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_module("orderlane", run_name="__main__", alter_sys=True)
        assert any(isinstance(h, RichHandler) for h in logger.handlers)
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"orderlane {__version__}"


def test_errors_raised_inside_a_command_map_to_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def invalid() -> None:
        raise InvalidSignalError("quantity must be positive, got 0")

    async def misconfigured() -> None:
        raise ConfigurationError("no adapter")

    with pytest.raises(typer.Exit) as invalid_exit:
        run(invalid())
    with pytest.raises(typer.Exit) as config_exit:
        run(misconfigured())
    assert (invalid_exit.value.exit_code, config_exit.value.exit_code) == (2, 1)
    assert "Error: quantity must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal(72000), "72,000"),
        (Decimal("72000.00"), "72,000"),
        (Decimal("-3950.50"), "-3,950.5"),
        (Decimal("1E+3"), "1,000"),
        (Decimal("-0"), "0"),
        (Decimal(217000) / 3, "72,333.3333"),
        (None, "-"),
    ],
)
def test_money_in_tables_has_separators_and_no_exponent(value: Decimal | None, shown: str) -> None:
    assert format_money(value) == shown


# ---------------------------------------------------------------- adapters


def test_adapters_json_lists_the_mock_with_its_capabilities(cli: Any) -> None:
    rows = _json(cli("adapters", "--json"))
    [mock] = [row for row in rows if row["name"] == "mock"]
    assert mock["distribution"] == "orderlane-mock"
    assert mock["version"] == installed_adapters()["mock"].version
    assert mock["capabilities"] == MOCK_CAPABILITIES
    assert mock["error"] is None


def test_adapters_table(cli: Any) -> None:
    result = cli("adapters")
    assert result.exit_code == 0
    assert "orderlane-mock" in result.stdout
    assert "partial_fills" in result.stdout


def test_a_broken_adapter_is_listed_with_its_error_and_hides_no_other(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed adapter whose entry point names something that is not a factory.
    broken_point = EntryPoint("broken", "orderlane:__version__", "orderlane.adapters")
    broken = AdapterEntry("broken", broken_point.value, "orderlane-broken", "0.0.1", broken_point)
    monkeypatch.setattr(
        "orderlane.cli.adapters.installed_adapters",
        lambda: {**installed_adapters(), "broken": broken},
    )

    rows = {row["name"]: row for row in _json(cli("adapters", "--json"))}
    assert "not a factory callable" in rows["broken"]["error"]
    assert rows["broken"]["capabilities"] == []
    assert rows["mock"]["capabilities"] == MOCK_CAPABILITIES

    table = cli("adapters")
    assert table.exit_code == 0
    assert "Factory error" in table.stdout
    first = next(line for line in table.stdout.splitlines() if "│ broken" in line)
    assert first.split("│")[4].strip() == "-", "the error is not shown as capabilities"
    assert "is not a" in table.stdout


def test_a_factory_refusing_empty_options_shows_its_error_in_its_own_column(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Factories take empty options (settings are checked when the adapter starts); one that
    # does not cannot be described, and says why in a column of its own.
    site = tmp_path / "site"
    info = site / "orderlane_picky-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: orderlane-picky\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[orderlane.adapters]\npicky = picky:create\n")
    (site / "picky.py").write_text(
        "from orderlane.errors import ConfigurationError\n\n\n"
        "def create(options):\n"
        "    raise ConfigurationError('the option base_url is required')\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "picky", raising=False)

    rows = {row["name"]: row for row in _json(cli("adapters", "--json"))}
    assert rows["picky"]["error"] == "ConfigurationError: the option base_url is required"
    assert rows["picky"]["capabilities"] == []
    assert rows["mock"]["error"] is None
    table = cli("adapters").stdout
    header = next(line for line in table.splitlines() if "Capabilities" in line)
    assert "Factory" in header


def test_adapters_when_none_is_installed(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orderlane.cli.adapters.installed_adapters", dict)
    assert _json(cli("adapters", "--json")) == []
    result = cli("adapters")
    assert result.exit_code == 0
    assert "No orderlane adapters are installed" in result.stdout


def test_python_dash_m_runs_the_real_command_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "orderlane", "adapters", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows = json.loads(completed.stdout)
    assert any(row["name"] == "mock" for row in rows)


# ---------------------------------------------------------------- order, orders, positions


def test_buy_then_orders_and_positions_show_it(cli: Any, sqlite_url: str) -> None:
    placed = _json(cli("order", "buy", "005930", "10", "--database-url", sqlite_url, "--json"))
    assert placed["status"] == "FILLED"
    assert placed["average_fill_price"] == "72000"
    assert placed["commission"] == "100"

    [listed] = _json(cli("orders", "--database-url", sqlite_url, "--json"))
    assert listed["id"] == placed["id"]
    assert (listed["side"], listed["symbol"], listed["quantity"]) == ("BUY", "005930", 10)

    [position] = _json(cli("positions", "--database-url", sqlite_url, "--json"))
    assert position["symbol"] == "005930"
    assert position["quantity"] == 10
    assert Decimal(position["average_price"]) == 72000
    assert Decimal(position["fees"]) == 100


def test_sell_realizes_pnl_and_tables_show_the_journal(cli: Any, sqlite_url: str) -> None:
    buy = cli("order", "buy", "005930", "10", "--name", "Samsung", "--database-url", sqlite_url)
    assert buy.exit_code == 0, buy.output
    assert "BUY 10 x 005930 Samsung: FILLED 10/10 @ 72,000, commission 100" in buy.stdout
    sell = cli(
        "order", "sell", "005930", "4", "--limit", "73000", "--database-url", sqlite_url
    )  # the mock fills a limit order at its limit
    assert sell.exit_code == 0, sell.output
    assert "SELL 4 x 005930 limit 73,000: FILLED 4/4 @ 73,000" in sell.stdout

    [position] = _json(cli("positions", "--database-url", sqlite_url, "--json"))
    assert position["quantity"] == 6
    assert Decimal(position["realized_pnl"]) == (73000 - 72000) * 4 - 100

    orders = cli("orders", "--database-url", sqlite_url, "--limit", "1")
    assert orders.exit_code == 0
    assert "SELL" in orders.stdout
    assert "BUY" not in orders.stdout
    positions = cli("positions", "--database-url", sqlite_url)
    assert positions.exit_code == 0
    # gross 4,000; commissions paid 200; net 4,000 - 100 - 40 (4/10 of the opening fee)
    assert all(figure in positions.stdout for figure in ("4,000", "200", "3,860"))
    assert "Samsung" in positions.stdout


def test_the_database_url_comes_from_the_environment(
    cli: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLANE_DATABASE_URL", sqlite_url)
    assert cli("order", "buy", "005930", "1").exit_code == 0
    assert len(_json(cli("orders", "--json"))) == 1


def test_a_signal_id_is_executed_once(cli: Any, sqlite_url: str) -> None:
    args = ("order", "buy", "005930", "10", "--signal-id", "s-1", "--database-url", sqlite_url)
    first = _json(cli(*args, "--json"))
    again = _json(cli(*args, "--json"))
    assert again["id"] == first["id"]
    assert len(_json(cli("orders", "--database-url", sqlite_url, "--json"))) == 1

    other = cli("order", "buy", "005930", "5", "--signal-id", "s-1", "--database-url", sqlite_url)
    assert other.exit_code == 1
    assert "s-1" in other.stderr
    assert "Traceback" not in other.output


def test_adapter_options_reach_the_adapter(cli: Any, sqlite_url: str) -> None:
    placed = _json(
        cli(
            "order", "buy", "005930", "2", "-o", "quote=70500", "--adapter-option",
            "commission=15", "--account", "acct-7", "--session", "morning",
            "--database-url", sqlite_url, "--json",
        )
    )  # fmt: skip
    assert (placed["average_fill_price"], placed["commission"]) == ("70500", "15")
    assert (placed["account_id"], placed["session_id"]) == ("acct-7", "morning")
    assert (
        _json(cli("positions", "--database-url", sqlite_url, "--account", "other", "--json")) == []
    )


def test_a_rejected_order_is_printed_and_exits_1(
    cli: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orderlane_mock.adapter
    from orderlane_mock import MockVenue

    class RejectingVenue(MockVenue):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.reject_next("insufficient_balance", "not enough cash")

    monkeypatch.setattr(orderlane_mock.adapter, "MockVenue", RejectingVenue)
    result = cli("order", "buy", "005930", "10", "--database-url", sqlite_url)
    assert result.exit_code == 1
    assert "REJECTED" in result.stdout
    assert "not enough cash" in result.stdout
    [stored] = _json(cli("orders", "--database-url", sqlite_url, "--json"))
    assert stored["status"] == "REJECTED"


def test_an_unknown_adapter_exits_1_naming_the_installed_ones(cli: Any, sqlite_url: str) -> None:
    result = cli("order", "buy", "005930", "10", "--adapter", "nope", "--database-url", sqlite_url)
    assert result.exit_code == 1
    assert "'nope'" in result.stderr
    assert "mock" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_adapter_option_exits_1(cli: Any, sqlite_url: str) -> None:
    result = cli("order", "buy", "005930", "1", "-o", "colour=red", "--database-url", sqlite_url)
    assert result.exit_code == 1
    assert "colour" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0",), "quantity must be positive"),
        (("10", "--limit", "abc"), "--limit must be a decimal price"),
        (("10", "--limit", "0"), "limit_price must be positive"),
        (("10", "--limit", "NaN"), "finite"),
        (("10", "-o", "no-equals-sign"), "KEY=VALUE"),
        (("ten",), "QTY"),
    ],
)
def test_invalid_input_exits_2_with_a_clear_message(
    cli: Any, sqlite_url: str, args: tuple[str, ...], message: str
) -> None:
    result = cli("order", "buy", "005930", *args, "--database-url", sqlite_url)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing was stored


@pytest.mark.parametrize(
    "command",
    [
        ("orders",),
        ("orders", "--json"),
        ("positions",),
        ("positions", "--json"),
        ("watch", "--once"),
        ("recover",),
        ("resolve", "00000000-0000-0000-0000-000000000000", "--absent"),
        ("resolve", "00000000-0000-0000-0000-000000000000", "--adopt", "B1"),
    ],
)
def test_commands_that_read_or_settle_refuse_a_missing_journal_and_create_nothing(
    cli: Any, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # A mistyped path is an error, never an empty journal with "nothing to recover".
    path = tmp_path / "typo" / "missing.db"
    result = cli(*command, "--database-url", f"sqlite:///{path}")
    assert result.exit_code == 1, result.output
    assert f"there is no journal at {path}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory SQLite database"),
        ("sqlite:///:memory:", "in-memory SQLite database"),
        ("sqlite+pysqlcipher:///x.db", "SQLite driver 'pysqlcipher' is not supported"),
        ("sqlite+pysqlcipher://:secret@/x.db", "SQLite driver 'pysqlcipher' is not supported"),
        ("sqlite://x.db", "names a host, not a file"),
    ],
)
@pytest.mark.parametrize("command", [("order", "buy", "005930", "1"), ("recover",), ("orders",)])
def test_a_journal_that_would_vanish_or_not_be_encrypted_is_refused(
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    message: str,
    command: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(*command, "--database-url", url)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split())
    assert "secret" not in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no plain file stands in for the encrypted one


def test_an_unsupported_database_exits_1(cli: Any) -> None:
    result = cli("orders", "--database-url", "mysql://localhost/orders")
    assert result.exit_code == 1
    assert "unsupported database 'mysql'" in result.stderr


# ---------------------------------------------------------------- demo


async def test_run_demo_figures(database_url: str) -> None:
    output = io.StringIO()
    result = await run_demo(database_url, Console(file=output, width=120))

    assert result.realized_pnl == Decimal(3950)  # the seed's figure: gross minus the sale's 50
    assert result.net_pnl == Decimal(3910)  # and the opening fee of the 4 sold, 4/10 of 100
    assert [(o.symbol, o.side.value, o.status) for o in result.orders] == [
        ("005930", "BUY", OrderStatus.FILLED),
        ("000660", "BUY", OrderStatus.FILLED),
        ("005930", "SELL", OrderStatus.FILLED),
        ("005930", "BUY", OrderStatus.REJECTED),
    ]
    bought, partial, sold, rejected = result.orders
    assert (bought.average_fill_price, bought.commission) == (Decimal(72000), Decimal(100))
    assert (partial.filled_quantity, partial.commission) == (20, Decimal(200))
    assert (sold.average_fill_price, sold.commission) == (Decimal(73000), Decimal(50))
    assert rejected.reason is not None
    assert "insufficient balance" in rejected.reason
    positions = {p.symbol: p for p in result.positions}
    assert (positions["005930"].quantity, positions["005930"].average_price) == (
        6,
        Decimal(72000),
    )
    assert positions["005930"].realized_pnl == 3950
    assert positions["000660"].quantity == 20
    [session] = result.pnl_by_session
    assert (session.key, session.realized_pnl) == ("demo", Decimal(3950))
    assert (session.gross_pnl, session.commissions, session.net_pnl) == (4000, 350, 3910)
    [day] = result.pnl_by_day
    assert day.realized_pnl == Decimal(3950)
    assert result.kept_at == result.database_url

    text = output.getvalue()
    assert "PARTIALLY_FILLED 5/20" in text
    assert "= 3,910" in text
    assert "Realized P&L per trading day" in text


def test_demo_command_exits_0_and_prints_the_pnl(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    level = logging.getLogger("orderlane").level
    result = cli("demo")
    assert result.exit_code == 0, result.output
    for heading in ("Orders", "Positions", "Realized P&L per session", "Realized P&L per trading"):
        assert heading in result.stdout
    assert "REJECTED" in result.stdout
    assert "3,910" in result.stdout
    # The demo reports the rejection itself; the engine's warning about it stays quiet.
    assert not [r for r in caplog.records if r.name.startswith("orderlane")]
    assert logging.getLogger("orderlane").level == level
    assert list(tmp_path.iterdir()) == []  # the temporary journal is gone


def test_demo_keep_leaves_the_journal_for_the_other_commands(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result = cli("demo", "--keep")
    assert result.exit_code == 0, result.output
    [journal] = tmp_path.glob("orderlane-demo-*/orderlane.db")
    assert str(journal) in result.stdout.replace("\n", "")
    orders = _json(cli("orders", "--database-url", f"sqlite:///{journal}", "--json"))
    assert len(orders) == 4


def test_demo_refuses_a_journal_that_holds_orders(cli: Any, sqlite_url: str) -> None:
    assert cli("order", "buy", "005930", "1", "--database-url", sqlite_url).exit_code == 0
    result = cli("demo", "--database-url", sqlite_url)
    assert result.exit_code == 1
    assert "empty journal" in result.stderr
    assert len(_json(cli("orders", "--database-url", sqlite_url, "--json"))) == 1
