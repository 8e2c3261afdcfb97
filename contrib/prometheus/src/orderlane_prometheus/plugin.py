"""The entry point's exporter (group ``orderlane.plugins``): every engine loads it, and it serves
metrics only when ``ORDERLANE_PROMETHEUS_PORT`` is set when an engine starts
(``ORDERLANE_PROMETHEUS_ADDR``, default 127.0.0.1; ``ORDERLANE_PROMETHEUS_INTERVAL``, default 1 s
between samples of the engine's figures). One endpoint per process, for all its engines."""

from __future__ import annotations

from orderlane_prometheus.exporter import PrometheusExporter

__all__ = ["exporter"]

exporter = PrometheusExporter.from_environment()
