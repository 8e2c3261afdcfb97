"""The loopback HTTP venue in a process of its own, scripted over a control API.

A broker's fake often runs as its own process (a server started once for a test session, or one
written in another language). The test's event loop cannot see what such a venue does, so the
scenario's fake clock cannot tell when a request is on its way to it: the venue keeps real time
(``venue_clock = "real"``), times its rate limit with its own ``time.monotonic()`` (one clock for
every process on Linux), and the rows that measure the venue's time run on real time.

The process (``python loopback_process.py``) serves a control API on 127.0.0.1 and prints its URL:
``POST /venues`` starts a fresh venue (a :class:`~loopback_venue.LoopbackHarness` and its HTTP
server on a port of its own) and answers its id and base URL; ``POST /venues/ID/MEMBER`` calls a
scripting or observation member of that venue's harness with JSON keyword arguments and answers
its result; ``DELETE /venues/ID`` stops it. :class:`ProcessHarness` is the harness the suite
drives: every member the venue must act on goes over that API, the rest (the adapter's options
and transport, the declared limit and page size) stays in the test's process.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from orderlane import Capability
from orderlane.testing import FailKind
from orderlane.testing.venue import HarnessBase
from orderlane_mock.adapter import CAPABILITIES
from orderlane_mock.harness import MockHarness
from orderlane_mock.venue import VenueRequest

HERE = Path(__file__).resolve().parent
#: Members of the harness that act on the venue or observe it: called in the venue's process.
VENUE_MEMBERS = (
    "fill_next",
    "partial_fill_next",
    "hold_next",
    "reject_next",
    "answer_lookup_next",
    "fill",
    "cancel_by_venue",
    "reject_open",
    "forget_order",
    "repeat_fill_in_next_status",
    "stale_next_status",
    "malform_next_status",
    "report_late_fill",
    "report_commission_in_total",
    "charge",
    "delay_answer_next",
    "release_answers",
    "fail_next_cancel",
    "refuse_duplicate_next",
    "request_count",
    "venue_order_ids",
    "max_arrivals_in_window",
    "rate_limit_answers",
)
#: Arguments that carry money: decimal text on the wire, Decimal again in the venue's process.
MONEY = frozenset({"price", "commission"})


# ---------------------------------------------------------------- the venue's process


class ControlServer:
    """Serves the control API and the venues it starts, all in this process's event loop."""

    def __init__(self) -> None:
        self.venues: dict[str, Any] = {}
        self.ids = itertools.count(1)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from loopback_venue import read_request, write_answer

        try:
            while request := await read_request(reader):
                method, path, _, body = request
                try:
                    status, answer = 200, await self.act(method, path.strip("/").split("/"), body)
                except Exception as error:  # the test's side raises it again
                    status, answer = 500, {"error": f"{type(error).__name__}: {error}"}
                await write_answer(writer, status, answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def act(self, method: str, parts: list[str], body: Any) -> Any:
        from loopback_venue import LoopbackHarness

        if (method, parts) == ("POST", ["venues"]):
            harness = LoopbackHarness(client_order_id=bool(body["client_order_id"]))
            await harness.server.start()
            venue_id = str(next(self.ids))
            self.venues[venue_id] = harness
            port = harness.server.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return {"id": venue_id, "base_url": f"http://127.0.0.1:{port}"}
        if method == "DELETE" and len(parts) == 2:
            await self.venues.pop(parts[1]).server.stop()
            return None
        harness = self.venues[parts[1]]
        member, arguments = parts[2], dict(body or {})
        for name in MONEY & set(arguments):
            if arguments[name] is not None:
                arguments[name] = Decimal(arguments[name])
        if member == "enforce_rate_limit":  # timed by this process's own clock
            harness.venue.enforce_rate_limit(arguments["limit"], arguments["period"])
            return None
        if member == "set_page_size":
            harness.venue.page_size = arguments["size"]
            return None
        if member == "fail_next":  # the venue's part; a refused connection never reaches it
            MockHarness.fail_next(harness, arguments["kind"], arguments["times"])
            return None
        if member == "record_refused":
            venue = harness.venue
            venue.requests.append(VenueRequest("place", None, None, venue.clock(), False))
            return None
        if member not in VENUE_MEMBERS:
            raise ValueError(f"no venue member {member!r}")
        return getattr(harness, member)(**arguments)


async def main() -> None:
    control = ControlServer()
    server = await asyncio.start_server(control.serve, "127.0.0.1", 0)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    # Serve until the test's process closes our stdin (it ended, or stops us).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


# ---------------------------------------------------------------- the test's process


@contextmanager
def venue_process() -> Iterator[str]:
    """Start the venues' process; yields its control URL and stops it afterwards."""
    process = subprocess.Popen(  # this very file, with this interpreter
        [sys.executable, str(Path(__file__))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"the venue process said {url!r}"
        yield url
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ProcessHarness(HarnessBase):
    """Drives a venue in the venue process (see :func:`venue_process`) for the suite."""

    adapter_name = "loopback-http"
    venue_clock = "real"

    def __init__(self, control_url: str, *, client_order_id: bool = False) -> None:
        from loopback_venue import ANSWER_TIMEOUT, Door

        super().__init__()
        self.client_order_id = client_order_id
        self.capabilities: frozenset[Capability] = CAPABILITIES | (
            {Capability.CLIENT_ORDER_ID} if client_order_id else set()
        )
        self.control = httpx.Client(base_url=control_url, timeout=30.0)
        self.door = Door(lambda: self.call("record_refused"))
        self.answer_timeout = ANSWER_TIMEOUT
        self.venue_id = ""
        self.base_url = ""

    def call(self, member: str, **arguments: Any) -> Any:
        """Call ``member`` of this venue's harness in the venue's process."""
        for name in MONEY & set(arguments):
            if arguments[name] is not None:
                arguments[name] = str(arguments[name])
        answer = self.control.post(f"/venues/{self.venue_id}/{member}", json=arguments)
        if answer.status_code != 200:
            raise RuntimeError(f"the venue process: {answer.json()['error']}")
        return answer.json()

    async def start(self) -> None:
        started = self.control.post("/venues", json={"client_order_id": self.client_order_id})
        self.venue_id, self.base_url = started.json()["id"], started.json()["base_url"]

    async def stop(self) -> None:
        self.control.delete(f"/venues/{self.venue_id}")
        self.control.close()
        self.door.close()

    def venue_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": self.answer_timeout,
            "transport": self.door,
        }
        if self.client_order_id:
            options["client_order_id"] = True
        return options

    def enforce_rate_limit(self, limit: int, period: float, monotonic: Callable[[], float]) -> None:
        # The venue times its window with its own clock: the scenario's is not seen there.
        self.call("enforce_rate_limit", limit=limit, period=period)
        self.declare_rate_limit(limit, period)

    def set_page_size(self, size: int) -> None:
        self.call("set_page_size", size=size)
        self.declare_page_size(size)

    def fail_next(self, kind: FailKind, times: int = 1) -> None:
        self.door.failures.extend([kind] * times)
        if kind != "connection":  # a refused request never reaches the venue
            self.call("fail_next", kind=kind, times=times)


def _forward(member: str) -> Callable[..., Any]:
    signature = inspect.signature(getattr(MockHarness, member))

    def forward(self: ProcessHarness, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        return self.call(member, **arguments)

    forward.__name__ = member
    forward.__doc__ = f"``{member}``, called in the venue's process."
    return forward


for _member in VENUE_MEMBERS:
    setattr(ProcessHarness, _member, _forward(_member))


if __name__ == "__main__":
    asyncio.run(main())
