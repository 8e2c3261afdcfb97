"""The typed facade over the hooks that are not an adapter's: error classification, retry
policy, the rate limiter, order validation and the observers.

The engine and its parts never call ``pm.hook.orderlane_*`` themselves: adapter hooks go through
:class:`~orderlane.broker.Broker`, every other hook through :class:`Hooks`, which checks what a
plugin answered and awaits what is awaitable (hooks may be plain functions or ``async def``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from orderlane.clock import Clock
from orderlane.contract import ErrorClass, Operation, RateLimit, RetryConfig
from orderlane.errors import ConfigurationError
from orderlane.limiter import DEFAULT_LIMITER, RateLimiter
from orderlane.model import Order

__all__ = ["Hooks", "await_me_maybe"]

log = logging.getLogger("orderlane.hooks")
#: Observers' failures are logged where they always were: with the events they were told of.
_observer_log = logging.getLogger("orderlane.events")


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (hooks may be sync or ``async def``)."""
    if inspect.isawaitable(value):
        return await value
    return value


class Hooks:
    """The engine's typed view of the retry, validation and observer hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def classify_error(self, operation: Operation, error: BaseException) -> ErrorClass:
        """The first plugin's class for ``error`` (the core's default answers last)."""
        answer = self._pm.hook.orderlane_classify_error(operation=operation, error=error)
        return ErrorClass(answer)

    def retry_policy(self, operation: Operation) -> RetryConfig:
        """The first plugin's retry configuration for ``operation`` (the core's default
        answers last). An answer that is not a :class:`RetryConfig` is logged and replaced by
        the default configuration."""
        config = self._pm.hook.orderlane_retry_policy(operation=operation)
        if isinstance(config, RetryConfig):
            return config
        log.error(
            "orderlane_retry_policy answered %s for %s, not a RetryConfig; "
            "the default retry configuration is used (return a RetryConfig, or None to decline)",
            type(config).__name__,
            operation.value,
        )
        return RetryConfig()

    def rate_limiter(
        self,
        name: str,
        key: str,
        limits: Sequence[RateLimit],
        clock: Clock,
        margin: float,
        options: Mapping[str, Any],
    ) -> RateLimiter:
        """The limiter of the credential ``key`` from the first plugin that answers for ``name``
        (the core's in-process sliding log answers last, for ``"in-process"``)."""
        limiter = self._pm.hook.orderlane_rate_limiter(
            name=name,
            key=key,
            limits=tuple(limits),
            clock=clock,
            margin=margin,
            options=dict(options),
        )
        if limiter is None:
            raise ConfigurationError(
                f"no rate limiter named {name!r} is installed: install the plugin that supplies "
                f"it (for 'redis': pip install orderlane-redis) or set EngineConfig.rate_limiter "
                f"to {DEFAULT_LIMITER!r}"
            )
        if not isinstance(limiter, RateLimiter):
            raise ConfigurationError(
                f"the plugin answering orderlane_rate_limiter for {name!r} returned "
                f"{type(limiter).__name__}, which lacks the RateLimiter methods "
                "(acquire, penalize, snapshot, close)"
            )
        return limiter

    async def validate(self, order: Order) -> None:
        """Run every ``orderlane_validate_order`` (sync or async), in pluggy's call order; the
        first exception vetoes the order and propagates."""
        for impl in self._impls("orderlane_validate_order"):
            await await_me_maybe(impl.function(*[{"order": order}[name] for name in impl.argnames]))

    async def notify(
        self, hook: str, kwargs: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
    ) -> None:
        """Call every implementation of the observer hook ``hook`` (sync or async), in pluggy's
        call order; what one raises is logged and the others are still called. ``kwargs`` may
        be a callable making them, called only when some plugin listens."""
        impls = self._impls(hook)
        if not impls:
            return
        arguments = kwargs() if callable(kwargs) else kwargs
        for impl in impls:
            try:
                await await_me_maybe(impl.function(*[arguments[name] for name in impl.argnames]))
            except Exception:
                _observer_log.exception(
                    "observer %s failed in %s; execution goes on", impl.plugin_name, hook
                )

    def listens(self, hook: str) -> bool:
        """Whether any plugin implements the observer hook ``hook`` now."""
        return bool(getattr(self._pm.hook, hook).get_hookimpls())

    def _impls(self, hook: str) -> list[Any]:
        # pluggy calls the last registered (and tryfirst) implementations first.
        return list(reversed(getattr(self._pm.hook, hook).get_hookimpls()))
