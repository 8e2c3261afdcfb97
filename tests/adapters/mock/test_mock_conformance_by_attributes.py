"""The conformance suite against the mock venue looking orders up by their attributes, as a
broker without client order ids does (KIS): the rows about siblings and lookups then hold the
engine to matching by intent, where a candidate may belong to another order."""

import pytest

from orderlane.testing.harness import VenueHarness
from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id
from orderlane_mock.harness import MockHarness

pytest_plugins = ["orderlane.testing.plugin"]


@pytest.fixture
def conformance_harness() -> VenueHarness:
    return MockHarness(lookup="attributes")
