"""KIS's answer codes (``msg_cd``, ``error_code``) as orderlane's error tree.

KIS sends business refusals as HTTP 200 with ``rt_cd`` other than ``"0"`` and gateway trouble as
HTTP 500 with a code, so the code decides, not the HTTP status: ``EGW00201`` is a rate limit
even as a 500, ``EGW00301``/``EGW00302`` mean the outcome is unknown, ``EGW00123`` an expired
token. Messages carry KIS's code and text and never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orderlane.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidSymbolError,
    OrderRejectedError,
    OrderValidationError,
)
from orderlane_kis.config import HOSTS, KisSettings

__all__ = [
    "EXPIRED_TOKEN",
    "KisAccountError",
    "KisHostMismatchError",
    "answer_error",
    "describe",
    "refusal",
]

RATE_LIMITED = "EGW00201"
EXPIRED_TOKEN = frozenset({"EGW00123", "EGW00121", "EGW00122"})
GATEWAY_TIMEOUT = frozenset({"EGW00301", "EGW00302"})
HOST_MISMATCH = frozenset({"EGW02004", "EGW02006"})
INSUFFICIENT = frozenset({"APBK0952", "40250000"})
BAD_SYMBOL = frozenset({"MCA05918", "APBK0656"})
MARKET_CLOSED = frozenset({"APBK0919", "40580000", "40100000", "40570000"})
BAD_ACCOUNT = frozenset({"APAC0081"})
NOTHING_TO_CANCEL = frozenset({"40330000"})
SESSION_HOURS = "KRX's regular session is 09:00 to 15:30 KST on business days"


class KisHostMismatchError(BrokerAuthError, ConfigurationError):
    """A paper app key on the live host, or a live-only TR on the paper host (EGW02004/02006):
    a configuration mistake, and a refusal of the credentials (the order ends FAILED)."""


class KisAccountError(BrokerAuthError, ConfigurationError):
    """KIS does not know the configured account for this app key (APAC0081)."""


def describe(answer: Mapping[str, Any]) -> str:
    """KIS's code and message, as ``[CODE] message``."""
    code = answer.get("msg_cd") or answer.get("error_code") or "?"
    message = answer.get("msg1") or answer.get("error_description") or ""
    return f"[{str(code).strip()}] {str(message).strip()}".rstrip()


def _host_mismatch(code: str, settings: KisSettings, text: str) -> KisHostMismatchError:
    other = "live" if settings.mode == "paper" else "paper"
    return KisHostMismatchError(
        f"KIS {text}: kis-{settings.mode} sent to {settings.rest_url} with a key or TR id that "
        f"belongs to the other host. Paper app keys work only with the paper host "
        f"{HOSTS['paper'][0]} (kis-paper), live app keys only with {HOSTS['live'][0]} "
        f"(kis-live); check that the app key is a {settings.mode} key or use kis-{other}"
    )


def answer_error(
    answer: Mapping[str, Any], status: int, settings: KisSettings, *, what: str
) -> BrokerError:
    """The error for a refused answer that is no business refusal of an order (tokens, keys,
    gateway trouble, inquiries)."""
    code = str(answer.get("msg_cd") or answer.get("error_code") or "").strip()
    text = describe(answer)
    if code == RATE_LIMITED:
        return BrokerRateLimitError(f"KIS {what}: {text}", retry_after=1.0)
    if code in GATEWAY_TIMEOUT:
        return BrokerTimeoutError(f"KIS {what}: {text} (outcome unknown)", request_sent=True)
    if code in HOST_MISMATCH:
        return _host_mismatch(code, settings, text)
    if code in BAD_ACCOUNT:
        return KisAccountError(
            f"KIS {what}: {text}: account {settings.masked_account} is not valid for this app key"
        )
    if code in EXPIRED_TOKEN or status in (401, 403) or code.startswith("EGW001"):
        return BrokerAuthError(f"KIS {what}: {text} (HTTP {status})")
    return BrokerError(f"KIS {what}: {text} (HTTP {status})")


def refusal(answer: Mapping[str, Any], status: int, settings: KisSettings) -> BrokerError:
    """The error for a refused order or cancel: rejections by code, the rest as
    :func:`answer_error` says. Only HTTP 200 business answers are rejections; a 5xx without a
    known code may have been acted on and stays ambiguous."""
    code = str(answer.get("msg_cd") or "").strip()
    text = describe(answer)
    if code in INSUFFICIENT:
        return InsufficientBalanceError(f"KIS refused the order: {text}")
    if code in BAD_SYMBOL:
        return InvalidSymbolError(f"KIS refused the order: {text}")
    if code in MARKET_CLOSED:
        return OrderRejectedError(
            f"KIS refused the order, the market is closed: {text}; {SESSION_HOURS}"
        )
    if status == 200 and code and not code.startswith("EGW") and code not in BAD_ACCOUNT:
        return OrderValidationError(f"KIS refused the order: {text}")
    return answer_error(answer, status, settings, what="order")
