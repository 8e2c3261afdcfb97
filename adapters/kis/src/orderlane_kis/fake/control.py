"""The fake KIS venue's control API, in process and over HTTP.

:class:`FakeKisVenue` is the venue with its control methods. Each method marked ``@control`` is
also served over HTTP, on a port of its own, as ``POST /_fake/<name>`` with its keyword
arguments as a JSON object,
answering ``{"result": ...}`` (HTTP 400 ``{"error": ...}`` for a bad call), so a test drives a
venue in another process through :class:`RemoteVenue` exactly as it drives one in process.
Control requests are not recorded and never count against the venue's rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal, TypeVar, cast

import httpx

from orderlane.bench import max_in_window
from orderlane.clock import Clock
from orderlane_kis.fake.book import Behaviour, Holding, VenueOrder
from orderlane_kis.fake.codes import Answer, Codes
from orderlane_kis.fake.faults import Fault
from orderlane_kis.fake.notices import DRIFTED_COLUMNS, NOTICE_COLUMNS
from orderlane_kis.fake.tokens import Credentials
from orderlane_kis.fake.venue import TRADING_OPERATIONS, Mode, VenueCore
from orderlane_kis.fake.wire import HttpServer, Outcome, Request, Response
from orderlane_kis.krx import kst

__all__ = ["CONTROL_METHODS", "FakeKisVenue", "RemoteVenue", "control"]

F = TypeVar("F", bound=Callable[..., Any])
CONTROL_METHODS: set[str] = set()

RejectKind = Literal["insufficient_cash", "bad_symbol", "off_tick", "market_closed", "not_held"]
_REJECTIONS: dict[Mode, dict[str, Answer]] = {
    "live": {
        "insufficient_cash": Codes.INSUFFICIENT_CASH,
        "bad_symbol": Codes.BAD_SYMBOL,
        "off_tick": Codes.OFF_TICK,
        "market_closed": Codes.MARKET_CLOSED,
        "not_held": Codes.NOT_HELD,
    },
    "paper": {
        "insufficient_cash": Codes.PAPER_INSUFFICIENT_CASH,
        "bad_symbol": Codes.PAPER_BAD_SYMBOL,
        "off_tick": Codes.PAPER_OFF_TICK,
        "market_closed": Codes.PAPER_MARKET_CLOSED,
        "not_held": Codes.PAPER_NOT_HELD,
    },
}
_LAYOUTS = {"standard": NOTICE_COLUMNS, "drifted": DRIFTED_COLUMNS}


def control(method: F) -> F:
    """Mark a method as part of the control API (served under ``/_fake/<name>``)."""
    CONTROL_METHODS.add(method.__name__)
    return method


def order_dict(order: VenueOrder) -> dict[str, Any]:
    """An order as the control API reports it."""
    return {
        "odno": order.odno,
        "account": order.account,
        "symbol": order.symbol,
        "side": "buy" if order.side == "02" else "sell",
        "kind": order.kind,
        "original": order.original,
        "ord_dvsn": order.ord_dvsn,
        "quantity": order.quantity,
        "price": order.price,
        "exchange": order.exchange,
        "filled": order.filled,
        "amount": order.amount,
        "cancelled": order.cancelled,
        "rejected": order.rejected,
        "remaining": max(order.remaining, 0),
        "executions": [[e.quantity, e.price, e.at.isoformat()] for e in order.executions],
        "accepted_at": order.accepted_at.isoformat(),
        "tr_id": order.tr_id,
    }


class FakeKisVenue(VenueCore):
    """The fake KIS venue (see :mod:`orderlane_kis.fake`)."""

    def __init__(self, mode: Mode = "paper", *, control_port: int = 0, **options: Any) -> None:
        super().__init__(mode, **options)
        self._control = HttpServer(self._serve_control, self.host, control_port)

    @property
    def control_url(self) -> str:
        """Where the control API listens (its own port, so it stays up while the REST port
        refuses connections)."""
        return f"http://{self.host}:{self._control.port}"

    async def start(self) -> None:
        await super().start()
        await self._control.start()

    async def stop(self) -> None:
        await self._control.stop()
        await super().stop()

    async def __aenter__(self) -> FakeKisVenue:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ description

    @control
    def describe(self) -> dict[str, Any]:
        """Where the venue listens and the credentials of its default app."""
        return {
            "mode": self.mode,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "control_url": self.control_url,
            "app_key": self.credentials.app_key,
            "app_secret": self.credentials.app_secret,
            "account": self.credentials.account,
            "hts_id": self.credentials.hts_id,
            "page_size": self.trading.page_size,
            "rate_limit": list(self.rate_limit) if self.rate_limit else None,
        }

    # ------------------------------------------------------------------ market and accounts

    @control
    def set_quote(self, symbol: str, price: int) -> None:
        """Move ``symbol``'s quote; resting limit orders it crosses fill at their price."""
        self._instrument(symbol)
        self.book.set_quote(symbol, int(price))

    @control
    def add_instrument(self, symbol: str, name: str, price: int) -> None:
        self.book.add_instrument(symbol, name, int(price))

    @control
    def add_app(
        self, account: str, hts_id: str, cash: int = 100_000_000, mode: Mode | None = None
    ) -> dict[str, str]:
        """Register another app key (for another account, or a paper key on a live venue)."""
        credentials = Credentials.generate(account, hts_id)
        self._add_app(credentials, mode or self.mode, int(cash))
        return {"app_key": credentials.app_key, "app_secret": credentials.app_secret}

    @control
    def set_cash(self, cash: int, account: str | None = None) -> None:
        self._account(account).cash = int(cash)

    @control
    def set_holding(
        self, symbol: str, quantity: int, price: int | None = None, account: str | None = None
    ) -> None:
        """Hold ``quantity`` of ``symbol`` bought at ``price`` (default: the quote)."""
        holder = self._account(account)
        quote = self._instrument(symbol).quote if price is None else int(price)
        if int(quantity) <= 0:
            holder.holdings.pop(symbol, None)
        else:
            holder.holdings[symbol] = Holding(int(quantity), int(quantity) * quote)

    @control
    def account(self, account: str | None = None) -> dict[str, Any]:
        """Cash and holdings of an account (default: the default app's)."""
        holder = self._account(account)
        return {
            "account": holder.number,
            "cash": holder.cash,
            "available_cash": self.book.available_cash(holder),
            "holdings": {
                symbol: {"quantity": h.quantity, "cost": h.cost}
                for symbol, h in holder.holdings.items()
            },
        }

    @control
    def set_market_hours(self, enabled: bool = True, holidays: list[str] | None = None) -> None:
        """Refuse orders outside 09:00-15:30 KST on business days (``holidays``: YYYY-MM-DD)."""
        self.book.market_hours = bool(enabled)
        self.book.holidays = frozenset(date.fromisoformat(day) for day in holidays or [])

    # ------------------------------------------------------------------ the next orders

    @control
    def fill_next(self, price: int | None = None) -> None:
        """The next order fills in full at once, at ``price`` (default: the quote)."""
        self.book.script.append(Behaviour("fill", price=_price(price)))

    @control
    def partial_fill_next(self, quantity: int, price: int | None = None) -> None:
        """The next order fills ``quantity`` at once and the rest stays open (quotes never fill
        it; :meth:`fill` does)."""
        self.book.script.append(Behaviour("partial", int(quantity), _price(price)))

    @control
    def hold_next(self) -> None:
        """The next order is accepted and stays open until a test acts on it."""
        self.book.script.append(Behaviour("hold"))

    @control
    def reject_next(
        self, kind: RejectKind | None = None, msg_cd: str | None = None, msg1: str | None = None
    ) -> None:
        """The next order is refused with KIS's answer for ``kind``, or with ``msg_cd``/``msg1``
        of your own (``rt_cd`` "1")."""
        if kind is not None:
            answer = _REJECTIONS[self.mode][kind]
        elif msg_cd is not None:
            answer = Answer("1", msg_cd, msg1 or "주문이 거부되었습니다.")
        else:
            raise ValueError("reject_next needs a kind or a msg_cd")
        if msg1 is not None:
            answer = answer.with_message(msg1)
        self.book.script.append(Behaviour("reject", answer=answer))

    @control
    def set_daily_numbers(self, enabled: bool = True) -> None:
        """Number each KST day's orders from the venue's first number again, so an order
        number names one order only within its day (an earlier day's order keeps showing in
        the inquiry for its day). Off by default: numbers run on across days."""
        self.book.daily_numbers = bool(enabled)

    @control
    def clear_script(self) -> None:
        """Forget what the next orders were scripted to do (they match on quotes again)."""
        self.book.script.clear()

    # ------------------------------------------------------------------ acting on open orders

    @control
    def fill(self, odno: str, quantity: int | None = None, price: int | None = None) -> None:
        """Execute ``quantity`` (default: all that is open) of an order at ``price`` (default:
        the quote)."""
        order = self._order(odno)
        quote = self._instrument(order.symbol).quote
        amount = order.remaining if quantity is None else int(quantity)
        self.book.execute(order, amount, quote if price is None else int(price))

    @control
    def cancel_by_venue(self, odno: str) -> None:
        self.book.cancel_by_venue(self._order(odno).odno)

    @control
    def reject_open(self, odno: str) -> None:
        self.book.reject_open(self._order(odno).odno)

    @control
    def forget_order(self, odno: str) -> None:
        self.book.forget(self._order(odno).odno)

    @control
    def report_late_fill(self, odno: str, quantity: int, price: int | None = None) -> None:
        """An execution of ``quantity`` made just before a cancel the venue already confirmed:
        the order stays cancelled, and the daily inquiry and a fill notice now carry it."""
        order = self._order(odno)
        quote = self._instrument(order.symbol).quote
        self.book.report_late_fill(
            order.odno, int(quantity), quote if price is None else int(price)
        )

    @control
    def stale_next_status(self, odno: str, executions: int) -> None:
        """The next daily-inquiry row of the order shows it as it stood after its first
        ``executions`` executions (a lagging answer)."""
        self.book.stale[self._order(odno).odno] = int(executions)

    @control
    def malform_next_status(self, odno: str) -> None:
        """The next daily-inquiry row of the order carries amounts that are no amounts
        (``avg_prvs`` "NaN", a negative ``tot_ccld_amt``), as a broker's slip does."""
        self.book.malformed.add(self._order(odno).odno)

    @control
    def orders(self) -> list[dict[str, Any]]:
        """Every order row the venue holds (cancels and modifies included), oldest first."""
        return [order_dict(order) for order in self.book.orders.values()]

    # ------------------------------------------------------------------ faults

    @control
    def add_fault(
        self,
        action: str,
        operation: str | None = None,
        times: int = 1,
        seconds: float = 0.0,
        status: int = 500,
        msg_cd: str = "EGW00301",
        processed: bool | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` requests of ``operation`` (see
        :mod:`orderlane_kis.fake.faults` for the actions)."""
        self.faults.append(
            Fault(action, operation, int(times), float(seconds), int(status), msg_cd, processed)  # type: ignore[arg-type]
        )

    def add_raw_answer(
        self,
        operation: str,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        processed: bool = False,
    ) -> None:
        """Answer the next request of ``operation`` with exactly ``body`` (in process only: the
        bytes need not be text, so there is no control-API twin)."""
        self.faults.append(
            Fault(
                "raw",
                operation,
                status=status,
                processed=processed,
                body=body,
                content_type=content_type,
            )
        )

    @control
    def clear_faults(self) -> None:
        self.faults.clear()

    @control
    def expire_tokens(self, lapsed: bool = False) -> None:
        """Every token issued so far answers ``EGW00123``; the next token request (once the
        one-a-minute throttle allows it) issues a new one. ``lapsed``: the tokens' day ran
        out, as it does at KIS, so the throttle does not hold the next request back."""
        self.tokens.expire_all(bool(lapsed))

    @control
    def set_inquiry_lag(self, seconds: float) -> None:
        """New orders show in the daily inquiry only ``seconds`` after they were accepted."""
        self.book.inquiry_lag = float(seconds)

    @control
    def set_rate_limit(self, limit: int | None, period: float = 1.0, status: int = 500) -> None:
        """Refuse with ``EGW00201`` (HTTP ``status``) a trading request that would put more than
        ``limit`` into one rolling ``period`` per app key; None: no limit."""
        self.rate_limit = None if limit is None else (int(limit), float(period))
        self.rate_limit_status = int(status)

    @control
    def set_page_size(self, size: int) -> None:
        self.trading.page_size = int(size)

    @control
    def drop_notices(self, count: int) -> None:
        """Lose the next ``count`` notices on the way."""
        self.notices.drop_next += int(count)

    @control
    def hold_notices(self) -> None:
        """Keep the notices made from now on at the venue, as notices still on their way, until
        :meth:`release_notices`."""
        self.notices.hold()

    @control
    def release_notices(self) -> int:
        """Send the notices held, in the order they were made, to the sessions subscribed now,
        each with the execution time (``STCK_CNTG_HOUR``) it was made with, and send notices at
        once again; how many were released."""
        return self.notices.release()

    @control
    def set_notice_layout(self, layout: str | list[str] = "standard") -> None:
        """Send notices in another column order: "standard", "drifted" (ODER_QTY 4th, ACNT_NO2
        17th, as an older KIS example has it) or a list of column names."""
        if isinstance(layout, str):
            self.notices.columns = _LAYOUTS[layout]
        else:
            self.notices.columns = tuple(layout)

    @control
    def disconnect_notices(self) -> None:
        """Drop every notice session (clients reconnect)."""
        self.notices.disconnect_all()

    @control
    def send_pingpong(self) -> None:
        self.notices.send_pingpong()

    @control
    async def refuse_connections(self) -> None:
        """Stop listening for REST requests (connections are refused) and drop open ones."""
        await self.http.pause()

    @control
    async def accept_connections(self) -> None:
        await self.http.resume()

    # ------------------------------------------------------------------ time

    @control
    def set_time(self, now: str, monotonic: float | None = None) -> None:
        """Stand still at ``now`` (ISO 8601 with offset) and ``monotonic`` seconds until set
        again: a venue in another process takes a scenario's clock this way."""
        self.clock.set(datetime.fromisoformat(now), None if monotonic is None else float(monotonic))

    @control
    def advance_time(self, seconds: float) -> None:
        self.clock.advance(float(seconds))

    @control
    def release_time(self) -> None:
        """Follow the real clock (or the one given at construction) again."""
        self.clock.release()

    @control
    def time(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "now": now.isoformat(),
            "kst": kst(now).isoformat(),
            "monotonic": self.clock.monotonic(),
        }

    # ------------------------------------------------------------------ observation

    @control
    def recorded_requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Every request received (of ``operation``), in arrival order."""
        return [r.to_dict() for r in self.requests if operation is None or r.operation == operation]

    @control
    def request_count(self, operation: str | None = None) -> int:
        return sum(1 for r in self.requests if operation is None or r.operation == operation)

    @control
    def notice_messages(self) -> list[dict[str, str]]:
        """WebSocket messages in and out (notices in plaintext)."""
        return [
            {"direction": m.direction, "text": m.text, "at": m.at.isoformat()}
            for m in self.notices.messages
        ]

    @control
    def counters(self) -> dict[str, int]:
        return {
            "rate_limit_answers": self.rate_limit_answers,
            "requests": len(self.requests),
            "pongs": self.notices.pongs,
        }

    @control
    def max_arrivals_in_window(self, period: float | None = None) -> int:
        """The most trading requests (refused ones included) that arrived within one window
        ``[t, t + period)`` (default: the rate limit's period)."""
        if period is None:
            period = self.rate_limit[1] if self.rate_limit else 1.0
        times = [r.monotonic for r in self.requests if r.operation in TRADING_OPERATIONS]
        return max_in_window(times, float(period))

    def use_clock(
        self, clock: Clock | None = None, monotonic: Callable[[], float] | None = None
    ) -> None:
        """Keep ``clock``'s time (in process only), or read seconds from ``monotonic`` alone
        (a scenario's clock handed to a rate limit)."""
        if clock is not None:
            self.clock.base = clock
        self.clock.use_monotonic(monotonic)

    @control
    def reset_record(self) -> None:
        self.requests.clear()
        self.notices.messages.clear()
        self.rate_limit_answers = 0

    # ------------------------------------------------------------------ helpers

    def _account(self, account: str | None) -> Any:
        number = account or self.credentials.account
        if number not in self.book.accounts:
            raise ValueError(f"no account {number!r} at the venue")
        return self.book.accounts[number]

    def _instrument(self, symbol: str) -> Any:
        if symbol not in self.book.instruments:
            raise ValueError(f"no instrument {symbol!r} at the venue")
        return self.book.instruments[symbol]

    def _order(self, odno: str) -> VenueOrder:
        key = f"{int(odno):010d}" if str(odno).isdigit() else str(odno)
        if key not in self.book.orders:
            raise ValueError(f"no order {odno!r} at the venue")
        return self.book.orders[key]

    async def _serve_control(self, request: Request) -> Outcome:
        name = request.path.removeprefix("/_fake/")
        if request.method != "POST" or name not in CONTROL_METHODS:
            return _control_answer(404, {"error": f"no control method {name!r}"})
        try:
            arguments = json.loads(request.body or b"{}")
            if not isinstance(arguments, dict):
                raise TypeError("arguments must be a JSON object")
            result = getattr(self, name)(**arguments)
            if hasattr(result, "__await__"):
                result = await result
        except (TypeError, ValueError, KeyError) as error:
            return _control_answer(400, {"error": f"{type(error).__name__}: {error}"})
        return _control_answer(200, {"result": result})


def _control_answer(status: int, body: dict[str, Any]) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(status, [("Content-Type", "application/json; charset=UTF-8")], data)


def _price(price: int | None) -> int | None:
    return None if price is None else int(price)


class RemoteVenue:
    """Drives a fake KIS venue in another process over its control API::

    venue = RemoteVenue(control_url)  # printed by ``orderlane fake-kis serve``
    venue.call("set_quote", symbol="005930", price=71_000)
    orders = venue.call("orders")
    """

    def __init__(self, control_url: str, timeout: float = 10.0) -> None:
        self.control_url = control_url.rstrip("/")
        self._timeout = timeout

    def call(self, name: str, **arguments: Any) -> Any:
        if name not in CONTROL_METHODS:
            raise ValueError(f"no control method {name!r}")
        response = httpx.post(
            f"{self.control_url}/_fake/{name}", json=arguments, timeout=self._timeout
        )
        return self._result(response)

    async def acall(self, name: str, **arguments: Any) -> Any:
        if name not in CONTROL_METHODS:
            raise ValueError(f"no control method {name!r}")
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(f"{self.control_url}/_fake/{name}", json=arguments)
        return self._result(response)

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        body = cast(dict[str, Any], response.json())
        if response.status_code != 200:
            raise ValueError(body.get("error", response.text))
        return body["result"]
