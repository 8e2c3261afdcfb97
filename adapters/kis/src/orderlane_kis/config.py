"""The KIS adapters' settings: from adapter options, environment variables or a config file.

Every setting can be given three ways, first found wins: an adapter option
(``Engine(adapter_options=...)`` or ``-o KEY=VALUE``), an environment variable
(``ORDERLANE_KIS_<KEY>``), or a TOML file named by the option ``config_file`` or the variable
``ORDERLANE_KIS_CONFIG`` (top-level keys, or a ``[kis]`` table). Credentials are checked when the
adapter starts, not when it is built, so an adapter can be listed and described without any.

Nothing here shows a secret: :class:`KisSettings` masks the account and keeps the keys out of
its repr.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from orderlane.errors import ConfigurationError

__all__ = [
    "ENV_PREFIX",
    "HOSTS",
    "PUBLIC_OPTIONS",
    "KisSettings",
    "Mode",
    "default_token_cache",
    "load_settings",
    "mask_account",
]

Mode = Literal["paper", "live"]
ENV_PREFIX = "ORDERLANE_KIS_"

#: KIS's hosts: (REST base URL, notice WebSocket URL) per mode.
HOSTS: dict[str, tuple[str, str]] = {
    "live": ("https://openapi.koreainvestment.com:9443", "ws://ops.koreainvestment.com:21000"),
    "paper": ("https://openapivts.koreainvestment.com:29443", "ws://ops.koreainvestment.com:31000"),
}
#: Requests per second KIS allows per app key (the safe side of what it announced).
DEFAULT_RATE: dict[str, int] = {"live": 18, "paper": 1}
#: Rows per page of the daily order inquiry.
PAGE_SIZE: dict[str, int] = {"live": 100, "paper": 15}

_ACCOUNT = re.compile(r"^(\d{8})-?(\d{2})$")
_KNOWN = (
    "app_key",
    "app_secret",
    "account",
    "hts_id",
    "config_file",
    "rest_url",
    "ws_url",
    "token_cache",
    "rate_limit",
    "rate_period",
    "token_interval",
    "timeout",
    "new_order_lag",
    "push",
    "live_trading",
)
_SECRET = frozenset({"app_key", "app_secret"})
#: Options whose values may appear in error messages; the others (keys, account, HTS id, the
#: live-trading opt-in, paths) are masked wherever orderlane shows or stores a message.
PUBLIC_OPTIONS = frozenset(
    {"rest_url", "ws_url", "rate_limit", "rate_period", "token_interval", "timeout"}
    | {"new_order_lag", "push"}
)


def default_token_cache() -> Path:
    """Where tokens are cached: ``$XDG_CACHE_HOME/orderlane/kis`` or ``~/.cache/orderlane/kis``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orderlane" / "kis"


def mask_account(account: str | None) -> str:
    """``12345678-01`` as ``12****78-01``: enough to tell accounts apart in a log."""
    if not account:
        return "(no account)"
    match = _ACCOUNT.match(account)
    if match is None:
        return "(malformed account)"
    number, product = match.groups()
    return f"{number[:2]}****{number[-2:]}-{product}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@attrs.frozen(repr=False)
class KisSettings:
    """What one KIS adapter needs; credentials may be missing until :meth:`require` runs."""

    mode: Mode
    rest_url: str
    ws_url: str
    app_key: str | None = None
    app_secret: str | None = None
    account: str | None = None
    hts_id: str | None = None
    token_cache: Path = attrs.field(factory=lambda: default_token_cache())
    rate_limit: int = 1
    rate_period: float = 1.0
    token_interval: float = 60.0
    timeout: float = 10.0
    new_order_lag: float = 2.0
    #: Order notices over WebSocket: None means on when an HTS id is configured.
    push: bool | None = None
    live_trading: str | None = None
    #: Where each credential came from (``option``, ``environment``, a file path), for errors.
    sources: Mapping[str, str] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return (
            f"KisSettings(mode={self.mode!r}, account={self.masked_account!r}, "
            f"rest_url={self.rest_url!r}, ws_url={self.ws_url!r}, "
            f"rate_limit={self.rate_limit}/{self.rate_period:g}s)"
        )

    @property
    def masked_account(self) -> str:
        return mask_account(self.account)

    @property
    def notices(self) -> bool:
        """Whether the adapter streams order notices (push)."""
        return self.hts_id is not None if self.push is None else self.push

    @property
    def page_size(self) -> int:
        return PAGE_SIZE[self.mode]

    @property
    def cano(self) -> str:
        """The account's 8 digits (``CANO``)."""
        assert self.account is not None
        return self.account[:8]

    @property
    def product_code(self) -> str:
        """The account's product code, 2 digits (``ACNT_PRDT_CD``)."""
        assert self.account is not None
        return self.account[-2:]

    @property
    def credential_key(self) -> str:
        """One name per app key and host, with no secret in it (rate limits, token cache)."""
        digest = hashlib.sha256(f"{self.app_key or ''}|{self.rest_url}".encode()).hexdigest()
        return f"kis-{self.mode}-{digest[:16]}"

    def require(self) -> None:
        """Refuse to start without credentials, naming what is missing or malformed."""
        missing = [
            f"{key} ({ENV_PREFIX}{key.upper()})"
            for key in ("app_key", "app_secret", "account")
            if getattr(self, key) is None
        ]
        if missing:
            raise ConfigurationError(
                f"kis-{self.mode} needs {', '.join(missing)}: give them as adapter options "
                f"(-o KEY=VALUE), environment variables or a config file (config_file / "
                f"{ENV_PREFIX}CONFIG)"
            )
        if self.push is True and self.hts_id is None:
            raise ConfigurationError(
                f"kis-{self.mode} order notices need the HTS id (hts_id, {ENV_PREFIX}HTS_ID); "
                "set it, or turn notices off with push=false to track orders by polling"
            )
        if self.mode == "live":
            self._require_live_opt_in()

    def _require_live_opt_in(self) -> None:
        if self.live_trading is not None and _ACCOUNT.match(self.live_trading):
            typed = "".join(_ACCOUNT.match(self.live_trading).groups())  # type: ignore[union-attr]
            if typed == self.cano + self.product_code:
                return
            raise ConfigurationError(
                f"kis-live: live_trading names another account than the configured "
                f"{self.masked_account}; it must name the account that will trade"
            )
        raise ConfigurationError(
            f"kis-live sends real orders to account {self.masked_account} and is not enabled: "
            f"set {ENV_PREFIX}LIVE_TRADING (or the option live_trading) to that account number "
            "in full (8 digits, a dash, 2 digits) to enable live trading on purpose"
        )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"kis option {name!r} must be true or false, got {value!r}")


def _number(value: Any, name: str, kind: type[int] | type[float], *, zero: bool = False) -> Any:
    try:
        number = kind(str(value).strip())
    except ValueError:
        number = None
    if (
        number is None
        or isinstance(value, bool)
        or not math.isfinite(number)
        or number < 0
        or (number == 0 and not zero)
    ):
        bound = "0 or more" if zero else "above 0"
        raise ConfigurationError(f"kis option {name!r} must be a number {bound}, got {value!r}")
    return number


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"kis config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"kis config file {path} cannot be read: {error}") from None
    table = data.get("kis", data)
    if not isinstance(table, dict):
        raise ConfigurationError(f"kis config file {path}: [kis] is not a table")
    unknown = sorted(set(table) - set(_KNOWN) - {"config_file"})
    if unknown:
        raise ConfigurationError(f"kis config file {path}: unknown keys {unknown}")
    return table


def _url(values: Mapping[str, Any], sources: Mapping[str, str], key: str, default: str) -> str:
    """A base URL from the settings (or KIS's), checked here: a URL without its scheme or host
    would otherwise fail only at the first request, as a connection error that names nothing."""
    given = _text(values.get(key))
    if given is None:
        return default
    schemes = ("http", "https") if key == "rest_url" else ("ws", "wss")
    try:
        parts = urllib.parse.urlsplit(given)
        usable = parts.scheme.lower() in schemes and bool(parts.hostname)
        _ = parts.port  # a port that is no number raises here
    except ValueError:
        usable = False
    if not usable:
        raise ConfigurationError(
            f"kis {key} from {sources[key]} is {given!r}: expected {schemes[0]}:// or "
            f"{schemes[1]}:// and a host, as {default}"
        )
    return given.rstrip("/")


def load_settings(
    mode: Mode, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> KisSettings:
    """Settings for ``mode`` from ``options``, then ``environ`` (default ``os.environ``), then
    the config file; :class:`~orderlane.errors.ConfigurationError` for an unknown option or a
    malformed value (never for a missing credential: :meth:`KisSettings.require` says that)."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(options) - set(_KNOWN))
    if unknown:
        raise ConfigurationError(f"unknown kis-{mode} options {unknown}; known: {sorted(_KNOWN)}")
    file_name = _text(options.get("config_file")) or _text(env.get(f"{ENV_PREFIX}CONFIG"))
    from_file = _read_file(Path(file_name)) if file_name else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in _KNOWN:
        for source, table in (
            ("option", options),
            ("environment", {key: env.get(f"{ENV_PREFIX}{key.upper()}")}),
            (f"file {file_name}", from_file),
        ):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or value.strip()):
                values[key] = value
                sources[key] = source
                break
    account = _text(values.get("account"))
    if account is not None:
        match = _ACCOUNT.match(account)
        if match is None:
            raise ConfigurationError(
                f"kis account from {sources['account']} is malformed: expected 8 digits, a "
                "dash and the 2-digit product code, as 12345678-01"
            )
        account = f"{match.group(1)}-{match.group(2)}"
    for key, size in (("app_key", 36), ("app_secret", 180)):
        text = _text(values.get(key))
        if text is not None and len(text) != size:
            raise ConfigurationError(
                f"kis {key} from {sources[key]} has {len(text)} characters; KIS issues "
                f"{size}-character {key.replace('_', ' ')}s"
            )
    rest, ws = HOSTS[mode]
    cache = _text(values.get("token_cache"))
    return KisSettings(
        mode=mode,
        rest_url=_url(values, sources, "rest_url", rest),
        ws_url=_url(values, sources, "ws_url", ws),
        app_key=_text(values.get("app_key")),
        app_secret=_text(values.get("app_secret")),
        account=account,
        hts_id=_text(values.get("hts_id")),
        token_cache=Path(cache).expanduser() if cache else default_token_cache(),
        rate_limit=_number(values.get("rate_limit", DEFAULT_RATE[mode]), "rate_limit", int),
        rate_period=_number(values.get("rate_period", 1.0), "rate_period", float),
        token_interval=_number(values.get("token_interval", 60.0), "token_interval", float),
        timeout=_number(values.get("timeout", 10.0), "timeout", float),
        new_order_lag=_number(values.get("new_order_lag", 2.0), "new_order_lag", float, zero=True),
        push=None if values.get("push") is None else _flag(values["push"], "push"),
        live_trading=_text(values.get("live_trading")),
        sources={k: v for k, v in sources.items() if k in _SECRET | {"account", "hts_id"}},
    )
