"""The engine's settings: :class:`EngineConfig` (importable from :mod:`orderlane.engine` too),
each checked when it is built.

Every part of the engine reads the settings it needs from here, so none needs the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from orderlane.contract import Operation, RateLimit, RetryConfig
from orderlane.errors import ConfigurationError, InvalidSignalError
from orderlane.journal.url import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from orderlane.limiter import DEFAULT_LIMITER
from orderlane.model import MAX_ID_LENGTH, check_text

__all__ = ["EngineConfig"]

MAX_ACCOUNT_LENGTH = 64


def _check_number(
    name: str, value: object, *, least: float, above: bool = False, optional: bool = False
) -> None:
    """Refuse ``value`` for the setting ``name`` unless it is a finite number of at least
    ``least`` (above it, with ``above``), or None where ``optional``."""
    if value is None and optional:
        return
    bound = f"above {least:g}" if above else f"at least {least:g}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        assert isinstance(value, (int, float))
        ok = math.isfinite(value) and (value > least if above else value >= least)
    if not ok:
        none = " or None" if optional else ""
        raise ConfigurationError(
            f"EngineConfig.{name} must be a number of seconds {bound}{none}, got {value!r}"
        )


def _seconds(least: float, *, above: bool = False, optional: bool = False) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_number(attribute.name, value, least=least, above=above, optional=optional)

    return check


def _flag(*, optional: bool = False) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bool) and not (optional and value is None):
            what = "True, False or None" if optional else "True or False"
            raise ConfigurationError(f"EngineConfig.{attribute.name} must be {what}, got {value!r}")

    return check


def _check_rate_limits(_instance: object, _attribute: object, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(isinstance(each, RateLimit) for each in value):
        raise ConfigurationError(
            f"EngineConfig.rate_limits must be None or a tuple of RateLimit, got {value!r}"
        )


def _check_margin(_instance: object, _attribute: object, value: Any) -> None:
    _check_number("rate_limit_margin", value, least=0)
    assert isinstance(value, (int, float))
    if value > 1:
        raise ConfigurationError(
            f"EngineConfig.rate_limit_margin is a fraction from 0 to 1, got {value!r}"
        )


def _check_retry(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(key, Operation) and isinstance(each, RetryConfig) for key, each in value.items()
    ):
        raise ConfigurationError(
            "EngineConfig.retry must map Operation to RetryConfig, e.g. "
            "{Operation.PLACE: RetryConfig(max_attempts=5)}"
        )


def _check_credential_key(_instance: object, _attribute: object, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigurationError("EngineConfig.credential_key must be a non-empty string or None")
    try:
        check_text(value, "EngineConfig.credential_key", MAX_ID_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None


def _check_limiter_name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"EngineConfig.rate_limiter names a limiter plugin ({DEFAULT_LIMITER!r}, 'redis'...), "
            f"got {value!r}"
        )
    try:
        check_text(value, "EngineConfig.rate_limiter", MAX_ID_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None


def _check_limiter_options(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigurationError(
            "EngineConfig.rate_limiter_options is a mapping of option names to values"
        )


#: Floors of the intervals that set how often the engine wakes: below them the engine would
#: spin (a poll interval of 0 is a busy loop) or hammer the database with heartbeats.
MIN_INTERVAL = 0.01
#: The heartbeat is refreshed three times per lease: 0.3 s is ten fsync'd writes a second.
MIN_ENGINE_LEASE = 0.3


@attrs.frozen
class EngineConfig:
    """Settings of one engine. Every field has a default that works out of the box.

    Checked when built: a setting of the wrong type or outside its range raises
    :class:`~orderlane.errors.ConfigurationError` naming the field and its range.
    """

    #: The broker account this engine trades for; orders and positions are kept per account.
    #: A label of yours (at most 64 printable characters), not the broker's account number: it
    #: is stored in every order and event.
    account_id: str = attrs.field(default="default", validator=lambda _i, _a, v: _check_account(v))
    #: Journal database URL; None means ``ORDERLANE_DATABASE_URL`` or ``./orderlane.db``.
    database_url: str | None = attrs.field(default=None, repr=False)  # may hold a password
    #: SQLite durability: FULL (default) syncs each commit before the order is sent.
    sqlite_synchronous: str = attrs.field(default="FULL")
    #: Create the journal (SQLite file, schema) when there is none. False: a missing journal is
    #: an error, as for commands that only settle orders (``orderlane recover``, ``resolve``).
    create_journal: bool = attrs.field(default=True, validator=_flag())
    #: PostgreSQL: seconds to wait for the server to accept a session (whole seconds, at least
    #: 2) before opening the engine fails, unless the URL sets ``connect_timeout`` itself.
    database_connect_timeout: float = attrs.field(
        default=DEFAULT_CONNECT_TIMEOUT, validator=_seconds(0, above=True)
    )
    #: PostgreSQL: seconds one statement may run or wait for a lock before the server cancels
    #: it (the write fails with a JournalError); None: no limit.
    database_statement_timeout: float | None = attrs.field(
        default=DEFAULT_STATEMENT_TIMEOUT, validator=_seconds(0, above=True, optional=True)
    )
    #: Retry policy per operation; operations not named use the seed's default (3 x, 1 s, 2 s).
    retry: Mapping[Operation, RetryConfig] = attrs.field(factory=dict, validator=_check_retry)
    #: Load observer plugins published under the ``orderlane.plugins`` entry-point group.
    load_entry_point_plugins: bool = attrs.field(default=True, validator=_flag())
    #: Broker request limits; None means what the adapter declares (``orderlane_rate_limits``).
    rate_limits: tuple[RateLimit, ...] | None = attrs.field(
        default=None, validator=_check_rate_limits
    )
    #: Each limit's window is counted this fraction longer, for the time from grant to arrival
    #: (0 to 1).
    rate_limit_margin: float = attrs.field(default=0.02, validator=_check_margin)
    #: Key of the limiter shared by engines on one broker credential; None: adapter + account.
    credential_key: str | None = attrs.field(default=None, validator=_check_credential_key)
    #: Which limiter counts the credential's requests, by the name its plugin answers to:
    #: ``"in-process"`` (the core's, shared by the engines of one process) or a plugin's, such
    #: as ``"redis"`` (``pip install orderlane-redis``: shared by every process on the key).
    rate_limiter: str = attrs.field(default=DEFAULT_LIMITER, validator=_check_limiter_name)
    #: Options for that limiter's plugin (``{"url": "redis://..."}``); may hold a password.
    rate_limiter_options: Mapping[str, Any] = attrs.field(
        factory=dict, repr=False, validator=_check_limiter_options
    )
    #: How long a new order may wait behind an UNKNOWN order for the same instrument (>= 0).
    instrument_hold_timeout: float = attrs.field(default=30.0, validator=_seconds(0))
    #: How often a held order checks whether its instrument is free again (>= 0.01).
    instrument_hold_poll: float = attrs.field(default=0.5, validator=_seconds(MIN_INTERVAL))
    #: Seconds between poll cycles: statuses, timeouts, lookups of unplaced UNKNOWN orders
    #: (>= 0.01).
    poll_interval: float = attrs.field(default=0.5, validator=_seconds(MIN_INTERVAL))
    #: An order still open this many seconds after submission is cancelled and ends FAILED (> 0).
    order_timeout: float = attrs.field(default=300.0, validator=_seconds(0, above=True))
    #: With push updates, the broker is still asked for statuses this often, to be safe
    #: (>= 0.01).
    push_safety_interval: float = attrs.field(default=30.0, validator=_seconds(MIN_INTERVAL))
    #: How often an UNKNOWN order the broker could not place yet is looked up again (>= 0.01).
    lookup_interval: float = attrs.field(default=5.0, validator=_seconds(MIN_INTERVAL))
    #: How long an order that ended with quantity left (FAILED on timeout, CANCELLED) is still
    #: asked about, so an execution the broker reports late is booked. None: until the venue's
    #: trading day ends (midnight in the adapter's timezone).
    late_fill_window: float | None = attrs.field(default=None, validator=_seconds(0, optional=True))
    #: How often those orders join the status inquiry (>= 0.01).
    late_fill_poll_interval: float = attrs.field(default=5.0, validator=_seconds(MIN_INTERVAL))
    #: How long a pushed update for a broker id not stored yet is held for its place answer.
    early_update_hold: float = attrs.field(default=10.0, validator=_seconds(0))
    #: On start, send again an order the engine was sending when it stopped, if the broker
    #: confirms it never got it. Off: such an order ends FAILED "not sent".
    resubmit_after_crash: bool = attrs.field(default=False, validator=_flag())
    #: Reconcile the journal's open orders with the broker on start, before any signal.
    recover_on_start: bool = attrs.field(default=True, validator=_flag())
    #: Seconds an engine's heartbeat stays valid (>= 0.3). Recovery leaves alone the orders
    #: another engine with a live heartbeat is sending, and waits up to this long after a crash
    #: for the dead engine's heartbeat to lapse before settling its orders.
    engine_lease: float = attrs.field(default=15.0, validator=_seconds(MIN_ENGINE_LEASE))
    #: Run the tracker in the background. None: yes, unless the clock is a FakeClock (tests
    #: then drive it with ``await engine.tracker.poll_once()``).
    track: bool | None = attrs.field(default=None, validator=_flag(optional=True))

    @sqlite_synchronous.validator
    def _check_synchronous(self, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or value.upper() not in {"FULL", "EXTRA", "NORMAL"}:
            raise ConfigurationError(
                f"EngineConfig.sqlite_synchronous must be FULL, EXTRA or NORMAL, got {value!r}"
            )

    @database_url.validator
    def _check_url(self, _attribute: object, value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(
                f"EngineConfig.database_url must be a URL string or None, "
                f"got {type(value).__name__}"
            )


def _check_account(value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_ACCOUNT_LENGTH:
        raise ConfigurationError(
            f"account_id must be a non-empty label of at most {MAX_ACCOUNT_LENGTH} characters, "
            f"got {value!r}"
        )
    try:
        check_text(value, "account_id", MAX_ACCOUNT_LENGTH)
    except InvalidSignalError as error:
        raise ConfigurationError(str(error)) from None
