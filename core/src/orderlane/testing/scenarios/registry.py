"""The scenario registry: catalogue ids, what each row needs, and how cases are selected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs

from orderlane.broker import Capability
from orderlane.errors import ConfigurationError
from orderlane.testing.harness import ScenarioRun

__all__ = [
    "SCENARIOS",
    "Case",
    "Scenario",
    "ScenarioFailed",
    "ScenarioFunction",
    "ScenarioSkipped",
    "scenario",
    "select_cases",
]

ScenarioFunction = Callable[[ScenarioRun], Awaitable[None]]


class ScenarioFailed(AssertionError):
    """The adapter (or the engine with it) did not do what the catalogue row says."""


class ScenarioSkipped(Exception):
    """The scenario cannot run against this harness; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Scenario:
    """One catalogue row: its id, what it needs, and the coroutine that checks it."""

    id: str
    run: ScenarioFunction = attrs.field(repr=False)
    requires: frozenset[Capability] = frozenset()
    #: Parametrized rows run once per variant (the variant is ``ScenarioRun.variant``).
    variants: tuple[str, ...] = ()
    #: Set while the engine is known to fall short of the row: the run is expected to fail.
    xfail: str | None = None

    def cases(self) -> list[Case]:
        return [Case(self, variant) for variant in self.variants or (None,)]

    def skip_reason(self, capabilities: frozenset[Capability]) -> str | None:
        missing = sorted(self.requires - capabilities)
        if not missing:
            return None
        names = ", ".join(capability.value for capability in missing)
        return f"needs the capability {names}, which the harness does not declare"


@attrs.frozen
class Case:
    """One run of a scenario: the scenario itself, or one variant of a parametrized one."""

    scenario: Scenario
    variant: str | None = None

    @property
    def id(self) -> str:
        if self.variant is None:
            return self.scenario.id
        return f"{self.scenario.id}[{self.variant}]"


#: Every scenario by catalogue id, in registration order (by theme, then catalogue order).
SCENARIOS: dict[str, Scenario] = {}


def scenario(
    id: str,
    *,
    requires: Iterable[Capability] = (),
    variants: Sequence[str] = (),
    xfail: str | None = None,
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated coroutine as the scenario of catalogue row ``id``."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if id in SCENARIOS:
            raise ValueError(f"scenario {id!r} is registered twice")
        SCENARIOS[id] = Scenario(id, function, frozenset(requires), tuple(variants), xfail)
        return function

    return register


def select_cases(ids: Iterable[str] | None = None) -> list[Case]:
    """The cases to run: all, or those named by scenario id (every variant) or by case id."""
    every = [case for registered in SCENARIOS.values() for case in registered.cases()]
    if ids is None:
        return every
    wanted = list(ids)
    known = {case.id for case in every} | set(SCENARIOS)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigurationError(
            f"unknown conformance scenario {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(SCENARIOS)}"
        )
    return [case for case in every if case.id in wanted or case.scenario.id in wanted]
