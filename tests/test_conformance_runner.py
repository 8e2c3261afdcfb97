"""The conformance suite's machinery: the runner behind ``orderlane conformance`` and the pytest
plugin an adapter package enables, both driven by the mock adapter's harness."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from orderlane import Capability, Engine, FakeClock, OrderStatus, Signal
from orderlane.errors import ConfigurationError
from orderlane.testing import (
    SCENARIOS,
    Outcome,
    ScenarioResult,
    VenueHarness,
    run_conformance,
    select_cases,
)
from orderlane.testing.harness import RejectKind
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
}


class NoLookupHarness(MockHarness):
    """A venue whose inquiry cannot find orders by client id."""

    capabilities = CAPABILITIES - {Capability.LOOKUP}


class IgnoresRejections(MockHarness):
    """A broken harness: it never scripts the refusal it is asked for."""

    def reject_next(self, kind: RejectKind, message: str) -> None:
        pass


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
            NoLookupHarness, ["ambiguous-accepted", "garbled-place-answer", "seed-happy-path"]
        )
    )

    for skipped in ("ambiguous-accepted", "garbled-place-answer"):
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
    results = await run_conformance(NoLookupHarness, ["seed-happy-path", "ambiguous-accepted"])

    rows = json.loads(json.dumps([result.to_dict() for result in results]))
    assert [(row["id"], row["outcome"]) for row in rows] == [
        ("seed-happy-path", "passed"),
        ("ambiguous-accepted", "skipped"),
    ]
    assert set(rows[0]) == {"id", "outcome", "reason", "duration"}
    assert rows[0]["duration"] > 0


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

    result.assert_outcomes(skipped=3)
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
