"""Commands that other distributions add to the ``orderlane`` command line.

A distribution publishes a command under the entry-point group ``orderlane.commands``
(:data:`orderlane.plugins.COMMAND_GROUP`). The entry point's name is the command's name; what it
points to decides the command's shape:

- a function: one command whose typer parameters are its options and arguments
  (``orderlane web --port 8000``);
- a ``typer.Typer``: a group whose commands are subcommands (``orderlane fake-kis serve``).

:func:`add_plugin_commands` reads the entry points when the command line starts, never when
orderlane is imported, so a plugin's module is imported by ``orderlane`` runs only: it should
import its heavy dependencies inside the command. orderlane's own commands keep their names (a
plugin command with a taken name is left out, with a warning), and a plugin that fails to load
never takes the others down: its command is still listed and prints why it cannot run.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import typer
from rich.console import Console
from rich.text import Text

from orderlane.plugins import AdapterEntry, installed_commands

__all__ = ["PLUGIN_PANEL", "add_plugin_commands"]

log = logging.getLogger("orderlane.cli")

#: The heading plugin commands are listed under in ``orderlane --help``.
PLUGIN_PANEL = "Commands from installed plugins"

# The plugin commands already added to each app, so adding them again changes nothing.
_ADDED: weakref.WeakKeyDictionary[typer.Typer, set[str]] = weakref.WeakKeyDictionary()


def _own_names(app: typer.Typer, added: set[str]) -> set[str]:
    """The names of ``app``'s own commands and command groups (plugins' excluded)."""
    names = {info.name for info in app.registered_groups if info.name}
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        names.add(name.lower().replace("_", "-"))
    return names - added


def _origin(entry: AdapterEntry) -> str:
    if entry.distribution is None:
        return entry.value
    return f"{entry.distribution} {entry.version or ''}".strip()


def _unusable(entry: AdapterEntry, reason: str) -> Callable[..., None]:
    """A stand-in for a command that cannot be loaded: running it says why, and exits 1."""
    message = f"the command {entry.name!r} from {_origin(entry)} cannot run: {reason}"

    def unusable() -> None:
        Console(stderr=True).print(Text(f"Error: {message}", style="bold red"))
        raise typer.Exit(1)

    unusable.__doc__ = f"(cannot be loaded: {reason})"
    return unusable


def _register(app: typer.Typer, entry: AdapterEntry) -> None:
    try:
        command = entry.entry_point.load()
    except Exception as error:
        problem = f"{type(error).__name__}: {error}"
    else:
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=entry.name, rich_help_panel=PLUGIN_PANEL)
            return
        if callable(command):
            app.command(entry.name, rich_help_panel=PLUGIN_PANEL)(command)
            return
        problem = f"{entry.value} is neither a function nor a typer.Typer"
    # Whatever the user typed after the name, the answer is why the command cannot run.
    lenient = {"ignore_unknown_options": True, "allow_extra_args": True}
    app.command(entry.name, rich_help_panel=PLUGIN_PANEL, context_settings=lenient)(
        _unusable(entry, problem)
    )


def add_plugin_commands(app: typer.Typer) -> list[str]:
    """Add every installed plugin command to ``app``; return the names added by this call."""
    added = _ADDED.setdefault(app, set())
    own = _own_names(app, added)
    new: list[str] = []
    for name, entry in sorted(installed_commands().items()):
        if name in added:
            continue
        if name in own:
            log.warning(
                "the command %r from %s is not added: orderlane already has a command of that name",
                name,
                _origin(entry),
            )
            continue
        _register(app, entry)
        added.add(name)
        new.append(name)
    return new
