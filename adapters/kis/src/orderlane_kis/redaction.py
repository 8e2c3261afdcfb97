"""What the libraries under the KIS adapters would log of KIS's secrets, kept out of the logs.

orderlane's own log lines never carry a secret (see :mod:`orderlane_kis.http`), but two libraries
would: httpx logs every request's URL at INFO, and the daily inquiry's URL carries the account
number (``CANO=12345678&ACNT_PRDT_CD=01``, and from the second page on in the continuation keys
``CTX_AREA_FK100``/``CTX_AREA_NK100``); websockets logs every frame at DEBUG, and the
subscription carries the approval key (the notice server's ack carries the session's AES key).
:data:`ACCOUNT_IN_URLS` masks the account in httpx's lines (as :func:`mask_account` does; the
continuation keys entirely) and
:data:`NO_FRAMES` drops websockets' frame lines, keeping its connection lines.
"""

from __future__ import annotations

import logging
import re

__all__ = ["ACCOUNT_IN_URLS", "NO_FRAMES", "install", "mask_query", "websocket_logger"]

_CANO = re.compile(r"(?i)\b(CANO=)(\d{2})\d*(\d{2})\b")
#: The inquiry's continuation keys carry the account too (``12345678^01^...``): never shown.
_CONTINUATION = re.compile(r"(?i)\b(CTX_AREA_[FN]K100=)[^&\s\"']+")


def mask_query(text: str) -> str:
    """``?CANO=12345678&...&CTX_AREA_FK100=...`` as ``?CANO=12****78&...&CTX_AREA_FK100=***``."""
    return _CONTINUATION.sub(r"\1***", _CANO.sub(r"\1\2****\3", text))


class _AccountInUrls(logging.Filter):
    """Masks the account number in a record's message and arguments (httpx passes the URL as
    an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "CANO=" in record.msg.upper():
            record.msg = mask_query(record.msg)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                mask_query(str(arg)) if "CANO=" in str(arg).upper() else arg for arg in record.args
            )
        return True


class _NoFrames(logging.Filter):
    """Drops websockets' ``> frame`` / ``< frame`` lines (their text holds the approval key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in ("> %s", "< %s")


ACCOUNT_IN_URLS = _AccountInUrls()
NO_FRAMES = _NoFrames()


def install() -> None:
    """Mask the account in httpx's request lines (idempotent: a filter is added once)."""
    logging.getLogger("httpx").addFilter(ACCOUNT_IN_URLS)


def websocket_logger(name: str) -> logging.Logger:
    """A logger for one websockets connection or server: its frame lines are dropped."""
    logger = logging.getLogger(name)
    logger.addFilter(NO_FRAMES)
    return logger
