"""The mock adapter's conformance harness: a fresh in-process :class:`MockVenue` per scenario.

Published under the entry-point group ``orderlane.harnesses`` as ``mock``, so the conformance
suite (and ``orderlane conformance mock``) can drive the venue without the adapter carrying any
test-only code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from orderlane import Capability, OrderSnapshot
from orderlane.errors import ConfigurationError
from orderlane.model import Execution
from orderlane.testing.harness import (
    FailKind,
    LookupAnswer,
    RejectKind,
    VenueHarness,
    VenueOperation,
)
from orderlane.testing.venue import HarnessBase
from orderlane_mock.adapter import CAPABILITIES, flag
from orderlane_mock.venue import MockVenue

__all__ = ["MockHarness", "create_harness"]


class MockHarness(HarnessBase):
    """Scripts a :class:`MockVenue` that the adapter is handed as its ``venue`` option.

    ``push`` turns the venue's push stream on at once; ``offer_push`` only declares it, so the
    suite runs the push rows, which turn it on with :meth:`enable_push`, while every other row
    sees an adapter that is polled. The harness the entry point builds offers push.
    ``client_order_id``: the venue deduplicates client order ids and the adapter declares it,
    so the suite checks what the contract says for such a broker (an ambiguous send is sent
    again, not looked up).
    """

    adapter_name = "mock"
    capabilities: frozenset[Capability] = CAPABILITIES

    def __init__(
        self,
        *,
        push: bool = False,
        page_size: int | None = None,
        offer_push: bool = False,
        lookup: Literal["client_id", "attributes"] = "client_id",
        client_order_id: bool = False,
    ) -> None:
        super().__init__()
        self.venue = MockVenue(dedupe_client_ids=client_order_id)
        #: ``attributes``: the venue looks orders up by intent, as a broker without client
        #: order ids does.
        self.venue.lookup_by = lookup
        self._push = False
        if client_order_id:
            self.capabilities = self.capabilities | {Capability.CLIENT_ORDER_ID}
        if offer_push:
            self.capabilities = self.capabilities | {Capability.PUSH}
        if push:
            self.enable_push()
        if page_size is not None:
            self.set_page_size(page_size)

    def __repr__(self) -> str:
        return f"MockHarness(orders={len(self.venue.orders)}, requests={len(self.venue.requests)})"

    def venue_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"venue": self.venue}
        if self._push:
            options["push"] = True
        return options

    # ---------------------------------------------------------------- push and paging

    def delay_answer_next(self) -> None:
        self.venue.delay_answer_next()

    def release_answers(self) -> None:
        self.venue.release_answers()

    def fail_next_cancel(self, times: int = 1) -> None:
        self.venue.fail_next("connection", times=times, operation="cancel")

    def refuse_duplicate_next(self) -> None:
        if not self.venue.dedupe_client_ids:
            raise NotImplementedError(
                "this mock venue does not deduplicate client order ids (build the harness "
                "with client_order_id=True)"
            )
        self.venue.refuse_duplicates += 1

    def enable_push(self) -> None:
        """The adapter streams the venue's order notices and declares ``push``; call it before
        the engine opens (the engine reads the capabilities once)."""
        self._push = True
        self.capabilities = self.capabilities | {Capability.PUSH}

    def set_page_size(self, size: int) -> None:
        """The venue's inquiry answers ``size`` orders per page (one request per page)."""
        self.venue.page_size = size
        self.declare_page_size(size)

    def drop_pushes(self, count: int) -> None:
        self.venue.drop_pushes(count)

    def reconnect_push(self) -> None:
        self.venue.reconnect_push()

    def push_before_answer_next(self) -> None:
        self.venue.push_before_answer_next()

    def pushes_sent(self) -> int:
        """How many order notices the venue sent, lost ones included."""
        return len(self.venue.notices.sent)

    def pushes_dropped(self) -> int:
        return self.venue.notices.dropped

    def fill_next(self, price: Decimal | None = None, commission: Decimal | None = None) -> None:
        self.venue.fill_next(price, commission)

    def partial_fill_next(
        self, quantity: int, price: Decimal | None = None, commission: Decimal | None = None
    ) -> None:
        self.venue.partial_fill_next(quantity, price, commission)

    def hold_next(self) -> None:
        self.venue.hold_next()

    def reject_next(self, kind: RejectKind, message: str) -> None:
        self.venue.reject_next(kind, message)

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        self.venue.fail_next(kind, times=times)

    def answer_lookup_next(self, answer: LookupAnswer, times: int = 1) -> None:
        self.venue.answer_lookup_next(answer, times)

    def report_late_fill(self, broker_order_id: str, quantity: int) -> None:
        order = self.venue.orders[broker_order_id]
        left = order.quantity - order.filled_quantity
        if not 0 < quantity <= left:
            raise ValueError(
                f"cannot report {quantity} of venue order {broker_order_id}: {left} left"
            )
        late = Execution(
            fill_id=f"{broker_order_id}-L{len(order.executions) + 1}",
            quantity=quantity,
            price=self.venue.quote(order.symbol),
            commission=self.venue.commission,
            executed_at=self.venue.clock(),
        )
        order.executions.append(late)  # the order's confirmed end stays as it was
        self.venue.notices.send(order.snapshot())

    def fill(
        self,
        broker_order_id: str,
        quantity: int | None = None,
        price: Decimal | None = None,
        commission: Decimal | None = None,
    ) -> None:
        self.venue.fill(broker_order_id, quantity, price, commission)

    def report_commission_in_total(self, broker_order_id: str) -> None:
        self.venue.report_commission_in_total(broker_order_id)

    def charge(self, broker_order_id: str, commission: Decimal) -> None:
        self.venue.charge(broker_order_id, commission)

    def cancel_by_venue(self, broker_order_id: str, reason: str) -> None:
        self.venue.cancel_by_venue(broker_order_id, reason)

    def reject_open(self, broker_order_id: str, reason: str) -> None:
        self.venue.reject_open(broker_order_id, reason)

    def forget_order(self, broker_order_id: str) -> None:
        self.venue.forget(broker_order_id)

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        self.venue.repeat_fill_in_next_status(broker_order_id)

    def stale_next_status(self, broker_order_id: str, executions: int) -> None:
        self.venue.stale_next_status(broker_order_id, executions)

    def malform_next_status(self, broker_order_id: str) -> None:
        """A float where the execution prices and the notional belong (a JSON number parsed as
        a float)."""
        self.venue.corrupt_next_status(broker_order_id, _float_prices)

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        self.venue.enforce_rate_limit(limit, period, monotonic)
        self.declare_rate_limit(limit, period)

    def request_count(self, operation: VenueOperation | None = None) -> int:
        if operation is None:
            return len(self.venue.requests)
        # The venue files a request its enforced limit refused as "place:rate-limited".
        refused = f"{operation}:rate-limited"
        return sum(1 for r in self.venue.requests if r.operation in (operation, refused))

    def venue_order_ids(self) -> list[str]:
        return list(self.venue.orders)

    def max_arrivals_in_window(self) -> int:
        return self.venue.max_arrivals_in_window()

    def rate_limit_answers(self) -> int:
        return self.venue.rate_limit_rejections


def _float_prices(snapshot: OrderSnapshot) -> OrderSnapshot:
    # Deliberately the wrong type: what the engine must refuse.
    executions = tuple(
        attrs.evolve(e, price=float(e.price))  # type: ignore[arg-type]
        for e in snapshot.executions
    )
    notional: Any = float(snapshot.filled_notional or 0)
    return attrs.evolve(snapshot, executions=executions, filled_notional=notional)


def create_harness(options: Mapping[str, Any]) -> VenueHarness:
    """Entry point ``mock`` of ``orderlane.harnesses``: a harness that offers push (the push rows
    run; the others are polled). Option ``client_order_id`` (default off): the venue
    deduplicates client order ids and the adapter declares it."""
    unknown = set(options) - {"client_order_id"}
    if unknown:
        raise ConfigurationError(
            f"unknown mock harness options {sorted(unknown)}; known: ['client_order_id']"
        )
    client_order_id = flag(options.get("client_order_id", False), "client_order_id")
    return MockHarness(offer_push=True, client_order_id=client_order_id)
