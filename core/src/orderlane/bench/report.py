"""The one report format every ``orderlane bench`` command prints.

A report names what it measured and its baseline (measured in the same run), and carries
figures: each the value orderlane reached, the baseline's value, their ratio and, where
DESIGN §12 sets one, the goal and whether it was met. The raw numbers behind the figures (sample
counts, seconds, commits, requests) travel beside them in ``raw``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Literal

import attrs

__all__ = ["Figure", "Goal", "Report", "figure", "percentile", "summary_ms"]


@attrs.frozen
class Goal:
    """``ratio <= 1.5`` or ``value <= 2048``: what DESIGN §12 asks of a figure."""

    of: Literal["ratio", "value"]
    op: Literal["<=", ">="]
    bound: float

    def __str__(self) -> str:
        return f"{self.of} {self.op} {self.bound:g}"

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = ratio if self.of == "ratio" else value
        if subject is None:
            return None
        return subject <= self.bound if self.op == "<=" else subject >= self.bound


@attrs.frozen
class Figure:
    name: str
    unit: str
    #: What orderlane reached.
    value: float
    #: What the report's baseline reached in the same run.
    baseline: float
    #: value / baseline (None when the baseline is zero).
    ratio: float | None
    #: The goal, as text (``ratio <= 1.5``), or None where DESIGN §12 sets none.
    goal: str | None = None
    met: bool | None = None


def figure(name: str, unit: str, value: float, baseline: float, goal: Goal | None = None) -> Figure:
    ratio = value / baseline if baseline else None
    return Figure(
        name=name,
        unit=unit,
        value=_round(value),
        baseline=_round(baseline),
        ratio=None if ratio is None else _round(ratio),
        goal=None if goal is None else str(goal),
        met=None if goal is None else goal.met(value, ratio),
    )


@attrs.frozen
class Report:
    #: The subcommand: latency, throughput, tracker, recovery, memory, rate-limit.
    bench: str
    #: What was measured.
    subject: str
    #: What the baseline is (measured in the same run, same process).
    baseline: str
    parameters: dict[str, Any]
    figures: tuple[Figure, ...]
    #: The numbers behind the figures.
    raw: dict[str, Any]
    #: Wall time the bench took, baseline included.
    seconds: float

    @property
    def met(self) -> bool | None:
        """False if any goal was missed, True if all were met, None if there is no goal."""
        verdicts = [f.met for f in self.figures if f.met is not None]
        return all(verdicts) if verdicts else None


def _round(value: float) -> float:
    """Six significant digits: the figures are noisy well before that."""
    if isinstance(value, int) or not math.isfinite(value):
        return value
    return float(f"{value:.6g}")


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5, 0.99) of ``samples``, interpolated between neighbours."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, mean and max of samples in seconds, in milliseconds."""
    return {
        "samples": len(samples),
        "p50_ms": round(percentile(samples, 0.5) * 1000, 3),
        "p90_ms": round(percentile(samples, 0.9) * 1000, 3),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }
