"""Shared fixtures: a loopback-only network, journal databases (SQLite and PostgreSQL), engines.

PostgreSQL tests use ORDERLANE_TEST_POSTGRES_URL (default: the local server, database ``test``),
in a database of their own that they create. Redis tests use ORDERLANE_TEST_REDIS_URL (default:
the local server, database 0), under a key prefix of their own that they delete. Under CI=true a
missing server fails the run; elsewhere those tests are skipped with a message saying how to
start it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orderlane import Engine, FakeClock
from orderlane_mock import MockVenue

# The adapters' test packages (kis, loopback) as pytest puts them on the path when it collects
# them: tests elsewhere import their helpers, also when run on their own (pytest tests/core).
_ADAPTER_TESTS = str(Path(__file__).resolve().parent / "adapters")
if _ADAPTER_TESTS not in sys.path:
    sys.path.insert(0, _ADAPTER_TESTS)

POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# One database per test run (process), so runs side by side never drop each other's tables.
POSTGRES_DATABASE = f"orderlane_test_{os.getpid()}"
START_POSTGRES = (
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(or set ORDERLANE_TEST_POSTGRES_URL to a server you can use)"
)

# ------------------------------------------------------------------ loopback only


class NonLoopbackConnection(RuntimeError):
    pass


def _check_address(address: Any) -> None:
    if isinstance(address, (str, bytes)):  # AF_UNIX socket paths are local
        return
    host = address[0]
    if host in ("localhost", ""):
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise NonLoopbackConnection(f"tests may only connect to loopback, not {host!r}") from None
    if not ip.is_loopback:
        raise NonLoopbackConnection(f"tests may only connect to loopback, not {host}")


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Fail any test that opens a connection outside loopback (no real broker, ever)."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


# ------------------------------------------------------------------ databases


def _postgres_available() -> str | None:
    """The test database URL, created fresh for this session; None if the server is down."""
    import sqlalchemy as sa

    admin_url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg")
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": POSTGRES_DATABASE},
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{POSTGRES_DATABASE}"'))
        admin.dispose()
    except Exception:
        return None
    return admin_url.set(database=POSTGRES_DATABASE).render_as_string(hide_password=False)


def _drop_postgres_database() -> None:
    import sqlalchemy as sa

    admin_url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{POSTGRES_DATABASE}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = _postgres_available()
    if url is None:
        message = (
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; start it with {START_POSTGRES}"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield url
    _drop_postgres_database()


def reset_postgres(url: str) -> None:
    """Drop and recreate the public schema: an empty database again."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """An empty PostgreSQL database (the schema is dropped and made anew)."""
    reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


# ------------------------------------------------------------------ redis

REDIS_URL = os.environ.get("ORDERLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 "
    "(or set ORDERLANE_TEST_REDIS_URL to a server you can use)"
)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL; the test is skipped (failed under CI=true) if it does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, OSError):
        message = f"Redis is not reachable at {REDIS_URL}; start it with {START_REDIS}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"orderlane-test:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


# ------------------------------------------------------------------ engines


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def venue() -> MockVenue:
    return MockVenue()


@pytest.fixture
async def engine(venue: MockVenue, clock: FakeClock, sqlite_url: str) -> AsyncIterator[Engine]:
    """An engine on the mock venue, a fresh SQLite journal and fake time."""
    async with Engine.open(
        "mock", adapter_options={"venue": venue}, clock=clock, database_url=sqlite_url
    ) as opened:
        yield opened


# ------------------------------------------------------------------ the command line


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke the ``orderlane`` app in process, with no journal URL leaking in from the
    environment."""
    from typer.testing import CliRunner, Result

    from orderlane.cli import app

    monkeypatch.delenv("ORDERLANE_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"COLUMNS": "120"})

    return invoke
