"""Commands that installed distributions add to ``orderlane`` (entry points orderlane.commands).

Each test installs a small distribution of its own (a ``*.dist-info`` directory and its module on
the path, as pip leaves them) and reads the command line back through typer, or runs the real
``orderlane`` script.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orderlane.cli.plugins import PLUGIN_PANEL, add_plugin_commands

PLUGIN = '''
from typing import Annotated

import typer


def hello(name: Annotated[str, typer.Option("--name", help="Whom to greet.")] = "world") -> None:
    """Greet someone (a command from a plugin)."""
    typer.echo(f"hello {name}")


venue = typer.Typer(help="A fake venue.")


@venue.callback()
def _venue() -> None:
    """A fake venue (a command group from a plugin)."""


@venue.command()
def serve(port: int = 0) -> None:
    """Serve the fake venue."""
    typer.echo(f"serving on {port}")


not_a_command = 42
'''

ENTRY_POINTS = """[orderlane.commands]
hello = greeter_plugin:hello
fake-venue = greeter_plugin:venue
broken = greeter_plugin_missing:command
strange = greeter_plugin:not_a_command
orders = greeter_plugin:hello
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution ``greeter-plugin`` installed on the path with five command entry points."""
    site = tmp_path / "site"
    info = site / "greeter_plugin-0.3.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: greeter-plugin\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "greeter_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "greeter_plugin", raising=False)
    return site


def own_app() -> typer.Typer:
    """An app with commands of its own, as orderlane's is."""
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def orders() -> None:
        """The app's own orders command."""
        typer.echo("own orders")

    @app.command("version")
    def _version() -> None:
        typer.echo("1.0")

    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("plugin_site")
def test_a_function_becomes_a_command_and_a_typer_a_group() -> None:
    app = own_app()

    added = add_plugin_commands(app)

    # Distributions installed in the environment (orderlane-kis, say) add theirs too.
    ours = {line.split(" = ")[0] for line in ENTRY_POINTS.splitlines()[1:]}
    assert [name for name in added if name in ours] == ["broken", "fake-venue", "hello", "strange"]
    assert invoke(app, "hello", "--name", "trader")[:2] == (0, "hello trader\n")
    assert invoke(app, "fake-venue", "serve", "--port", "8123")[:2] == (0, "serving on 8123\n")
    code, out, _ = invoke(app, "--help")
    assert code == 0
    assert PLUGIN_PANEL in out
    assert "Greet someone (a command from a plugin)." in out
    assert "A fake venue" in out


@pytest.mark.usefixtures("plugin_site")
def test_a_plugin_never_replaces_a_command_of_orderlane(caplog: pytest.LogCaptureFixture) -> None:
    app = own_app()

    with caplog.at_level(logging.WARNING, logger="orderlane.cli"):
        add_plugin_commands(app)

    assert invoke(app, "orders")[:2] == (0, "own orders\n")
    assert "the command 'orders' from greeter-plugin 0.3.0 is not added" in caplog.text


@pytest.mark.usefixtures("plugin_site")
def test_a_plugin_that_cannot_load_says_why_and_leaves_the_others_alone() -> None:
    app = own_app()
    add_plugin_commands(app)

    code, out, err = invoke(app, "broken", "--any", "option")
    assert code == 1
    assert out == ""
    assert "the command 'broken' from greeter-plugin 0.3.0 cannot run" in err
    assert "ModuleNotFoundError" in err

    code, _, err = invoke(app, "strange")
    assert code == 1
    assert "greeter_plugin:not_a_command is neither a function nor a typer.Typer" in err

    assert invoke(app, "hello")[:2] == (0, "hello world\n")
    _, listing, _ = invoke(app, "--help")
    assert "(cannot be loaded: ModuleNotFoundError" in listing


@pytest.mark.usefixtures("plugin_site")
def test_adding_again_adds_nothing() -> None:
    app = own_app()

    assert add_plugin_commands(app)
    assert add_plugin_commands(app) == []
    assert invoke(app, "hello")[:2] == (0, "hello world\n")


def test_the_orderlane_script_runs_plugin_commands(plugin_site: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(plugin_site), "COLUMNS": "160"}
    command = [sys.executable, "-m", "orderlane"]

    ran = subprocess.run(
        [*command, "hello", "--name", "desk"], env=environment, capture_output=True, text=True
    )
    listed = subprocess.run([*command, "--help"], env=environment, capture_output=True, text=True)
    own = subprocess.run([*command, "orders", "--help"], env=environment, capture_output=True)

    assert (ran.returncode, ran.stdout) == (0, "hello desk\n"), ran.stderr
    assert PLUGIN_PANEL in listed.stdout
    assert "fake-venue" in listed.stdout
    assert own.returncode == 0
    assert b"Show the newest orders in the journal." in own.stdout
    assert "'orders' from greeter-plugin 0.3.0 is not added" in listed.stderr
