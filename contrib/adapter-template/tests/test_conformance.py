"""orderlane's conformance suite against this adapter: one test per catalogue scenario id."""

from orderlane.testing.plugin import test_conformance  # noqa: F401 - the suite's tests

pytest_plugins = ["orderlane.testing.plugin"]
conformance_adapter = "template"
