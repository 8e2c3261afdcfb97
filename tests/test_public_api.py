"""The public API is pinned: adding or removing a name is a visible, deliberate change."""

from __future__ import annotations

import orderlane
import orderlane.errors

PUBLIC = {
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
    "LookupWindow",
    "NothingToCancel",
    "Operation",
    "Order",
    "OrderSnapshot",
    "OrderStatus",
    "OrderType",
    "Position",
    "RateLimit",
    "RequestKind",
    "RetryConfig",
    "Side",
    "Signal",
    "StreamGap",
    "SystemClock",
    "__version__",
    "hookimpl",
}


def test_the_package_exports_exactly_its_public_names() -> None:
    assert set(orderlane.__all__) == PUBLIC
    for name in orderlane.__all__:
        assert hasattr(orderlane, name), name


def test_every_error_is_an_orderlane_error_and_exported() -> None:
    for name in orderlane.errors.__all__:
        error = getattr(orderlane.errors, name)
        assert issubclass(error, orderlane.errors.OrderlaneError), name
        assert name in (orderlane.errors.__doc__ or ""), f"{name} is missing from the error tree"
