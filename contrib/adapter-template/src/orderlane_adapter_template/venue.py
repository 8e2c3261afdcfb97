"""The template's broker: an in-process venue that speaks a small wire format of its own.

It stands in for your broker's API. Requests and answers are plain dicts, as a JSON API's would
be; transport trouble surfaces as the exceptions an HTTP client raises (``ConnectionRefusedError``,
``TimeoutError``, ``ConnectionResetError``) and refusals as :class:`VenueError` with a code. The
adapter (:mod:`orderlane_adapter_template.adapter`) turns all of that into orderlane's types,
which is exactly the work a real adapter does. Replace this module with your broker's client.

The scripting methods (``*_next``, ``fill``, ``cancel_by_venue`` ...) are what the conformance
harness drives; a real broker has none of them, which is why the harness is a fake server.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from orderlane.testing.venue import RollingWindow

__all__ = ["PAGE_SIZE", "TemplateVenue", "VenueError"]

#: The most orders one inquiry page holds.
PAGE_SIZE = 20

Record = dict[str, Any]


class VenueError(Exception):
    """The venue's refusal: an error code and a message, as a broker's error body carries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TemplateVenue:
    """A scriptable venue: it fills every order at once at its quote unless told otherwise, and
    counts every request that reaches it. Use it from one event loop only."""

    def __init__(
        self,
        *,
        quote: Decimal = Decimal(72000),
        commission: Decimal = Decimal(100),
        clock: Callable[[], datetime] = _utc_now,
        id_prefix: str = "T",
    ) -> None:
        self.quote = quote
        self.commission = commission
        self.clock = clock
        self.id_prefix = id_prefix
        self.books: dict[str, Record] = {}  # order number -> the venue's record
        #: (operation, refused by the rate limit) for every request that reached the venue.
        self.requests: list[tuple[str, bool]] = []
        self._numbers = itertools.count(1)
        self._plans: collections.deque[tuple[Any, ...]] = collections.deque()
        self._failures: collections.deque[str] = collections.deque()
        self._lookup_answers: collections.deque[str] = collections.deque()
        self._status_answers: dict[str, collections.deque[tuple[str, int]]] = {}
        self.window: RollingWindow | None = None  # the rate limit, once enforced
        self._cancel_failures = 0
        self._delayed_answers = 0
        self._answer_gates: list[asyncio.Event] = []
        self._gate: asyncio.Event | None = None

    # ---------------------------------------------------------------- the broker's API

    def submit(self, request: Record) -> Record | str:
        """Take a new order; answers its record (or, scripted, something unreadable)."""
        failure = self._failures.popleft() if self._failures else None
        if failure == "connection":  # refused: nothing arrived, but the attempt is counted
            self.requests.append(("place", False))
            raise ConnectionRefusedError("connection refused")
        self._arrive("place")
        if failure == "rate_limit":
            raise VenueError("RATE_LIMITED", "too many requests")
        if failure == "timeout_before":
            raise TimeoutError("no answer")
        if failure is None and self._plans and self._plans[0][0] == "reject":
            _, code, message = self._plans.popleft()
            raise VenueError(code, message)
        record = self._accept(request)
        if self._delayed_answers:
            self._delayed_answers -= 1
            self._gate = asyncio.Event()
            self._answer_gates.append(self._gate)
        if failure == "timeout_after":
            raise TimeoutError("no answer")
        if failure == "drop_after_accept":
            raise ConnectionResetError("connection reset by peer")
        if failure == "garbled":
            return "<html><body>502 Bad Gateway</body></html>"
        return self._copy(record)

    async def answer_arrives(self) -> None:
        """The time the last answer takes to come back (a slow broker's may take long)."""
        gate, self._gate = self._gate, None
        if gate is not None:
            await gate.wait()

    def cancel(self, order_no: str) -> Record:
        if self._cancel_failures:
            self._cancel_failures -= 1
            self.requests.append(("cancel", False))
            raise ConnectionRefusedError("connection refused")
        self._arrive("cancel")
        record = self._get(order_no)
        if record["state"] not in ("accepted", "partially_filled"):
            raise VenueError("NOT_OPEN", f"order {order_no} is {record['state']}")
        record["state"], record["message"] = "cancelled", "cancelled on request"
        return self._copy(record)

    def order(self, order_no: str) -> Record:
        """One order's record (the scripted answer first, if any)."""
        self._arrive("status")
        return self._answer(self._get(order_no))

    def orders(self, order_nos: list[str]) -> list[Record]:
        """One page of the order inquiry: the records it knows of, at most PAGE_SIZE."""
        self._arrive("status")
        if len(order_nos) > PAGE_SIZE:
            raise VenueError("PAGE_TOO_LARGE", f"at most {PAGE_SIZE} orders per inquiry")
        return [self._answer(self.books[no]) for no in order_nos if no in self.books]

    def day_orders(self, page: int) -> tuple[list[Record], bool]:
        """Page ``page`` (from 0) of every order the venue took today, at most PAGE_SIZE, and
        whether more pages follow (a batch lookup reads these instead of one find per order)."""
        self._arrive("lookup")
        answer = self._lookup_answers.popleft() if self._lookup_answers else None
        if answer == "cannot_tell":
            raise TimeoutError("the inquiry did not answer")
        if answer == "absent":
            return [], False
        records = list(self.books.values())
        start = page * PAGE_SIZE
        chunk = [self._copy(r) for r in records[start : start + PAGE_SIZE]]
        return chunk, start + PAGE_SIZE < len(records)

    def find(self, client_id: str) -> Record:
        """Every order the venue holds under ``client_id``, and whether the inquiry is complete
        (a venue whose order book is being rebuilt answers incomplete)."""
        self._arrive("lookup")
        answer = self._lookup_answers.popleft() if self._lookup_answers else None
        if answer == "cannot_tell":
            return {"orders": [], "complete": False}
        found = [self._copy(r) for r in self.books.values() if r["client_id"] == client_id]
        return {"orders": [] if answer == "absent" else found, "complete": True}

    # ---------------------------------------------------------------- scripting

    def plan_next(self, *plan: Any) -> None:
        """What the next accepted order does: ("fill", price, fee), ("partial", quantity,
        price, fee), ("hold",) or ("reject", code, message)."""
        self._plans.append(plan)

    def fail_next(self, kind: str, times: int = 1) -> None:
        self._failures.extend([kind] * times)

    def fail_next_cancel(self, times: int = 1) -> None:
        """Refuse the next ``times`` cancel requests before they arrive."""
        self._cancel_failures += times

    def delay_answer_next(self) -> None:
        """Hold back the answer to the next accepted order until :meth:`release_answers`."""
        self._delayed_answers += 1

    def release_answers(self) -> None:
        gates, self._answer_gates = self._answer_gates, []
        for gate in gates:
            gate.set()

    def answer_lookup_next(self, answer: str, times: int = 1) -> None:
        self._lookup_answers.extend([answer] * times)

    def script_status(self, order_no: str, kind: str, executions: int = 0) -> None:
        """The next status answer for the order: ("repeat", 0), ("stale", executions) or
        ("malformed", 0): "NaN" where its prices belong, as a venue's slip gives."""
        record = self._get(order_no)
        if kind == "repeat" and not record["executions"]:
            raise ValueError(f"order {order_no} has no execution to repeat")
        if not 0 <= executions <= len(record["executions"]):
            raise ValueError(f"order {order_no} has fewer than {executions} executions")
        self._status_answers.setdefault(order_no, collections.deque()).append((kind, executions))

    def execute(
        self,
        order_no: str,
        quantity: int | None = None,
        price: Decimal | None = None,
        fee: Decimal | None = None,
    ) -> None:
        """Execute ``quantity`` (default: all that is left) of an open order."""
        record = self._get(order_no)
        left = record["qty"] - record["filled_qty"]
        size = left if quantity is None else quantity
        if record["state"] not in ("accepted", "partially_filled") or not 0 < size <= left:
            raise ValueError(f"cannot execute {size} of order {order_no} ({record['state']})")
        price = self.quote if price is None else price
        fee = self.commission if fee is None else fee
        record["executions"].append(
            {
                "exec_id": f"{order_no}-E{len(record['executions']) + 1}",
                "qty": size,
                "price": str(price),
                "fee": "0" if record.get("fees_in_total") else str(fee),
                "time": self.clock().isoformat(),
            }
        )
        record["filled_qty"] += size
        record["filled_amount"] = str(Decimal(record["filled_amount"]) + price * size)
        record["fees"] = str(Decimal(record["fees"]) + fee)
        record["state"] = "filled" if record["filled_qty"] == record["qty"] else "partially_filled"

    def fees_in_total(self, order_no: str) -> None:
        """From now on the order's executions carry no fee of their own: the fee shows only
        in the order's total, as some brokers report it."""
        self._get(order_no)["fees_in_total"] = True

    def charge(self, order_no: str, fee: Decimal) -> None:
        """Charge the order ``fee`` more with no execution (a fee settled after the fill)."""
        record = self._get(order_no)
        record["fees"] = str(Decimal(record["fees"]) + fee)

    def close(self, order_no: str, state: str, message: str) -> None:
        """The venue ends an order on its own (``cancelled`` or ``rejected``)."""
        record = self._get(order_no)
        record["state"], record["message"] = state, message

    def forget(self, order_no: str) -> None:
        self._get(order_no)
        del self.books[order_no]

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        """Refuse any request that would put more than ``limit`` into a rolling window."""
        self.window = RollingWindow(limit, period, monotonic)

    # ---------------------------------------------------------------- observation

    def request_count(self, operation: str | None = None) -> int:
        return sum(1 for name, _ in self.requests if operation in (None, name))

    def rate_limit_answers(self) -> int:
        return sum(1 for _, refused in self.requests if refused)

    # ---------------------------------------------------------------- inside the venue

    def _arrive(self, operation: str) -> None:
        refused = self.window is not None and not self.window.arrive()
        self.requests.append((operation, refused))
        if refused:
            raise VenueError("RATE_LIMITED", "too many requests")

    def _accept(self, request: Record) -> Record:
        order_no = f"{self.id_prefix}{next(self._numbers):08d}"
        record: Record = {
            **request,
            "order_no": order_no,
            "state": "accepted",
            "filled_qty": 0,
            "filled_amount": "0",
            "fees": "0",
            "executions": [],
            "message": None,
            "time": self.clock().isoformat(),
        }
        self.books[order_no] = record
        plan = self._plans.popleft() if self._plans else ("fill", None, None)
        if plan[0] == "fill":
            self.execute(order_no, None, plan[1], plan[2])
        elif plan[0] == "partial":
            self.execute(order_no, plan[1], plan[2], plan[3])
        return record

    def _answer(self, record: Record) -> Record:
        scripted = self._status_answers.get(record["order_no"])
        if not scripted:
            return self._copy(record)
        kind, count = scripted.popleft()
        answer = self._copy(record)
        if kind == "repeat":  # the last execution reported twice, the totals unchanged
            answer["executions"].append(dict(answer["executions"][-1]))
            return answer
        if kind == "malformed":
            for execution in answer["executions"]:
                execution["price"] = "NaN"
            answer["filled_amount"] = "NaN"
            return answer
        executions = answer["executions"][:count]  # as the order stood after ``count``
        filled = sum(e["qty"] for e in executions)
        amount = sum((Decimal(e["price"]) * e["qty"] for e in executions), Decimal(0))
        fees = sum((Decimal(e["fee"]) for e in executions), Decimal(0))
        state = "accepted" if not filled else "partially_filled"
        if filled == answer["qty"]:
            state = "filled"
        answer.update(
            executions=executions,
            filled_qty=filled,
            filled_amount=str(amount),
            fees=str(fees),
            state=state,
            message=None,
        )
        return answer

    def _get(self, order_no: str) -> Record:
        try:
            return self.books[order_no]
        except KeyError:
            raise VenueError("NO_SUCH_ORDER", f"no order {order_no}") from None

    @staticmethod
    def _copy(record: Record) -> Record:
        return {**record, "executions": [dict(e) for e in record["executions"]]}
