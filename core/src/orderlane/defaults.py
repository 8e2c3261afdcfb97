"""The core's own hook implementations, each registered ``trylast`` so any plugin may refine them.

Like datasette's default plugins, they answer through the same hooks a plugin would, so a plugin
replaces a default by answering first (and declines, returning ``None``, to leave it in charge):

- :class:`DefaultRetryPolicy`: ``orderlane_classify_error`` (:func:`classify_default`) and
  ``orderlane_retry_policy`` (3 attempts, waiting 1 s then 2 s, unless the engine's configuration
  says otherwise).
- :class:`InProcessLimiter`: ``orderlane_rate_limiter`` for the name ``"in-process"``, the sliding
  log of :mod:`orderlane.ratelimit` shared by the engines of one process on one credential.
"""

from __future__ import annotations

from collections.abc import Sequence

from orderlane.clock import Clock
from orderlane.contract import ErrorClass, Operation, RateLimit, RetryConfig
from orderlane.errors import (
    BrokerAuthError,
    BrokerConnectionError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    OrderNotFoundError,
    OrderRejectedError,
)
from orderlane.hookspecs import hookimpl
from orderlane.limiter import DEFAULT_LIMITER
from orderlane.ratelimit import SlidingLogLimiter, shared_limiter

__all__ = ["DefaultRetryPolicy", "InProcessLimiter", "classify_default"]


def classify_default(operation: Operation, error: BaseException) -> ErrorClass:
    """The core's classification (see the module docstring of :mod:`orderlane.errors`)."""
    if isinstance(error, BrokerConnectionError):
        if error.request_sent and operation is Operation.PLACE:
            return ErrorClass.AMBIGUOUS
        return ErrorClass.RETRYABLE
    if isinstance(error, BrokerRateLimitError):
        return ErrorClass.RETRYABLE
    if isinstance(error, (OrderRejectedError, BrokerAuthError, OrderNotFoundError)):
        return ErrorClass.FINAL
    if isinstance(error, BrokerTimeoutError):
        if operation is Operation.PLACE:
            return ErrorClass.AMBIGUOUS if error.request_sent else ErrorClass.RETRYABLE
        return ErrorClass.RETRYABLE
    if operation is Operation.PLACE and not isinstance(error, BrokerError):
        # An unexpected exception may have happened after the request was written.
        return ErrorClass.AMBIGUOUS
    if operation is Operation.PLACE:
        # Another broker error (a 5xx, an answer that does not parse): the broker may hold it.
        return ErrorClass.AMBIGUOUS
    return ErrorClass.FINAL


class DefaultRetryPolicy:
    """The core's retry hooks, registered ``trylast`` so any plugin may refine them."""

    def __init__(self, policies: dict[Operation, RetryConfig] | None = None) -> None:
        self.policies = policies or {}

    @hookimpl(trylast=True)
    def orderlane_classify_error(self, operation: Operation, error: BaseException) -> ErrorClass:
        return classify_default(operation, error)

    @hookimpl(trylast=True)
    def orderlane_retry_policy(self, operation: Operation) -> RetryConfig:
        return self.policies.get(operation, RetryConfig())


class InProcessLimiter:
    """The core's default limiter (``trylast``): the sliding log of this process, shared by the
    engines in it that trade one credential. Answers for the name ``"in-process"`` only."""

    @hookimpl(trylast=True)
    def orderlane_rate_limiter(
        self,
        name: str,
        key: str,
        limits: Sequence[RateLimit],
        clock: Clock,
        margin: float,
    ) -> SlidingLogLimiter | None:
        if name != DEFAULT_LIMITER:
            return None
        return shared_limiter(key, limits, clock, margin=margin)
