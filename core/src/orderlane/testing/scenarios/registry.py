"""The scenario registry: catalogue ids, what each row needs and proves, and how cases are
selected (by id, or by a ``-k`` expression over ids as pytest selects tests)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import NoReturn

import attrs

from orderlane.contract import Capability
from orderlane.errors import ConfigurationError
from orderlane.testing.harness import ScenarioRun

__all__ = [
    "SCENARIOS",
    "Case",
    "Scenario",
    "ScenarioFailed",
    "ScenarioFunction",
    "ScenarioSkipped",
    "keyword_matcher",
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
    """One catalogue row: its id, what it needs, what it proves, and the coroutine that checks
    it."""

    id: str
    run: ScenarioFunction = attrs.field(repr=False)
    requires: frozenset[Capability] = frozenset()
    #: Parametrized rows run once per variant (the variant is ``ScenarioRun.variant``).
    variants: tuple[str, ...] = ()
    #: Set while the engine is known to fall short of the row: the run is expected to fail.
    xfail: str | None = None
    #: One line saying what a pass proves about the adapter and the engine, for reports and docs.
    proves: str = ""
    #: What a pass proves instead when the adapter declares ``client_order_id`` (its broker
    #: deduplicates client order ids, so an ambiguous send is sent again, not looked up); empty
    #: for a row that means the same for both kinds of broker.
    proves_with_client_order_id: str = ""
    #: The venue measures time (its rate-limit window): for a harness whose venue keeps real
    #: time (``venue_clock = "real"``), the row runs the engine on real time too.
    venue_time: bool = False

    def cases(self) -> list[Case]:
        return [Case(self, variant) for variant in self.variants or (None,)]

    def claim(self, capabilities: frozenset[Capability]) -> str:
        """What a pass proves for an adapter with ``capabilities``."""
        if Capability.CLIENT_ORDER_ID in capabilities and self.proves_with_client_order_id:
            return self.proves_with_client_order_id
        return self.proves

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
    proves: str = "",
    proves_with_client_order_id: str = "",
    requires: Iterable[Capability] = (),
    variants: Sequence[str] = (),
    xfail: str | None = None,
    venue_time: bool = False,
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated coroutine as the scenario of catalogue row ``id``.

    ``proves`` is the row's one-line claim (``orderlane conformance`` and its JSON show it);
    every registered row is expected to have one. A row that checks something else when the
    adapter declares ``client_order_id`` says what in ``proves_with_client_order_id`` and
    branches on :attr:`ScenarioRun.client_order_ids`; ``venue_time`` marks a row whose venue
    measures time (see :attr:`Scenario.venue_time`). The docs' scenario catalogue is generated
    from these texts.
    """

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if id in SCENARIOS:
            raise ValueError(f"scenario {id!r} is registered twice")
        SCENARIOS[id] = Scenario(
            id,
            function,
            frozenset(requires),
            tuple(variants),
            xfail,
            " ".join(proves.split()),
            " ".join(proves_with_client_order_id.split()),
            venue_time,
        )
        return function

    return register


def select_cases(ids: Iterable[str] | None = None, keyword: str | None = None) -> list[Case]:
    """The cases to run: all, or those named by scenario id (every variant) or by case id,
    narrowed to those whose case id matches the ``-k`` expression ``keyword``.

    Raises :class:`ConfigurationError` for an unknown id, an expression that does not parse, or
    an expression that matches no case (a typo must not pass as an empty, green run).
    """
    every = [case for registered in SCENARIOS.values() for case in registered.cases()]
    chosen = every
    if ids is not None:
        wanted = list(ids)
        known = {case.id for case in every} | set(SCENARIOS)
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise ConfigurationError(
                f"unknown conformance scenario {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(SCENARIOS)}"
            )
        chosen = [case for case in every if case.id in wanted or case.scenario.id in wanted]
    if keyword is not None:
        matches = keyword_matcher(keyword)
        chosen = [case for case in chosen if matches(case.id)]
        if not chosen:
            raise ConfigurationError(f"no conformance scenario matches -k {keyword!r}")
    return chosen


# ---------------------------------------------------------------- -k expressions

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = frozenset({"and", "or", "not"})

Matcher = Callable[[str], bool]


def keyword_matcher(expression: str) -> Matcher:
    """A predicate over case ids for a pytest-style ``-k`` expression.

    A word matches an id that contains it, ignoring case; words combine with ``and``, ``or``,
    ``not`` and parentheses (``not`` binds tightest, then ``and``). So ``-k seed`` selects the
    seed's rows, ``-k "cancel and not races"`` the cancels but the race.
    """
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise ConfigurationError("the -k expression is empty")
    parser = _Parser(expression, iter(tokens))
    matcher = parser.any_of()
    if parser.current is not None:
        parser.fail(f"unexpected {parser.current!r}")
    return matcher


class _Parser:
    """Recursive descent over the words and operators: ``any_of := all_of (or all_of)*``,
    ``all_of := term (and term)*``, ``term := not term | ( any_of ) | word``."""

    def __init__(self, expression: str, items: Iterator[str]) -> None:
        self.expression = expression
        self.items = items
        self.current: str | None = next(items, None)

    def fail(self, problem: str) -> NoReturn:
        raise ConfigurationError(f"invalid -k expression {self.expression!r}: {problem}")

    def take(self) -> str:
        item = self.current
        if item is None:
            self.fail("it ends too early")
        self.current = next(self.items, None)
        return item

    def any_of(self) -> Matcher:
        options = [self.all_of()]
        while self.current == "or":
            self.take()
            options.append(self.all_of())
        return options[0] if len(options) == 1 else lambda id: any(m(id) for m in options)

    def all_of(self) -> Matcher:
        parts = [self.term()]
        while self.current == "and":
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else lambda id: all(m(id) for m in parts)

    def term(self) -> Matcher:
        item = self.take()
        if item == "not":
            negated = self.term()
            return lambda id: not negated(id)
        if item == "(":
            inner = self.any_of()
            if self.take() != ")":
                self.fail("a parenthesis is not closed")
            return inner
        if item == ")" or item in _OPERATORS:
            self.fail(f"unexpected {item!r}")
        word = item.lower()
        return lambda id: word in id.lower()
