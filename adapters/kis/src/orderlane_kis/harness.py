"""The conformance harnesses of the KIS adapters: the fake KIS venue on loopback, one per scenario.

Published under the entry-point group ``orderlane.harnesses`` as ``kis-paper`` and ``kis-live``,
so ``orderlane conformance kis-paper`` (and the test modules) drive the real adapters over real
HTTP and WebSocket against :class:`~orderlane_kis.fake.FakeKisVenue`, never KIS.

The venue runs in the test's event loop and keeps the scenario's clock (:meth:`use_clock`), so
its order times, its daily inquiry's dates and its rolling rate-limit window agree with the
engine's fake time. What KIS cannot show is said, not faked: KIS's place answer carries no fill
(``place_answer = "ack"``: scenarios take the fill from the next poll) and its inquiry neither
a commission (``reports_commission = False``) nor a reason for a cancel or refusal of its own
(``reports_reasons = False``).
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from orderlane import Capability, Clock, SystemClock
from orderlane.errors import ConfigurationError
from orderlane.testing.harness import (
    FailKind,
    LookupAnswer,
    RejectKind,
    VenueHarness,
    VenueOperation,
)
from orderlane_kis.adapter import CAPABILITIES
from orderlane_kis.config import Mode
from orderlane_kis.execution import CANCEL_PATH, ORDER_PATH
from orderlane_kis.fake import FakeKisVenue

__all__ = ["KisHarness", "RefusingTransport", "create_live_harness", "create_paper_harness"]

#: The venue's operations that are trading requests (what scenarios count); token, approval
#: and hashkey requests are not.
_TRADING = ("place", "cancel", "inquiry", "balance")
_OPERATIONS: dict[str, tuple[str, ...]] = {
    "place": ("place",),
    "cancel": ("cancel",),
    "status": ("inquiry",),
    "lookup": ("inquiry",),
}
#: How the harness's rejection kinds reach the adapter: KIS's own codes where KIS has one.
_REJECTIONS: dict[str, dict[str, str]] = {
    "paper": {"insufficient_balance": "40250000", "invalid_symbol": "MCA05918"},
    "live": {"insufficient_balance": "APBK0952", "invalid_symbol": "APBK0656"},
}
#: A business refusal with a code KIS does not document (a bad order): OrderValidationError.
_VALIDATION_CODE = "40310000"


class _ScenarioClock:
    """The venue's clock: the real one until the scenario hands its own over."""

    def __init__(self) -> None:
        self.target: Clock = SystemClock()

    def now(self) -> datetime:
        return self.target.now()

    def monotonic(self) -> float:
        return self.target.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.target.sleep(seconds)


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RefusingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, with the faults a network gives: the next scripted requests of a
    path are sent to a loopback port nothing listens on, so the connection is refused for real
    (nothing reaches the venue; the harness counts them, as scenarios expect), and the answers
    of the next scripted place requests are held back until released (a slow broker)."""

    def __init__(self) -> None:
        self._inner: httpx.AsyncHTTPTransport | None = None
        self.refuse: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        self.hold = 0
        self._release = asyncio.Event()

    def __repr__(self) -> str:
        return f"RefusingTransport(refused={dict(self.refused)}, hold={self.hold})"

    def release(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = httpx.AsyncHTTPTransport()
        path = request.url.path
        if self.refuse[path]:
            self.refuse[path] -= 1
            self.refused[path] += 1
            request.url = request.url.copy_with(host="127.0.0.1", port=_closed_port())
        held = path == ORDER_PATH and self.hold > 0
        if held:
            self.hold -= 1
        release = self._release
        response = await self._inner.handle_async_request(request)
        if held:
            await response.aread()
            await release.wait()
        return response

    async def aclose(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.aclose()


class KisHarness:
    """Scripts a :class:`FakeKisVenue` for one scenario; see the module docstring."""

    place_answer = "ack"
    reports_commission = False
    reports_reasons = False
    venue_clock = "scenario"

    def __init__(self, mode: Mode, *, offer_push: bool = True) -> None:
        self.mode: Mode = mode
        self.adapter_name = f"kis-{mode}"
        self.capabilities: frozenset[Capability] = CAPABILITIES
        if offer_push:
            self.capabilities = self.capabilities | {Capability.PUSH}
        self._clock = _ScenarioClock()
        self.venue = FakeKisVenue(mode, clock=self._clock)
        self.transport = RefusingTransport()
        self._token_cache = tempfile.mkdtemp(prefix="orderlane-kis-tokens-")
        self._push = False
        self._declared: tuple[int, float] | None = None
        self._window: tuple[int, float, Callable[[], float]] | None = None

    def __repr__(self) -> str:
        return f"KisHarness({self.mode}, orders={len(self.venue.orders())})"

    def use_clock(self, clock: Clock) -> None:
        """Keep the scenario's clock: order times, inquiry dates and rate-limit windows."""
        self._clock.target = clock

    async def start(self) -> None:
        await self.venue.start()

    async def stop(self) -> None:
        try:
            await self.venue.stop()
        finally:
            shutil.rmtree(self._token_cache, ignore_errors=True)

    def adapter_options(self) -> dict[str, Any]:
        credentials = self.venue.credentials
        options = self.venue.adapter_options(
            self._token_cache,
            timeout="2",
            new_order_lag="0",
            push=self._push,
            transport=self.transport,
        )
        if self._push:
            options["hts_id"] = credentials.hts_id
        if self.mode == "live":
            options["live_trading"] = credentials.account
        if self._declared is not None:
            options["rate_limit"], options["rate_period"] = self._declared
        return options

    # ---------------------------------------------------------------- the next place requests

    def fill_next(self, price: Decimal | None = None, commission: Decimal | None = None) -> None:
        self.venue.fill_next(None if price is None else int(price))

    def partial_fill_next(
        self, quantity: int, price: Decimal | None = None, commission: Decimal | None = None
    ) -> None:
        self.venue.partial_fill_next(quantity, None if price is None else int(price))

    def hold_next(self) -> None:
        self.venue.hold_next()

    def reject_next(self, kind: RejectKind, message: str) -> None:
        code = _REJECTIONS[self.mode].get(kind, _VALIDATION_CODE)
        self.venue.reject_next(msg_cd=code, msg1=message)

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        if kind == "connection":
            self.transport.refuse[ORDER_PATH] += times
            return
        action = {
            "timeout_before": "stall_before",
            "timeout_after": "stall_after",
            "drop_after_accept": "drop_after",
            "garbled": "garbled",
            "rate_limit": "rate_limit",
        }[kind]
        self.venue.add_fault(action, operation="place", times=times)

    def answer_lookup_next(self, answer: LookupAnswer, times: int = 1) -> None:
        if answer == "cannot_tell":
            # The inquiry fails: the adapter cannot tell.
            self.venue.add_fault("http_error", operation="inquiry", times=times, status=503)
        else:
            raise NotImplementedError(
                "the fake KIS venue's inquiry always tells the truth; it cannot answer absent "
                "for an order it holds"
            )

    # ---------------------------------------------------------------- the venue acting

    def fill(
        self,
        broker_order_id: str,
        quantity: int | None = None,
        price: Decimal | None = None,
        commission: Decimal | None = None,
    ) -> None:
        self.venue.fill(broker_order_id, quantity, None if price is None else int(price))

    def cancel_by_venue(self, broker_order_id: str, reason: str) -> None:
        self.venue.cancel_by_venue(broker_order_id)

    def reject_open(self, broker_order_id: str, reason: str) -> None:
        self.venue.reject_open(broker_order_id)

    def forget_order(self, broker_order_id: str) -> None:
        self.venue.forget_order(broker_order_id)

    def repeat_fill_in_next_status(self, broker_order_id: str) -> None:
        """KIS's inquiry carries cumulative figures only: its next answer is the same one."""

    def stale_next_status(self, broker_order_id: str, executions: int) -> None:
        self.venue.stale_next_status(broker_order_id, executions)

    def delay_answer_next(self) -> None:
        self.transport.hold += 1

    def release_answers(self) -> None:
        self.transport.release()

    def fail_next_cancel(self, times: int = 1) -> None:
        self.transport.refuse[CANCEL_PATH] += times

    def refuse_duplicate_next(self) -> None:
        raise NotImplementedError("KIS takes no client order id: it has no duplicates to refuse")

    def malform_next_status(self, broker_order_id: str) -> None:
        self.venue.malform_next_status(broker_order_id)

    def report_late_fill(self, broker_order_id: str, quantity: int) -> None:
        self.venue.report_late_fill(broker_order_id, quantity)

    # ---------------------------------------------------------------- limits and pages

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        self.venue.set_rate_limit(limit, period)
        self._declared = (limit, period)
        self._window = (limit, period, monotonic)

    def set_page_size(self, size: int) -> None:
        """KIS fixes its page (15 paper, 100 live): the venue keeps it."""

    # ---------------------------------------------------------------- push

    def enable_push(self) -> None:
        self._push = True
        self.capabilities = self.capabilities | {Capability.PUSH}

    def drop_pushes(self, count: int) -> None:
        self.venue.drop_notices(count)

    def reconnect_push(self) -> None:
        self.venue.disconnect_notices()

    def push_before_answer_next(self) -> None:
        self.venue.add_fault("notices_first", operation="place")

    # ---------------------------------------------------------------- observation

    def request_count(self, operation: VenueOperation | None = None) -> int:
        names = _TRADING if operation is None else _OPERATIONS[operation]
        count = sum(self.venue.request_count(name) for name in names)
        if operation in (None, "place"):
            count += self.transport.refused[ORDER_PATH]
        if operation in (None, "cancel"):
            count += self.transport.refused[CANCEL_PATH]
        return count

    def requests_made(self) -> list[str]:
        """Every request the venue received, one line each (no header, no body: they carry the
        keys and the account), for ``orderlane demo --adapter kis-paper``."""
        lines = []
        for request in self.venue.recorded_requests():
            tr_id = dict((k.lower(), v) for k, v in request["headers"]).get("tr_id", "")
            answer = "no answer" if request["status"] is None else f"HTTP {request['status']}"
            code = f" {request['msg_cd']}" if request["msg_cd"] else ""
            tr = f" {tr_id}" if tr_id else ""
            lines.append(f"{request['method']} {request['path']}{tr} -> {answer}{code}")
        refused = sum(self.transport.refused.values())
        if refused:
            lines.append(f"({refused} connection(s) refused before reaching the venue)")
        return lines

    def venue_order_ids(self) -> list[str]:
        return [row["odno"] for row in self.venue.orders() if not row.get("orgn_odno")]

    def max_arrivals_in_window(self) -> int:
        if self._window is None:
            return 0
        _, period, _ = self._window
        times = sorted(
            r["monotonic"] for r in self.venue.recorded_requests() if r["operation"] in _TRADING
        )
        most = 0
        start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= period:
                start += 1
            most = max(most, end - start + 1)
        return most

    def rate_limit_answers(self) -> int:
        return int(self.venue.counters().get("rate_limit_answers", 0))


def _create(mode: Mode, options: Mapping[str, Any]) -> VenueHarness:
    if options:
        raise ConfigurationError(f"the kis-{mode} harness takes no options, got {sorted(options)}")
    harness: VenueHarness = KisHarness(mode)
    return harness


def create_paper_harness(options: Mapping[str, Any]) -> VenueHarness:
    """Entry point ``kis-paper`` of ``orderlane.harnesses``."""
    return _create("paper", options)


def create_live_harness(options: Mapping[str, Any]) -> VenueHarness:
    """Entry point ``kis-live`` of ``orderlane.harnesses``: the live adapter (live trading
    enabled for the venue's account) against a fake venue in live mode, never KIS."""
    return _create("live", options)
