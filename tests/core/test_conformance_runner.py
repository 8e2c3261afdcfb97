"""The conformance suite's machinery: the runner behind ``orderlane conformance`` and the pytest
plugin an adapter package enables, both driven by the mock adapter's harness."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import orderlane.testing.harness as harness_module
from orderlane import (
    BrokerContext,
    Capability,
    Engine,
    EngineConfig,
    FakeClock,
    Order,
    OrderSnapshot,
    OrderStatus,
    RequestKind,
    Signal,
    hookimpl,
)
from orderlane.errors import BrokerRateLimitError, ConfigurationError
from orderlane.testing import (
    SCENARIOS,
    Case,
    HarnessFactory,
    Outcome,
    ScenarioResult,
    ScenarioRun,
    VenueHarness,
    run_conformance,
    select_cases,
)
from orderlane.testing.harness import REAL_TIME_MARGIN, RejectKind, venue_clock
from orderlane.testing.scenarios import ScenarioFailed, checks
from orderlane.testing.scenarios.checks import broker_id, stored, until_status
from orderlane.testing.scenarios.recovery import recovered
from orderlane.testing.scenarios.registry import scenario
from orderlane_mock.adapter import CAPABILITIES, MockAdapter
from orderlane_mock.harness import MockHarness, create_harness

pytest_plugins = ["pytester"]

#: The rows the engine supports today; each must stay in the suite under its catalogue id.
#: Rows the mock's entry-point harness skips: they need a broker that deduplicates client ids.
NEEDS_CLIENT_IDS = {"resend-refused-after-accept"}
SUPPORTED_ROWS = {
    "lookup-sibling-in-flight",
    "cancelled-caller",
    "late-fill-on-poll",
    "cancel-unknown-with-id",
    "seed-happy-path",
    "seed-rejection",
    "seed-retry-success",
    "seed-retry-exhausted",
    "seed-non-retryable",
    "ambiguous-accepted",
    "ambiguous-not-accepted",
    "ambiguous-unresolvable",
    "rate-limit-answer",
    "invalid-signal",
    "idempotent-signal",
    "sell-realizes-pnl",
    "garbled-place-answer",
    "duplicate-signal-conflict",
    "hold-timeout",
    "partial-then-fill",
    "cancel-open-order",
    "cancel-races-fill",
    "broker-cancel",
    "reject-after-accept",
    "unknown-order-status",
    "duplicate-fills",
    "rate-limit-burst",
    "seed-timeout",
    "partial-then-timeout",
    "late-fill-after-timeout",
    "batch-status",
    "rate-limit-pages",
    "batch-lookup",
    "push-updates",
    "push-gap",
    "push-and-poll-same-fill",
    "notice-before-answer",
    "recover-created",
    "recover-submitting-absent",
    "recover-submitting-present",
    "recover-submitted-fills",
    "recover-unknown",
    "bad-answer-isolated",
    "cumulative-commission",
}
#: The rows that need the venue to push order updates.
PUSH_ROWS = ["push-updates", "push-gap", "push-and-poll-same-fill", "notice-before-answer"]


class NoLookupHarness(MockHarness):
    """A venue whose inquiry cannot find orders by client id."""

    capabilities = CAPABILITIES - {Capability.LOOKUP}


class IgnoresRejections(MockHarness):
    """A broken harness: it never scripts the refusal it is asked for."""

    def reject_next(self, kind: RejectKind, message: str) -> None:
        pass


class NoCancelNoPartials(MockHarness):
    """A venue that can neither cancel on request nor show a partial fill."""

    capabilities = CAPABILITIES - {Capability.CANCEL, Capability.PARTIAL_FILLS}


class DeclaresNoLimit(MockHarness):
    """A broken harness: its venue enforces the limit, but the adapter is never told of it."""

    def adapter_options(self) -> dict[str, Any]:
        return {"venue": self.venue}


class ForgetsNothing(MockHarness):
    """A broken harness: its venue keeps answering for the order it was told to drop."""

    def forget_order(self, broker_order_id: str) -> None:
        pass


class FillsInsteadOfRepeating(MockHarness):
    """A broken venue: asked to report a fill again, it executes a new one."""

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        self.venue.fill(broker_order_id, 3)


class OffersPush(MockHarness):
    """The mock's harness as the suite builds it: push declared, off until a row enables it."""

    def __init__(self) -> None:
        super().__init__(offer_push=True)


class CancelNeverConfirmed(OffersPush):
    """A venue whose connection refuses every cancel request."""

    def __init__(self) -> None:
        super().__init__()
        self.venue.fail_next("connection", times=99, operation="cancel")


class LateFillLost(OffersPush):
    """A broken harness: the late execution it is asked to report never shows."""

    def report_late_fill(self, broker_order_id: str, quantity: int) -> None:
        pass


class PushNeverEnabled(OffersPush):
    """A broken harness: it declares push but never turns the adapter's stream on."""

    def enable_push(self) -> None:
        pass


class PushesLost(OffersPush):
    """A venue whose stream loses every notice (and never says so)."""

    def enable_push(self) -> None:
        super().enable_push()
        self.venue.drop_pushes(1000)


class RejectsInsteadOfHolding(OffersPush):
    """A broken venue: asked to hold the next order, it refuses it."""

    def hold_next(self) -> None:
        self.reject_next("insufficient_balance", "not enough cash")


class LookupFindsNothing(OffersPush):
    """A venue whose inquiry by client id never finds an order, even one it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.venue.answer_lookup_next("absent", 99)


class LookupNeverSettles(OffersPush):
    """A venue whose inquiry by client id never answers conclusively."""

    def __init__(self) -> None:
        super().__init__()
        self.venue.answer_lookup_next("cannot_tell", 99)


class NoBatchStatus(OffersPush):
    capabilities = CAPABILITIES - {Capability.BATCH_STATUS}


def by_id(results: list[ScenarioResult]) -> dict[str, ScenarioResult]:
    return {result.id: result for result in results}


async def test_every_scenario_passes_for_the_mock() -> None:
    results = await run_conformance("mock")

    assert [result.id for result in results] == [case.id for case in select_cases()]
    assert {result.id.partition("[")[0] for result in results} == SUPPORTED_ROWS | NEEDS_CLIENT_IDS
    failed = [(r.id, r.reason) for r in results if r.outcome is not Outcome.PASSED]
    # The mock's own harness has no client order ids; those rows run against it in
    # tests/adapters/mock/test_mock_conformance.py (its client-order-id mode).
    assert [row for row, _ in failed] == sorted(NEEDS_CLIENT_IDS)
    assert all("client_order_id" in reason for _, reason in failed)
    assert all(result.duration > 0 for result in results)


async def test_a_missing_capability_skips_the_scenario_with_the_reason() -> None:
    results = by_id(
        await run_conformance(
            NoLookupHarness, ["ambiguous-not-accepted", "garbled-place-answer", "seed-happy-path"]
        )
    )

    for skipped in ("ambiguous-not-accepted", "garbled-place-answer"):
        assert results[skipped].outcome is Outcome.SKIPPED
        assert "lookup" in results[skipped].reason
    assert results["seed-happy-path"].outcome is Outcome.PASSED


async def test_a_venue_that_misbehaves_fails_the_rows_it_breaks() -> None:
    results = by_id(
        await run_conformance(IgnoresRejections, ["seed-rejection", "sell-realizes-pnl"])
    )

    assert results["seed-rejection"].outcome is Outcome.FAILED
    assert results["seed-rejection"].reason == "order status: expected REJECTED, got FILLED"
    assert results["sell-realizes-pnl"].outcome is Outcome.PASSED


async def test_capabilities_gate_the_rows_on_open_orders() -> None:
    rows = ["partial-then-fill", "cancel-open-order", "cancel-races-fill", "duplicate-fills"]
    results = by_id(await run_conformance(NoCancelNoPartials, [*rows, "broker-cancel"]))

    assert {row: results[row].outcome for row in rows} == dict.fromkeys(rows, Outcome.SKIPPED)
    assert "partial_fills" in results["partial-then-fill"].reason
    assert "cancel" in results["cancel-races-fill"].reason
    assert results["broker-cancel"].outcome is Outcome.PASSED


@pytest.mark.parametrize(
    ("harness", "row", "reason"),
    [
        (
            DeclaresNoLimit,
            "rate-limit-answer",
            "the limiter should pause after the rate-limit answer, its figures: {'limits': []",
        ),
        (
            DeclaresNoLimit,
            "rate-limit-burst",
            "statuses of the burst: expected {FILLED}, got {FAILED, FILLED}",
        ),
        (
            ForgetsNothing,
            "unknown-order-status",
            "the status query of an order the venue lost did not raise",
        ),
        (
            FillsInsteadOfRepeating,
            "duplicate-fills",
            "the order after a fill of 3 reported twice: "
            "expected (PARTIALLY_FILLED, 7), got (FILLED, 10)",
        ),
        (
            CancelNeverConfirmed,
            "seed-timeout",
            "order: expected (FAILED, 'timeout'), got (UNKNOWN, 'timeout: cancel not confirmed",
        ),
        (
            CancelNeverConfirmed,
            "partial-then-timeout",
            "order: expected (FAILED, 'timeout'), got (UNKNOWN, 'timeout: cancel not confirmed",
        ),
        (
            LateFillLost,
            "late-fill-after-timeout",
            "the order after the late report: "
            "expected (FAILED, 'timeout', 3), got (FAILED, 'timeout', 0)",
        ),
        *(
            (PushNeverEnabled, row, "the harness enabled push, but the engine got no stream")
            for row in PUSH_ROWS
        ),
        (
            RejectsInsteadOfHolding,
            "recover-submitting-present",
            "the engine should have died at before_answer, but the order's flow ended REJECTED",
        ),
        (
            LookupFindsNothing,
            "recover-submitting-present",
            "the order adopted at restart (status, broker order id): "
            "expected (SUBMITTED, 'M00000001'), got (FAILED, None)",
        ),
        (
            LookupNeverSettles,
            "recover-unknown",
            "the order settled at restart (status, broker order id, filled): "
            "expected (FILLED, 'M00000001', 10), got (UNKNOWN, None, 0)",
        ),
    ],
)
async def test_the_new_rows_fail_a_venue_that_breaks_them(
    harness: HarnessFactory, row: str, reason: str
) -> None:
    [result] = await run_conformance(harness, [row])

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith(reason)


async def test_lost_pushes_fail_the_rows_that_wait_for_them_and_the_gap_poll_saves_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checks, "BACKGROUND_WORK_LIMIT", 0.2)  # a pass never waits for it

    results = by_id(await run_conformance(PushesLost, PUSH_ROWS))

    assert results["push-updates"].outcome is Outcome.FAILED
    assert results["push-updates"].reason == (
        "the order after its push: expected FILLED, still SUBMITTED after 0.2s"
    )
    assert results["push-and-poll-same-fill"].outcome is Outcome.FAILED
    # The gap's poll finds the lost fill, and a place answer carries the fill it overtook.
    assert results["push-gap"].outcome is Outcome.PASSED
    assert results["notice-before-answer"].outcome is Outcome.PASSED


@hookimpl
async def statuses_one_order_at_a_time(
    self: MockAdapter, ctx: BrokerContext, orders: Sequence[Order]
) -> Mapping[str, OrderSnapshot]:
    """A batch status hook that asks the venue about each order on its own."""
    found = {}
    for order in orders:
        assert order.broker_order_id is not None
        await ctx.permit(RequestKind.INQUIRY)
        found[order.id] = self.venue.status(order.broker_order_id)
    return found


@hookimpl
async def statuses_with_one_permit(
    self: MockAdapter, ctx: BrokerContext, orders: Sequence[Order]
) -> Mapping[str, OrderSnapshot]:
    """A batch status hook that walks every page of the inquiry on a single permit."""
    by_broker_id = {o.broker_order_id: o.id for o in orders if o.broker_order_id}
    await ctx.permit(RequestKind.INQUIRY)
    found: dict[str, OrderSnapshot] = {}
    page, more = 0, True
    while more:
        snapshots, more = self.venue.statuses_page(list(by_broker_id), page)
        found.update((by_broker_id[key], snapshot) for key, snapshot in snapshots.items())
        page += 1
    return found


async def test_an_adapter_asking_per_order_fails_the_paging_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MockAdapter, "orderlane_order_statuses", statuses_one_order_at_a_time)

    results = by_id(await run_conformance(OffersPush, ["batch-status", "rate-limit-pages"]))

    assert results["batch-status"].reason == (
        "status requests of one poll cycle over 40 open orders: expected 3, got 40"
    )
    assert results["rate-limit-pages"].reason == (
        "status requests of one poll cycle: expected 3, got 40"
    )


async def test_pages_the_limiter_never_counted_fail_rate_limit_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MockAdapter, "orderlane_order_statuses", statuses_with_one_permit)

    results = by_id(await run_conformance(OffersPush, ["batch-status", "rate-limit-pages"]))

    assert results["batch-status"].outcome is Outcome.PASSED
    assert results["rate-limit-pages"].outcome is Outcome.FAILED
    assert results["rate-limit-pages"].reason == (
        "inquiry permits the limiter granted for that cycle: expected 3, got 1"
    )


async def test_an_engine_started_without_recovery_fails_every_recover_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_recovery = functools.partial(EngineConfig, recover_on_start=False)
    monkeypatch.setattr(harness_module, "EngineConfig", without_recovery)
    rows = [id for id in SCENARIOS if id.startswith("recover-")]

    results = by_id(await run_conformance(OffersPush, rows))

    assert len(rows) == 5
    assert {results[row].outcome for row in rows} == {Outcome.FAILED}
    assert results["recover-created"].reason == (
        "order: expected (FAILED, 'not sent'), got (CREATED, None)"
    )
    assert results["recover-submitted-fills"].reason == (
        "order: expected (FILLED, 10), got (SUBMITTED, 0)"
    )


async def test_the_tracking_rows_are_gated_on_what_the_harness_declares() -> None:
    timeouts = ["seed-timeout", "partial-then-timeout", "late-fill-after-timeout"]
    paging = ["batch-status", "rate-limit-pages"]
    recovering = [id for id in SCENARIOS if id.startswith("recover-")]

    no_cancel = by_id(await run_conformance(NoCancelNoPartials, timeouts))
    no_batch = by_id(await run_conformance(NoBatchStatus, paging))
    no_lookup = by_id(await run_conformance(NoLookupHarness, recovering))
    polled_only = by_id(await run_conformance(MockHarness, PUSH_ROWS))

    assert {r.outcome for r in no_cancel.values()} == {Outcome.SKIPPED}
    assert "cancel" in no_cancel["late-fill-after-timeout"].reason
    assert {r.outcome for r in no_batch.values()} == {Outcome.SKIPPED}
    assert "batch_status" in no_batch["rate-limit-pages"].reason
    assert {row: r.outcome for row, r in no_lookup.items()} == {
        "recover-created": Outcome.PASSED,
        "recover-submitting-absent": Outcome.SKIPPED,
        "recover-submitting-present": Outcome.SKIPPED,
        "recover-submitted-fills": Outcome.PASSED,
        "recover-unknown": Outcome.SKIPPED,
    }
    assert {r.outcome for r in polled_only.values()} == {Outcome.SKIPPED}
    assert all("needs the capability push" in r.reason for r in polled_only.values())


async def test_a_crash_that_never_reaches_its_point_says_how_the_flow_ended(
    tmp_path: Path,
) -> None:
    run = ScenarioRun(MockHarness(), f"sqlite:///{tmp_path / 'journal.db'}")
    async with run.engine() as engine:
        await engine.execute(Signal("005930", "BUY", 10, signal_id="s-1"))

    with pytest.raises(AssertionError, match=r"died at after_created, but .* raised Duplicate"):
        await run.crash(Signal("005930", "BUY", 11, signal_id="s-1"), at="after_created")
    async with run.engine() as restarted:
        assert [o.status for o in await restarted.orders()] == [OrderStatus.FILLED]
        assert restarted.last_recovery == []


async def test_a_crashed_engine_leaves_no_heartbeat_behind(tmp_path: Path) -> None:
    # The runner runs every case on one loop: a dead engine's heartbeat must die with it, not
    # beat on against its closed journal ("engine heartbeat failed") until the run ends.
    run = ScenarioRun(MockHarness(), f"sqlite:///{tmp_path / 'journal.db'}")
    await run.crash(Signal("005930", "BUY", 10), at="after_submitting")
    await run.crash_many([(Signal("005930", "BUY", 1, signal_id="s-2"), "after_created")])

    beating = [t for t in asyncio.all_tasks() if t.get_name() == "orderlane-heartbeat"]
    assert beating == []


async def test_the_order_checks_fail_saying_what_is_missing(tmp_path: Path) -> None:
    run = ScenarioRun(MockHarness(), f"sqlite:///{tmp_path / 'journal.db'}")
    async with run.engine() as engine:
        order = await engine.execute(Signal("005930", "BUY", 10))
        # Waiting for a status the order already has returns at once.
        assert await until_status(engine, order, OrderStatus.FILLED, "the order") == order
        with pytest.raises(ScenarioFailed, match=r"should have settled order .* once at start"):
            recovered(engine, order)
        never_stored = order_for("005930")
        with pytest.raises(ScenarioFailed, match=f"order {never_stored.id} is not in the journal"):
            await stored(engine, never_stored)


async def test_rate_limited_rows_on_one_event_loop_never_share_a_limiter() -> None:
    # The runner runs every case on one loop, where engines on one credential key share their
    # limiter (and its clock): each run therefore has a key of its own.
    rows = ["rate-limit-answer", "rate-limit-burst"]
    results = [*await run_conformance("mock", rows), *await run_conformance("mock", rows)]

    assert [result.outcome for result in results] == [Outcome.PASSED] * 4
    first, second = (ScenarioRun(MockHarness(), "sqlite://") for _ in range(2))
    assert first.credential_key != second.credential_key


AMBIGUOUS_ROWS = [
    "ambiguous-accepted",
    "ambiguous-not-accepted",
    "ambiguous-unresolvable",
    "garbled-place-answer",
    "hold-timeout",
    "recover-unknown",
]


async def test_with_client_order_ids_the_ambiguous_rows_check_a_resend() -> None:
    def deduplicating() -> MockHarness:
        return MockHarness(client_order_id=True)

    results = await run_conformance(deduplicating, AMBIGUOUS_ROWS)

    assert [(r.id, r.outcome, r.reason) for r in results if r.outcome is not Outcome.PASSED] == []
    for result in results:
        row = SCENARIOS[result.id.partition("[")[0]]
        assert row.proves_with_client_order_id, row.id
        assert result.proves == row.proves_with_client_order_id


class DeclaresClientIdsItsAdapterLacks(MockHarness):
    """The harness declares client_order_id, but its adapter does not: the engine looks up."""

    capabilities = CAPABILITIES | {Capability.CLIENT_ORDER_ID}


async def test_a_declared_client_order_id_the_engine_does_not_act_on_fails_the_rows() -> None:
    # Every row that means something else for a broker deduplicating client order ids checks
    # it: a harness declaring the capability for an adapter that does not fails each of them.
    rows = [id for id, row in SCENARIOS.items() if row.proves_with_client_order_id]
    assert "lookup-sibling-in-flight" in rows
    results = await run_conformance(DeclaresClientIdsItsAdapterLacks, rows)

    assert {r.id: r.outcome for r in results} == {
        case.id: Outcome.FAILED for case in select_cases(rows)
    }
    by_row = by_id(results)
    for row in ("garbled-place-answer", "lookup-sibling-in-flight"):
        assert "the adapter declares client_order_id, so the" in by_row[row].reason


class KeepsRealTime(MockHarness):
    """A venue that, as one in a process of its own, times its rate limit in real time."""

    venue_clock = "real"
    given: list[float] = []

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        type(self).given.append(monotonic())
        super().enforce_rate_limit(limit, period, time.monotonic)


async def test_a_venue_keeping_real_time_runs_the_rows_it_times_on_real_time() -> None:
    KeepsRealTime.given = []
    results = await run_conformance(KeepsRealTime, ["rate-limit-answer", "seed-retry-success"])

    assert {(r.id, r.outcome) for r in results} == {
        ("rate-limit-answer", Outcome.PASSED),
        ("seed-retry-success", Outcome.PASSED),
    }
    # The time-bound row ran on the real clock (a fake one starts at 0).
    [given] = KeepsRealTime.given
    assert given == pytest.approx(time.monotonic(), abs=60)
    assert venue_clock(KeepsRealTime()) == "real"
    assert venue_clock(MockHarness()) == "scenario"


def test_a_real_time_run_counts_the_limiter_s_windows_longer(tmp_path: Path) -> None:
    # A venue outside the test's loop counts arrivals some real time after their permits.
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    real = ScenarioRun(KeepsRealTime(), url, real_time=True).build_engine()
    fake = ScenarioRun(MockHarness(), url).build_engine()

    assert real.config.rate_limit_margin == REAL_TIME_MARGIN > 0.2
    assert fake.config.rate_limit_margin == EngineConfig().rate_limit_margin


async def test_a_harness_naming_an_unknown_clock_fails_its_time_bound_rows() -> None:
    class Sundial(MockHarness):
        venue_clock = "sundial"

    [result] = await run_conformance(Sundial, ["rate-limit-answer"])

    assert result.outcome is Outcome.FAILED
    assert "venue_clock must be 'scenario' or 'real', got 'sundial'" in result.reason


async def test_a_scenario_id_selects_every_variant_and_a_case_id_one() -> None:
    every = await run_conformance("mock", ["seed-non-retryable"])
    one = await run_conformance("mock", ["seed-non-retryable[validation]"])

    assert [result.id for result in every] == [
        "seed-non-retryable[insufficient_balance]",
        "seed-non-retryable[invalid_symbol]",
        "seed-non-retryable[validation]",
    ]
    assert [(result.id, result.outcome) for result in one] == [
        ("seed-non-retryable[validation]", Outcome.PASSED)
    ]


def test_every_scenario_says_in_one_line_what_it_proves() -> None:
    undocumented = sorted(id for id, row in SCENARIOS.items() if not row.proves.strip())
    assert not undocumented, f"give these scenarios proves='...' in @scenario: {undocumented}"
    for row in SCENARIOS.values():
        for claim in (row.proves, row.proves_with_client_order_id):
            assert "\n" not in claim
            assert len(claim) <= 90, f"{row.id}: say it in one short line"


def test_proves_is_kept_on_one_line() -> None:
    async def check(run: ScenarioRun) -> None:
        raise AssertionError("never run")

    scenario("test-only-row", proves="  a claim\n   over two lines ")(check)
    try:
        assert SCENARIOS["test-only-row"].proves == "a claim over two lines"
    finally:
        del SCENARIOS["test-only-row"]


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("happy", ["seed-happy-path"]),
        ("HAPPY", ["seed-happy-path"]),
        (
            "cancel and not races",
            ["cancel-open-order", "broker-cancel", "cancelled-caller", "cancel-unknown-with-id"],
        ),
        ("retry-success or retry-exhausted", ["seed-retry-success", "seed-retry-exhausted"]),
        (
            "not (seed or cancel or ambiguous or rate or fill) and sign",
            ["invalid-signal", "idempotent-signal", "duplicate-signal-conflict"],
        ),
        ("not not happy", ["seed-happy-path"]),
        ("ambiguous-accepted[timeout_after]", ["ambiguous-accepted[timeout_after]"]),
        ("ambiguous-accepted and (drop or nothing)", ["ambiguous-accepted[drop_after_accept]"]),
    ],
)
def test_a_keyword_expression_selects_cases_by_id(expression: str, selected: list[str]) -> None:
    assert [case.id for case in select_cases(keyword=expression)] == selected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", "the -k expression is empty"),
        ("   ", "the -k expression is empty"),
        ("(cancel", "it ends too early"),
        ("cancel and", "it ends too early"),
        ("not", "it ends too early"),
        ("cancel)", "unexpected ')'"),
        ("and cancel", "unexpected 'and'"),
        ("cancel races", "unexpected 'races'"),
        ("(cancel races)", "a parenthesis is not closed"),
    ],
)
def test_a_malformed_keyword_expression_says_what_is_wrong(expression: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        select_cases(keyword=expression)


def test_ids_and_a_keyword_combine_and_an_empty_selection_is_an_error() -> None:
    chosen = select_cases(["seed-non-retryable", "seed-happy-path"], keyword="not validation")

    assert [case.id for case in chosen] == [
        "seed-happy-path",
        "seed-non-retryable[insufficient_balance]",
        "seed-non-retryable[invalid_symbol]",
    ]
    with pytest.raises(ConfigurationError, match="no conformance scenario matches -k 'cancel'"):
        select_cases(["seed-happy-path"], keyword="cancel")


async def test_a_listener_hears_every_case_start_and_finish_in_order() -> None:
    heard: list[tuple[str, ...]] = []

    class Listener:
        def case_started(self, case: Case, position: int, total: int) -> None:
            heard.append(("started", case.id, f"{position}/{total}"))

        def case_finished(self, result: ScenarioResult) -> None:
            heard.append(("finished", result.id, result.outcome.value))

    results = await run_conformance(
        NoLookupHarness, keyword="happy or not-accepted", listener=Listener()
    )

    assert [result.id for result in results] == ["seed-happy-path", "ambiguous-not-accepted"]
    assert heard == [
        ("started", "seed-happy-path", "1/2"),
        ("finished", "seed-happy-path", "passed"),
        ("started", "ambiguous-not-accepted", "2/2"),
        ("finished", "ambiguous-not-accepted", "skipped"),
    ]


async def test_a_bad_selection_fails_before_any_harness_is_built() -> None:
    built: list[MockHarness] = []

    def factory() -> VenueHarness:
        built.append(MockHarness())
        return built[-1]

    with pytest.raises(ConfigurationError, match="no conformance scenario matches"):
        await run_conformance(factory, keyword="no-such-row")
    assert built == []


def test_a_catalogue_id_is_registered_once() -> None:
    async def again(run: ScenarioRun) -> None:
        raise AssertionError("never run")

    with pytest.raises(ValueError, match="'seed-happy-path' is registered twice"):
        scenario("seed-happy-path")(again)
    assert SCENARIOS["seed-happy-path"].run is not again


def test_a_scenario_fails_on_an_order_the_venue_never_named() -> None:
    with pytest.raises(ScenarioFailed, match="the CREATED order has no broker order id"):
        broker_id(order_for("005930"))


async def test_unknown_adapters_and_scenarios_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"no conformance harness .*\(installed: .*mock"):
        await run_conformance("no-such-broker")
    with pytest.raises(ConfigurationError, match="unknown conformance scenario 'no-such-row'"):
        await run_conformance("mock", ["seed-happy-path", "no-such-row"])


async def test_the_venue_is_stopped_after_every_case_even_a_failing_one() -> None:
    calls: list[str] = []

    class Tracing(IgnoresRejections):
        async def start(self) -> None:
            calls.append("start")

        async def stop(self) -> None:
            calls.append("stop")

    results = await run_conformance(Tracing, ["seed-rejection", "seed-happy-path"])

    assert by_id(results)["seed-rejection"].outcome is Outcome.FAILED
    assert calls == ["start", "stop", "start", "stop"]


async def test_a_factory_that_makes_no_harness_fails_each_case_saying_what_it_lacks() -> None:
    [result] = await run_conformance(lambda: object(), ["seed-happy-path"])  # type: ignore[arg-type, return-value]

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("ConfigurationError: object is not a VenueHarness: it lacks")
    assert "adapter_name" in result.reason
    assert "venue_order_ids" in result.reason


async def test_results_serialize_for_the_json_report() -> None:
    results = await run_conformance(NoLookupHarness, ["seed-happy-path", "ambiguous-not-accepted"])

    rows = json.loads(json.dumps([result.to_dict() for result in results]))
    assert [(row["id"], row["outcome"]) for row in rows] == [
        ("seed-happy-path", "passed"),
        ("ambiguous-not-accepted", "skipped"),
    ]
    assert set(rows[0]) == {"id", "outcome", "reason", "proves", "duration"}
    assert rows[0]["duration"] > 0
    assert rows[0]["proves"] == SCENARIOS["seed-happy-path"].proves


async def test_a_known_engine_gap_is_reported_and_a_stale_mark_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import attrs

    for row in ("seed-rejection", "seed-happy-path"):
        monkeypatch.setitem(SCENARIOS, row, attrs.evolve(SCENARIOS[row], xfail="engine gap"))

    results = by_id(await run_conformance(IgnoresRejections, ["seed-rejection", "seed-happy-path"]))

    assert results["seed-rejection"].outcome is Outcome.SKIPPED
    assert results["seed-rejection"].reason == "known failure: engine gap"
    assert results["seed-happy-path"].outcome is Outcome.FAILED
    assert "marked as a known failure (engine gap)" in results["seed-happy-path"].reason


async def test_the_rejection_is_seen_even_where_orderlane_logs_only_errors() -> None:
    logger = logging.getLogger("orderlane")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        [result] = await run_conformance("mock", ["seed-rejection"])
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)

    assert (result.outcome, result.reason) == (Outcome.PASSED, "")


# ------------------------------------------------------------------ the mock's harness


def test_the_mock_harness_is_a_venue_harness_with_one_option() -> None:
    harness = create_harness({})

    assert isinstance(harness, VenueHarness)
    assert repr(harness) == "MockHarness(orders=0, requests=0)"
    assert Capability.CLIENT_ORDER_ID not in harness.capabilities
    deduplicating = create_harness({"client_order_id": "true"})
    assert Capability.CLIENT_ORDER_ID in deduplicating.capabilities
    with pytest.raises(ConfigurationError, match=r"unknown mock harness options \['quote'\]"):
        create_harness({"quote": 1})
    with pytest.raises(ConfigurationError, match="must be true or false"):
        create_harness({"client_order_id": "maybe"})


async def test_the_mock_harness_acts_on_open_orders_at_its_venue(sqlite_url: str) -> None:
    harness = MockHarness()
    harness.hold_next()
    harness.partial_fill_next(3, Decimal(71900), Decimal(30))
    harness.hold_next()
    async with Engine.open(
        "mock",
        adapter_options=harness.adapter_options(),
        clock=FakeClock(),
        database_url=sqlite_url,
    ) as engine:
        held = await engine.execute(Signal("005930", "BUY", 10))
        partial = await engine.execute(Signal("005930", "BUY", 10))
        rejected_later = await engine.execute(Signal("000660", "SELL", 5))

    assert (held.status, partial.status) == (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
    assert (partial.filled_quantity, partial.average_fill_price) == (3, Decimal(71900))
    assert partial.commission == Decimal(30)
    assert held.broker_order_id is not None
    assert rejected_later.broker_order_id is not None
    harness.fill(held.broker_order_id, 4, Decimal(72100), Decimal(40))
    harness.cancel_by_venue(held.broker_order_id, "trading halted")
    harness.reject_open(rejected_later.broker_order_id, "short sale not allowed")

    held_now = harness.venue.status(held.broker_order_id)
    assert (held_now.status, held_now.filled_quantity) == (OrderStatus.CANCELLED, 4)
    assert (held_now.filled_notional, held_now.commission) == (Decimal(288400), Decimal(40))
    assert held_now.reason == "trading halted"
    later_now = harness.venue.status(rejected_later.broker_order_id)
    assert (later_now.status, later_now.reason) == (OrderStatus.REJECTED, "short sale not allowed")
    assert harness.venue_order_ids() == [
        held.broker_order_id,
        partial.broker_order_id,
        rejected_later.broker_order_id,
    ]
    assert (harness.request_count("place"), harness.request_count("status")) == (3, 2)


def test_the_suite_s_mock_harness_offers_push_but_pushes_only_when_a_row_asks() -> None:
    harness = create_harness({})
    assert Capability.PUSH in harness.capabilities
    assert "push" not in harness.adapter_options()

    harness.enable_push()
    assert harness.adapter_options()["push"] is True
    assert Capability.PUSH not in MockHarness().capabilities


def test_the_mock_harness_reports_a_late_fill_on_a_cancelled_order() -> None:
    harness = MockHarness()
    harness.hold_next()
    venue_id = str(harness.venue.place(order_for("005930")).broker_order_id)
    harness.venue.cancel(venue_id)

    harness.report_late_fill(venue_id, 3)
    late = harness.venue.status(venue_id)

    assert (late.status, late.reason) == (OrderStatus.CANCELLED, "cancelled on request")
    assert (late.filled_quantity, late.filled_notional) == (3, Decimal(216000))
    assert late.commission == Decimal(100)
    assert harness.pushes_sent() == 3  # accepted, cancelled, the late execution
    with pytest.raises(ValueError, match="cannot report 8 of venue order M00000001: 7 left"):
        harness.report_late_fill(venue_id, 8)


def test_the_mock_harness_scripts_status_answers_and_forgets_orders() -> None:
    harness = MockHarness()
    harness.partial_fill_next(4)
    snapshot = harness.venue.place(order_for("005930"))
    assert snapshot.broker_order_id is not None
    venue_id = snapshot.broker_order_id
    harness.fill(venue_id, 3)
    harness.repeat_fill_in_next_status(venue_id)
    harness.stale_next_status(venue_id, 1)

    repeated, stale, truth = (harness.venue.status(venue_id) for _ in range(3))
    harness.forget_order(venue_id)

    assert [len(answer.executions) for answer in (repeated, stale, truth)] == [3, 1, 2]
    assert (stale.status, stale.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 4)
    assert harness.venue_order_ids() == []
    assert harness.request_count("status") == 3


def test_the_mock_harness_enforces_a_limit_and_has_its_adapter_declare_it() -> None:
    clock = FakeClock()
    harness = MockHarness()
    assert harness.adapter_options() == {"venue": harness.venue}

    harness.enforce_rate_limit(1, 1.0, clock.monotonic)
    harness.venue.place(order_for("005930"))
    with pytest.raises(BrokerRateLimitError):
        harness.venue.place(order_for("000660"))

    assert harness.adapter_options() == {
        "venue": harness.venue,
        "rate_limit": 1,
        "rate_period": 1.0,
    }
    assert (harness.request_count("place"), harness.request_count()) == (2, 2)
    assert (harness.rate_limit_answers(), harness.max_arrivals_in_window()) == (1, 2)
    harness.enforce_rate_limit(5, 0.5, clock.monotonic)
    assert harness.adapter_options()["rate_period"] == 0.5


async def test_the_limit_the_mock_harness_declares_reaches_the_engine(sqlite_url: str) -> None:
    clock = FakeClock()
    harness = MockHarness()
    harness.enforce_rate_limit(3, 1.0, clock.monotonic)

    async with Engine.open(
        "mock",
        adapter_options=harness.adapter_options(),
        clock=clock,
        database_url=sqlite_url,
        config=EngineConfig(credential_key="declared-limit"),
    ) as engine:
        await asyncio.gather(*(engine.execute(Signal("005930", "BUY", 1)) for _ in range(7)))
        limiter = engine.stats()["rate_limiter"]

    assert limiter["limits"] == ["3/1s"]
    assert (harness.rate_limit_answers(), harness.max_arrivals_in_window()) == (0, 3)


def order_for(symbol: str) -> Order:
    return Order.from_signal(Signal(symbol, "BUY", 10), account_id="acct", now=FakeClock().now())


# ------------------------------------------------------------------ the pytest plugin

ADOPTING_MODULE = """
from orderlane.testing.plugin import test_conformance

pytest_plugins = ["orderlane.testing.plugin"]
conformance_adapter = "mock"
"""


def test_the_plugin_runs_the_catalogue_under_its_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_adapter=ADOPTING_MODULE)

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "-v")

    result.assert_outcomes(passed=len(select_cases()) - len(NEEDS_CLIENT_IDS), skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_conformance?seed-happy-path? PASSED*",
            "*test_conformance?seed-non-retryable?validation?? PASSED*",
        ]
    )


def test_the_plugin_skips_what_a_module_harness_cannot_drive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_adapter="""
import pytest
from orderlane import Capability, Engine, FakeClock, OrderStatus, Signal
from orderlane.testing.plugin import test_conformance
from orderlane_mock.harness import MockHarness, create_harness

pytest_plugins = ["orderlane.testing.plugin"]


class NoLookup(MockHarness):
    capabilities = MockHarness.capabilities - {Capability.LOOKUP}


@pytest.fixture
def conformance_harness():
    return NoLookup()
"""
    )

    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:asyncio", "-rs", "-k", "ambiguous"
    )

    result.assert_outcomes(skipped=4)  # ambiguous-accepted has two variants
    result.stdout.fnmatch_lines(["*needs the capability lookup*"])


def test_the_plugin_takes_the_adapter_from_the_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\norderlane_conformance_adapter = mock\n")
    pytester.makepyfile(test_adapter="from orderlane.testing.plugin import test_conformance\n")

    result = pytester.runpytest_inprocess(
        "-p",
        "orderlane.testing.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
        "-k",
        "seed-happy-path",
    )

    result.assert_outcomes(passed=1)


def test_the_plugin_says_how_to_name_the_adapter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_adapter="""
from orderlane.testing.plugin import test_conformance

pytest_plugins = ["orderlane.testing.plugin"]
"""
    )

    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:asyncio", "-k", "seed-happy-path"
    )

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set conformance_adapter = 'NAME' in the test module*"])
