"""The conformance suite as pytest tests, for an adapter package's own test run.

An adapter adopts the whole catalogue with one test module::

    from orderlane.testing.plugin import test_conformance  # noqa: F401 - one test per catalogue id

    pytest_plugins = ["orderlane.testing.plugin"]
    conformance_adapter = "kis-paper"

The adapter is named by the module's ``conformance_adapter`` or, for a whole test run, by the ini
option ``orderlane_conformance_adapter`` (enable the plugin in the root ``conftest.py`` or with
``-p orderlane.testing.plugin`` for pytest to know that option). A module that needs a harness
its entry point cannot build defines its own ``conformance_harness`` fixture instead. The plugin
is never loaded into other pytest runs: only a module or conftest that names it enables it.

PYTEST_DONT_REWRITE: the modules that enable this plugin import from it first, and it asserts
nothing itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orderlane.testing.harness import VenueHarness
from orderlane.testing.runner import harness_factory, run_case
from orderlane.testing.scenarios import Case, ScenarioSkipped, select_cases

__all__ = ["conformance_harness", "test_conformance"]

INI_OPTION = "orderlane_conformance_adapter"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_OPTION, "the orderlane adapter whose conformance suite runs", default="")


@pytest.fixture
def conformance_harness(request: pytest.FixtureRequest) -> VenueHarness:
    """A fresh harness for the adapter named by the test module or the ini option."""
    name = getattr(request.module, "conformance_adapter", None) or request.config.getini(INI_OPTION)
    if not name:
        pytest.fail(
            "name the adapter under test: set conformance_adapter = 'NAME' in the test module, "
            f"set the ini option {INI_OPTION}, or define a conformance_harness fixture",
            pytrace=False,
        )
    return harness_factory(str(name))()


def _param(case: Case) -> object:
    marks = []
    if case.scenario.xfail is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=case.scenario.xfail))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("conformance_case", [_param(case) for case in select_cases()])
def test_conformance(
    conformance_case: Case, conformance_harness: VenueHarness, tmp_path: Path
) -> None:
    """One catalogue scenario against the adapter's venue, on its own loop and journal."""
    try:
        asyncio.run(run_case(conformance_case, conformance_harness, tmp_path))
    except ScenarioSkipped as skipped:
        pytest.skip(skipped.reason)
