"""orderlane-prometheus: an engine's figures on a Prometheus endpoint."""

from orderlane_prometheus.exporter import PrometheusExporter

__all__ = ["PrometheusExporter"]
