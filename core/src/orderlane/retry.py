"""Retry policy and error classification for broker operations.

tenacity drives the attempts; this module decides what is retried and how long to wait. The
default policy is the seed's: 3 attempts, waiting 1 s then 2 s (4 s, 8 s ... capped at 30 s when
more attempts are configured). A broker's ``retry_after`` lengthens a wait, never shortens it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import tenacity

from orderlane.clock import Clock
from orderlane.errors import (
    BrokerAuthError,
    BrokerConnectionError,
    BrokerError,
    BrokerRateLimitError,
    BrokerTimeoutError,
    ConfigurationError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderRetryExhaustedError,
)
from orderlane.hookspecs import hookimpl

__all__ = [
    "DefaultRetryPolicy",
    "ErrorClass",
    "Operation",
    "RetryConfig",
    "run_with_retry",
]

T = TypeVar("T")


class Operation(enum.StrEnum):
    PLACE = "place"
    CANCEL = "cancel"
    STATUS = "status"
    LOOKUP = "lookup"


class ErrorClass(enum.StrEnum):
    RETRYABLE = "retryable"  # nothing happened at the broker: try again after a wait
    AMBIGUOUS = "ambiguous"  # the broker may have acted: look it up before any new send
    FINAL = "final"  # give up at once


@attrs.frozen
class RetryConfig:
    """How one operation is retried."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff_multiplier: float = 2.0
    max_delay: float = 30.0
    #: Up to this fraction of each wait is added at random (0 = exact waits).
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("retry max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.backoff_multiplier < 1:
            raise ConfigurationError("retry delays must be >= 0 and backoff_multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("retry jitter is a fraction between 0 and 1")

    def delay(self, failed_attempt: int, error: BaseException | None = None) -> float:
        """The wait after attempt number ``failed_attempt`` (1-based) failed with ``error``."""
        backoff = min(
            self.initial_delay * self.backoff_multiplier ** (failed_attempt - 1), self.max_delay
        )
        if self.jitter:
            backoff += backoff * self.jitter * random.random()  # noqa: S311 - not security
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > backoff:
            return float(retry_after)
        return backoff


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


class _Wait(tenacity.wait.wait_base):
    def __init__(self, config: RetryConfig) -> None:
        self.config = config

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return self.config.delay(retry_state.attempt_number, error)


async def run_with_retry(
    operation: Callable[[int], Awaitable[T]],
    *,
    config: RetryConfig,
    should_retry: Callable[[BaseException], bool],
    clock: Clock,
    on_retry: Callable[[int, float, BaseException], Awaitable[None]] | None = None,
    describe: str = "operation",
) -> T:
    """Call ``operation(attempt)`` until it succeeds, fails with a non-retryable error or runs
    out of attempts (then :class:`OrderRetryExhaustedError` with the last error and the count).

    ``on_retry(attempt, delay, error)`` is awaited before each wait.

    The first attempt runs outside tenacity: nearly every call succeeds at once, and tenacity's
    bookkeeping costs more CPU than a send to a fast venue. A first attempt that fails is handed
    to tenacity as its attempt 1, which classifies, waits and retries exactly as if it had run
    it.
    """
    try:
        return await operation(1)
    except Exception as failure:
        first = failure

    async def replayed(number: int) -> T:
        if number == 1:
            raise first
        return await operation(number)

    async def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        error = state.outcome.exception()
        assert error is not None
        await on_retry(state.attempt_number, state.next_action.sleep, error)

    retrying: Any = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(config.max_attempts),
        wait=_Wait(config),
        retry=tenacity.retry_if_exception(should_retry),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await replayed(attempt.retry_state.attempt_number)
    except tenacity.RetryError as exhausted:
        last = exhausted.last_attempt
        error = last.exception()
        raise OrderRetryExhaustedError(
            f"{describe} failed after {last.attempt_number} attempts: {error}",
            original_error=error,
            attempts=last.attempt_number,
        ) from error
    raise AssertionError("unreachable")  # pragma: no cover
