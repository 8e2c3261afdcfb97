"""The conformance scenarios, each written once against a venue harness and the public Engine API.

Every scenario carries its stable id from the catalogue (``CONFORMANCE.md``) and asserts what its
row says: the order, what reached the venue, the events in commit order, positions and P&L.
Unless a row says otherwise the signal is BUY 10 x ``005930`` at market, the venue fills at
72,000 with commission 100, and the retry policy is the seed's (3 attempts, 1 s then 2 s).
Failures raise :class:`ScenarioFailed` with what was expected and what came; a scenario that
needs a capability the harness lacks is never run (the runner and the pytest plugin skip it).

The rows live in modules by theme and register on import: :mod:`.seed` (fills, rejections,
retries, signals, P&L), :mod:`.lifecycle` (open orders: later fills, cancels, the venue's own
changes, status answers), :mod:`.ambiguous` (sends whose outcome is unknown), :mod:`.limits`
(the broker's rate limit), :mod:`.tracking` (timeouts, paged status polls), :mod:`.answers`
(malformed answers, cumulative commissions), :mod:`.push` (pushed updates), :mod:`.recovery`
(restarts, after a crash too) and :mod:`.settlement` (orders the venue may hold: siblings,
refused resends, cancelled callers, late fills, UNKNOWN cancels). :data:`SCENARIOS` holds them
in that order.
"""

from __future__ import annotations

from orderlane.testing.scenarios.checks import expect, expect_equal
from orderlane.testing.scenarios.registry import (
    SCENARIOS,
    Case,
    Scenario,
    ScenarioFailed,
    ScenarioSkipped,
    select_cases,
)

# The themes register their rows in this order, which runs and reports follow.
# isort: off
from orderlane.testing.scenarios import seed  # noqa: F401
from orderlane.testing.scenarios import lifecycle  # noqa: F401
from orderlane.testing.scenarios import ambiguous  # noqa: F401
from orderlane.testing.scenarios import limits  # noqa: F401
from orderlane.testing.scenarios import tracking  # noqa: F401
from orderlane.testing.scenarios import answers  # noqa: F401
from orderlane.testing.scenarios import push  # noqa: F401
from orderlane.testing.scenarios import recovery  # noqa: F401
from orderlane.testing.scenarios import settlement  # noqa: F401

# isort: on

__all__ = [
    "SCENARIOS",
    "Case",
    "Scenario",
    "ScenarioFailed",
    "ScenarioSkipped",
    "expect",
    "expect_equal",
    "select_cases",
]
