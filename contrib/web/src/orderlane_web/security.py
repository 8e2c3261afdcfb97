"""Who may read the dashboard: loopback by default, a token for anything else.

Bound to a loopback address the dashboard answers only requests addressed to a loopback host name
(a web page elsewhere cannot reach it by rebinding its own name to 127.0.0.1). Bound anywhere
else it needs a token, and then every request must carry it: as ``Authorization: Bearer TOKEN``
(API clients), or in the cookie a browser gets by opening any page once with ``?token=TOKEN``
(the token is then taken out of the address). The token never appears in a log or a page.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from orderlane.errors import ConfigurationError

__all__ = ["COOKIE", "MIN_TOKEN_LENGTH", "TokenGate", "check_bind", "is_loopback"]

COOKIE = "orderlane_web_token"
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on ``host`` without a token unless it is loopback; refuse weak tokens."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters long; make one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host}, which is not a loopback address, without a token: "
            "anyone who can reach it would see your orders and positions. Pass --token "
            "(or set ORDERLANE_WEB_TOKEN), or bind 127.0.0.1."
        )


def _host_name(headers: Headers) -> str:
    host = headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class TokenGate:
    """ASGI middleware: lets a request through only when it may read the dashboard."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        if self.token is None:
            if is_loopback(_host_name(headers)):
                return None
            return _error(400, "this dashboard answers only requests to 127.0.0.1 or localhost")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = dict(query).get("token")
        if offered is not None and self._matches(offered):
            # Keep the token out of the address bar, the history and any later Referer.
            rest = urlencode([(key, value) for key, value in query if key != "token"])
            redirect = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), 303)
            redirect.set_cookie(COOKIE, offered, httponly=True, samesite="strict", path="/")
            return redirect
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer ") and self._matches(authorization[7:]):
            return None
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        if COOKIE in cookie and self._matches(cookie[COOKIE].value):
            return None
        refusal = _error(401, "this dashboard needs its token (Authorization: Bearer TOKEN)")
        refusal.headers["WWW-Authenticate"] = 'Bearer realm="orderlane"'
        return refusal

    def _matches(self, offered: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(offered.strip().encode(), self.token.encode())


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
