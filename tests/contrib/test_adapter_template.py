"""contrib/adapter-template: a package outside core that adopts the conformance kit.

In process, the template's modules are put on the path with an entry-point declaration of their
own (a ``*.dist-info`` directory, as an installed distribution has), so the engine and the
runner find them by name exactly as they find an installed adapter. The slow test installs core
and the template into a fresh virtual environment and runs ``orderlane conformance`` there.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderlane import AdapterInfo, Capability, Engine, hookimpl
from orderlane.errors import ConfigurationError
from orderlane.testing import Outcome, run_conformance, select_cases

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "contrib" / "adapter-template"
PACKAGE = "orderlane_adapter_template"

ENTRY_POINTS = f"""\
[orderlane.adapters]
template = {PACKAGE}.adapter:create_adapter

[orderlane.harnesses]
template = {PACKAGE}.harness:create_harness
"""


@pytest.fixture
def template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The template's adapter module, importable and published under its entry points."""
    info = tmp_path / "site" / f"{PACKAGE}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: orderlane-adapter-template\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(TEMPLATE / "src"))
    yield importlib.import_module(f"{PACKAGE}.adapter")
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def implemented_hooks(cls: type) -> set[str]:
    return {name for name in vars(cls) if name.startswith("orderlane_")}


async def test_the_template_passes_the_suite_as_it_is(template: Any) -> None:
    results = await run_conformance("template")

    assert [result.id for result in results] == [case.id for case in select_cases()]
    failed = [(result.id, result.reason) for result in results if result.outcome is Outcome.FAILED]
    assert failed == []
    skipped = [result for result in results if result.outcome is Outcome.SKIPPED]
    assert all("needs the capability" in result.reason for result in skipped)
    assert len(skipped) < len(results) / 4, "most rows run: the template implements the hooks"


#: For each hook the template implements, a scenario that fails without it.
WITHOUT_HOOK = {
    "orderlane_adapter_info": "seed-happy-path",
    "orderlane_place_order": "seed-happy-path",
    "orderlane_order_status": "unknown-order-status",
    "orderlane_order_statuses": "seed-happy-path",
    "orderlane_cancel_order": "cancel-open-order",
    "orderlane_lookup_order": "ambiguous-accepted",
    "orderlane_lookup_orders": "batch-lookup",
    "orderlane_rate_limits": "rate-limit-burst",
}


def test_every_hook_of_the_template_is_checked_below(template: Any) -> None:
    assert implemented_hooks(template.TemplateAdapter) == set(WITHOUT_HOOK)


@pytest.mark.parametrize(("hook", "row"), sorted(WITHOUT_HOOK.items()))
async def test_a_missing_hook_fails_a_scenario_that_names_it(
    template: Any, monkeypatch: pytest.MonkeyPatch, hook: str, row: str
) -> None:
    monkeypatch.delattr(template.TemplateAdapter, hook)

    results = await run_conformance("template", [row])

    assert results, f"no case ran for {row}"
    for result in results:
        assert result.outcome is Outcome.FAILED, result.id
        assert hook in result.reason, result.reason


@pytest.mark.parametrize(
    ("capability", "hook"),
    [
        (Capability.CANCEL, "orderlane_cancel_order"),
        (Capability.LOOKUP, "orderlane_lookup_order"),
        (Capability.BATCH_STATUS, "orderlane_order_statuses"),
        (Capability.PUSH, "orderlane_order_updates"),
    ],
)
def test_the_engine_refuses_a_capability_without_its_hook(
    template: Any, monkeypatch: pytest.MonkeyPatch, capability: Capability, hook: str
) -> None:
    class Declares(template.TemplateAdapter):  # type: ignore[misc]
        @hookimpl
        def orderlane_adapter_info(self) -> AdapterInfo:
            info: AdapterInfo = super().orderlane_adapter_info()
            return attrs.evolve(info, capabilities=info.capabilities | {capability})

    if hook in implemented_hooks(template.TemplateAdapter):
        monkeypatch.delattr(template.TemplateAdapter, hook)

    with pytest.raises(ConfigurationError) as raised:
        Engine(Declares(template.TemplateVenue()))
    assert str(raised.value) == (
        f"adapter 'template' declares capability {capability.value!r} but does not implement {hook}"
    )


def test_the_template_refuses_options_it_does_not_know(template: Any) -> None:
    harness = importlib.import_module(f"{PACKAGE}.harness")

    with pytest.raises(ConfigurationError, match="unknown template adapter options"):
        template.create_adapter({"venu": None})
    with pytest.raises(ConfigurationError, match="must be a TemplateVenue"):
        template.create_adapter({"venue": "127.0.0.1:9000"})
    with pytest.raises(ConfigurationError, match="takes no options"):
        harness.create_harness({"quote": 1})


# ------------------------------------------------------------------ a fresh environment


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_template_installs_and_conforms_in_a_fresh_environment(tmp_path: Path) -> None:
    # The copy is what an author starts from; building from it leaves the repository untouched.
    project = tmp_path / "adapter-template"
    shutil.copytree(TEMPLATE, project, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not name.startswith("COV_CORE")  # coverage of this run stays out of the new one
    }
    env |= {"PIP_CACHE_DIR": str(tmp_path / "pip-cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"

    run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python = bin_dir / "python"
    # orderlane first, from a wheel built from the checkout, as the guide says; then the adapter.
    dist = tmp_path / "dist"
    run(
        [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT / "core"],
        tmp_path,
        env,
    )
    [wheel] = dist.glob("orderlane-*.whl")
    run([python, "-m", "pip", "install", "--quiet", wheel], tmp_path, env)
    run([python, "-m", "pip", "install", "--quiet", f"{project}[test]"], tmp_path, env)

    imported = (
        "import orderlane as o, orderlane_adapter_template as t; print(o.__file__, t.__file__)"
    )
    where = run([python, "-c", imported], tmp_path, env).split()
    assert all(path.startswith(str(venv)) for path in where), f"not the fresh environment: {where}"
    adapters = {
        row["name"]: row
        for row in json.loads(run([bin_dir / "orderlane", "adapters", "--json"], tmp_path, env))
    }
    assert set(adapters) == {"template"}, "only what was installed is found"
    assert adapters["template"]["distribution"] == "orderlane-adapter-template"

    report = json.loads(
        run([bin_dir / "orderlane", "conformance", "template", "--json"], tmp_path, env)
    )
    assert report["adapter"] == "template"
    assert report["failed"] == 0, [row for row in report["scenarios"] if row["outcome"] == "failed"]
    ids = [row["id"] for row in report["scenarios"]]
    assert ids == [case.id for case in select_cases()]
    assert report["passed"] + report["skipped"] == len(ids)
    assert all(row["proves"] for row in report["scenarios"])

    # The template's own tests: the suite through the pytest plugin, as its author runs it.
    tests = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)
    assert f"{report['passed']} passed" in tests
