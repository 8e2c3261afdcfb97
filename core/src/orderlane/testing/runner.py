"""Run the conformance scenarios outside pytest, for ``orderlane conformance NAME``.

Each case gets a fresh harness from the adapter's ``orderlane.harnesses`` entry point and a fresh
SQLite journal in a temporary directory, so cases never see each other's orders. The pytest
plugin runs every case through :func:`run_case` too: both report the same thing. A
:class:`ConformanceListener` hears each case start and finish, so a command line can show
progress while the suite runs.
"""

from __future__ import annotations

import enum
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, cast

import attrs

from orderlane.errors import ConfigurationError
from orderlane.plugins import installed_harnesses
from orderlane.testing.harness import ScenarioRun, VenueHarness, venue_clock
from orderlane.testing.scenarios import Case, ScenarioSkipped, select_cases

__all__ = [
    "ConformanceListener",
    "HarnessFactory",
    "Outcome",
    "ScenarioResult",
    "harness_factory",
    "run_case",
    "run_conformance",
]

HarnessFactory = Callable[[], VenueHarness]


class Outcome(enum.StrEnum):
    """How a case went. A scenario marked as a known engine gap (``Scenario.xfail``) is SKIPPED
    while it fails, and FAILED once it passes, so the stale mark gets noticed."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@attrs.frozen
class ScenarioResult:
    """How one case went; ``reason`` says why it failed or was skipped."""

    id: str
    outcome: Outcome
    reason: str = ""
    #: Wall-clock seconds the case took (the engine itself ran on fake time).
    duration: float = 0.0
    #: The scenario's one-line claim for this harness (``Scenario.claim``).
    proves: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "proves": self.proves,
            "duration": round(self.duration, 6),
        }


class ConformanceListener(Protocol):
    """Hears the run as it goes (``orderlane conformance`` draws its progress bar from it)."""

    def case_started(self, case: Case, position: int, total: int) -> None:
        """Case number ``position`` (from 1) of ``total`` starts."""

    def case_finished(self, result: ScenarioResult) -> None:
        """The case that started last is done."""


def harness_factory(adapter: str) -> HarnessFactory:
    """The factory of the harness installed for ``adapter``; ConfigurationError when none is."""
    harnesses = installed_harnesses()
    entry = harnesses.get(adapter)
    if entry is None:
        installed = ", ".join(sorted(harnesses)) or "none"
        raise ConfigurationError(
            f"no conformance harness is installed for adapter {adapter!r} "
            f"(installed: {installed}); an adapter publishes one under the entry-point group "
            "'orderlane.harnesses'"
        )

    def create() -> VenueHarness:
        return cast(VenueHarness, entry.create({}))  # run_case checks what it really is

    return create


async def run_case(case: Case, harness: VenueHarness, directory: Path) -> None:
    """Run ``case`` against ``harness`` with a journal in ``directory``.

    Returns when the case passed; raises :class:`ScenarioSkipped` when the harness lacks a
    capability the scenario needs, and whatever the scenario raised when it failed.
    """
    if not isinstance(harness, VenueHarness):
        lacking = [name for name in vars(VenueHarness) if not name.startswith("_")]
        lacking = [name for name in lacking if not hasattr(harness, name)]
        raise ConfigurationError(
            f"{type(harness).__name__} is not a VenueHarness: it lacks {', '.join(lacking)}"
        )
    reason = case.scenario.skip_reason(harness.capabilities)
    if reason is not None:
        raise ScenarioSkipped(reason)
    run = ScenarioRun(
        harness,
        database_url=f"sqlite:///{directory / 'journal.db'}",
        variant=case.variant,
        real_time=case.scenario.venue_time and venue_clock(harness) == "real",
    )
    use_clock = getattr(harness, "use_clock", None)
    if use_clock is not None:
        use_clock(run.time)  # the venue keeps the scenario's time (dates, order times)
    await harness.start()
    try:
        with run.capturing_logs():
            await case.scenario.run(run)
    finally:
        await harness.stop()


async def run_conformance(
    adapter: str | HarnessFactory,
    ids: Iterable[str] | None = None,
    *,
    keyword: str | None = None,
    listener: ConformanceListener | None = None,
) -> list[ScenarioResult]:
    """Run the scenarios (all, those named in ``ids``, narrowed by the ``-k`` expression
    ``keyword``) for an installed adapter by name, or against the harnesses ``adapter`` makes
    when it is a factory.

    Raises :class:`ConfigurationError` for an adapter without a harness, an unknown id or an
    expression that selects nothing, before any case runs; every scenario's own failure is a
    result, never an exception.
    """
    factory = harness_factory(adapter) if isinstance(adapter, str) else adapter
    cases = select_cases(ids, keyword)
    results = []
    for position, case in enumerate(cases, 1):
        if listener is not None:
            listener.case_started(case, position, len(cases))
        result = await _run_one(case, factory)
        if listener is not None:
            listener.case_finished(result)
        results.append(result)
    return results


async def _run_one(case: Case, factory: HarnessFactory) -> ScenarioResult:
    started = time.perf_counter()
    outcome, reason = Outcome.PASSED, ""
    proves = case.scenario.proves
    try:
        harness = factory()
        proves = case.scenario.claim(getattr(harness, "capabilities", frozenset()))
        with tempfile.TemporaryDirectory(prefix="orderlane-conformance-") as directory:
            await run_case(case, harness, Path(directory))
    except ScenarioSkipped as skipped:
        outcome, reason = Outcome.SKIPPED, skipped.reason
    except Exception as error:
        outcome, reason = Outcome.FAILED, _describe(error)
    if case.scenario.xfail is not None:
        # A known engine gap: its failure is expected, and a pass means the mark is stale.
        if outcome is Outcome.FAILED:
            outcome, reason = Outcome.SKIPPED, f"known failure: {case.scenario.xfail}"
        elif outcome is Outcome.PASSED:
            outcome = Outcome.FAILED
            reason = f"passed although marked as a known failure ({case.scenario.xfail})"
    duration = time.perf_counter() - started
    return ScenarioResult(case.id, outcome, reason, duration, proves)


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, AssertionError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
