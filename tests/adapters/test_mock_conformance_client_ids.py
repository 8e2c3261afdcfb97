"""The rows about resends on a broker that deduplicates client order ids, against the mock venue
in that mode (the adapter then declares ``client_order_id``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orderlane.testing.runner import run_case
from orderlane.testing.scenarios import Case, select_cases
from orderlane_mock.harness import MockHarness

ROWS = ["resend-refused-after-accept", "lookup-sibling-in-flight", "cancelled-caller"]


@pytest.mark.parametrize("case", select_cases(ROWS), ids=lambda case: case.id)
def test_row_with_client_order_ids(case: Case, tmp_path: Path) -> None:
    asyncio.run(run_case(case, MockHarness(client_order_id=True), tmp_path))
