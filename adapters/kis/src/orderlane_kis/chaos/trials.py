"""Crash trials: an engine killed with SIGKILL, again and again, against a fake KIS venue that
lives in its own process and witnesses what was really sent.

One run starts the venue (``orderlane fake-kis serve``) and then, trial after trial, an engine
process (:mod:`orderlane_kis.chaos.driver`) per attempt: each trial has its own account at the
venue and in the journal, a stream of signals (:mod:`orderlane_kis.chaos.plan`) and a plan of
kills. After a kill the next engine opens the same database, recovery runs, and the signals not
acknowledged are executed again; the last engine of a trial is not killed and settles every
order. Then the journal is judged against the venue's record (:mod:`orderlane_kis.chaos.witness`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import attrs

from orderlane.journal.sql import resolve_database_url, safe_url
from orderlane_kis.chaos.plan import (
    KILL_ENV,
    KILL_POINTS,
    SYMBOLS,
    Kill,
    TrialPlan,
    plan_trial,
    tick_of,
)
from orderlane_kis.chaos.witness import judge, read_journal
from orderlane_kis.fake import DEFAULT_INSTRUMENTS, RemoteVenue

__all__ = ["CrashReport", "CrashTrials", "Venue"]

#: Requests per second the venue allows each app key in the trials (and the adapter keeps to).
RATE_LIMIT = 20
#: How long one engine process may run before the trial calls it hung.
RUN_TIMEOUT = 120.0


@attrs.define
class CrashReport:
    adapter: str
    database: str
    seed: int
    trials: int = 0
    kills: int = 0
    signals: int = 0
    orders: int = 0
    lost: int = 0
    duplicates: int = 0
    mismatches: int = 0
    not_sent: int = 0
    hung: int = 0
    kill_points: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(KILL_POINTS, 0))
    aimed_not_reached: int = 0
    seconds: float = 0.0
    problems: list[str] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicates == self.mismatches == self.hung == 0

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["ok"] = self.ok
        return data


class Venue:
    """The fake KIS venue as its own process (it outlives every engine the trials kill)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.control: RemoteVenue | None = None

    def __enter__(self) -> Venue:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "orderlane", "fake-kis", "serve", "--mode", self.mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            raise RuntimeError(
                "the fake KIS venue did not start: try 'orderlane fake-kis serve' to see why"
            )
        self.info = json.loads(line)
        self.control = RemoteVenue(self.info["control_url"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover - a venue that hangs
                self.process.kill()
                self.process.wait()

    def call(self, name: str, **arguments: Any) -> Any:
        assert self.control is not None
        return self.control.call(name, **arguments)


@attrs.define
class RunResult:
    acks: dict[str, str]
    killed_at: str | None
    done: bool
    hung: bool
    returncode: int | None


def _lines(stream: IO[str], sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


class CrashTrials:
    """Runs crash trials and adds them up in a :class:`CrashReport`."""

    def __init__(
        self,
        *,
        adapter: str = "kis-paper",
        database_url: str | None = None,
        seed: int = 0,
        signals: int = 10,
        max_kills: int = 3,
        directory: Path | None = None,
    ) -> None:
        if adapter not in ("kis-paper", "kis-live"):
            raise ValueError("the crash trials run kis-paper or kis-live")
        self.adapter = adapter
        self.mode = "live" if adapter == "kis-live" else "paper"
        self.seed = seed
        self.signals = signals
        self.max_kills = max_kills
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="orderlane-chaos-"))
        self.database_url = resolve_database_url(
            database_url or f"sqlite:///{self.directory / 'journal.db'}"
        )
        self.tag = uuid.uuid4().hex[:8]
        self.report = CrashReport(self.adapter, safe_url(self.database_url), seed)

    def run(
        self, trials: int, progress: Callable[[CrashReport], None] | None = None
    ) -> CrashReport:
        started = time.monotonic()
        try:
            with Venue(self.mode) as venue:
                venue.call("set_rate_limit", limit=RATE_LIMIT, period=1.0)
                quotes = {symbol: DEFAULT_INSTRUMENTS[symbol][1] for symbol in SYMBOLS}
                for trial in range(trials):
                    plan = plan_trial(
                        self.seed, trial, quotes, signals=self.signals, max_kills=self.max_kills
                    )
                    self._trial(venue, plan, quotes)
                    self.report.seconds = round(time.monotonic() - started, 1)
                    if progress is not None:
                        progress(self.report)
        finally:
            if self._own_directory and self.report.ok:
                shutil.rmtree(self.directory, ignore_errors=True)
        return self.report

    # ---------------------------------------------------------------- one trial

    def _trial(self, venue: Venue, plan: TrialPlan, quotes: dict[str, int]) -> None:
        report = self.report
        account = f"{60_000_000 + plan.trial:08d}-01"
        hts_id = f"chaos{plan.trial}"
        app = venue.call("add_app", account=account, hts_id=hts_id, cash=10**13)
        for symbol in SYMBOLS:
            venue.call("set_quote", symbol=symbol, price=quotes[symbol])
            venue.call("set_holding", symbol=symbol, quantity=1_000_000, account=account)
        venue.call("clear_faults")
        venue.call("clear_script")
        for kind in plan.scripts:
            if kind == "partial":
                venue.call("partial_fill_next", quantity=1)
            else:
                venue.call(f"{kind}_next")
        if plan.drop_notices:
            venue.call("drop_notices", count=plan.drop_notices)
        account_id = f"chaos-{self.tag}-{plan.trial}"
        options: dict[str, Any] = {
            "app_key": app["app_key"],
            "app_secret": app["app_secret"],
            "account": account,
            "hts_id": hts_id,
            "rest_url": venue.info["rest_url"],
            "ws_url": venue.info["ws_url"],
            "token_cache": str(self.directory / "tokens"),
            "rate_limit": RATE_LIMIT,
            "timeout": 2,
            "new_order_lag": 1,
        }
        if self.mode == "live":
            options["live_trading"] = account
        acked: dict[str, str] = {}
        runs: list[Kill | None] = [*plan.kills, None]
        for index, kill in enumerate(runs):
            venue.call("clear_faults")
            for action, operation, extra in plan.faults[index]:
                venue.call("add_fault", action=action, operation=operation, **extra)
            config = {
                "adapter": self.adapter,
                "database_url": self.database_url,
                "account_id": account_id,
                "options": options,
                "signals": [s.to_dict() for s in plan.signals if s.signal_id not in acked],
            }
            moves = plan.quote_moves if index == 0 else ()
            result = self._run_engine(plan.trial, index, config, kill, moves, venue, quotes)
            acked.update(result.acks)
            if result.killed_at is not None:
                report.kills += 1
                report.kill_points[result.killed_at] += 1
            elif kill is not None and kill.point != "random":
                report.aimed_not_reached += 1
            if result.hung:
                report.hung += 1
                report.problems.append(
                    f"trial {plan.trial} run {index}: the engine did not finish in "
                    f"{RUN_TIMEOUT:g}s (logs in {self.directory})"
                )
            if kill is None and not result.done and not result.hung:
                report.problems.append(
                    f"trial {plan.trial}: the last engine stopped with code "
                    f"{result.returncode} (logs in {self.directory})"
                )
                report.mismatches += 1
        venue.call("clear_faults")
        venue_orders = [o for o in venue.call("orders") if o["account"] == account]
        view = asyncio.run(read_journal(self.database_url, account_id))
        verdict = judge(plan.signals, view, venue_orders)
        report.trials += 1
        report.signals += len(plan.signals)
        report.orders += verdict.orders
        report.lost += verdict.lost
        report.duplicates += verdict.duplicates
        report.mismatches += verdict.mismatches
        report.not_sent += verdict.not_sent
        report.problems.extend(f"trial {plan.trial}: {p}" for p in verdict.problems)

    def _run_engine(
        self,
        trial: int,
        index: int,
        config: dict[str, Any],
        kill: Kill | None,
        moves: tuple[tuple[float, str, int], ...],
        venue: Venue,
        quotes: dict[str, int],
    ) -> RunResult:
        path = self.directory / f"trial-{trial}-run-{index}.json"
        path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
        if kill is not None and kill.env is not None:
            env[KILL_ENV] = kill.env
        log = (self.directory / f"trial-{trial}-run-{index}.log").open("w")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "orderlane_kis.chaos.driver", str(path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
        started = time.monotonic()
        timers: list[tuple[float, str, Any]] = [
            (started + delay, "quote", (symbol, ticks)) for delay, symbol, ticks in moves
        ]
        if kill is not None and kill.point == "random":
            timers.append((started + kill.delay, "kill", None))
        timers.sort(key=lambda timer: timer[0])
        result = RunResult({}, None, False, False, None)
        deadline = started + RUN_TIMEOUT
        try:
            while True:
                now = time.monotonic()
                while timers and timers[0][0] <= now:
                    _, what, argument = timers.pop(0)
                    if what == "kill" and process.poll() is None:
                        process.send_signal(signal.SIGKILL)
                        result.killed_at = "random"
                    elif what == "quote":
                        symbol, ticks = argument
                        price = quotes[symbol] + ticks * tick_of(quotes[symbol])
                        venue.call("set_quote", symbol=symbol, price=price)
                if now >= deadline:
                    process.send_signal(signal.SIGUSR1)  # its stacks, into the log
                    time.sleep(2.0)
                    process.kill()
                    result.hung = True
                    break
                wait = min([deadline, *(t[0] for t in timers)]) - now
                try:
                    line = lines.get(timeout=max(0.01, wait))
                except queue.Empty:
                    continue
                if line is None:
                    break
                log.write(f"[trial] {line}\n")
                log.flush()
                word, _, rest = line.partition(" ")
                if word == "ack":
                    signal_id, _, _ = rest.partition(" ")
                    result.acks[signal_id] = rest
                elif word == "kill":
                    result.killed_at = rest
                elif word == "done":
                    result.done = True
            result.returncode = process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                if process.poll() is None:
                    process.kill()
                    process.wait()
            log.close()
        if result.returncode != -signal.SIGKILL and result.killed_at == "random":
            result.killed_at = None  # it ended before the kill arrived
        return result
