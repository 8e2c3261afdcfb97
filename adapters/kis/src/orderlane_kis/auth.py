"""KIS access tokens: issued rarely, cached on disk, refreshed by one caller at a time.

KIS notifies the account holder of every token it issues and answers more than one request a
minute with ``EGW00133``, so a token is precious: it is kept in a file only the owner can read
(named by a hash of the app key and host, never the key itself), reused by every engine on the
machine until shortly before it expires, and refreshed under a file lock so that concurrent
coroutines and processes ask KIS once between them. ``EGW00133`` is answered by waiting out the
minute (then reading the cache again: another process may have the token by then), never by
asking again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx

from orderlane import BrokerContext, RequestKind
from orderlane.errors import BrokerAuthError, BrokerConnectionError, BrokerError
from orderlane_kis.config import KisSettings
from orderlane_kis.errors import answer_error
from orderlane_kis.parsing import KST

__all__ = ["ApprovalKeys", "CachedToken", "TokenStore", "Tokens"]

log = logging.getLogger("orderlane.kis.auth")

#: A cached token is replaced this long before it expires.
REFRESH_MARGIN = timedelta(minutes=10)
#: How often a token request refused with EGW00133 is tried again (each after the throttle).
TOKEN_ATTEMPTS = 3
_LOCK_POLL = 0.05


@attrs.frozen(repr=False)
class CachedToken:
    """A token and when it expires (and when the last one was issued, for KIS's 1 a minute)."""

    access_token: str
    expires_at: datetime
    issued_at: datetime

    def __repr__(self) -> str:
        return f"CachedToken(expires_at={self.expires_at.isoformat()})"

    def usable(self, now: datetime) -> bool:
        return now < self.expires_at - REFRESH_MARGIN


class TokenStore:
    """The token file of one app key and host, and the lock that serializes its refreshes."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        self.path = directory / f"{key}.json"
        self._lock_path = directory / f"{key}.lock"

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def read(self) -> CachedToken | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return CachedToken(
                access_token=str(data["access_token"]),
                expires_at=datetime.fromisoformat(data["expires_at"]),
                issued_at=datetime.fromisoformat(data["issued_at"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("token cache %s is unreadable; a new token will be issued", self.path)
            return None

    def write(self, token: CachedToken) -> None:
        """Replace the file atomically; it is created owner-only (0600) and never widened."""
        self._ensure_directory()
        data = {
            "access_token": token.access_token,
            "expires_at": token.expires_at.isoformat(),
            "issued_at": token.issued_at.isoformat(),
        }
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, json.dumps(data).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the machine-wide lock of this key (polled, so a cancelled waiter leaves nothing
        behind)."""
        self._ensure_directory()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    await asyncio.sleep(_LOCK_POLL)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


Post = Callable[[str, dict[str, str]], Awaitable[httpx.Response]]


def _expiry(body: dict[str, Any], now: datetime) -> datetime:
    stamp = body.get("access_token_token_expired")
    if isinstance(stamp, str):
        try:
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST).astimezone(UTC)
        except ValueError:
            pass
    seconds = body.get("expires_in")
    if isinstance(seconds, (int, str)) and str(seconds).isdigit():
        return now + timedelta(seconds=int(seconds))
    raise BrokerAuthError("KIS answered the token request without an expiry")


class Tokens:
    """The access token of one app key and host, shared by every caller of this process."""

    def __init__(
        self,
        settings: KisSettings,
        post: Post,
        store: TokenStore | None = None,
    ) -> None:
        self._settings = settings
        self._post = post
        self.store = store or TokenStore(settings.token_cache, settings.credential_key)
        self._token: CachedToken | None = None
        self._lock = asyncio.Lock()
        #: Tokens this process had KIS issue (each one notifies the account holder).
        self.issued = 0

    def __repr__(self) -> str:
        return f"Tokens({self.store!r})"

    async def token(self, ctx: BrokerContext) -> str:
        """A usable token: from memory, else the cache file, else issued by KIS."""
        current = self._token
        if current is not None and current.usable(ctx.clock.now()):
            return current.access_token
        return await self._refresh(ctx, stale=None)

    async def refresh(self, ctx: BrokerContext, stale: str) -> str:
        """A token other than ``stale``, which KIS called expired (EGW00123)."""
        return await self._refresh(ctx, stale=stale)

    async def _refresh(self, ctx: BrokerContext, stale: str | None) -> str:
        async with self._lock, self.store.locked():
            # Another coroutine or process may have refreshed while this one waited.
            for candidate in (self._token, self.store.read()):
                if (
                    candidate is not None
                    and candidate.access_token != stale
                    and candidate.usable(ctx.clock.now())
                ):
                    self._token = candidate
                    return candidate.access_token
            token = await self._issue(ctx)
            self.store.write(token)
            self._token = token
            return token.access_token

    async def _issue(self, ctx: BrokerContext) -> CachedToken:
        settings = self._settings
        assert settings.app_key is not None
        assert settings.app_secret is not None
        body = {
            "grant_type": "client_credentials",
            "appkey": settings.app_key,
            "appsecret": settings.app_secret,
        }
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            await self._pace(ctx)
            await ctx.permit(RequestKind.AUTH)
            asked_at = ctx.clock.now()
            response = await self._post("/oauth2/tokenP", body)
            answer = _json(response)
            code = str(answer.get("error_code") or answer.get("msg_cd") or "")
            if code == "EGW00133":
                log.warning(
                    "KIS refused a token request (EGW00133: one a minute); waiting %gs "
                    "(attempt %d of %d)",
                    settings.token_interval,
                    attempt,
                    TOKEN_ATTEMPTS,
                )
                self._remember_throttle(asked_at)
                await ctx.clock.sleep(settings.token_interval)
                cached = self.store.read()
                if cached is not None and cached.usable(ctx.clock.now()):
                    return cached
                continue
            token = answer.get("access_token")
            if response.status_code != 200 or not isinstance(token, str) or not token:
                raise answer_error(answer, response.status_code, settings, what="token request")
            self.issued += 1
            log.info("KIS issued a new access token for %s", settings.masked_account)
            return CachedToken(token, _expiry(answer, asked_at), issued_at=asked_at)
        raise BrokerAuthError(
            f"KIS refused {TOKEN_ATTEMPTS} token requests in a row as too frequent (EGW00133)"
        )

    def _remember_throttle(self, at: datetime) -> None:
        cached = self.store.read()
        if cached is not None:
            self.store.write(attrs.evolve(cached, issued_at=max(cached.issued_at, at)))

    async def _pace(self, ctx: BrokerContext) -> None:
        """Wait until a minute after the last issuance any process of this machine recorded."""
        cached = self.store.read()
        if cached is None:
            return
        elapsed = (ctx.clock.now() - cached.issued_at).total_seconds()
        wait = min(self._settings.token_interval - elapsed, self._settings.token_interval)
        if wait > 0:
            log.info("waiting %.1fs: KIS issues one token a minute", wait)
            await ctx.clock.sleep(wait)


class ApprovalKeys:
    """The WebSocket approval key (``/oauth2/Approval``), asked for once per connection."""

    def __init__(self, settings: KisSettings, post: Post) -> None:
        self._settings = settings
        self._post = post

    def __repr__(self) -> str:
        return "ApprovalKeys()"

    async def issue(self, ctx: BrokerContext) -> str:
        settings = self._settings
        await ctx.permit(RequestKind.AUTH)
        response = await self._post(
            "/oauth2/Approval",
            {
                "grant_type": "client_credentials",
                "appkey": settings.app_key or "",
                "secretkey": settings.app_secret or "",
            },
        )
        answer = _json(response)
        key = answer.get("approval_key")
        if response.status_code != 200 or not isinstance(key, str) or not key:
            raise answer_error(answer, response.status_code, settings, what="approval key request")
        return key


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        if response.status_code >= 500:
            raise BrokerConnectionError(
                f"KIS answered HTTP {response.status_code} without a body to read"
            ) from None
        raise BrokerError(f"KIS answered HTTP {response.status_code} with no JSON") from None
    if not isinstance(data, dict):
        raise BrokerError(f"KIS answered HTTP {response.status_code} with a JSON {type(data)}")
    return data
