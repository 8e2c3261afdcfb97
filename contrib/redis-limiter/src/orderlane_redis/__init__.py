"""orderlane-redis: the broker's rate limit counted across every process that trades it.

Install it and name it::

    EngineConfig(rate_limiter="redis", rate_limiter_options={"url": "redis://127.0.0.1:6379/0"})

Every engine on the same credential key (``EngineConfig.credential_key``), in any process on any
machine reaching that Redis, then shares one sliding log, one priority queue and one pause.
"""

from orderlane_redis.limiter import RedisLimiter, RedisLimiterOptions
from orderlane_redis.plugin import NAME

__all__ = ["NAME", "RedisLimiter", "RedisLimiterOptions"]
