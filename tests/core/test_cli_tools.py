"""The ``orderlane conformance`` command: selection, the JSON report, progress and exit status."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orderlane.cli import app
from orderlane.testing import SCENARIOS, select_cases

#: A harness installed under its own name whose venue ignores the rejections it is asked for.
BROKEN_HARNESS = """
from orderlane_mock.harness import MockHarness


class IgnoresRejections(MockHarness):
    def reject_next(self, kind, message):
        pass


def create(options):
    return IgnoresRejections()
"""


@pytest.fixture
def broken_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of an installed harness (entry point and module on the path) that fails rows."""
    site = tmp_path / "site"
    info = site / "broken_harness-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-harness\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[orderlane.harnesses]\nbroken = broken_harness:create\n"
    )
    (site / "broken_harness.py").write_text(BROKEN_HARNESS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "broken_harness", raising=False)
    return "broken"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["conformance", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_counts_and_lists_every_selected_scenario() -> None:
    code, out, err = invoke("mock", "--id", "seed-happy-path", "--id", "seed-rejection", "--json")

    assert code == 0, out + err
    report = json.loads(out)
    assert list(report) == ["adapter", "passed", "failed", "skipped", "scenarios"]
    assert (report["adapter"], report["passed"], report["failed"], report["skipped"]) == (
        "mock",
        2,
        0,
        0,
    )
    rows = report["scenarios"]
    assert [(row["id"], row["outcome"], row["reason"]) for row in rows] == [
        ("seed-happy-path", "passed", ""),
        ("seed-rejection", "passed", ""),
    ]
    assert [row["proves"] for row in rows] == [
        SCENARIOS["seed-happy-path"].proves,
        SCENARIOS["seed-rejection"].proves,
    ]
    assert all(row["duration"] > 0 for row in rows)
    assert err == "", "--json draws no progress"


def test_the_whole_suite_for_the_mock_has_no_failure() -> None:
    code, out, _ = invoke("mock", "--json")

    assert code == 0
    report = json.loads(out)
    assert report["failed"] == 0
    assert report["passed"] + report["skipped"] == len(select_cases())
    seed = [row for row in report["scenarios"] if row["id"].startswith("seed-")]
    assert seed, "the seed's rows run"
    assert {row["outcome"] for row in seed} == {"passed"}


def test_k_selects_by_an_expression_over_ids() -> None:
    code, out, _ = invoke("mock", "-k", "cancel and not races", "--json")

    assert code == 0
    ids = [row["id"] for row in json.loads(out)["scenarios"]]
    assert ids == [
        case.id for case in select_cases() if "cancel" in case.id and "races" not in case.id
    ]
    assert "cancel-open-order" in ids


def test_k_narrows_what_id_selects() -> None:
    code, out, _ = invoke(
        "mock", "--id", "seed-non-retryable", "-k", "SYMBOL or validation", "--json"
    )

    assert code == 0
    assert [row["id"] for row in json.loads(out)["scenarios"]] == [
        "seed-non-retryable[invalid_symbol]",
        "seed-non-retryable[validation]",
    ]


def test_table_progress_and_quiet_logs() -> None:
    marker = logging.Handler()
    logging.getLogger("orderlane").addHandler(marker)
    try:
        code, out, err = invoke("mock", "--id", "seed-non-retryable")
        assert logging.getLogger("orderlane").handlers.count(marker) == 1  # put back afterwards
    finally:
        logging.getLogger("orderlane").removeHandler(marker)

    assert code == 0, out + err
    assert "3 passed, 0 failed, 0 skipped" in out
    assert "seed-non-retryable[validation]" in out
    # A pass shows what it proved (the table wraps long text, so compare words).
    assert set(SCENARIOS["seed-non-retryable"].proves.split()) <= set(out.split())
    # Off a terminal the progress bar prints its last state once, on stderr.
    assert "conformance of mock" in err
    assert "3/3" in err


def test_a_failing_scenario_fails_the_command(broken_harness: str) -> None:
    code, out, _ = invoke(broken_harness, "-k", "seed-rejection or happy", "--json")

    assert code == 1
    report = json.loads(out)
    assert (report["passed"], report["failed"], report["skipped"]) == (1, 1, 0)
    [failed] = [row for row in report["scenarios"] if row["outcome"] == "failed"]
    assert failed["id"] == "seed-rejection"
    assert failed["reason"] == "order status: expected REJECTED, got FILLED"


def test_a_failure_shows_its_reason_in_the_table(broken_harness: str) -> None:
    code, out, _ = invoke(broken_harness, "--id", "seed-rejection")

    assert code == 1
    assert "0 passed, 1 failed, 0 skipped" in out
    assert "expected REJECTED, got FILLED" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no conformance harness is installed for adapter 'nope'"),
        (["mock", "--id", "no-such-row"], "unknown conformance scenario 'no-such-row'"),
        (["mock", "-k", "no-such-row"], "no conformance scenario matches -k 'no-such-row'"),
        (["mock", "-k", "(cancel"], "invalid -k expression '(cancel': it ends too early"),
        (["mock", "-k", "cancel races"], "invalid -k expression 'cancel races': unexpected"),
    ],
)
def test_configuration_errors_exit_1_before_any_scenario_runs(
    args: list[str], message: str
) -> None:
    code, out, err = invoke(*args)

    assert code == 1
    assert out == ""
    assert message in " ".join(err.split())
    assert "conformance of" not in err, "no progress is drawn for a run that never started"
