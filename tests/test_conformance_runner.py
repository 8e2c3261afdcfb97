"""The conformance suite's machinery: the runner behind ``orderlane conformance`` and the pytest
plugin an adapter package enables, both driven by the mock adapter's harness."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from decimal import Decimal
from typing import Any

import pytest

from orderlane import Capability, Engine, EngineConfig, FakeClock, Order, OrderStatus, Signal
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
from orderlane.testing.harness import RejectKind
from orderlane.testing.scenarios import ScenarioFailed
from orderlane.testing.scenarios.checks import broker_id
from orderlane.testing.scenarios.registry import scenario
from orderlane_mock.adapter import CAPABILITIES
from orderlane_mock.harness import MockHarness, create_harness

pytest_plugins = ["pytester"]

#: The rows the engine supports today; each must stay in the suite under its catalogue id.
SUPPORTED_ROWS = {
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
}


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


def by_id(results: list[ScenarioResult]) -> dict[str, ScenarioResult]:
    return {result.id: result for result in results}


async def test_every_scenario_passes_for_the_mock() -> None:
    results = await run_conformance("mock")

    assert [result.id for result in results] == [case.id for case in select_cases()]
    assert {result.id.partition("[")[0] for result in results} == SUPPORTED_ROWS
    failed = [(r.id, r.reason) for r in results if r.outcome is not Outcome.PASSED]
    assert failed == []
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
    ],
)
async def test_the_new_rows_fail_a_venue_that_breaks_them(
    harness: HarnessFactory, row: str, reason: str
) -> None:
    [result] = await run_conformance(harness, [row])

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith(reason)


async def test_rate_limited_rows_on_one_event_loop_never_share_a_limiter() -> None:
    # The runner runs every case on one loop, where engines on one credential key share their
    # limiter (and its clock): each run therefore has a key of its own.
    rows = ["rate-limit-answer", "rate-limit-burst"]
    results = [*await run_conformance("mock", rows), *await run_conformance("mock", rows)]

    assert [result.outcome for result in results] == [Outcome.PASSED] * 4
    first, second = (ScenarioRun(MockHarness(), "sqlite://") for _ in range(2))
    assert first.credential_key != second.credential_key


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
        assert "\n" not in row.proves
        assert len(row.proves) <= 90, f"{row.id}: say it in one short line"


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
        ("cancel and not races", ["cancel-open-order", "broker-cancel"]),
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
    with pytest.raises(ConfigurationError, match=r"no conformance harness .*\(installed: mock\)"):
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


def test_the_mock_harness_is_a_venue_harness_that_takes_no_options() -> None:
    harness = create_harness({})

    assert isinstance(harness, VenueHarness)
    assert repr(harness) == "MockHarness(orders=0, requests=0)"
    with pytest.raises(ConfigurationError, match="takes no options"):
        create_harness({"quote": 1})


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

    result.assert_outcomes(passed=len(select_cases()))
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
