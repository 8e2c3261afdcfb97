"""The code stays lint-clean, formatted and mypy --strict clean (run as part of the test suite)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["core", "adapters", "contrib", "tests"]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e './core[test]'")
    return found


@pytest.mark.quality
def test_ruff_lint() -> None:
    result = run(tool("ruff"), "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.quality
def test_ruff_format() -> None:
    result = run(tool("ruff"), "format", "--check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.quality
def test_mypy_strict() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.quality
def test_mypy_strict_adapter_template() -> None:
    """The adapter template is its own distribution with its own mypy configuration."""
    config = "contrib/adapter-template/pyproject.toml"
    result = run(sys.executable, "-m", "mypy", "--config-file", config)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.quality
def test_import_contracts() -> None:
    """Dependencies point one way (pyproject.toml [tool.importlinter]): no cycle, no reverse
    import between layers, no adapter imported by the core, no I/O library in the domain."""
    result = run(tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
