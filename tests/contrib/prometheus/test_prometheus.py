"""orderlane-prometheus: the metrics of a demo session scraped over HTTP while it runs and
parsed with prometheus_client's parser; the Grafana dashboard reads only metrics it serves."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console

from orderlane import Engine, OrderStatus, Signal
from orderlane.demo import DEMO_ACCOUNT, run_demo
from orderlane.errors import ConfigurationError
from orderlane_mock import MockAdapter, MockVenue
from orderlane_prometheus import PrometheusExporter
from orderlane_prometheus.exporter import ENV_PORT
from orderlane_prometheus.plugin import exporter as entry_point_exporter

DASHBOARD = (
    Path(__file__).resolve().parents[3] / "contrib" / "prometheus" / "grafana" / "orderlane.json"
)


def samples(text: str) -> dict[str, list[Sample]]:
    """Every sample of a scrape, by sample name, parsed the way Prometheus parses it."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matching = [s.value for s in found.get(name, []) if labels.items() <= s.labels.items()]
    assert len(matching) == 1, f"{name} {labels}: {matching}"
    return matching[0]


@pytest.fixture
def served_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrometheusExporter]:
    """The entry point's exporter, switched on by the environment as a user would."""
    monkeypatch.setenv(ENV_PORT, "0")
    monkeypatch.setenv("ORDERLANE_PROMETHEUS_INTERVAL", "0.05")
    yield entry_point_exporter
    entry_point_exporter.stop()
    entry_point_exporter.enabled = False


async def test_a_demo_session_is_scraped_over_http_while_it_runs(
    served_by_entry_point: PrometheusExporter, sqlite_url: str
) -> None:
    exporter = served_by_entry_point
    during: list[str] = []

    async def scrape_while_running(client: httpx.AsyncClient) -> None:
        for _ in range(2000):  # the demo's first fill, seen over HTTP before the session ends
            if exporter._server is not None:
                text = (await client.get(f"http://127.0.0.1:{exporter.port}/metrics")).text
                if re.search(r'^orderlane_fills_total\{.*account="demo"', text, re.M):
                    during.append(text)
                    return
            await asyncio.sleep(0.005)

    async with httpx.AsyncClient(timeout=10) as client:
        scraper = asyncio.create_task(scrape_while_running(client))
        result = await run_demo(sqlite_url, Console(file=io.StringIO()))
        await asyncio.wait_for(scraper, 30)
        response = await client.get(f"http://127.0.0.1:{exporter.port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert during, "no scrape showed a fill while the demo ran"
    assert samples(during[0])["orderlane_fills_total"]

    after = samples(response.text)
    account = {"account": DEMO_ACCOUNT}
    assert value(after, "orderlane_orders", status="FILLED", **account) == 3
    assert value(after, "orderlane_orders", status="REJECTED", **account) == 1
    assert value(after, "orderlane_unknown_orders", **account) == 0
    fills = sum(
        s.value for s in after["orderlane_fills_total"] if s.labels == {**s.labels, **account}
    )
    assert fills == 4  # 10 bought; 5 + 15; 4 sold
    assert value(after, "orderlane_filled_quantity_total", side="SELL", **account) == 4
    assert value(after, "orderlane_realized_pnl", **account) == pytest.approx(
        float(result.realized_pnl)
    )
    # The demo's sale pays commissions on its buys too: net is below the seed's figure.
    assert value(after, "orderlane_net_pnl", **account) == pytest.approx(float(result.net_pnl))
    assert value(after, "orderlane_net_pnl", **account) < value(
        after, "orderlane_realized_pnl", **account
    )
    assert value(after, "orderlane_gross_pnl", **account) == pytest.approx(
        sum(float(s.gross_pnl) for s in result.pnl_by_session)
    )
    assert value(after, "orderlane_place_latency_seconds_count", **account) == 4
    commits = value(after, "orderlane_journal_commit_seconds_count", **account)
    assert commits >= 8
    assert value(after, "orderlane_journal_commit_seconds_bucket", le="+Inf", **account) == commits
    assert value(after, "orderlane_journal_group_size_count", **account) == commits
    assert value(after, "orderlane_open_orders_tracked", **account) == 0
    assert value(after, "orderlane_rate_limit_queue_depth", **account) == 0
    assert value(after, "orderlane_rate_limit_blocked", **account) == 0


async def test_retries_timeouts_and_unknown_orders_are_counted(sqlite_url: str) -> None:
    venue = MockVenue()
    exporter = PrometheusExporter(port=0, interval=0.05)
    config_plugins = [exporter]
    try:
        async with Engine.open(
            MockAdapter(venue), plugins=config_plugins, database_url=sqlite_url
        ) as engine:
            venue.fail_next("connection")
            filled = await engine.execute(Signal("005930", "BUY", 1))
            venue.answer_lookup_next("cannot_tell", times=10)
            venue.fail_next("timeout_after")
            unknown = await engine.execute(Signal("000660", "BUY", 1))
            await engine.flush_events()
            async with httpx.AsyncClient(timeout=10) as client:
                url = f"http://127.0.0.1:{exporter.port}/metrics"
                for _ in range(1000):  # the sampler's next round sees the tracked order
                    found = samples((await client.get(url)).text)
                    tracked = found.get("orderlane_open_orders_tracked", [])
                    if tracked and tracked[0].value >= 1:
                        break
                    await asyncio.sleep(0.01)
    finally:
        exporter.stop()
    assert filled.status is OrderStatus.FILLED
    assert unknown.status is OrderStatus.UNKNOWN
    account = {"account": "default"}
    assert (
        value(found, "orderlane_retries_total", operation="place", error="BrokerConnectionError")
        == 1
    )
    assert value(found, "orderlane_unknown_orders", **account) == 1
    assert value(found, "orderlane_orders", status="UNKNOWN", **account) == 1
    assert value(found, "orderlane_open_orders_tracked", **account) >= 1


def test_the_entry_point_exporter_serves_nothing_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_PORT, raising=False)
    assert not entry_point_exporter.enabled
    with pytest.raises(ConfigurationError, match="serves nothing until an engine starts"):
        _ = entry_point_exporter.port
    monkeypatch.setenv(ENV_PORT, "nine")
    with pytest.raises(ConfigurationError, match="must be a port number"):
        entry_point_exporter._configure_from_environment()


def test_the_grafana_dashboard_reads_only_metrics_the_exporter_serves() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 10
    served = set(PrometheusExporter(enabled=False).metric_names())
    suffixes = ("_total", "_bucket", "_count", "_sum")
    used = {name for expr in exprs for name in re.findall(r"\b(orderlane_[a-z_]+)", expr)}
    unknown = sorted(
        name
        for name in used
        if name not in served
        and not any(name.endswith(s) and name.removesuffix(s) in served for s in suffixes)
    )
    assert not unknown, f"the dashboard reads metrics nobody serves: {unknown}"
    assert len(used) >= 12
