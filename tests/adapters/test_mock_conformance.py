"""The conformance suite against the mock adapter: all an adapter package needs to adopt it."""

from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id

pytest_plugins = ["orderlane.testing.plugin"]
conformance_adapter = "mock"
