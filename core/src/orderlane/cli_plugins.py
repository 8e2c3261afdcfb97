"""Older home of :mod:`orderlane.cli.plugins`, kept so that code importing from here keeps
working."""

from orderlane.cli.plugins import PLUGIN_PANEL, add_plugin_commands

__all__ = ["PLUGIN_PANEL", "add_plugin_commands"]
