"""What adapters and the engine exchange, and the typed ``Broker`` facade over the adapter hooks.

The engine never calls ``pm.hook.orderlane_*`` for adapter hooks itself: it calls the methods of
:class:`Broker`, which calls the chosen adapter's implementation, awaits it when it is a coroutine
and checks what came back (hook results are ``Any`` to the type checker): the kind of result,
and every snapshot's field types and values (:mod:`orderlane.answers`). A bad answer raises
:class:`~orderlane.errors.BrokerAnswerError` naming the adapter, the hook and the field; in a
batch status answer only the order it was about is left out (and logged), the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import pluggy

from orderlane.answers import check_snapshot
from orderlane.contract import (
    Absent,
    AdapterInfo,
    BrokerContext,
    CancelAccepted,
    CancelResult,
    CannotTell,
    Capability,
    Found,
    LookupResult,
    LookupWindow,
    NothingToCancel,
    Permit,
    PushItem,
    RateLimit,
    RequestKind,
    StreamGap,
    describe_error,
    redact,
)
from orderlane.errors import (
    BrokerAnswerError,
    BrokerError,
    BrokerRateLimitError,
    ConfigurationError,
    InvalidSignalError,
    OrderNotFoundError,
)
from orderlane.hooks import await_me_maybe
from orderlane.hookspecs import ADAPTER_HOOKS
from orderlane.model import MIN_PRICE_EXPONENT, Order, OrderSnapshot, Signal, printable

# The value types live in :mod:`orderlane.contract`; they are importable from here too.
__all__ = [
    "Absent",
    "AdapterInfo",
    "Broker",
    "BrokerContext",
    "CancelAccepted",
    "CancelResult",
    "CannotTell",
    "Capability",
    "Found",
    "LookupResult",
    "LookupWindow",
    "NothingToCancel",
    "Permit",
    "PushItem",
    "RateLimit",
    "RequestKind",
    "StreamGap",
    "await_me_maybe",
    "describe_error",
    "redact",
]

T = TypeVar("T")
log = logging.getLogger("orderlane.broker")


def _check_info(info: AdapterInfo, adapter: str) -> None:
    """Refuse adapter info the engine cannot work with, when the engine is built: a timezone
    found bad at the first fill would leave that order unbooked."""

    def bad(field: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"adapter {adapter!r} declares a bad {field}: {problem}")

    if not isinstance(info.timezone, str):
        raise bad("timezone", f"{type(info.timezone).__name__} is not an IANA zone name")
    try:
        ZoneInfo(info.timezone)
    except (ValueError, LookupError, OSError):
        # The value is shown only where the adapter says its option is not secret.
        shown = repr(info.timezone) if "timezone" in info.public_options else "it"
        raise bad("timezone", f"{shown} is no IANA time zone (such as UTC or Asia/Seoul)") from None
    if not isinstance(info.new_order_lag, timedelta) or info.new_order_lag < timedelta(0):
        raise bad("new_order_lag", "it must be a timedelta of 0 or more")
    for field, value, least, most in (
        ("page_size", info.page_size, 1, None),
        ("price_places", info.price_places, 0, -MIN_PRICE_EXPONENT),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise bad(field, f"{value!r} is not a whole number of {least} or more")
        if most is not None and value > most:
            raise bad(field, f"{value} is above {most}")


def _expect(value: Any, types: type | tuple[type, ...], hook: str, adapter: str = "") -> Any:
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " | ".join(t.__name__ for t in types)
        raise BrokerAnswerError(
            f"adapter {adapter!r} hook {hook} returned {type(value).__name__}, expected {names}",
            adapter=adapter,
            operation=hook,
            field="result",
        )
    return value


class Broker:
    """The engine's typed view of its one adapter."""

    def __init__(self, pm: pluggy.PluginManager, plugin: object, ctx: BrokerContext) -> None:
        self.ctx = ctx
        self.name = (pm.get_name(plugin) or type(plugin).__name__).removeprefix("adapter:")
        self._info: AdapterInfo | None = None
        #: Called with ``retry_after`` whenever the broker answers "too many requests".
        self.on_rate_limited: Callable[[float | None], None] | None = None
        # Adapter hooks run on the chosen adapter alone: pluggy's firstresult would stop at the
        # coroutine of an ``async def`` that meant to decline, and no other plugin may answer.
        self._impls: dict[str, Callable[..., Any]] = {}
        #: The arguments each hook's implementation takes (an adapter written before a hook
        #: gained an argument does not take it).
        self._takes: dict[str, frozenset[str]] = {}
        for name in ADAPTER_HOOKS:
            for impl in getattr(pm.hook, name).get_hookimpls():
                if impl.plugin is plugin:
                    self._impls[name] = impl.function
                    self._takes[name] = frozenset((*impl.argnames, *impl.kwargnames))

    def _impl(self, hook: str, *, required: bool = True) -> Callable[..., Any] | None:
        impl = self._impls.get(hook)
        if impl is None and required:
            raise ConfigurationError(f"adapter {self.name!r} does not implement {hook}")
        return impl

    async def _call(self, hook: str, **kwargs: Any) -> Any:
        impl = self._impl(hook)
        assert impl is not None
        return await self._guard(impl(**kwargs))

    async def _guard(self, pending: Any) -> Any:
        try:
            return await await_me_maybe(pending)
        except BrokerRateLimitError as error:
            if self.on_rate_limited is not None:
                self.on_rate_limited(error.retry_after)
            raise

    @property
    def info(self) -> AdapterInfo:
        if self._info is None:
            impl = self._impl("orderlane_adapter_info")
            assert impl is not None
            info = _expect(impl(), AdapterInfo, "orderlane_adapter_info", self.name)
            _check_info(info, self.name)
            self._info = info
        return self._info

    def redact(self, text: str) -> str:
        """``text`` with the values of this adapter's secret options masked (see
        :func:`redact`): reasons, events and logs go through here."""
        return redact(text, self.ctx.options, self.info.public_options)

    def describe(self, error: BaseException) -> str:
        """:func:`describe_error` of ``error``, with secret option values masked and control
        characters escaped: the text reasons, events and log lines carry."""
        return printable(self.redact(describe_error(error)))

    def check_signal(self, signal: Signal) -> None:
        """Refuse (:class:`~orderlane.errors.InvalidSignalError`) a signal this venue cannot
        take as it is: a limit price with more decimal places than the adapter declares."""
        places = self.info.price_places
        price = signal.limit_price
        if places is None or price is None:
            return
        exponent = price.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            unit = "whole units" if places == 0 else f"at most {places} decimal places"
            raise InvalidSignalError(
                f"limit_price {price} has more decimal places than adapter {self.name!r} "
                f"takes ({unit})"
            )

    def supports(self, capability: Capability | str) -> bool:
        return self.info.supports(capability)

    #: Hooks every adapter implements: without them there is no adapter and no order.
    REQUIRED_HOOKS: ClassVar[tuple[str, ...]] = ("orderlane_adapter_info", "orderlane_place_order")
    #: The hook a declared capability promises. The engine falls back quietly where a hook is
    #: missing (a lookup that cannot tell, one status call per order, polling), so a declared
    #: capability without its hook would go unnoticed until the day it matters.
    CAPABILITY_HOOKS: ClassVar[dict[Capability, str]] = {
        Capability.CANCEL: "orderlane_cancel_order",
        Capability.LOOKUP: "orderlane_lookup_order",
        Capability.BATCH_STATUS: "orderlane_order_statuses",
        Capability.PUSH: "orderlane_order_updates",
    }

    def check_capabilities(self) -> None:
        """Refuse an adapter that lacks a required hook or the hook of a capability it declares.

        Called when the engine is built, so a broken adapter fails at once with the hook's name
        (and every conformance scenario fails saying so) instead of misbehaving later.
        """
        name = self.name
        for hook in self.REQUIRED_HOOKS:
            if hook not in self._impls:
                raise ConfigurationError(
                    f"adapter {name!r} does not implement {hook}, which every adapter must"
                )
        info = self.info
        decimals = info.currency_decimals
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 8:
            raise ConfigurationError(
                f"adapter {info.name!r} declares currency_decimals={decimals!r}: give the digits "
                "of its venue's currency after the point, a whole number from 0 (KRW) to 8"
            )
        for capability, hook in self.CAPABILITY_HOOKS.items():
            if capability in info.capabilities and hook not in self._impls:
                raise ConfigurationError(
                    f"adapter {info.name!r} declares capability {capability.value!r} "
                    f"but does not implement {hook}"
                )

    def rate_limits(self) -> list[RateLimit]:
        impl = self._impl("orderlane_rate_limits", required=False)
        if impl is None:
            return []
        limits = impl(ctx=self.ctx)
        if limits is None:
            return []
        return [_expect(limit, RateLimit, "orderlane_rate_limits", self.name) for limit in limits]

    async def start(self) -> None:
        impl = self._impl("orderlane_adapter_start", required=False)
        if impl is not None:
            await await_me_maybe(impl(ctx=self.ctx))

    async def stop(self) -> None:
        impl = self._impl("orderlane_adapter_stop", required=False)
        if impl is not None:
            await await_me_maybe(impl(ctx=self.ctx))

    def check(self, snapshot: Any, operation: str, order: Order | None = None) -> OrderSnapshot:
        """``snapshot`` if it is a usable answer of ``operation`` about ``order``, else
        :class:`~orderlane.errors.BrokerAnswerError` (see :mod:`orderlane.answers`)."""
        return check_snapshot(snapshot, adapter=self.name, operation=operation, order=order)

    async def place_order(self, order: Order) -> OrderSnapshot:
        result = await self._call("orderlane_place_order", ctx=self.ctx, order=order)
        return self.check(result, "orderlane_place_order", order)

    async def cancel_order(self, order: Order) -> CancelResult:
        hook = "orderlane_cancel_order"
        result = await self._call(hook, ctx=self.ctx, order=order)
        _expect(result, (CancelAccepted, NothingToCancel), hook, self.name)
        if isinstance(result, CancelAccepted) and result.snapshot is not None:
            self.check(result.snapshot, hook, order)
        return result  # type: ignore[no-any-return]

    async def order_status(self, order: Order) -> OrderSnapshot:
        result = await self._call("orderlane_order_status", ctx=self.ctx, order=order)
        return self.check(result, "orderlane_order_status", order)

    async def order_statuses(self, orders: Sequence[Order]) -> dict[str, OrderSnapshot]:
        """Usable snapshots by order id; falls back to one status call per order without the
        hook. An order whose answer is bad (or that the adapter maps to a ``BrokerError``) is
        left out and logged with its id: it stays as it is until a later answer is usable."""
        hook = "orderlane_order_statuses"
        impl = self._impl(hook, required=False)
        if impl is None:
            answers: dict[str, Any] = {}
            for each in orders:
                try:
                    answers[each.id] = await self.order_status(each)
                except (BrokerAnswerError, OrderNotFoundError) as error:
                    answers[each.id] = error  # about this order alone: the others go on
            hook = "orderlane_order_status"
        else:
            answers = _expect(
                await self._guard(impl(ctx=self.ctx, orders=list(orders))), Mapping, hook, self.name
            )
        asked = {order.id: order for order in orders}
        usable: dict[str, OrderSnapshot] = {}
        for order_id, answer in answers.items():
            order = asked.get(order_id)
            if order is None:
                log.warning(
                    "adapter %r answered %s about order %r, which was not asked about; ignored",
                    self.name,
                    hook,
                    order_id,
                )
                continue
            try:
                if isinstance(answer, BrokerError):
                    raise answer
                usable[order_id] = self.check(answer, hook, order)
            except BrokerError as error:
                log.error("Order %s left as it is until a usable answer: %s", order_id, error)
        return usable

    def _owned(
        self,
        hook: str,
        owned_broker_ids: frozenset[str],
        owned_windows: Mapping[str, tuple[LookupWindow, ...]] | None,
    ) -> dict[str, Any]:
        """The owned-order arguments of a lookup hook, as far as its implementation takes them."""
        owned: dict[str, Any] = {"owned_broker_ids": owned_broker_ids}
        if "owned_windows" in self._takes.get(hook, ()):
            owned["owned_windows"] = dict(owned_windows or {})
        return owned

    async def lookup_order(
        self,
        order: Order,
        window: LookupWindow,
        owned_broker_ids: frozenset[str],
        owned_windows: Mapping[str, tuple[LookupWindow, ...]] | None = None,
    ) -> LookupResult:
        hook = "orderlane_lookup_order"
        impl = self._impl(hook, required=False)
        if impl is None:
            return CannotTell("the adapter cannot look orders up")
        owned = self._owned(hook, owned_broker_ids, owned_windows)
        result = await self._guard(impl(ctx=self.ctx, order=order, window=window, **owned))
        _expect(result, (Found, Absent, CannotTell), hook, self.name)
        if isinstance(result, Found):
            self.check(result.snapshot, hook, order)
        return result  # type: ignore[no-any-return]

    @property
    def has_batch_lookup(self) -> bool:
        """Whether the adapter looks many orders up in one pass (``orderlane_lookup_orders``)."""
        return "orderlane_lookup_orders" in self._impls

    async def lookup_orders(
        self,
        orders: Sequence[Order],
        windows: Mapping[str, LookupWindow],
        owned_broker_ids: frozenset[str],
        owned_windows: Mapping[str, tuple[LookupWindow, ...]] | None = None,
    ) -> dict[str, LookupResult]:
        """Lookups by order id in one pass where the adapter offers it, else one per order; an
        order the adapter left out is ``CannotTell``."""
        hook = "orderlane_lookup_orders"
        impl = self._impl(hook, required=False)
        if impl is None:
            return {
                order.id: await self.lookup_order(
                    order, windows[order.id], owned_broker_ids, owned_windows
                )
                for order in orders
            }
        owned = self._owned(hook, owned_broker_ids, owned_windows)
        result = await self._guard(
            impl(ctx=self.ctx, orders=list(orders), windows=dict(windows), **owned)
        )
        _expect(result, Mapping, "orderlane_lookup_orders")
        answers: dict[str, LookupResult] = {}
        for order in orders:
            answer = result.get(order.id, CannotTell("the adapter's batch lookup left it out"))
            answers[order.id] = _expect(
                answer, (Found, Absent, CannotTell), "orderlane_lookup_orders"
            )
        return answers

    def order_updates(self) -> AsyncIterator[PushItem] | None:
        """The adapter's push stream, or None when it does not declare the push capability.

        Each pushed snapshot is checked like a polled one; a bad one is logged and turned into a
        :class:`StreamGap`, so the tracker polls and the order is settled by its status.
        """
        impl = self._impl("orderlane_order_updates", required=False)
        if impl is None or not self.supports(Capability.PUSH):
            return None
        return self._checked_updates(impl(ctx=self.ctx))

    async def _checked_updates(self, stream: Any) -> AsyncIterator[PushItem]:
        hook = "orderlane_order_updates"
        async for item in stream:
            if isinstance(item, StreamGap):
                yield item
                continue
            try:
                yield self.check(item, hook)
            except BrokerAnswerError as error:
                log.error("pushed update not booked: %s", error)
                yield StreamGap(f"a pushed update was not usable ({error.field})")
