"""The conformance harness: a fresh :class:`TemplateVenue` per scenario, handed to the adapter.

Published under ``orderlane.harnesses`` as ``template`` and kept out of the adapter's modules,
so test-only code never loads when the adapter trades. A harness for a broker reached over the
network would start a fake server on loopback in :meth:`TemplateHarness.start` and point the
adapter at it in :meth:`TemplateHarness.adapter_options`; this venue lives in the process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from orderlane import Capability
from orderlane.errors import ConfigurationError
from orderlane.testing.harness import (
    FailKind,
    LookupAnswer,
    RejectKind,
    VenueHarness,
    VenueOperation,
)
from orderlane.testing.venue import HarnessBase

from orderlane_adapter_template import adapter
from orderlane_adapter_template.venue import TemplateVenue

__all__ = ["TemplateHarness", "create_harness"]

#: The venue's refusal code for each rejection the suite asks for.
_REJECTION_CODES = {
    "insufficient_balance": "INSUFFICIENT_FUNDS",
    "invalid_symbol": "UNKNOWN_SYMBOL",
    "validation": "INVALID_ORDER",
}


class TemplateHarness(HarnessBase):
    """Scripts a :class:`TemplateVenue` and tells the adapter to use it. :class:`HarnessBase`
    brings what does not depend on the venue: ``start``/``stop`` for a venue in the process,
    the options that declare the enforced limit, and push members saying there is no stream."""

    adapter_name = "template"
    capabilities: frozenset[Capability] = adapter.CAPABILITIES

    def __init__(self) -> None:
        super().__init__()
        self.venue = TemplateVenue()

    def venue_options(self) -> dict[str, Any]:
        return {"venue": self.venue}  # the adapter talks to this venue and nowhere else

    # ---------------------------------------------------------------- the next place requests

    def fill_next(self, price: Decimal | None = None, commission: Decimal | None = None) -> None:
        self.venue.plan_next("fill", price, commission)

    def partial_fill_next(
        self, quantity: int, price: Decimal | None = None, commission: Decimal | None = None
    ) -> None:
        self.venue.plan_next("partial", quantity, price, commission)

    def hold_next(self) -> None:
        self.venue.plan_next("hold")

    def reject_next(self, kind: RejectKind, message: str) -> None:
        self.venue.plan_next("reject", _REJECTION_CODES[kind], message)

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        self.venue.fail_next(kind, times)

    def answer_lookup_next(self, answer: LookupAnswer, times: int = 1) -> None:
        self.venue.answer_lookup_next(answer, times)

    # ---------------------------------------------------------------- the venue acting on its own

    def fill(
        self,
        broker_order_id: str,
        quantity: int | None = None,
        price: Decimal | None = None,
        commission: Decimal | None = None,
    ) -> None:
        self.venue.execute(broker_order_id, quantity, price, commission)

    def report_commission_in_total(self, broker_order_id: str) -> None:
        self.venue.fees_in_total(broker_order_id)

    def charge(self, broker_order_id: str, commission: Decimal) -> None:
        self.venue.charge(broker_order_id, commission)

    def cancel_by_venue(self, broker_order_id: str, reason: str) -> None:
        self.venue.close(broker_order_id, "cancelled", reason)

    def reject_open(self, broker_order_id: str, reason: str) -> None:
        self.venue.close(broker_order_id, "rejected", reason)

    def forget_order(self, broker_order_id: str) -> None:
        self.venue.forget(broker_order_id)

    # ---------------------------------------------------------------- the next status answers

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        self.venue.script_status(broker_order_id, "repeat")

    def stale_next_status(self, broker_order_id: str, executions: int) -> None:
        self.venue.script_status(broker_order_id, "stale", executions)

    def malform_next_status(self, broker_order_id: str) -> None:
        self.venue.script_status(broker_order_id, "malformed")

    # ---------------------------------------------------------------- the venue's rate limit

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        # The engine learns the limit only through orderlane_rate_limits: without that hook it
        # would send what the venue refuses, and the rate-limit rows would fail for no clear
        # reason. Say which hook is missing instead.
        if not callable(getattr(adapter.TemplateAdapter, "orderlane_rate_limits", None)):
            raise ConfigurationError(
                "the adapter does not implement orderlane_rate_limits, so the engine cannot "
                "learn the rate limit the venue enforces"
            )
        self.venue.enforce_rate_limit(limit, period, monotonic)
        self.declare_rate_limit(limit, period)

    # ---------------------------------------------------------------- the batch status inquiry

    def set_page_size(self, size: int) -> None:
        """The venue's API fixes its page at ``PAGE_SIZE`` orders, so the size stays; the
        adapter declares it, and the scenarios count pages with it."""

    # ---------------------------------------------------------------- late reports

    def report_late_fill(self, broker_order_id: str, quantity: int) -> None:
        record = self.venue.books[broker_order_id]
        ended = record["state"]
        # The venue executes only open orders: reopen it for the execution, then restore the
        # end it had already confirmed.
        record["state"] = "partially_filled"
        try:
            self.venue.execute(broker_order_id, quantity)
        finally:
            record["state"] = ended

    # The template's venue has no stream of order notices: the harness does not declare push,
    # the suite skips the push rows, and HarnessBase's push members say why if called.

    # ---------------------------------------------------------------- slow answers and refusals

    def delay_answer_next(self) -> None:
        self.venue.delay_answer_next()

    def release_answers(self) -> None:
        self.venue.release_answers()

    def fail_next_cancel(self, times: int = 1) -> None:
        self.venue.fail_next_cancel(times)

    def refuse_duplicate_next(self) -> None:
        raise NotImplementedError(
            "the template's venue does not deduplicate client order ids (its adapter does not "
            "declare client_order_id)"
        )

    # ---------------------------------------------------------------- observation

    def request_count(self, operation: VenueOperation | None = None) -> int:
        return self.venue.request_count(operation)

    def venue_order_ids(self) -> list[str]:
        return list(self.venue.books)

    def max_arrivals_in_window(self) -> int:
        return 0 if self.venue.window is None else self.venue.window.busiest()

    def rate_limit_answers(self) -> int:
        return self.venue.rate_limit_answers()


def create_harness(options: Mapping[str, Any]) -> VenueHarness:
    """Entry point ``template`` of ``orderlane.harnesses``; the suite passes no options."""
    if options:
        raise ConfigurationError(f"the template harness takes no options, got {sorted(options)}")
    return TemplateHarness()
