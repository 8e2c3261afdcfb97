"""The public API is pinned: adding or removing a name is a visible, deliberate change."""

from __future__ import annotations

import orderlane
import orderlane.broker
import orderlane.cli
import orderlane.contract
import orderlane.defaults
import orderlane.errors
import orderlane.hooks
import orderlane.journal
import orderlane.journal.sql
import orderlane.rendering
import orderlane.retry

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


def test_names_that_moved_are_still_importable_from_their_older_homes() -> None:
    """The hooks' value types moved to ``orderlane.contract``, the core's default hook
    implementations to ``orderlane.defaults``, the CLI's rendering to ``orderlane.rendering``,
    the journal's refusal errors to ``orderlane.journal``;
    code importing them from where they were keeps working, and gets the same objects."""
    retry_values = ["ErrorClass", "Operation", "RetryConfig"]
    older_homes = {
        orderlane.broker: [
            *(name for name in orderlane.contract.__all__ if name not in retry_values),
            "await_me_maybe",
        ],
        orderlane.retry: [*retry_values, "DefaultRetryPolicy", "classify_default"],
        orderlane.journal.sql: ["ConcurrentUpdateError", "InstrumentHeldError", "SignalTakenError"],
        orderlane.cli: [
            "describe_outcome",
            "describe_request",
            "display_url",
            "format_money",
            "orders_table",
            "pnl_table",
            "positions_table",
        ],
    }
    new_homes = [
        orderlane.contract,
        orderlane.defaults,
        orderlane.hooks,
        orderlane.journal,
        orderlane.rendering,
    ]
    for module, names in older_homes.items():
        for name in names:
            assert name in module.__all__, (module.__name__, name)
            moved = [getattr(home, name) for home in new_homes if name in home.__all__]
            assert moved == [getattr(module, name)], (module.__name__, name)
