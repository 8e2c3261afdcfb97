"""The KIS REST client: one pooled httpx connection set, KIS's headers, permits and token repeats.

Every request goes the same way: a token (cached, see :mod:`orderlane_kis.auth`), a permit from
the engine's limiter (``await ctx.permit(kind)``), the request, and KIS's answer read by its code.
An expired token (``EGW00123``) is refreshed once and the request repeated once, the repeat taking
a permit of its own. Transport failures say whether the request may have reached KIS
(``request_sent``), which is what lets the engine retry safely or look the order up first.

Logs name the method, path, TR id, HTTP status and KIS's code; never a header or a body, which
carry the keys, the token and the full account number (httpx's own request lines are masked, see
:mod:`orderlane_kis.redaction`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from orderlane import BrokerContext, RequestKind
from orderlane.errors import BrokerConnectionError, BrokerError, BrokerTimeoutError
from orderlane_kis.auth import ApprovalKeys, Tokens
from orderlane_kis.config import KisSettings
from orderlane_kis.errors import EXPIRED_TOKEN, answer_error
from orderlane_kis.redaction import install as redact_library_logs

__all__ = ["KisAnswer", "KisHttp"]

log = logging.getLogger("orderlane.kis.http")


@attrs.frozen
class KisAnswer:
    """A parsed KIS answer: HTTP status, the JSON body and the ``tr_cont`` response header."""

    status: int
    body: Mapping[str, Any] = attrs.field(repr=False)
    tr_cont: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and str(self.body.get("rt_cd", "")).strip() == "0"

    @property
    def code(self) -> str:
        return str(self.body.get("msg_cd") or self.body.get("error_code") or "").strip()

    @property
    def more(self) -> bool:
        """Whether an inquiry has another page (``tr_cont`` F or M)."""
        return self.tr_cont.strip().upper() in ("F", "M")


class KisHttp:
    """KIS's REST API for one app key, account and host."""

    def __init__(self, settings: KisSettings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        redact_library_logs()  # httpx logs each URL, and an inquiry's carries the account
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.tokens = Tokens(settings, self._post_plain)
        self.approval = ApprovalKeys(settings, self._post_plain)

    def __repr__(self) -> str:
        return f"KisHttp({self.settings.rest_url!r}, account={self.settings.masked_account!r})"

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self.settings.timeout
            self._client = httpx.AsyncClient(
                base_url=self.settings.rest_url,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
                transport=self._transport,
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def headers(self, token: str, tr_id: str, tr_cont: str = "") -> dict[str, str]:
        """KIS's common request headers (the document's list, every one sent)."""
        settings = self.settings
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {token}",
            "appkey": settings.app_key or "",
            "appsecret": settings.app_secret or "",
            "tr_id": tr_id,
            "custtype": "P",
            "tr_cont": tr_cont,
        }

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return await self.client.request(
                method, path, headers=headers, json=json, params=params
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise BrokerConnectionError(
                f"KIS {method} {path}: cannot connect ({type(error).__name__})"
            ) from None
        except (httpx.ReadTimeout, httpx.WriteTimeout) as error:
            raise BrokerTimeoutError(
                f"KIS {method} {path}: no answer in time ({type(error).__name__})",
                request_sent=True,
            ) from None
        except httpx.HTTPError as error:
            raise BrokerConnectionError(
                f"KIS {method} {path}: the connection failed after sending "
                f"({type(error).__name__})",
                request_sent=True,
            ) from None

    async def _post_plain(self, path: str, body: dict[str, str]) -> httpx.Response:
        """Token and approval requests: no token, no TR id."""
        response = await self._send(
            "POST", path, headers={"content-type": "application/json; charset=utf-8"}, json=body
        )
        log.debug("KIS POST %s -> HTTP %d", path, response.status_code)
        return response

    async def call(
        self,
        ctx: BrokerContext,
        kind: RequestKind,
        method: str,
        path: str,
        tr_id: str,
        *,
        body: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        tr_cont: str = "",
    ) -> KisAnswer:
        """One request (repeated once after an expired token); raises for rate limits, gateway
        timeouts, auth and host mix-ups, returns every other answer for the caller to read."""
        token = await self.tokens.token(ctx)
        repeated = False
        while True:
            await ctx.permit(kind)
            response = await self._send(
                method,
                path,
                headers=self.headers(token, tr_id, tr_cont),
                json=body,
                params=params,
            )
            answer = _answer(response, method, path)
            log.debug(
                "KIS %s %s %s -> HTTP %d %s tr_cont=%r",
                method,
                path,
                tr_id,
                answer.status,
                answer.code or "-",
                answer.tr_cont,
            )
            if answer.code in EXPIRED_TOKEN and not repeated:
                log.info("KIS says the access token expired (%s): refreshing once", answer.code)
                token = await self.tokens.refresh(ctx, token)
                repeated = True
                continue
            gateway = answer.code.startswith("EGW") or (answer.status >= 500 and not answer.code)
            if not answer.ok and gateway:
                raise answer_error(answer.body, answer.status, self.settings, what=path)
            return answer


def _answer(response: httpx.Response, method: str, path: str) -> KisAnswer:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BrokerError(
            f"KIS {method} {path}: HTTP {response.status_code} with a body that does not parse"
        )
    return KisAnswer(response.status_code, body, response.headers.get("tr_cont", ""))
