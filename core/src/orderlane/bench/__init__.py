"""``orderlane bench``: orderlane measured against a baseline in the same run.

Every bench returns a :class:`Report`: figures with orderlane's value, the baseline's value
(measured in the same process, at the same moment) and their ratio, beside the raw numbers.
"""

from __future__ import annotations

from orderlane.bench.orders import run_latency, run_throughput
from orderlane.bench.ratelimit import (
    LimiterRun,
    RateLimitBench,
    max_in_window,
    rate_limit_report,
    run_rate_limit,
    whole_window_fidelity,
)
from orderlane.bench.report import Figure, Goal, Report

__all__ = [
    "Figure",
    "Goal",
    "LimiterRun",
    "RateLimitBench",
    "Report",
    "max_in_window",
    "rate_limit_report",
    "run_latency",
    "run_rate_limit",
    "run_throughput",
    "whole_window_fidelity",
]
