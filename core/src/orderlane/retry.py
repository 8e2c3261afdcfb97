"""Retry policy and error classification for broker operations.

tenacity drives the attempts; this module decides what is retried and how long to wait. The
default policy is the seed's: 3 attempts, waiting 1 s then 2 s (4 s, 8 s ... capped at 30 s when
more attempts are configured). A broker's ``retry_after`` lengthens a wait, never shortens it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity

from orderlane.clock import Clock
from orderlane.contract import ErrorClass, Operation, RetryConfig
from orderlane.defaults import DefaultRetryPolicy, classify_default
from orderlane.errors import OrderRetryExhaustedError

# Operation, ErrorClass and RetryConfig live in :mod:`orderlane.contract`, the default policy in
# :mod:`orderlane.defaults`; they are importable from here too.
__all__ = [
    "DefaultRetryPolicy",
    "ErrorClass",
    "Operation",
    "RetryConfig",
    "classify_default",
    "run_with_retry",
]

T = TypeVar("T")


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
