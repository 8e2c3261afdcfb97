"""orderlane.testing.venue: the parts fake venues and their harnesses share."""

from __future__ import annotations

from typing import Any

import pytest

from orderlane import FakeClock, RateLimit
from orderlane.errors import ConfigurationError
from orderlane.testing.venue import HarnessBase, RollingWindow, declared_rate_limits


def test_a_rolling_window_refuses_what_the_broker_would_and_counts_it() -> None:
    clock = FakeClock()
    window = RollingWindow(2, 1.0, clock.monotonic)

    assert [window.arrive(), window.arrive(), window.arrive()] == [True, True, False]
    clock.advance(0.5)
    assert window.arrive() is False  # refused arrivals count against the window too
    clock.advance(0.6)
    assert window.arrive() is True  # the first two have left the window
    assert window.refused == 2
    assert window.arrivals == [0.0, 0.0, 0.0, 0.5, 1.1]
    assert window.busiest() == 4
    assert window.busiest(0.1) == 3
    assert "2 per 1s" in repr(window)


def test_the_declared_rate_limit_options() -> None:
    assert declared_rate_limits({}) == ()
    assert declared_rate_limits({"rate_limit": 0}) == ()
    assert declared_rate_limits({"rate_limit": "5", "rate_period": "2"}) == (RateLimit(5, 2.0),)
    with pytest.raises(ConfigurationError, match="rate_limit must be a whole number"):
        declared_rate_limits({"rate_limit": "many"})


class Minimal(HarnessBase):
    adapter_name = "minimal"

    def venue_options(self) -> dict[str, Any]:
        return {"url": "http://127.0.0.1:1"}


async def test_the_harness_base_declares_what_its_venue_enforces() -> None:
    harness = Minimal()
    await harness.start()
    assert harness.adapter_options() == {"url": "http://127.0.0.1:1"}
    harness.declare_rate_limit(5, 1.0)
    harness.declare_page_size(15)
    assert harness.adapter_options() == {
        "url": "http://127.0.0.1:1",
        "rate_limit": 5,
        "rate_period": 1.0,
        "page_size": 15,
    }
    assert harness.venue_clock == "scenario"
    await harness.stop()


def test_the_harness_base_has_no_push_stream_and_no_venue() -> None:
    harness = Minimal()
    for member in (harness.enable_push, harness.reconnect_push, harness.push_before_answer_next):
        with pytest.raises(NotImplementedError, match="the minimal venue has no push stream"):
            member()
    with pytest.raises(NotImplementedError, match="no push stream"):
        harness.drop_pushes(1)
    with pytest.raises(NotImplementedError):
        HarnessBase().venue_options()
