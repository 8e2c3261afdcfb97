"""The conformance suite: every adapter proves it keeps orderlane's contracts the same way.

An adapter supplies a :class:`VenueHarness` (published under the entry-point group
``orderlane.harnesses``) that starts its venue and scripts it; the catalogue's scenarios, written
once against the harness and the public Engine API, then run for it under pytest
(:mod:`orderlane.testing.plugin`) or from :func:`run_conformance` (``orderlane conformance NAME``).
Importing this package does not import pytest.
"""

from orderlane.testing.harness import (
    COMMISSION,
    QUOTE,
    SYMBOL,
    CrashPoint,
    EventRecorder,
    FailKind,
    LookupAnswer,
    RecordedEvent,
    RejectKind,
    ScenarioRun,
    VenueClock,
    VenueHarness,
    VenueOperation,
    venue_clock,
)
from orderlane.testing.runner import (
    HarnessFactory,
    Outcome,
    ScenarioResult,
    harness_factory,
    run_case,
    run_conformance,
)
from orderlane.testing.scenarios import (
    SCENARIOS,
    Case,
    Scenario,
    ScenarioFailed,
    ScenarioSkipped,
    select_cases,
)

__all__ = [
    "COMMISSION",
    "QUOTE",
    "SCENARIOS",
    "SYMBOL",
    "Case",
    "CrashPoint",
    "EventRecorder",
    "FailKind",
    "HarnessFactory",
    "LookupAnswer",
    "Outcome",
    "RecordedEvent",
    "RejectKind",
    "Scenario",
    "ScenarioFailed",
    "ScenarioResult",
    "ScenarioRun",
    "ScenarioSkipped",
    "VenueClock",
    "VenueHarness",
    "VenueOperation",
    "harness_factory",
    "run_case",
    "run_conformance",
    "select_cases",
    "venue_clock",
]
