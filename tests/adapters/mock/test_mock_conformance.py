"""The conformance suite against the mock adapter: all an adapter package needs to adopt it.

The mock runs the whole catalogue twice: as a broker without client order ids (an ambiguous
send is looked up) and as one that deduplicates them (an ambiguous send is sent again).
"""

import pytest

from orderlane.testing import VenueHarness
from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id
from orderlane_mock.harness import create_harness

pytest_plugins = ["orderlane.testing.plugin"]


@pytest.fixture(params=[False, True], ids=["lookup", "client-order-id"])
def conformance_harness(request: pytest.FixtureRequest) -> VenueHarness:
    return create_harness({"client_order_id": request.param})
