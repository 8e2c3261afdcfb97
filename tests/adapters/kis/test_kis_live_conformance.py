"""The conformance suite against kis-live, pointed at the fake KIS venue in live mode (live
trading enabled for the venue's account by the harness), over real HTTP and WebSocket on
loopback, never KIS."""

from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id

pytest_plugins = ["orderlane.testing.plugin"]
conformance_adapter = "kis-live"
