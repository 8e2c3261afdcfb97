"""The conformance suite against kis-paper, over real HTTP and WebSocket to the fake KIS venue
on loopback (in this test's event loop, on the scenario's clock), never KIS."""

from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id

pytest_plugins = ["orderlane.testing.plugin"]
conformance_adapter = "kis-paper"
