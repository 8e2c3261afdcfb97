"""orderlane: order execution for trading systems.

A strategy's signal becomes an order that is durable before it is sent, goes to a broker through a
pluggable adapter with retries and rate limits, is followed to a final state, and moves positions
and realized P&L. Observers hear every committed step.
"""

from orderlane.broker import Broker
from orderlane.clock import Clock, FakeClock, SystemClock
from orderlane.contract import (
    Absent,
    AdapterInfo,
    BrokerContext,
    CancelAccepted,
    CannotTell,
    Capability,
    ErrorClass,
    Found,
    LookupWindow,
    NothingToCancel,
    Operation,
    RateLimit,
    RequestKind,
    RetryConfig,
    StreamGap,
)
from orderlane.engine import Engine, EngineConfig
from orderlane.hookspecs import hookimpl
from orderlane.limiter import LimiterSnapshot, RateLimiter
from orderlane.model import (
    Execution,
    Fill,
    Order,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    Side,
    Signal,
)
from orderlane.positions import Position

__version__ = "0.1.0"

__all__ = [
    "Absent",
    "AdapterInfo",
    "Broker",
    "BrokerContext",
    "CancelAccepted",
    "CannotTell",
    "Capability",
    "Clock",
    "Engine",
    "EngineConfig",
    "ErrorClass",
    "Execution",
    "FakeClock",
    "Fill",
    "Found",
    "LimiterSnapshot",
    "LookupWindow",
    "NothingToCancel",
    "Operation",
    "Order",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Position",
    "RateLimit",
    "RateLimiter",
    "RequestKind",
    "RetryConfig",
    "Side",
    "Signal",
    "StreamGap",
    "SystemClock",
    "__version__",
    "hookimpl",
]
