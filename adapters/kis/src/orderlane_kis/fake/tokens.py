"""App keys, access tokens and WebSocket approval keys, as KIS issues them.

A token request within a minute of the last one issued for the same app key answers HTTP 403
``EGW00133``; within about 6 hours of issuance the same token comes back; a token lives 24
hours. A paper app key is unknown to the live host's token service and the other way round, except
that the live host recognises a paper key for what it is and answers ``EGW02004``.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import attrs

from orderlane_kis.fake.codes import Answer, Codes
from orderlane_kis.krx import kst

__all__ = ["App", "Credentials", "Token", "TokenService"]

Mode = Literal["paper", "live"]

TOKEN_LIFETIME = timedelta(hours=24)
TOKEN_REUSE = timedelta(hours=6)
TOKEN_THROTTLE = 60.0  # seconds between two issuances for one app key
EXPIRED_FORMAT = "%Y-%m-%d %H:%M:%S"

_ALPHABET = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@attrs.frozen
class Credentials:
    """What a client needs to talk to the venue: app key (36 characters), app secret (180),
    account (``CANO-ACNT_PRDT_CD``) and HTS id (the notice subscription's ``tr_key``)."""

    app_key: str = attrs.field(repr=lambda _: "***")
    app_secret: str = attrs.field(repr=lambda _: "***")
    account: str
    hts_id: str

    @classmethod
    def generate(cls, account: str, hts_id: str) -> Credentials:
        return cls(_random(36), _random(180), account, hts_id)


@attrs.define
class App:
    credentials: Credentials
    mode: Mode
    accounts: list[str]
    last_issued: float | None = None  # venue-monotonic moment of the last token issued
    token: Token | None = None


@attrs.define
class Token:
    value: str = attrs.field(repr=False)
    app_key: str = attrs.field(repr=False)
    issued_at: datetime
    expires_at: datetime
    expired: bool = False  # forced by the control API

    def expires_text(self) -> str:
        return kst(self.expires_at).strftime(EXPIRED_FORMAT)


class TokenService:
    """Registered apps, the tokens issued to them and the approval keys for the WebSocket."""

    def __init__(self, mode: Mode, now: Callable[[], datetime], monotonic: Callable[[], float]):
        self.mode = mode
        self._now = now
        self._monotonic = monotonic
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, Token] = {}
        self.approval_keys: dict[str, str] = {}  # approval key -> app key

    def add_app(self, credentials: Credentials, mode: Mode, accounts: list[str]) -> App:
        app = App(credentials, mode, accounts)
        self.apps[credentials.app_key] = app
        return app

    # ------------------------------------------------------------------ /oauth2/tokenP

    def issue(self, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        """Answer a token request: (HTTP status, body)."""
        if body.get("grant_type") != "client_credentials":
            return 403, _oauth_error("EGW00002", "grant_type 이 올바르지 않습니다.")
        app, problem = self._app(body.get("appkey"), body.get("appsecret"))
        if app is None:
            assert problem is not None
            return 403, _oauth_error(problem.msg_cd, problem.msg1)
        now, mono = self._now(), self._monotonic()
        if app.last_issued is not None and mono - app.last_issued < TOKEN_THROTTLE:
            return 403, _oauth_error("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
        token = app.token
        if token is None or token.expired or now - token.issued_at >= TOKEN_REUSE:
            token = Token(_random(350), app.credentials.app_key, now, now + TOKEN_LIFETIME)
            self.tokens[token.value] = token
            app.token = token
        app.last_issued = mono
        return 200, {
            "access_token": token.value,
            "access_token_token_expired": token.expires_text(),
            "token_type": "Bearer",
            "expires_in": max(0, int((token.expires_at - now).total_seconds())),
        }

    def revoke(self, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        app, problem = self._app(body.get("appkey"), body.get("appsecret"))
        if app is None:
            assert problem is not None
            return 403, _oauth_error(problem.msg_cd, problem.msg1)
        token = self.tokens.get(str(body.get("token", "")))
        if token is None or token.expired or token.app_key != app.credentials.app_key:
            return 403, _oauth_error("EGW00121", "유효하지 않은 token 입니다.")
        token.expired = True
        if app.token is token:
            app.token = None
        return 200, {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}

    def approve(self, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        """Answer ``/oauth2/Approval``: a fresh approval key for the WebSocket."""
        app, problem = self._app(body.get("appkey"), body.get("secretkey"))
        if app is None:
            assert problem is not None
            return 403, _oauth_error(problem.msg_cd, problem.msg1)
        key = "-".join(_random(n).lower() for n in (8, 4, 4, 4, 12))
        self.approval_keys[key] = app.credentials.app_key
        return 200, {"approval_key": key}

    def _app(self, key: object, secret: object) -> tuple[App | None, Answer | None]:
        app = self.apps.get(str(key))
        if app is None:
            return None, Codes.BAD_APP_KEY
        if app.mode != self.mode:
            return None, Codes.PAPER_KEY_ON_LIVE if app.mode == "paper" else Codes.BAD_APP_KEY
        if not secrets.compare_digest(str(secret), app.credentials.app_secret):
            return None, Answer("1", "EGW00105", "유효하지 않은 AppSecret입니다.", 403)
        return app, None

    # ------------------------------------------------------------------ trading calls

    def authenticate(
        self, authorization: str | None, app_key: str | None, app_secret: str | None
    ) -> App | Answer:
        """The app a trading call's headers authenticate, or the gateway's refusal."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return Codes.TOKEN_MISSING
        token = self.tokens.get(value.strip())
        if token is None:
            return Codes.TOKEN_INVALID
        if token.expired or self._now() >= token.expires_at:
            return Codes.TOKEN_EXPIRED
        app = self.apps.get(app_key or "")
        if app is None or app.credentials.app_key != token.app_key:
            return Codes.BAD_APP_KEY
        if not secrets.compare_digest(app_secret or "", app.credentials.app_secret):
            return Answer("1", "EGW00105", "유효하지 않은 AppSecret입니다.", 500)
        if app.mode != self.mode:
            return Codes.PAPER_KEY_ON_LIVE
        return app

    def expire_all(self, lapsed: bool = False) -> None:
        """Every token issued so far answers ``EGW00123`` from now on; ``lapsed``: their day
        ran out, so the next token request is not held to the one-a-minute throttle."""
        for token in self.tokens.values():
            token.expired = True
        if lapsed:
            for app in self.apps.values():
                app.last_issued = None


def _oauth_error(code: str, description: str) -> dict[str, object]:
    return {"error_description": description, "error_code": code}
