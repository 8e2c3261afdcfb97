"""The plugin (entry point ``orderlane.plugins``): it supplies a :class:`RedisLimiter` to every
engine whose ``EngineConfig.rate_limiter`` is ``"redis"``, and declines for any other name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orderlane import RateLimit, hookimpl

__all__ = ["NAME", "orderlane_rate_limiter"]

#: The name to give ``EngineConfig.rate_limiter``.
NAME = "redis"


@hookimpl
def orderlane_rate_limiter(
    name: str, key: str, limits: Sequence[RateLimit], margin: float, options: Mapping[str, Any]
) -> Any:
    if name != NAME:
        return None
    from orderlane_redis.limiter import RedisLimiter, RedisLimiterOptions

    return RedisLimiter(
        key, limits, margin=margin, options=RedisLimiterOptions.from_mapping(options)
    )
