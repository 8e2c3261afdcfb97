"""The dashboard's JSON API over a journal filled by the demo session, checked against its own
OpenAPI document; real HTTP on loopback (httpx against uvicorn)."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from orderlane.demo import DemoResult
from orderlane_web import create_app
from orderlane_web.openapi import openapi_document
from web.dashboards import Dashboard, sell, trade

Serve = Callable[..., Dashboard]


def check(document: dict[str, Any], path: str, body: Any, status: str = "200") -> None:
    """``body`` matches the schema the document gives ``path`` for ``status``."""
    responses = document["paths"][path]["get"]["responses"]
    schema = responses[status]["content"]["application/json"]["schema"]
    resolver_root = {**schema, "components": document["components"]}
    OAS31Validator(resolver_root).validate(body)


def get(dashboard: Dashboard, path: str, **params: Any) -> httpx.Response:
    return httpx.get(dashboard.base + path, params=params, timeout=10)


def test_the_openapi_document_is_valid_and_describes_every_api_route(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)

    response = get(dashboard, "/openapi.json")

    assert response.status_code == 200
    document = response.json()
    validate(document)  # a valid OpenAPI 3.1 document
    assert document == openapi_document()
    app = create_app(dashboard.reader)
    routes = {route.path for route in app.routes if isinstance(route, Route)}
    assert set(document["paths"]) == {path for path in routes if path.startswith("/api/")}
    fill_fields = set(document["components"]["schemas"]["Fill"]["properties"])
    assert {"price", "commission", "realized_pnl", "trading_day"} <= fill_fields


def test_orders_positions_fills_and_pnl_are_the_demos(
    demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(demo.database_url)
    document = openapi_document()

    orders = get(dashboard, "/api/orders").json()
    filled = get(dashboard, "/api/orders", status="FILLED").json()
    two_states = get(dashboard, "/api/orders", status="FILLED,REJECTED", limit=2).json()
    hynix = get(dashboard, "/api/orders", symbol="000660").json()
    # the day filter counts in the dashboard's zone: the machine's, as the server is started
    created = demo.orders[0].created_at.astimezone().date().isoformat()
    today = get(dashboard, "/api/orders", day=created).json()
    nobody = get(dashboard, "/api/orders", account="nobody").json()
    positions = get(dashboard, "/api/positions").json()
    fills = get(dashboard, "/api/fills").json()
    by_day = get(dashboard, "/api/pnl").json()
    by_session = get(dashboard, "/api/pnl", by="session").json()
    summary = get(dashboard, "/api/summary").json()

    for path, body in [
        ("/api/orders", orders),
        ("/api/orders", filled),
        ("/api/positions", positions),
        ("/api/fills", fills),
        ("/api/pnl", by_day),
        ("/api/summary", summary),
    ]:
        check(document, path, body)
    assert [order["id"] for order in orders["orders"]] == [o.id for o in reversed(demo.orders)]
    assert {order["status"] for order in filled["orders"]} == {"FILLED"}
    assert len(filled["orders"]) == 3
    assert len(two_states["orders"]) == 2
    assert [
        (o["symbol"], o["filled_quantity"], o["average_fill_price"]) for o in hynix["orders"]
    ] == [("000660", 20, "185000")]
    assert len(today["orders"]) == 4
    assert nobody == {"orders": [], "next": None}
    assert {(p["symbol"], p["quantity"], p["average_price"]) for p in positions["positions"]} == {
        ("000660", 20, "185000"),
        ("005930", 6, "72000"),
    }
    assert len(fills["fills"]) == 4
    assert fills["fills"][0]["realized_pnl"] == "3950"
    assert by_day["total"] == "3950"
    assert [row["fills"] for row in by_day["rows"]] == [4]
    assert by_session["rows"] == [
        {
            "key": "demo",
            "realized_pnl": "3950",
            "gross_pnl": "4000",
            "commissions": "350",
            "net_pnl": "3910",
            "fills": 4,
        }
    ]
    assert by_session["totals"] == {"gross_pnl": "4000", "commissions": "350", "net_pnl": "3910"}
    assert (summary["orders"], summary["open"], summary["unknown"]) == (4, 0, 0)
    assert (summary["counts"]["FILLED"], summary["counts"]["REJECTED"]) == (3, 1)


def test_one_order_with_its_fills_and_timeline(demo: DemoResult, serve_dashboard: Serve) -> None:
    dashboard = serve_dashboard(demo.database_url)
    partial = demo.orders[1]  # the partial fill the demo completes later

    detail = get(dashboard, f"/api/orders/{partial.id}").json()
    missing = get(dashboard, "/api/orders/no-such-order")

    check(openapi_document(), "/api/orders/{order_id}", detail)
    assert detail["order"]["status"] == "FILLED"
    assert [fill["quantity"] for fill in detail["fills"]] == [5, 15]
    types = [event["type"] for event in detail["events"]]
    assert types[0] == "OrderCreated"
    assert types.count("OrderFilled") == 2
    assert [event["seq"] for event in detail["events"]] == sorted(
        e["seq"] for e in detail["events"]
    )
    assert missing.status_code == 404
    check(openapi_document(), "/api/orders/{order_id}", missing.json(), "404")


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/orders", {"status": "DONE"}, "unknown status 'DONE'"),
        ("/api/orders", {"day": "yesterday"}, "day must be a date"),
        ("/api/orders", {"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ("/api/fills", {"limit": "lots"}, "limit must be a whole number"),
        ("/api/pnl", {"by": "week"}, "by must be 'day' or 'session'"),
    ],
)
def test_unusable_parameters_are_refused_with_a_reason(
    sqlite_demo: DemoResult, serve_dashboard: Serve, path: str, params: dict[str, str], message: str
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)

    response = get(dashboard, path, **params)

    assert response.status_code == 400
    assert message in response.json()["error"]
    check(openapi_document(), path, response.json(), "400")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_never_writes(sqlite_demo: DemoResult, serve_dashboard: Serve) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)
    path = Path(sqlite_demo.database_url.removeprefix("sqlite:///"))
    before = digest(path)
    order_id = sqlite_demo.orders[0].id

    answers = [
        httpx.request(method, dashboard.base + target, timeout=10).status_code
        for method in ("POST", "PUT", "PATCH", "DELETE")
        for target in ("/api/orders", f"/api/orders/{order_id}", "/")
    ]
    for target in ("/", f"/orders/{order_id}", "/api/orders", "/api/summary", "/api/pnl"):
        assert httpx.get(dashboard.base + target, timeout=10).status_code == 200

    assert set(answers) == {405}
    assert digest(path) == before


def test_a_journal_that_cannot_be_read_is_a_503_not_a_crash(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)
    dashboard.reader.close()  # as if the database went away

    api = get(dashboard, "/api/summary")
    page = get(dashboard, "/")

    assert api.status_code == 503
    assert "not open" in api.json()["error"]
    assert page.status_code == 503
    assert "not open" in page.text


def test_server_sent_events_announce_each_change(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)

    async def markers() -> tuple[list[str], str]:
        seen: list[str] = []
        final = ""
        async with (
            httpx.AsyncClient(base_url=dashboard.base, timeout=20) as client,
            client.stream("GET", "/api/events") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "change":
                    seen.append(json.loads(line.removeprefix("data: "))["marker"])
                    if len(seen) == 1:
                        await trade(sqlite_demo.database_url, sell(1), price=73500)
                        final = (await client.get("/api/summary")).json()["marker"]
                    elif seen[-1] == final:
                        break
        return seen, final

    seen, final = asyncio.run(asyncio.wait_for(markers(), 30))

    assert seen[0] != final, "the sale changed the journal"
    assert seen[-1] == final, "the stream announced the journal as it is now"
    assert len(set(seen)) == len(seen), "a change is announced once"


def test_pages_show_the_demo_and_escape_what_they_show(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)
    rejected = sqlite_demo.orders[3]

    home = get(dashboard, "/")
    filtered = get(dashboard, "/", status="REJECTED")
    order = get(dashboard, f"/orders/{rejected.id}")
    missing = get(dashboard, "/orders/<script>")

    assert home.status_code == 200
    for demo_order in sqlite_demo.orders:
        assert f'data-order-id="{demo_order.id}"' in home.text
    assert 'id="pnl-chart"' in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    assert home.headers["x-content-type-options"] == "nosniff"
    assert filtered.text.count("data-order-id=") == 1
    assert "insufficient balance for 1,000 x 005930" in order.text
    assert 'id="timeline"' in order.text
    nowhere_page = get(dashboard, "/nowhere")
    nowhere_api = get(dashboard, "/api/nowhere")
    assert (nowhere_page.status_code, nowhere_api.status_code) == (404, 404)
    assert "Not Found" in nowhere_page.text
    assert nowhere_api.json() == {"error": "Not Found"}
    assert missing.status_code == 404
    assert "<script>" not in missing.text
    assert "&lt;script&gt;" in missing.text


def test_orders_come_a_page_at_a_time_newest_first(
    demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(demo.database_url)
    document = openapi_document()
    newest_first = [order.id for order in reversed(demo.orders)]

    pages, before = [], None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        page = get(dashboard, "/api/orders", **params).json()
        check(document, "/api/orders", page)
        pages.append([order["id"] for order in page["orders"]])
        before = page["next"]
        if before is None:
            break
    filled = get(dashboard, "/api/orders", status="FILLED", limit=2).json()
    rest = get(dashboard, "/api/orders", status="FILLED", limit=2, before=filled["next"]).json()
    stranger = get(dashboard, "/api/orders", before="no-such-order").json()

    assert pages == [newest_first[:3], newest_first[3:]]
    assert len(filled["orders"]) == 2
    assert [o["status"] for o in rest["orders"]] == ["FILLED"], "paging keeps the filter"
    assert rest["next"] is None
    assert stranger == {"orders": [], "next": None}


def test_the_page_links_to_older_orders_with_its_filters(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)
    newest_first = [order.id for order in reversed(sqlite_demo.orders)]

    first = get(dashboard, "/", limit="2", symbol="005930")
    older_link = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older_link is not None
    older = httpx.get(dashboard.base + html.unescape(older_link.group(1)), timeout=10)
    last = get(dashboard, "/", limit="2", symbol="005930", before=newest_first[1])

    assert (
        re.findall(r'data-order-id="([^"]+)"', first.text)
        == [i for i in newest_first if i != sqlite_demo.orders[1].id][:2]
    )
    assert "symbol=005930" in html.unescape(older_link.group(1))
    assert (
        re.findall(r'data-order-id="([^"]+)"', older.text)
        == [i for i in newest_first if i != sqlite_demo.orders[1].id][2:]
    )
    assert 'id="newest"' in older.text
    assert 'id="older"' not in last.text


def test_the_chart_draws_the_net_figure_the_card_shows(
    sqlite_demo: DemoResult, serve_dashboard: Serve
) -> None:
    dashboard = serve_dashboard(sqlite_demo.database_url)

    page = get(dashboard, "/").text
    [day] = get(dashboard, "/api/pnl").json()["rows"]

    assert f'data-pnl="{day["net_pnl"]}"' in page
    assert day["net_pnl"] != day["realized_pnl"], "the demo pays opening fees: they differ"
