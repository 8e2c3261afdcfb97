"""The ``orderlane conformance`` command."""

from __future__ import annotations

import json
import logging

from typer.testing import CliRunner

from orderlane.cli import app


def test_conformance_json_for_the_mock() -> None:
    result = CliRunner().invoke(
        app, ["conformance", "mock", "--id", "seed-happy-path", "--id", "seed-rejection", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(row["id"], row["outcome"]) for row in rows] == [
        ("seed-happy-path", "passed"),
        ("seed-rejection", "passed"),
    ]


def test_conformance_table_and_quiet_logs() -> None:
    marker = logging.Handler()
    logging.getLogger("orderlane").addHandler(marker)
    try:
        result = CliRunner().invoke(app, ["conformance", "mock", "--id", "seed-non-retryable"])
        assert logging.getLogger("orderlane").handlers.count(marker) == 1  # put back afterwards
    finally:
        logging.getLogger("orderlane").removeHandler(marker)
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed, 0 skipped" in result.output
    assert "seed-non-retryable[validation]" in result.output


def test_conformance_of_an_adapter_without_harness() -> None:
    result = CliRunner().invoke(app, ["conformance", "nope"])
    assert result.exit_code == 1
    assert "no conformance harness is installed for adapter 'nope'" in result.output


def test_conformance_unknown_scenario_id() -> None:
    result = CliRunner().invoke(app, ["conformance", "mock", "--id", "no-such-row"])
    assert result.exit_code == 1
    assert "no-such-row" in result.output
