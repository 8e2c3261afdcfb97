"""The dashboard's Starlette application: pages, the JSON API, and live updates.

Every route answers GET (and HEAD) only; nothing here writes. The journal is read through a
:class:`~orderlane.journal.reader.JournalReader` (read-only connections) in worker threads, one
read transaction per request. ``/api/events`` streams server-sent events: the dashboard's script
fetches the page again when the journal's change marker moves, and swaps the live parts in.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, tzinfo
from typing import Any, TypeVar

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orderlane import __version__
from orderlane.cli import format_money
from orderlane.errors import JournalError
from orderlane.journal.reader import JournalReader, JournalView
from orderlane.model import OrderStatus
from orderlane_web import queries
from orderlane_web.chart import pnl_chart
from orderlane_web.openapi import openapi_document
from orderlane_web.queries import BadRequest, OrderFilter
from orderlane_web.security import TokenGate

__all__ = ["create_app"]

T = TypeVar("T")

#: How many trading days the dashboard's chart shows (and reads the fills of).
CHART_DAYS = 30

_SECURITY_HEADERS = {
    # Everything the pages use is served from here: no inline script, nothing fetched elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("orderlane_web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = format_money
    return env


def create_app(
    reader: JournalReader,
    *,
    token: str | None = None,
    zone: tzinfo | None = None,
    now: Callable[[], datetime] | None = None,
    poll_interval: float = 0.5,
) -> Starlette:
    """The dashboard over ``reader`` (opened by the caller; closed when the app shuts down).

    ``token``: every request must carry it (see :mod:`orderlane_web.security`); without one, only
    requests addressed to a loopback host are answered. ``zone`` is the time zone pages show times
    in and the ``day`` filter counts in (default: this machine's). ``poll_interval`` is how often
    the event stream looks for changes.
    """
    local = zone or datetime.now().astimezone().tzinfo
    assert local is not None
    clock = now or (lambda: datetime.now(local))
    templates = _templates()

    async def read(fn: Callable[[JournalView], T]) -> T:
        def run() -> T:
            with reader.view() as view:
                return fn(view)

        return await run_in_threadpool(run)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(
            database=reader.display_url,
            version=__version__,
            now=clock(),
            zone=local,
            local=lambda moment: (
                moment.astimezone(local).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
            ),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def params(request: Request) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            found.setdefault(key, []).append(value)
        return found

    # ---------------------------------------------------------------- pages

    async def dashboard(request: Request) -> Response:
        chosen = OrderFilter.parse(params(request))

        def gather(view: JournalView) -> dict[str, Any]:
            account = chosen.account_id
            return {
                "filters": chosen,
                "page": chosen.orders(view, local),
                "unknown": view.open_orders(
                    account, statuses=[OrderStatus.UNKNOWN], limit=queries.MAX_UNKNOWN
                ),
                "fills": view.fills(account_id=account, limit=10),
                "positions": view.positions(account),
                "days": view.realized_pnl("day", account, last=CHART_DAYS),
                "summary": queries.summary(view, account),
            }

        data = await read(gather)
        chart = Markup(pnl_chart(data["days"], days=CHART_DAYS))  # noqa: S704 - escaped parts
        return page("dashboard.html", chart=chart, statuses=list(OrderStatus), **data)

    async def order_page(request: Request) -> Response:
        order_id = request.path_params["order_id"]

        def gather(view: JournalView) -> dict[str, Any] | None:
            order = view.order(order_id)
            if order is None:
                return None
            return {
                "order": order,
                "fills": view.fills(order_id=order_id, limit=queries.MAX_LIMIT),
                "events": view.events(order_id),
                "marker": view.change_marker(),
            }

        data = await read(gather)
        if data is None:
            return page("missing.html", 404, order_id=order_id)
        return page("order.html", **data)

    # ---------------------------------------------------------------- the JSON API

    async def api_summary(request: Request) -> Response:
        account = OrderFilter.parse(params(request)).account_id
        return JSONResponse(await read(lambda view: queries.summary(view, account)))

    async def api_orders(request: Request) -> Response:
        chosen = OrderFilter.parse(params(request))
        page = await read(lambda view: chosen.orders(view, local))
        return JSONResponse(
            {"orders": [queries.order_data(order) for order in page.orders], "next": page.next}
        )

    async def api_order(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        detail = await read(lambda view: queries.order_detail(view, order_id))
        if detail is None:
            return JSONResponse({"error": f"no order has the id {order_id!r}"}, 404)
        return JSONResponse(detail)

    async def api_fills(request: Request) -> Response:
        chosen = OrderFilter.parse(params(request))
        found = await read(
            lambda view: view.fills(account_id=chosen.account_id, limit=chosen.limit)
        )
        return JSONResponse({"fills": [queries.fill_data(fill) for fill in found]})

    async def api_positions(request: Request) -> Response:
        account = OrderFilter.parse(params(request)).account_id
        found = await read(lambda view: view.positions(account))
        return JSONResponse({"positions": [queries.position_data(p) for p in found]})

    async def api_pnl(request: Request) -> Response:
        by = request.query_params.get("by", "day")
        if by not in {"day", "session"}:
            raise BadRequest(f"by must be 'day' or 'session', got {by!r}")
        account = OrderFilter.parse(params(request)).account_id
        rows = await read(lambda view: view.realized_pnl(by, account))
        return JSONResponse(queries.pnl_data(rows, by))

    async def api_openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def api_events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last: str | None = None
            quiet = 0.0
            yield "retry: 2000\n\n"
            while True:
                try:
                    marker = await read(lambda view: view.change_marker())
                except JournalError as error:
                    yield f"event: problem\ndata: {json.dumps({'error': str(error)})}\n\n"
                else:
                    if marker != last:
                        last, quiet = marker, 0.0
                        yield f"event: change\ndata: {json.dumps({'marker': marker})}\n\n"
                    elif quiet >= 15:
                        quiet = 0.0
                        yield ": still here\n\n"  # keeps proxies from closing an idle stream
                await anyio.sleep(poll_interval)
                quiet += poll_interval

        return StreamingResponse(stream(), media_type="text/event-stream")

    # ---------------------------------------------------------------- errors and headers

    async def bad_request(request: Request, error: Exception) -> Response:
        return _answer(request, 400, str(error))

    async def unreadable(request: Request, error: Exception) -> Response:
        return _answer(request, 503, str(error))

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _answer(request, error.status_code, str(error.detail))

    def _answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            return JSONResponse({"error": message}, status)
        return page("problem.html", status, code=status, message=message)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            reader.close()

    app = Starlette(
        routes=[
            Route("/", dashboard, methods=["GET"]),
            Route("/orders/{order_id}", order_page, methods=["GET"]),
            Route("/api/summary", api_summary, methods=["GET"]),
            Route("/api/orders", api_orders, methods=["GET"]),
            Route("/api/orders/{order_id}", api_order, methods=["GET"]),
            Route("/api/fills", api_fills, methods=["GET"]),
            Route("/api/positions", api_positions, methods=["GET"]),
            Route("/api/pnl", api_pnl, methods=["GET"]),
            Route("/api/events", api_events, methods=["GET"]),
            Route("/openapi.json", api_openapi, methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("orderlane_web", "static")]), name="static"),
        ],
        middleware=[Middleware(_SecurityHeaders), Middleware(TokenGate, token=token)],
        exception_handlers={
            BadRequest: bad_request,
            JournalError: unreadable,
            HTTPException: http_error,
        },
        lifespan=lifespan,
    )
    return app


class _SecurityHeaders:
    """Adds :data:`_SECURITY_HEADERS` to every response (pure ASGI: streams stay streams)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
