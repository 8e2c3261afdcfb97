"""Older home of the ``conformance`` command and of console and option helpers now in
:mod:`orderlane.cli.common`, kept so that code importing them from here keeps working."""

from orderlane.cli.common import MAX_COUNT, finite, stdout_console
from orderlane.cli.conformance import conformance

__all__ = ["MAX_COUNT", "conformance", "finite", "stdout_console"]
