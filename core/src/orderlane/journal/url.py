"""The journal's address: which database a URL names, how it is shown, how to reach it.

:func:`resolve_database_url` picks and checks the URL (SQLite files and PostgreSQL only),
:func:`safe_url` masks its secrets for logs and errors, :func:`postgres_connect_args` turns the
timeouts into psycopg's connection arguments, and :func:`cannot_connect` says what to check when
the database does not answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from orderlane.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_STATEMENT_TIMEOUT",
    "DatabaseAddress",
    "cannot_connect",
    "postgres_connect_args",
    "resolve_database_url",
    "safe_url",
]

DEFAULT_DATABASE_URL = "sqlite:///orderlane.db"
#: Seconds to wait for a PostgreSQL server to accept a session (libpq counts whole seconds).
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds one PostgreSQL statement may run (or wait for a lock) before the server cancels it.
DEFAULT_STATEMENT_TIMEOUT = 60.0


def resolve_database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``ORDERLANE_DATABASE_URL``, else ``./orderlane.db``.

    PostgreSQL URLs are driven by psycopg 3 from the journal's writer thread, whatever driver
    they name (``postgresql://``, ``postgresql+asyncpg://`` and ``postgresql+psycopg://`` all work).
    A SQLite journal is a file written by the standard library's sqlite3: an in-memory database
    (it would vanish with the process) and drivers that write another file format (an
    encrypting one such as pysqlcipher) are refused rather than quietly replaced.
    """
    chosen = url or os.environ.get("ORDERLANE_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        parsed = sa.engine.make_url(chosen)
    except sa.exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {error}") from None
    except ValueError:  # SQLAlchemy reads the port with int()
        raise ConfigurationError(
            "not a database URL: its port is not a number (postgresql://user@host:5432/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite_url(parsed)
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigurationError(
        f"unsupported database {backend!r}: orderlane's journal runs on SQLite or PostgreSQL"
    )


#: SQLite drivers that write the plain file format the standard library's sqlite3 writes.
_PLAIN_SQLITE_DRIVERS = frozenset({"sqlite", "pysqlite", "aiosqlite"})


def _check_sqlite_url(parsed: sa.engine.URL) -> None:
    driver = parsed.drivername.partition("+")[2] or "sqlite"
    if driver not in _PLAIN_SQLITE_DRIVERS:
        raise ConfigurationError(
            f"the SQLite driver {driver!r} is not supported: orderlane writes its journal as a "
            "plain SQLite file with the standard library's sqlite3, so the file would not be "
            "what that driver promises (an encrypting driver's file would not be encrypted). "
            "Use sqlite:///PATH, and protect the file with file permissions and disk encryption."
        )
    if parsed.host:
        raise ConfigurationError(
            f"{parsed.render_as_string(hide_password=True)!r} names a host, not a file: a SQLite "
            "URL has three slashes before a relative path (sqlite:///orderlane.db) and four "
            "before an absolute one (sqlite:////var/lib/orderlane/orderlane.db)"
        )
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parsed.query.get("mode") == "memory"
    ):
        raise ConfigurationError(
            "an in-memory SQLite database (sqlite:// or :memory:) loses the journal when the "
            "process exits, and with it every order the broker holds: name a file, for example "
            "sqlite:///orderlane.db"
        )


def postgres_connect_args(
    url: sa.engine.URL,
    *,
    connect_timeout: float,
    statement_timeout: float | None,
    options: Sequence[str] = (),
) -> dict[str, Any]:
    """psycopg's connection arguments: the connect and statement timeouts (unless the URL sets
    them itself) and server ``options`` (``-c name=value``) added to the URL's own."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # libpq's unit is whole seconds, at least 2; without it psycopg waits 130 s.
        args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    given = url.query.get("options", "")
    settings = [given] if isinstance(given, str) and given else []
    if statement_timeout and "statement_timeout" not in " ".join(settings):
        settings.append(f"-c statement_timeout={max(1, round(statement_timeout * 1000))}")
    settings.extend(options)
    if settings:
        args["options"] = " ".join(settings)
    return args


def cannot_connect(
    url: str, error: BaseException, connect_timeout: float, *, doing: str = "open"
) -> str:
    """What to say when the database at ``url`` cannot be reached (to ``doing`` it)."""
    text = str(getattr(error, "orig", None) or error).strip()
    if "timeout" in text.lower() and sa.engine.make_url(url).get_backend_name() == "postgresql":
        parsed = sa.engine.make_url(url)
        wait = parsed.query.get("connect_timeout") or max(2, math.ceil(connect_timeout))
        return (
            f"cannot {doing} the journal database {safe_url(url)}: no answer within {wait} s "
            "(connect timeout). Check that a PostgreSQL server listens at that host and port "
            "and answers; to wait longer, add connect_timeout=SECONDS to the URL or set "
            "EngineConfig.database_connect_timeout"
        )
    return f"cannot {doing} the journal database {safe_url(url)}: {text}"


_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "sslpassword", "secret", "token"})


def safe_url(url: str | sa.engine.URL) -> str:
    """The URL for logs and errors: the password and secret-like query values masked."""
    parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(url)
    query = {
        key: "***" if key.lower() in _SECRET_QUERY_KEYS else value
        for key, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


class DatabaseAddress:
    """A database URL that keeps its password for connecting and never shows it: its repr and
    str are :func:`safe_url`'s, and it has no ``__dict__`` for ``vars()`` to list."""

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = sa.engine.make_url(url)

    @property
    def sa_url(self) -> sa.engine.URL:
        """The URL to connect with (password included): hand it to SQLAlchemy, never print it."""
        return self._url

    def __repr__(self) -> str:
        return safe_url(self._url)

    __str__ = __repr__
