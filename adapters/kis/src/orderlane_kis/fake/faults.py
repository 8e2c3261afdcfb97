"""Faults a test switches on at the fake venue, and the venue's clock.

A :class:`Fault` acts on the next requests of one operation (``place``, ``cancel``, ``inquiry``,
``balance``, ``token``, ``approval``, ``hashkey``, ``revoke``; None: any), in the order faults
were queued. What it does, by ``action``:

``drop_before``
    close the connection without processing the request or answering (nothing happened).
``stall_before``
    never answer and never process (the client's timeout fires; nothing happened).
``drop_after``
    process the request (an order is taken), then close the connection without answering.
``stall_after``
    process the request, then never answer.
``delay``
    wait ``seconds`` (real time), then process and answer normally.
``gateway_timeout``
    answer ``msg_cd`` (``EGW00301`` or ``EGW00302``) with HTTP 500, having processed the
    request when ``processed`` (the default: the outcome is unknown to the client).
``http_error``
    answer HTTP ``status`` (default 500) with an HTML body, processed or not per ``processed``.
``rate_limit``
    answer ``EGW00201`` (HTTP ``status``, default 500) without processing.
``token_expired``
    answer ``EGW00123`` without processing (the token itself stays valid).
``garbled``
    process the request, then answer HTTP 200 with a body that is not JSON.
``notices_first``
    process the request and answer only after its order notices went out on the WebSocket.
``raw``
    answer HTTP ``status`` with ``body`` (bytes: truncated JSON, an HTML page, text that is not
    UTF-8...) as ``content_type``, having processed the request when ``processed``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import attrs

from orderlane.clock import Clock, SystemClock

__all__ = ["FAULT_ACTIONS", "Fault", "FaultAction", "VenueClock"]

FaultAction = Literal[
    "drop_before",
    "stall_before",
    "drop_after",
    "stall_after",
    "delay",
    "gateway_timeout",
    "http_error",
    "rate_limit",
    "token_expired",
    "garbled",
    "notices_first",
    "raw",
]
FAULT_ACTIONS: frozenset[str] = frozenset(get_args(FaultAction))
_PROCESSED_BY_DEFAULT = frozenset({"drop_after", "stall_after", "gateway_timeout", "garbled"})
_PROCESSING = _PROCESSED_BY_DEFAULT | {"notices_first", "delay", "raw"}


@attrs.define
class Fault:
    action: FaultAction
    operation: str | None = None
    times: int = 1
    seconds: float = 0.0
    status: int = 500
    msg_cd: str = "EGW00301"
    processed: bool | None = None
    body: bytes = b""
    content_type: str = "application/json"

    def __attrs_post_init__(self) -> None:
        if self.action not in FAULT_ACTIONS:
            known = ", ".join(sorted(FAULT_ACTIONS))
            raise ValueError(f"unknown fault action {self.action!r} (known: {known})")
        if self.times < 1:
            raise ValueError("a fault acts on at least one request")
        if self.action == "gateway_timeout" and self.msg_cd not in ("EGW00301", "EGW00302"):
            raise ValueError("a gateway timeout answers EGW00301 or EGW00302")
        if self.processed is None:
            self.processed = self.action in _PROCESSED_BY_DEFAULT
        elif self.processed and self.action not in _PROCESSING | {"http_error"}:
            raise ValueError(f"a {self.action} fault never processes the request")

    def matches(self, operation: str) -> bool:
        return self.operation is None or self.operation == operation


class VenueClock:
    """The venue's time: a :class:`~orderlane.clock.Clock` (the real one by default, or a test's
    fake clock), or time set from outside through the control API, which a venue in its own
    process uses to follow the scenario's clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.base: Clock = clock or SystemClock()
        self._set: tuple[datetime, float] | None = None
        self._monotonic: Callable[[], float] | None = None

    def now(self) -> datetime:
        return self._set[0] if self._set is not None else self.base.now()

    def monotonic(self) -> float:
        if self._set is not None:
            return self._set[1]
        return self._monotonic() if self._monotonic is not None else self.base.monotonic()

    def use_monotonic(self, monotonic: Callable[[], float] | None) -> None:
        """Read seconds from ``monotonic`` (a scenario's clock) instead of the base clock."""
        self._monotonic = monotonic

    def set(self, now: datetime, monotonic: float | None = None) -> None:
        """Stand still at ``now`` (UTC) and ``monotonic`` until set again or released."""
        if now.tzinfo is None:
            raise ValueError("the venue's time must be timezone-aware")
        mono = self.monotonic() if monotonic is None else monotonic
        self._set = (now.astimezone(UTC), mono)

    def advance(self, seconds: float) -> None:
        """Move set time forward (sets it first at the current time)."""
        now, mono = self.now(), self.monotonic()
        self._set = (now + timedelta(seconds=seconds), mono + seconds)

    def release(self) -> None:
        """Follow the base clock again."""
        self._set = None
