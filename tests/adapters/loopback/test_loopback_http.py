"""The conformance kit as a third party meets it: an adapter for a broker behind HTTP (httpx),
run against a fake broker served on 127.0.0.1 from the test's event loop.

The adapter (``loopback_http``) and its venue and harness (``loopback_venue``) are published under
entry points of their own, as an installed distribution's are. The whole suite passes on fake
time, for a broker with and without client order ids; the rate-limit rows pass run after run
(``ORDERLANE_LOOPBACK_REPEAT`` times, default 3; for the kit's acceptance run it with 100)::

    ORDERLANE_LOOPBACK_REPEAT=100 python -m pytest tests/adapters/loopback/test_loopback_http.py \\
        -k run_after_run --no-cov -q -s
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import loopback_http
import pytest
from loopback_process import ProcessHarness, venue_process
from loopback_venue import LoopbackHarness
from typer.testing import CliRunner

from orderlane import Capability, Engine
from orderlane.cli import app
from orderlane.errors import ConfigurationError
from orderlane.testing import SCENARIOS, Outcome, run_conformance, select_cases
from orderlane_mock.adapter import CAPABILITIES

ENTRY_POINTS = """\
[orderlane.adapters]
loopback-http = loopback_http:create_adapter

[orderlane.harnesses]
loopback-http = loopback_venue:create_harness
"""
RATE_LIMIT_ROWS = ["rate-limit-answer", "rate-limit-burst", "rate-limit-pages"]
REPEAT = int(os.environ.get("ORDERLANE_LOOPBACK_REPEAT", "3"))
#: Rows run against the venue in its own process: those that time the venue's window (on real
#: time there) and those where a request's timing matters; ORDERLANE_LOOPBACK_PROCESS_ROWS=all
#: runs the whole suite (about 75 s per kind of broker).
PROCESS_ROWS = (
    None
    if os.environ.get("ORDERLANE_LOOPBACK_PROCESS_ROWS") == "all"
    else [
        *RATE_LIMIT_ROWS,
        "seed-retry-success",
        "ambiguous-accepted",
        "ambiguous-not-accepted",
        "lookup-sibling-in-flight",
        "cancelled-caller",
    ]
)


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter and its harness, published under the entry-point name ``loopback-http``."""
    info = tmp_path / "site" / "orderlane_loopback_http-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: orderlane-loopback-http\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


@pytest.mark.parametrize("client_order_id", [False, True], ids=["lookup", "client-order-id"])
async def test_the_whole_suite_passes_on_fake_time(installed: None, client_order_id: bool) -> None:
    def harness() -> LoopbackHarness:
        return LoopbackHarness(client_order_id=client_order_id)

    results = await run_conformance(harness)

    assert [result.id for result in results] == [case.id for case in select_cases()]
    failed = [(r.id, r.reason) for r in results if r.outcome is Outcome.FAILED]
    assert failed == []
    # Skipped: only rows needing what this broker lacks (push; client order ids, without them).
    lacking = {Capability.PUSH} | (set() if client_order_id else {Capability.CLIENT_ORDER_ID})
    skipped = {r.id for r in results if r.outcome is Outcome.SKIPPED}
    assert skipped == {c.id for c in select_cases() if c.scenario.requires & lacking}
    assert not any(id.startswith(("ambiguous", "rate-limit")) for id in skipped)


@pytest.mark.parametrize("client_order_id", [False, True], ids=["lookup", "client-order-id"])
async def test_the_rate_limit_rows_pass_run_after_run(
    installed: None, client_order_id: bool
) -> None:
    def harness() -> LoopbackHarness:
        return LoopbackHarness(client_order_id=client_order_id)

    for run in range(1, REPEAT + 1):
        results = await run_conformance(harness, RATE_LIMIT_ROWS)
        failed = [(r.id, r.reason) for r in results if r.outcome is not Outcome.PASSED]
        assert failed == [], f"run {run} of {REPEAT}"
    mode = "with" if client_order_id else "without"
    print(
        f"\n{REPEAT} consecutive runs of {', '.join(RATE_LIMIT_ROWS)} {mode} client_order_id: "
        "all passed"
    )


async def test_the_adapter_needs_its_base_url_only_to_start(
    installed: None, sqlite_url: str
) -> None:
    described = loopback_http.create_adapter({}).orderlane_adapter_info()
    assert Capability.LOOKUP in described.capabilities

    with pytest.raises(ConfigurationError, match="needs the option base_url"):
        async with Engine.open("loopback-http", database_url=sqlite_url):
            pass
    with pytest.raises(ConfigurationError, match="unknown loopback-http adapter options"):
        loopback_http.create_adapter({"base": "http://127.0.0.1:1"})


def test_orderlane_adapters_describes_it_without_its_options(installed: None) -> None:
    result = CliRunner().invoke(app, ["adapters", "--json"])

    assert result.exit_code == 0, result.output
    row = {row["name"]: row for row in json.loads(result.stdout)}["loopback-http"]
    assert row["error"] is None
    assert row["distribution"] == "orderlane-loopback-http"
    assert set(row["capabilities"]) == {str(value) for value in loopback_http.CAPABILITIES}
    assert row["description"] == "A broker reached over HTTP (httpx)"


async def test_an_adapter_without_batch_lookup_fails_that_row_naming_the_hook(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(loopback_http.LoopbackAdapter, "orderlane_lookup_orders")
    results = await run_conformance(LoopbackHarness, ["batch-lookup"])
    assert [(r.id, r.outcome) for r in results] == [("batch-lookup", Outcome.FAILED)]
    assert "orderlane_lookup_orders" in results[0].reason


async def test_a_delayed_answer_is_held_at_the_socket_until_released() -> None:
    # cancelled-caller and lookup-sibling-in-flight need a place answer that is really slow:
    # the venue takes the order, the HTTP answer waits for release_answers().
    harness = LoopbackHarness()
    await harness.start()
    try:
        harness.delay_answer_next()
        body = {"client_id": "c1", "symbol": "005930", "side": "BUY", "qty": 1}
        body |= {"type": "MARKET", "price": None}
        async with httpx.AsyncClient(base_url=harness.base_url) as client:
            answer = asyncio.ensure_future(client.post("/orders", json=body))
            for _ in range(5000):  # at most 5 s of real time
                if harness.venue_order_ids():
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.2)  # real time: long enough for any loopback round trip
            assert not answer.done(), "the venue answered a place it was told to hold back"
            harness.release_answers()
            assert (await answer).json()["order_no"] == harness.venue_order_ids()[0]
    finally:
        await harness.stop()


@pytest.mark.parametrize("client_order_id", [False, True], ids=["lookup", "client-order-id"])
async def test_a_venue_in_its_own_process_passes_with_its_time_bound_rows_on_real_time(
    installed: None, client_order_id: bool
) -> None:
    # The same fake broker, served by a process of its own and scripted over its control API:
    # the test's event loop cannot see its work, so it keeps real time (venue_clock = "real").
    with venue_process() as control:

        def harness() -> ProcessHarness:
            return ProcessHarness(control, client_order_id=client_order_id)

        results = await run_conformance(harness, PROCESS_ROWS)

    failed = [(r.id, r.reason) for r in results if r.outcome is Outcome.FAILED]
    assert failed == []
    skipped = {r.id for r in results if r.outcome is Outcome.SKIPPED}
    declared = CAPABILITIES | ({Capability.CLIENT_ORDER_ID} if client_order_id else set())
    assert all(SCENARIOS[id.partition("[")[0]].requires - declared for id in skipped)
    # The rows that time the venue's window ran on real time: a burst of 30 requests at 5 a
    # second takes five windows of it.
    burst = next(r for r in results if r.id == "rate-limit-burst")
    assert burst.duration >= 5.0
