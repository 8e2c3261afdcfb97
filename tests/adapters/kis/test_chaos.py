"""Crash trials (``orderlane chaos crash``): plans, the witness's checks, the aimed kill points,
and short runs with real SIGKILLs against the fake KIS venue in its own process, on SQLite and
PostgreSQL. ``orderlane chaos crash --trials 50`` runs long ones."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from typer.testing import CliRunner

from orderlane import Signal
from orderlane.clock import wall_now
from orderlane.model import Order, OrderStatus
from orderlane_kis.chaos import AIMED_POINTS, CrashTrials, plan_trial
from orderlane_kis.chaos.cli import app
from orderlane_kis.chaos.driver import KillSwitch, run
from orderlane_kis.chaos.plan import SYMBOLS, SignalSpec
from orderlane_kis.chaos.witness import JournalView, judge
from orderlane_kis.fake import DEFAULT_INSTRUMENTS, FakeKisVenue

QUOTES = {symbol: DEFAULT_INSTRUMENTS[symbol][1] for symbol in SYMBOLS}


# ------------------------------------------------------------------ plans


def test_a_trial_s_plan_is_reproduced_by_its_seed_and_names_each_signal_by_intent() -> None:
    first = plan_trial(7, 3, QUOTES, signals=12)
    assert plan_trial(7, 3, QUOTES, signals=12) == first
    assert plan_trial(8, 3, QUOTES, signals=12) != first
    intents = [spec.intent for spec in first.signals]
    assert len(set(intents)) == len(intents) == 12
    assert 1 <= len(first.kills) <= 3
    assert len(first.faults) == len(first.kills) + 1
    # Trials take turns at the aimed points, so a run of a few trials tries each of them.
    aimed = {point for t in range(3) for point in (k.point for k in plan_trial(7, t, QUOTES).kills)}
    assert set(AIMED_POINTS) <= aimed
    for spec in first.signals:
        if spec.limit_price is not None:
            assert spec.limit_price % 50 == 0


# ------------------------------------------------------------------ the witness


def _order(spec: SignalSpec, status: OrderStatus, **changes: Any) -> Order:
    signal = Signal(
        spec.symbol,
        spec.side,
        spec.quantity,
        order_type=spec.order_type,
        limit_price=spec.limit_price,
        signal_id=spec.signal_id,
    )
    order = Order.from_signal(signal, account_id="a", now=wall_now())
    return attrs.evolve(order, status=status, **changes)


def _row(
    spec: SignalSpec, odno: str, filled: int, price: int, remaining: int = 0
) -> dict[str, Any]:
    return {
        "odno": odno,
        "kind": "order",
        "symbol": spec.symbol,
        "side": spec.side.lower(),
        "quantity": spec.quantity,
        "filled": filled,
        "amount": filled * price,
        "remaining": remaining,
    }


BUY = SignalSpec("s0", "005930", "BUY", 5, "MARKET")
SELL = SignalSpec("s1", "005930", "SELL", 3, "LIMIT", 72_100)
UNSENT = SignalSpec("s2", "035720", "BUY", 4, "MARKET")


def _view(
    orders: list[Order], fills: dict[str, tuple[int, Decimal]], positions: dict[str, int]
) -> JournalView:
    return JournalView(tuple(orders), fills, positions)


def test_the_witness_passes_a_journal_that_matches_the_venue() -> None:
    buy = _order(BUY, OrderStatus.FILLED, broker_order_id="31001", filled_quantity=5)
    sell = _order(SELL, OrderStatus.CANCELLED, broker_order_id="31002", filled_quantity=1)
    unsent = _order(UNSENT, OrderStatus.FAILED, reason="not sent")
    view = _view(
        [buy, sell, unsent],
        {buy.id: (5, Decimal(360_000)), sell.id: (1, Decimal(72_100)), unsent.id: (0, Decimal(0))},
        {"005930": 4},
    )
    rows = [_row(BUY, "0000031001", 5, 72_000), _row(SELL, "0000031002", 1, 72_100)]
    verdict = judge([BUY, SELL, UNSENT], view, rows)
    assert (verdict.lost, verdict.duplicates, verdict.mismatches) == (0, 0, 0), verdict.problems
    assert (verdict.orders, verdict.not_sent) == (3, 1)


def test_the_witness_counts_losses_duplicates_and_mismatches() -> None:
    # The venue holds the sell twice and the unsent buy once, which the journal calls
    # "not sent"; the buy's fills and the position disagree with the venue; an order is
    # left SUBMITTED without a reason while the venue says it ended.
    buy = _order(BUY, OrderStatus.SUBMITTED, broker_order_id="31001", filled_quantity=4)
    sell = _order(SELL, OrderStatus.FILLED, broker_order_id="31002", filled_quantity=3)
    unsent = _order(UNSENT, OrderStatus.FAILED, reason="not sent")
    view = _view(
        [buy, sell, unsent],
        {buy.id: (4, Decimal(288_000)), sell.id: (3, Decimal(216_300)), unsent.id: (0, Decimal(0))},
        {"005930": 2},
    )
    rows = [
        _row(BUY, "0000031001", 5, 72_000),
        _row(SELL, "0000031002", 3, 72_100),
        _row(SELL, "0000031003", 0, 0, remaining=3),
        _row(UNSENT, "0000031004", 4, 42_000),
    ]
    verdict = judge([BUY, SELL, UNSENT], view, rows)
    assert verdict.lost == 2  # the second sell and the buy the journal calls not sent
    assert verdict.duplicates == 1
    assert verdict.mismatches == 4  # fills, filled quantity, no reason, position
    missing = judge([BUY], _view([], {}, {}), [])
    assert missing.lost == 1
    assert "no order in the journal" in missing.problems[0]
    twice = judge([BUY], _view([buy, attrs.evolve(buy, id="other")], {}, {"005930": 0}), [])
    assert twice.duplicates == 1


# ------------------------------------------------------------------ the aimed points


def _stored(path: Path) -> list[tuple[str, str | None]]:
    """The journal's orders as committed, read over a connection of its own."""
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT status, broker_order_id FROM orders"))


def _write_locked(path: Path) -> bool:
    """Whether a write transaction holds the journal now (another connection cannot begin one)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        return "locked" in str(error)
    finally:
        conn.close()  # a transaction begun here ends unwritten
    return False


@pytest.mark.parametrize("point", AIMED_POINTS)
async def test_each_aimed_point_is_passed_where_it_claims_to_be(point: str, tmp_path: Path) -> None:
    database = tmp_path / "journal.db"
    seen: list[dict[str, Any]] = []
    async with FakeKisVenue("paper", ping_interval=None) as venue:
        venue.set_rate_limit(None)

        def watch(name: str) -> None:
            seen.append(
                {
                    "point": name,
                    "stored": _stored(database) if name != "group_commit" else None,
                    "locked": _write_locked(database) if name == "group_commit" else None,
                    "at_venue": len(venue.orders()),
                }
            )

        config = {
            "adapter": "kis-paper",
            "database_url": f"sqlite:///{database}",
            "account_id": "aimed",
            "options": venue.adapter_options(tmp_path / "tokens", rate_limit=50, new_order_lag=0),
            "signals": [
                SignalSpec(f"s{n}", "005930", "BUY", n, "MARKET").to_dict() for n in range(1, 7)
            ],
            "concurrency": 3,
            "settle_seconds": 5,
        }
        await run(config, KillSwitch(f"{point}:1", action=watch))
        assert len(venue.orders()) == 6
    assert [s["point"] for s in seen] == [point]
    if point == "before_send":
        # SUBMITTING is durable, nothing of this order reached the venue.
        assert ("SUBMITTING", None) in seen[0]["stored"]
        assert seen[0]["at_venue"] < 3
    elif point == "after_accept":
        # The venue took the order; the journal still has it SUBMITTING, without its number.
        assert seen[0]["at_venue"] >= 1
        assert ("SUBMITTING", None) in seen[0]["stored"]
    else:
        # Inside the group's transaction, before its COMMIT: the journal's write lock is held
        # (a point passed after the COMMIT would crash an engine whose changes are all durable).
        assert seen[0]["locked"] is True


# ------------------------------------------------------------------ real kills


def test_short_crash_trials_lose_nothing_and_send_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    trials = CrashTrials(database_url=database_url, seed=11, signals=6, directory=tmp_path)
    report = trials.run(2)
    assert report.ok, report.problems
    assert (report.trials, report.signals, report.orders) == (2, 12, 12)
    assert report.kills >= 1
    assert sum(report.kill_points.values()) == report.kills


def test_the_command_prints_a_report_as_json() -> None:
    result = CliRunner().invoke(
        app, ["crash", "--trials", "1", "--signals", "4", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert (report["trials"], report["lost"], report["duplicates"], report["mismatches"]) == (
        1,
        0,
        0,
        0,
    )
    assert set(report["kill_points"]) == {*AIMED_POINTS, "random"}


def test_the_command_refuses_an_adapter_it_cannot_run() -> None:
    result = CliRunner().invoke(app, ["crash", "--adapter", "mock"])
    assert result.exit_code == 2
    assert "kis-paper or kis-live" in result.output
