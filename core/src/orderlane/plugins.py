"""Finding and loading plugins: one adapter per engine, any number of observers.

Adapters are published under the entry-point group ``orderlane.adapters``: the entry point names a
factory that takes the adapter's options (a mapping) and returns the plugin object whose
``orderlane_*`` methods carry the :data:`~orderlane.hookspecs.hookimpl` marker. Factories do no
I/O; connecting happens in ``orderlane_adapter_start``. Observer plugins come from the group
``orderlane.plugins`` and from objects the user registers. Entry points are read when an engine
is built, never at import. Commands that other distributions add to the ``orderlane`` command line
are published under ``orderlane.commands`` (see :mod:`orderlane.cli.plugins`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs
import pluggy

from orderlane import hookspecs
from orderlane.contract import describe_error, redact
from orderlane.errors import ConfigurationError, OrderlaneError

__all__ = [
    "ADAPTER_GROUP",
    "COMMAND_GROUP",
    "HARNESS_GROUP",
    "PLUGIN_GROUP",
    "AdapterEntry",
    "installed_adapters",
    "installed_commands",
    "load_adapter",
    "load_entry_point_plugins",
    "make_plugin_manager",
]

ADAPTER_GROUP = "orderlane.adapters"
PLUGIN_GROUP = "orderlane.plugins"
HARNESS_GROUP = "orderlane.harnesses"
COMMAND_GROUP = "orderlane.commands"

log = logging.getLogger("orderlane.plugins")


@attrs.frozen
class AdapterEntry:
    """An installed adapter, as its entry point declares it."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    entry_point: EntryPoint = attrs.field(repr=False, eq=False)

    def create(self, options: Mapping[str, Any] | None = None) -> object:
        factory = self.entry_point.load()
        if not callable(factory):
            raise ConfigurationError(
                f"adapter entry point {self.name!r} ({self.value}) is not a factory callable"
            )
        given = dict(options or {})
        try:
            return factory(given)
        except OrderlaneError:
            raise
        except Exception as error:
            # A factory that let a ValueError or TypeError through: a message, not a traceback,
            # and no option value in it (which options are secret is not known yet).
            raise ConfigurationError(
                f"adapter {self.name!r} refused its options: {redact(describe_error(error), given)}"
            ) from None


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _entries(group: str) -> dict[str, AdapterEntry]:
    found: dict[str, AdapterEntry] = {}
    for ep in entry_points(group=group):
        dist = ep.dist
        found[ep.name] = AdapterEntry(
            name=ep.name,
            value=ep.value,
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
            entry_point=ep,
        )
    return found


def installed_adapters() -> dict[str, AdapterEntry]:
    """Every adapter installed in this environment, by entry-point name."""
    return _entries(ADAPTER_GROUP)


def installed_harnesses() -> dict[str, AdapterEntry]:
    """Every conformance harness installed, by the name of the adapter it drives."""
    return _entries(HARNESS_GROUP)


def installed_commands() -> dict[str, AdapterEntry]:
    """Every command that an installed distribution adds to ``orderlane``, by command name."""
    return _entries(COMMAND_GROUP)


def load_adapter(name: str, options: Mapping[str, Any] | None = None) -> object:
    """Build the adapter plugin named ``name``; :class:`ConfigurationError` if none is installed."""
    adapters = installed_adapters()
    entry = adapters.get(name)
    if entry is None:
        installed = ", ".join(sorted(adapters)) or "none"
        raise ConfigurationError(
            f"no orderlane adapter named {name!r} is installed (installed: {installed}). "
            "Install the adapter's package, e.g. pip install orderlane-mock."
        )
    return entry.create(options)


def load_entry_point_plugins(pm: pluggy.PluginManager) -> list[str]:
    """Register every observer plugin published under ``orderlane.plugins``."""
    names = []
    for ep in entry_points(group=PLUGIN_GROUP):
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as error:
            raise ConfigurationError(
                f"plugin {ep.name!r} ({ep.value}) failed to load: {error}"
            ) from error
        pm.register(plugin, name=ep.name)
        names.append(ep.name)
    return names
