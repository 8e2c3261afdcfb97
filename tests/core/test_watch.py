"""Reading the journal read-only (JournalReader) and ``orderlane watch`` on it.

The journal is filled by the demo session plus an order left open and one left UNKNOWN, on
SQLite and on PostgreSQL. The live view runs as a real process on a pseudo-terminal and is
stopped with Ctrl-C (SIGINT), as a user stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from orderlane import Engine, EngineConfig, OrderStatus, Signal
from orderlane.cli import app
from orderlane.demo import DEMO_TIMEZONE, run_demo
from orderlane.errors import ConfigurationError, JournalError
from orderlane.journal.reader import JournalReader
from orderlane.watch import read_board, render_board, watch
from orderlane_mock import MockVenue


async def fill_journal(url: str) -> dict[str, str]:
    """The demo session, then one order left open and one left UNKNOWN (no tracker runs), on
    another account at the same venue."""
    await run_demo(url, Console(file=io.StringIO()))
    venue = MockVenue(quotes={"035420": Decimal(210000), "005380": Decimal(250000)})
    async with Engine.open(
        "mock",
        adapter_options={"venue": venue, "timezone": DEMO_TIMEZONE},
        database_url=url,
        account_id="desk",
        config=EngineConfig(account_id="desk", track=False, recover_on_start=False),
    ) as engine:
        venue.hold_next()
        waiting = await engine.execute(Signal("035420", "BUY", 7, "LIMIT", Decimal(209500)))
        venue.fail_next("drop_after_accept")
        venue.answer_lookup_next("cannot_tell")
        unknown = await engine.execute(Signal("005380", "SELL", 3, session_id="night"))
    assert (waiting.status, unknown.status) == (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN)
    return {"waiting": waiting.id, "unknown": unknown.id}


@pytest.fixture
def filled(database_url: str) -> tuple[str, dict[str, str]]:
    return database_url, asyncio.run(fill_journal(database_url))


def flat(text: str) -> str:
    """Text printed by rich, its lines joined again."""
    return " ".join(text.split())


def as_text(renderable: Any, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# ---------------------------------------------------------------- the reader


def test_the_reader_sees_what_the_engines_wrote(filled: tuple[str, dict[str, str]]) -> None:
    url, ids = filled
    with JournalReader(url) as reader, reader.view() as view:
        newest = view.orders()
        filled_orders = view.orders(statuses=[OrderStatus.FILLED])
        hynix = view.orders(symbol="000660")
        today = view.orders(day=datetime.now(UTC).date(), timezone=UTC)
        other_day = view.orders(day=date(2001, 1, 1), timezone=UTC)
        desk = view.orders(account_id="desk")
        open_orders = view.open_orders()
        timeline = view.events(ids["waiting"])
        counts = view.status_counts()
        pnl_days = view.realized_pnl("day")
        pnl_sessions = view.realized_pnl("session")
        positions = view.positions("demo")
        hynix_fills = view.fills(order_id=hynix[0].id)
        last_fill = view.fills(limit=1)

    assert len(newest) == 6
    assert newest[0].id == ids["unknown"], "newest first"
    assert [o.status for o in filled_orders] == [OrderStatus.FILLED] * 3
    assert [(o.symbol, o.filled_quantity) for o in hynix] == [("000660", 20)]
    assert len(today) == 6
    assert other_day == []
    assert {o.id for o in desk} == set(ids.values())
    assert [o.id for o in open_orders] == [ids["waiting"], ids["unknown"]]
    assert [event.type for event in timeline] == [
        "OrderCreated",
        "OrderStatusChanged",
        "OrderSubmitted",
        "OrderStatusChanged",
    ]
    assert timeline[-1].payload["order"]["status"] == "SUBMITTED"
    assert all(event.order_id == ids["waiting"] for event in timeline)
    assert timeline == sorted(timeline, key=lambda event: event.seq)
    assert (counts[OrderStatus.FILLED], counts[OrderStatus.REJECTED]) == (3, 1)
    assert (counts[OrderStatus.SUBMITTED], counts[OrderStatus.UNKNOWN]) == (1, 1)
    assert [(s.realized_pnl, s.fills) for s in pnl_days] == [(Decimal(3950), 4)]
    assert [(s.key, s.realized_pnl) for s in pnl_sessions] == [("demo", Decimal(3950))]
    assert [(p.symbol, p.quantity) for p in positions] == [("000660", 20), ("005930", 6)]
    assert [f.quantity for f in hynix_fills] == [5, 15], "one order's fills in execution order"
    assert last_fill[0].symbol == "005930"
    assert last_fill[0].realized_pnl == Decimal(3950)


def test_the_change_marker_moves_with_each_commit(filled: tuple[str, dict[str, str]]) -> None:
    url, _ = filled

    async def one_more_fill() -> None:
        venue = MockVenue(quotes={"005930": Decimal(72500)})
        config = EngineConfig(account_id="demo", track=False, recover_on_start=False)
        options = {"venue": venue, "timezone": DEMO_TIMEZONE}
        async with Engine.open(
            "mock", adapter_options=options, database_url=url, config=config
        ) as e:
            venue.fill_next(price=72500, commission=30)
            await e.execute(Signal("005930", "SELL", 1, session_id="demo"))

    with JournalReader(url) as reader:
        with reader.view() as view:
            before = view.change_marker()
        with reader.view() as view:
            assert view.change_marker() == before, "nothing committed, nothing moved"
        asyncio.run(one_more_fill())
        with reader.view() as view:
            after = view.change_marker()
            sessions = view.realized_pnl("session", account_id="demo")

    assert after != before
    assert sessions[0].realized_pnl == Decimal(3950 + 500 - 30)


EMPTY = hashlib.sha256(b"").hexdigest()


def digest(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.glob(path.name + "*"))
    }


def test_reading_changes_not_a_byte_of_an_sqlite_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url = f"sqlite:///{path}"
    asyncio.run(fill_journal(url))
    before = digest(path)

    result = CliRunner().invoke(app, ["watch", "--once", "--database-url", url])

    assert result.exit_code == 0, result.output
    after = digest(path)
    assert after["journal.db"] == before["journal.db"]
    # SQLite's WAL readers keep their shared index next to the database: no journal data.
    assert after.get("journal.db-wal", EMPTY) == before.get("journal.db-wal", EMPTY)


def test_a_missing_sqlite_journal_is_an_error_and_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.db"

    result = CliRunner().invoke(app, ["watch", "--database-url", f"sqlite:///{path}"])

    assert result.exit_code == 1
    assert f"there is no journal at {path}" in flat(result.stderr)
    assert "Traceback" not in result.output
    assert not path.exists()
    with pytest.raises(ConfigurationError, match="in-memory"):
        JournalReader("sqlite:///:memory:").open()


def _stamp(url: str, revision: str | None) -> None:
    engine = sa.create_engine(sa.engine.make_url(url).set(drivername=_driver(url)))
    with engine.begin() as conn:
        if revision is None:
            conn.execute(sa.text("DROP TABLE alembic_version"))
        else:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _driver(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql+psycopg"


@pytest.mark.parametrize(
    ("revision", "message"),
    [
        ("9999_from_the_future", "was written by a newer orderlane"),
        ("0001", "has the older schema '0001'"),
        (None, "holds no orderlane journal"),
    ],
)
def test_a_journal_of_another_schema_is_refused_and_left_alone(
    filled: tuple[str, dict[str, str]], revision: str | None, message: str
) -> None:
    url, _ = filled
    _stamp(url, revision)

    result = CliRunner().invoke(app, ["watch", "--once", "--database-url", url])

    assert result.exit_code == 1
    assert message in flat(result.stderr)
    with pytest.raises(JournalError, match=message):
        JournalReader(url).open()


@pytest.mark.postgres
def test_an_unreachable_postgres_database_is_named_without_its_password(
    postgres_url: str,
) -> None:
    url = sa.engine.make_url(postgres_url).set(database="no_such_db_here", password="hunter2")
    with pytest.raises(JournalError, match="cannot read the journal database") as raised:
        JournalReader(url.render_as_string(hide_password=False)).open()
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


def test_a_view_needs_an_open_reader(sqlite_url: str) -> None:
    reader = JournalReader(sqlite_url)
    assert "journal.db" in repr(reader)
    with pytest.raises(JournalError, match="not open"), reader.view():
        pass


# ---------------------------------------------------------------- the watch


def test_watch_once_shows_open_orders_unknown_ones_fills_positions_and_pnl(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, ids = filled

    result = CliRunner().invoke(
        app, ["watch", "--once", "--database-url", url], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Open orders (2)" in out
    assert ids["waiting"][:8] in out
    assert "7/7" not in out
    assert "0/7" in out
    assert "209,500" in out
    assert "UNKNOWN: the broker may or may not have these (1)" in out
    assert ids["unknown"] in out, "the full id, as orderlane resolve takes it"
    assert "SELL 3 x 005380" in out
    shown = " ".join(out.split())
    assert f"orderlane resolve {ids['unknown']} --account desk --database-url {url}" in shown
    assert "Last fills" in out
    assert "3,910" in out  # the sale's net: 4,000 - 50 - 40 of the opening fee
    assert "SK hynix" in out
    assert "Realized P&L  today" in out
    assert "session night: gross 0, commissions 0, net 0 (0 fills)" in shown, (
        "the newest order's session by default"
    )
    assert "6 orders: 2 open" in out
    assert "FILLED 3" in out
    assert "REJECTED 1" in out
    assert "UNKNOWN 1" in out


def test_watch_filters_by_account_and_names_the_session(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, ids = filled

    result = CliRunner().invoke(
        app,
        ["watch", "--once", "--database-url", url, "--account", "demo", "--session", "demo"],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    assert "Open orders (0)" in result.stdout
    assert ids["unknown"] not in result.stdout
    shown = " ".join(result.stdout.split())
    assert "session demo: gross 4,000, commissions 350, net 3,910 (4 fills)" in shown
    assert "4 orders: 0 open" in result.stdout


def test_ages_and_timeouts_count_from_the_journal_times(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, ids = filled
    with JournalReader(url) as reader, reader.view() as view:
        waiting = view.order(ids["waiting"])
        assert view.order("no-such-order") is None
    assert waiting is not None
    assert waiting.submitted_at is not None
    later = waiting.created_at + timedelta(minutes=3, seconds=5)

    with JournalReader(url) as reader:
        board = read_board(reader, now=later, account_id="desk")
        overdue = read_board(reader, now=later + timedelta(hours=2), account_id="desk")

    text = as_text(render_board(board, source="journal", zone=UTC, order_timeout=600))
    row = next(line for line in text.splitlines() if ids["waiting"][:8] in line)
    assert "3m05s" in row
    assert "6m5" in row, "600 s after submission, less the 3 minutes gone"
    late = as_text(render_board(overdue, source="journal", zone=UTC, order_timeout=600))
    late_row = next(line for line in late.splitlines() if ids["waiting"][:8] in line)
    assert "2h03m" in late_row
    assert "due" in late_row


def test_a_failed_refresh_keeps_the_picture_and_says_why(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ = filled
    output = io.StringIO()
    console = Console(file=output, width=160, force_terminal=True, color_system=None)
    reader = JournalReader(url).open()
    calls = 0

    def now() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 2:
            reader.close()  # the database goes away between two refreshes
        if calls == 4:
            raise KeyboardInterrupt
        return datetime.now(UTC)

    with pytest.raises(KeyboardInterrupt):
        watch(reader, console, interval=0.01, zone=UTC, now=now)

    assert "Last refresh failed: the journal reader is not open" in output.getvalue()
    assert output.getvalue().count("Open orders (2)") >= 2


def test_watch_runs_live_until_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    asyncio.run(fill_journal(f"sqlite:///{path}"))
    leader, follower = pty.openpty()
    environment = {**os.environ, "COLUMNS": "160", "LINES": "60", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "orderlane", "watch", "--interval", "0.2"],
        cwd=tmp_path,
        env={**environment, "ORDERLANE_DATABASE_URL": f"sqlite:///{path}"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    screen = b""

    def drain(seconds: float) -> None:
        """Read what the view draws (a pty that nobody reads would block its writes)."""
        nonlocal screen
        ready, _, _ = select.select([leader], [], [], seconds)
        if ready:
            with contextlib.suppress(OSError):  # the other side closed: it exited
                screen += os.read(leader, 65536)

    try:
        deadline = time.monotonic() + 30
        while screen.count(b"Open orders (2)") < 2 and time.monotonic() < deadline:
            drain(0.5)
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            drain(0.1)
        code = process.wait(timeout=1)
        for _ in range(20):
            drain(0.05)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)

    text = screen.decode(errors="replace")
    assert text.count("Open orders (2)") >= 2, "redrawn at least once: " + text[-500:]
    assert code == 0
    assert "Stopped watching." in text
    assert "Traceback" not in text
    assert "Aborted" not in text


# --------------------------------------------------------- today, busy journals, hostile text


def test_today_is_the_date_now_not_the_newest_day_with_fills(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ = filled
    seoul = ZoneInfo(DEMO_TIMEZONE)
    now = datetime.now(UTC)
    two_days_on = now + timedelta(days=2)

    with JournalReader(url) as reader:
        board = read_board(reader, now=now, zone=UTC, session_id="demo")
        later = read_board(reader, now=two_days_on, zone=UTC, session_id="demo")

    assert (board.today.key, board.today.fills) == (now.astimezone(seoul).date().isoformat(), 4)
    assert board.today.net_pnl == Decimal(3910)
    assert (later.today.key, later.today.fills, later.today.net_pnl) == (
        two_days_on.astimezone(seoul).date().isoformat(),
        0,
        Decimal(0),
    ), "no fills today: today's P&L is zero, not the last trading day's"
    assert later.session == board.session, "the session's P&L does not depend on the day"
    text = flat(as_text(render_board(later, source="journal", zone=UTC)))
    day = two_days_on.astimezone(seoul).date().isoformat()
    assert f"today {day} (Asia/Seoul): gross 0, commissions 0, net 0 (0 fills)" in text
    assert "session demo: gross 4,000, commissions 350, net 3,910 (4 fills)" in text


def test_today_is_the_venues_trading_day_whatever_zone_the_display_is_in(
    filled: tuple[str, dict[str, str]],
) -> None:
    """Fills are booked on the venue's trading day; a machine in another zone (UTC here, 9 hours
    behind Seoul) still reads today's P&L from the venue's day, at any hour."""
    url, _ = filled
    seoul = ZoneInfo(DEMO_TIMEZONE)
    with JournalReader(url) as reader:
        with reader.view() as view:
            [newest] = view.fills(account_id="demo", limit=1)
            zones = (view.venue_timezone("demo"), view.venue_timezone(), view.venue_timezone("x"))
        venue_day = newest.trading_day
        # 00:30 in Seoul is 15:30 UTC the day before; 23:30 in Seoul is 14:30 UTC the same day
        early = datetime.combine(venue_day, clock_time(0, 30), tzinfo=seoul)
        late = datetime.combine(venue_day, clock_time(23, 30), tzinfo=seoul)
        boards = [
            read_board(reader, now=moment.astimezone(UTC), zone=UTC, account_id=account)
            for moment in (early, late)
            for account in ("demo", None)
        ]

    assert zones == (seoul, seoul, None)
    assert early.astimezone(UTC).date() != venue_day, "the machine's date is another day"
    for board in boards:
        assert (board.today.key, board.today_zone) == (venue_day.isoformat(), DEMO_TIMEZONE)
        assert (board.today.fills, board.today.net_pnl) == (4, Decimal(3910))


def test_accounts_at_venues_in_different_zones_leave_today_to_the_display_zone(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ = filled

    async def trade_in_new_york() -> None:
        venue = MockVenue(quotes={"AAPL": Decimal(190)})
        config = EngineConfig(account_id="us", track=False, recover_on_start=False)
        options = {"venue": venue, "timezone": "America/New_York"}
        async with Engine.open(
            "mock", adapter_options=options, database_url=url, config=config
        ) as engine:
            venue.fill_next(price=190)
            await engine.execute(Signal("AAPL", "BUY", 1))

    asyncio.run(trade_in_new_york())
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime.now(UTC)
    with JournalReader(url) as reader:
        with reader.view() as view:
            zones = (view.venue_timezone("us"), view.venue_timezone("demo"))
            everyone = view.venue_timezone()
        mixed = read_board(reader, now=now, zone=tokyo)
        us = read_board(reader, now=now, zone=tokyo, account_id="us")

    assert zones == (ZoneInfo("America/New_York"), ZoneInfo(DEMO_TIMEZONE))
    assert everyone is None, "no one venue's day for accounts at several venues"
    assert (mixed.today.key, mixed.today_zone) == (
        now.astimezone(tokyo).date().isoformat(),
        "Asia/Tokyo",
    )
    assert (us.today.key, us.today_zone) == (
        now.astimezone(ZoneInfo("America/New_York")).date().isoformat(),
        "America/New_York",
    )
    assert us.today.fills == 1


async def hold_orders(url: str, count: int) -> str:
    """``count`` orders the venue holds open, then one left UNKNOWN (the newest)."""
    venue = MockVenue(quotes={"035420": Decimal(210000), "005380": Decimal(250000)})
    config = EngineConfig(account_id="desk", track=False, recover_on_start=False)
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, database_url=url, config=config
    ) as engine:
        venue.hold_next(times=count)
        for _ in range(count):
            await engine.execute(Signal("035420", "BUY", 1, "LIMIT", Decimal(209000)))
        venue.fail_next("drop_after_accept")
        venue.answer_lookup_next("cannot_tell")
        unknown = await engine.execute(Signal("005380", "SELL", 3, session_id="night"))
    assert unknown.status is OrderStatus.UNKNOWN
    return unknown.id


def test_a_busy_journal_is_read_a_page_at_a_time_and_the_footer_always_shows(
    sqlite_url: str,
) -> None:
    unknown = asyncio.run(hold_orders(sqlite_url, 40))
    console = Console(file=io.StringIO(), width=160, height=30, color_system=None)

    with JournalReader(sqlite_url) as reader:
        page = read_board(reader, now=datetime.now(UTC), rows=5)
        board = read_board(reader, now=datetime.now(UTC))

    assert len(page.open_orders) == 5, "at most the rows asked for"
    assert [order.id for order in page.unknown] == [unknown], "UNKNOWN ones are read apart"
    assert page.open_count == 41
    lines = console.render_lines(
        render_board(board, source="journal", zone=UTC, console=console), pad=False
    )
    text = "\n".join("".join(segment.text for segment in line) for line in lines)
    assert len(lines) <= 30, "the screen fits the terminal"
    assert "Open orders (41, oldest first)" in text
    assert "... and " in text
    assert unknown in text
    assert f"orderlane resolve {unknown}" in text
    assert "Realized P&L  today" in text
    assert "41 orders: 41 open  UNKNOWN 1" in text, "the footer is on screen"


def test_the_live_view_fits_a_small_terminal(sqlite_url: str) -> None:
    asyncio.run(hold_orders(sqlite_url, 40))
    output = io.StringIO()
    console = Console(file=output, width=160, height=24, force_terminal=True, color_system=None)
    calls = 0

    def now() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return datetime.now(UTC)

    with JournalReader(sqlite_url) as reader, pytest.raises(KeyboardInterrupt):
        watch(reader, console, interval=0.01, zone=UTC, now=now)

    assert "41 orders: 41 open  UNKNOWN 1" in output.getvalue()
    assert "... and " in output.getvalue()


def test_the_resolve_line_it_shows_settles_the_order(filled: tuple[str, dict[str, str]]) -> None:
    url, ids = filled
    with JournalReader(url) as reader:
        board = read_board(reader, now=datetime.now(UTC))
    text = as_text(render_board(board, source=url, zone=UTC), width=400)
    line = next(line for line in text.splitlines() if "orderlane resolve" in line).strip()

    assert line.endswith("--adapter ADAPTER (--adopt BROKER_ID | --absent)")
    command = line.replace("ADAPTER", "mock").replace("(--adopt BROKER_ID | --absent)", "--absent")
    result = CliRunner().invoke(app, command.split()[1:])

    assert result.exit_code == 0, result.output
    with JournalReader(url) as reader, reader.view() as view:
        settled = view.order(ids["unknown"])
    assert settled is not None
    assert settled.status is OrderStatus.FAILED


def test_stored_text_is_never_read_as_markup_or_terminal_codes(sqlite_url: str) -> None:
    asyncio.run(fill_journal(sqlite_url))
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # a row written by some other tool, with rich markup in it
        conn.execute(
            sa.text(
                "UPDATE orders SET id = '[/bold]x[red]', account_id = '[/]\x1b[2J', "
                "reason = 'gone [blink]' WHERE status = 'UNKNOWN'"
            )
        )
    engine.dispose()

    result = CliRunner().invoke(
        app, ["watch", "--once", "--database-url", sqlite_url], env={"COLUMNS": "250"}
    )

    assert result.exit_code == 0, result.output
    assert "[/bold]x[red]" in result.stdout
    assert "[/]\\x1b[2J" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", "[red]x\x1b[2J"])
def test_a_venue_zone_that_is_no_zone_leaves_today_to_the_display_zone(
    sqlite_url: str, zone: str
) -> None:
    asyncio.run(fill_journal(sqlite_url))
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # changed by some other tool
        conn.execute(sa.text("UPDATE accounts SET timezone = :zone"), {"zone": zone})
    engine.dispose()
    now = datetime.now(UTC)

    with JournalReader(sqlite_url) as reader:
        with reader.view() as view:
            found = view.venue_timezone("demo")
        board = read_board(reader, now=now, zone=UTC)
    result = CliRunner().invoke(app, ["watch", "--once", "--database-url", sqlite_url])

    assert found is None
    assert (board.today.key, board.today_zone) == (now.date().isoformat(), "UTC")
    assert result.exit_code == 0, result.output
    assert "Realized P&L  today" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize(
    "statement",
    ["UPDATE orders SET reason = 'changed'", "DELETE FROM fills", "CREATE TABLE x (y INTEGER)"],
)
def test_the_reader_cannot_write_even_if_asked(database_url: str, statement: str) -> None:
    asyncio.run(fill_journal(database_url))

    with JournalReader(database_url) as reader:
        with pytest.raises(JournalError, match=r"(?i)read.?only"), reader.view() as view:
            view._conn.execute(sa.text(statement))  # what no method of the view does
        with reader.view() as view:
            assert all(order.reason != "changed" for order in view.orders())
            assert view.fills(limit=1)


def test_sums_are_read_again_only_when_fills_were_added(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ = filled
    day = datetime.now(ZoneInfo(DEMO_TIMEZONE)).date().isoformat()

    async def sell_one() -> None:
        venue = MockVenue(quotes={"005930": Decimal(72500)})
        config = EngineConfig(account_id="demo", track=False, recover_on_start=False)
        options = {"venue": venue, "timezone": DEMO_TIMEZONE}
        async with Engine.open(
            "mock", adapter_options=options, database_url=url, config=config
        ) as engine:
            venue.fill_next(price=72500, commission=30)
            await engine.execute(Signal("005930", "SELL", 1, session_id="demo"))

    with JournalReader(url) as reader:
        with reader.view() as view:
            before = view.realized_pnl("day", keys=[day])
            demo = view.realized_pnl("session", "demo")
            nobody = view.realized_pnl("session", "nobody")
        with reader.view() as view:
            again = view.realized_pnl("day", keys=[day])
        asyncio.run(sell_one())
        with reader.view() as view:
            after = view.realized_pnl("day", keys=[day])
            last = view.realized_pnl("day", last=1)
            by_session = view.realized_pnl("session", "demo")

    assert again == before
    assert [s.fills for s in demo] == [4]
    assert list(nobody) == [], "sums are kept per account"
    assert [(s.key, s.fills) for s in after] == [(day, 5)], "the new fill is summed"
    assert after[0].realized_pnl == before[0].realized_pnl + 500 - 30
    assert list(last) == list(after)
    assert [s.fills for s in by_session] == [5]


async def _trade_until_two_heartbeats(url: str) -> str:
    """An engine on a limit of 2 a second executes 6 orders at once and runs until its
    heartbeats (every lease/3) have stored its limiter's figures; returns its engine id."""
    async with Engine.open(
        "mock",
        adapter_options={"rate_limit": 2, "rate_period": 1},
        database_url=url,
        account_id="desk",
        config=EngineConfig(account_id="desk", engine_lease=1.5, recover_on_start=False),
    ) as engine:
        await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 1)) for _ in range(6)))
        await asyncio.sleep(1.2)  # two heartbeats at least
        engine_id = engine.journal.engine_id
        # The session ends with the engine: read while it runs.
        with JournalReader(url) as reader:
            board = read_board(reader, now=datetime.now(UTC), account_id="desk")
        text = flat(as_text(render_board(board, source=url, zone=UTC), width=240))
    assert engine_id[:8] in text
    return text


def test_watch_shows_each_running_engines_rate_limiter_use(database_url: str) -> None:
    """A display reads the journal, not the engine: each engine stores its limiter's figures
    with its heartbeat, and the watch shows them per engine, with how old they are."""
    text = asyncio.run(_trade_until_two_heartbeats(database_url))

    assert "Rate limiter engine" in text
    assert "(desk, in-process): 2/1s" in text, text
    # Six at once on a limit of 2: some waited, none waits now; six places, a permit each.
    assert re.search(r"waiting 0 \(most [1-6]\) · granted order 6 · wait mean \d", text), text
    assert "pauses 0 · as of" in text


def test_watch_says_when_no_engine_runs_on_the_journal(
    filled: tuple[str, dict[str, str]],
) -> None:
    url, _ids = filled
    with JournalReader(url) as reader:
        board = read_board(reader, now=datetime.now(UTC))
    assert board.engines == ()
    text = flat(as_text(render_board(board, source=url, zone=UTC)))
    assert "Rate limiter no engine has announced itself on this journal" in text


async def _beats_while_figures_fail(url: str) -> tuple[datetime, datetime]:
    async with Engine.open(
        "mock",
        database_url=url,
        account_id="desk",
        config=EngineConfig(account_id="desk", engine_lease=0.6, recover_on_start=False),
    ) as engine:

        async def refuse(_figures: Any) -> None:
            raise JournalError("no room for figures")

        engine.journal.store_limiter = refuse  # type: ignore[method-assign]
        with JournalReader(url) as reader, reader.view() as view:
            [first] = view.engine_sessions("desk")
        await asyncio.sleep(0.9)  # four heartbeats
        with JournalReader(url) as reader, reader.view() as view:
            [later] = view.engine_sessions("desk")
    assert later.limiter is None
    return first.heartbeat_at, later.heartbeat_at


def test_figures_that_cannot_be_stored_never_stop_the_heartbeat(sqlite_url: str) -> None:
    """The figures are a display's: other engines' recovery relies on the heartbeat alone."""
    first, later = asyncio.run(_beats_while_figures_fail(sqlite_url))
    assert later > first
