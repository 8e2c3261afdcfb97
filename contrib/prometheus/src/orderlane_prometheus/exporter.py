"""The exporter: observer hooks turn committed events into counters, a sampler task reads the
engine's figures, and prometheus_client serves both on an HTTP endpoint of its own thread.

Nothing here runs on an order's path: events reach observers after their commit on the engine's
event task, and the engine's figures (limiter, tracker, journal) are read by a task that sleeps
between samples. A scrape reads the last sample; it never touches the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from orderlane import Engine, Fill, Order, OrderStatus, Position, hookimpl
from orderlane.errors import ConfigurationError
from orderlane.retry import Operation

__all__ = ["ENV_ADDR", "ENV_INTERVAL", "ENV_PORT", "PrometheusExporter"]

log = logging.getLogger("orderlane.prometheus")

ENV_PORT = "ORDERLANE_PROMETHEUS_PORT"
ENV_ADDR = "ORDERLANE_PROMETHEUS_ADDR"
ENV_INTERVAL = "ORDERLANE_PROMETHEUS_INTERVAL"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Sampled(Collector):
    """The engines' own figures, as last sampled (one sample per account)."""

    def __init__(self) -> None:
        self.samples: dict[str, Mapping[str, Any]] = {}

    def collect(self) -> Iterator[Metric]:
        samples = dict(self.samples)
        tracked = GaugeMetricFamily(
            "orderlane_open_orders_tracked", "Open orders the tracker follows", labels=["account"]
        )
        depth = GaugeMetricFamily(
            "orderlane_rate_limit_queue_depth",
            "Broker requests waiting for a rate-limit permit",
            labels=["account"],
        )
        most = GaugeMetricFamily(
            "orderlane_rate_limit_max_queue_depth",
            "Most broker requests that ever waited for a permit at once",
            labels=["account"],
        )
        wait = GaugeMetricFamily(
            "orderlane_rate_limit_wait_seconds",
            "Wait for a rate-limit permit of the requests that waited (mean and max)",
            labels=["account", "stat"],
        )
        granted = CounterMetricFamily(
            "orderlane_rate_limit_granted",
            "Rate-limit permits granted, per request kind",
            labels=["account", "kind"],
        )
        pauses = CounterMetricFamily(
            "orderlane_rate_limit_pauses",
            "Pauses after the broker answered too many requests",
            labels=["account"],
        )
        blocked = GaugeMetricFamily(
            "orderlane_rate_limit_blocked",
            "1 while no permit can be had at all (a shared limiter's store unreachable)",
            labels=["account"],
        )
        commit = HistogramMetricFamily(
            "orderlane_journal_commit_seconds",
            "Journal transactions, by how long each took from begin to commit",
            labels=["account"],
        )
        group = HistogramMetricFamily(
            "orderlane_journal_group_size",
            "Journal transactions, by how many changes each carried (group commit)",
            labels=["account"],
        )
        for account, sample in sorted(samples.items()):
            tracked.add_metric([account], sample["tracked"])
            limiter = sample["rate_limiter"]
            if limiter is not None:
                depth.add_metric([account], limiter["queue_depth"])
                most.add_metric([account], limiter["max_queue_depth"])
                wait.add_metric([account, "mean"], limiter["mean_wait_s"])
                wait.add_metric([account, "max"], limiter["max_wait_s"])
                for kind, count in sorted(limiter["granted"].items()):
                    granted.add_metric([account, kind], count)
                pauses.add_metric([account], limiter["pauses"])
                blocked.add_metric([account], 0 if limiter["blocked"] is None else 1)
            journal = sample["journal"]
            if journal is not None:
                for family, key in ((commit, "commit_seconds"), (group, "group_size")):
                    figures = journal[key]
                    family.add_metric(
                        [account], list(figures["buckets"].items()), sum_value=figures["sum"]
                    )
        yield from (tracked, depth, most, wait, granted, pauses, blocked, commit, group)


class PrometheusExporter:
    """Serves an engine's (or a process's engines') metrics on ``http://host:port/metrics``.

    ``port=0`` takes a free port (see :attr:`port` once an engine started). ``host`` is
    127.0.0.1 unless you say otherwise. ``interval`` is the seconds between samples of the
    engine's figures. ``registry`` defaults to a registry of this exporter's own.
    """

    def __init__(
        self,
        port: int = 9464,
        host: str = "127.0.0.1",
        *,
        interval: float = 1.0,
        registry: CollectorRegistry | None = None,
        enabled: bool = True,
    ) -> None:
        if interval <= 0:
            raise ConfigurationError("the metrics sample interval must be positive seconds")
        self.host, self.requested_port, self.interval = host, port, interval
        self.enabled = enabled
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._samplers: dict[int, asyncio.Task[None]] = {}
        self._statuses: dict[str, OrderStatus] = {}
        self._sending_since: dict[str, datetime] = {}
        self._sampled = _Sampled()
        self.registry.register(self._sampled)
        reg = self.registry
        self.orders = Gauge(
            "orderlane_orders",
            "Orders this process saw, by their current status",
            ["account", "status"],
            registry=reg,
        )
        self.unknown = Gauge(
            "orderlane_unknown_orders",
            "Orders whose fate at the broker is not known yet (UNKNOWN)",
            ["account"],
            registry=reg,
        )
        self.fills = Counter("orderlane_fills", "Fills booked", ["account", "side"], registry=reg)
        self.filled_quantity = Counter(
            "orderlane_filled_quantity", "Quantity filled", ["account", "side"], registry=reg
        )
        self.realized_pnl = Gauge(
            "orderlane_realized_pnl",
            "Realized P&L booked since this process started, less closing commissions "
            "(account currency)",
            ["account"],
            registry=reg,
        )
        self.net_pnl = Gauge(
            "orderlane_net_pnl",
            "Net realized P&L booked since this process started: less the commissions of both "
            "the opening and the closing fills (account currency)",
            ["account"],
            registry=reg,
        )
        self.gross_pnl = Gauge(
            "orderlane_gross_pnl",
            "Gross realized P&L booked since this process started, before commissions "
            "(account currency)",
            ["account"],
            registry=reg,
        )
        self.place_latency = Histogram(
            "orderlane_place_latency_seconds",
            "From an order committed SUBMITTING to the broker's answer committed",
            ["account"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            "orderlane_retries",
            "Retries scheduled, by operation and error class",
            ["account", "operation", "error"],
            registry=reg,
        )
        self.exhausted = Counter(
            "orderlane_retries_exhausted",
            "Operations whose every attempt failed",
            ["account", "operation"],
            registry=reg,
        )
        self.timed_out = Counter(
            "orderlane_orders_timed_out", "Orders cancelled on timeout", ["account"], registry=reg
        )

    @classmethod
    def from_environment(cls) -> PrometheusExporter:
        """The entry point's exporter: it waits for an engine start to read the environment."""
        return cls(enabled=False)

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "not serving"
        return f"PrometheusExporter({where})"

    # ---------------------------------------------------------------- serving

    @property
    def port(self) -> int:
        """The port metrics are served on (after the first engine start)."""
        if self._server is None:
            raise ConfigurationError("the exporter serves nothing until an engine starts")
        return int(self._server.server_port)

    def serve(self) -> None:
        """Start the HTTP endpoint (once; the first engine start does it)."""
        if self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(
                self.requested_port, addr=self.host, registry=self.registry
            )
        except OSError as error:
            raise ConfigurationError(
                f"cannot serve metrics on {self.host}:{self.requested_port}: {error}; "
                f"choose another port ({ENV_PORT} or PrometheusExporter(port=...))"
            ) from error
        if not _loopback(self.host):
            log.warning("metrics are served on %s, beyond this machine", self.host)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        """Stop serving (the figures stay in the registry)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _configure_from_environment(self) -> bool:
        port = os.environ.get(ENV_PORT)
        if not port:
            return False
        try:
            self.requested_port = int(port)
            self.interval = float(os.environ.get(ENV_INTERVAL, self.interval))
        except ValueError:
            raise ConfigurationError(
                f"{ENV_PORT} must be a port number and {ENV_INTERVAL} seconds, got "
                f"{port!r} and {os.environ.get(ENV_INTERVAL)!r}"
            ) from None
        self.host = os.environ.get(ENV_ADDR, self.host)
        return True

    # ---------------------------------------------------------------- engine lifecycle

    @hookimpl
    def orderlane_engine_started(self, engine: Engine) -> None:
        if not self.enabled:
            if not self._configure_from_environment():
                return
            self.enabled = True
        self.serve()
        self._sample(engine)
        task = asyncio.get_running_loop().create_task(
            self._sample_every(engine), name="orderlane-prometheus-sampler"
        )
        self._samplers[id(engine)] = task

    @hookimpl
    async def orderlane_engine_closing(self, engine: Engine) -> None:
        task = self._samplers.pop(id(engine), None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._sample(engine)  # its last figures stay readable

    async def _sample_every(self, engine: Engine) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self._sample(engine)
            except Exception:
                log.warning("sampling the engine's figures failed", exc_info=True)

    def _sample(self, engine: Engine) -> None:
        stats = engine.stats()
        self._sampled.samples[engine.config.account_id] = {
            "tracked": len(engine.tracker),
            "rate_limiter": stats["rate_limiter"],
            "journal": stats.get("journal"),
        }

    # ---------------------------------------------------------------- events (after commit)

    @hookimpl
    def orderlane_order_created(self, order: Order) -> None:
        if self.enabled:
            self._move(order, None)

    @hookimpl
    def orderlane_order_status_changed(self, order: Order, previous: OrderStatus) -> None:
        if not self.enabled:
            return
        if order.status is OrderStatus.SUBMITTING:
            self._sending_since[order.id] = order.updated_at
        elif previous is OrderStatus.SUBMITTING:
            since = self._sending_since.pop(order.id, None)
            if since is not None:
                seconds = (order.updated_at - since).total_seconds()
                self.place_latency.labels(order.account_id).observe(max(0.0, seconds))
        self._move(order, previous)

    def _move(self, order: Order, previous: OrderStatus | None) -> None:
        account = order.account_id
        known = self._statuses.pop(order.id, None)
        if known is not None:
            self.orders.labels(account, known.value).dec()
        self.orders.labels(account, order.status.value).inc()
        if not order.is_terminal:
            self._statuses[order.id] = order.status
        else:
            self._sending_since.pop(order.id, None)
        unknown = sum(1 for status in self._statuses.values() if status is OrderStatus.UNKNOWN)
        self.unknown.labels(account).set(unknown)

    @hookimpl
    def orderlane_order_filled(self, order: Order, fill: Fill) -> None:
        if self.enabled:
            side = fill.side.value
            self.fills.labels(order.account_id, side).inc()
            self.filled_quantity.labels(order.account_id, side).inc(fill.quantity)

    @hookimpl
    def orderlane_position_changed(
        self, position: Position, fill: Fill, realized_pnl: Decimal
    ) -> None:
        if not self.enabled:
            return
        account = position.account_id
        for gauge, amount in (
            (self.realized_pnl, realized_pnl),
            (self.net_pnl, fill.net_pnl),
            (self.gross_pnl, fill.gross_pnl),
        ):
            if amount:
                gauge.labels(account).inc(float(amount))

    @hookimpl
    def orderlane_retry_scheduled(
        self, order: Order | None, operation: Operation, attempt: int, error: str
    ) -> None:
        if self.enabled:
            account = order.account_id if order is not None else ""
            kind = error.split(":", 1)[0].strip() or "unknown"
            self.retries.labels(account, operation.value, kind).inc()

    @hookimpl
    def orderlane_retry_exhausted(self, order: Order | None, operation: Operation) -> None:
        if self.enabled:
            account = order.account_id if order is not None else ""
            self.exhausted.labels(account, operation.value).inc()

    @hookimpl
    def orderlane_order_timed_out(self, order: Order) -> None:
        if self.enabled:
            self.timed_out.labels(order.account_id).inc()

    def metric_names(self) -> Iterable[str]:
        """The names of the metric families this exporter serves."""
        return sorted({metric.name for metric in self.registry.collect()})


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
