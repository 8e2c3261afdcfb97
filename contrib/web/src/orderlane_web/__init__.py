"""orderlane-web: a read-only dashboard for an orderlane journal (``orderlane web``).

:func:`create_app` builds the Starlette application over an open
:class:`~orderlane.journal.reader.JournalReader`; :func:`serve` runs it under uvicorn after
checking the address it binds. The command line is :func:`orderlane_web.cli.web`, found by
``orderlane`` through the ``orderlane.commands`` entry point.
"""

from __future__ import annotations

from orderlane_web.app import create_app
from orderlane_web.security import check_bind, is_loopback
from orderlane_web.server import serve

__all__ = ["check_bind", "create_app", "is_loopback", "serve"]
