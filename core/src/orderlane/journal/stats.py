"""What the journal's writer did: how long each transaction took and how many changes it carried.

The writer thread adds to fixed buckets (a few integer increments per transaction); readers on
the event loop (``engine.stats()``, a metrics exporter) take a snapshot when they like, off the
write path.
"""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["COMMIT_SECONDS_BOUNDS", "GROUP_SIZE_BOUNDS", "CommitStats"]

#: Upper bounds of the commit-time buckets, in seconds (the last bucket is everything longer).
COMMIT_SECONDS_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Upper bounds of the changes-per-transaction buckets.
GROUP_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Buckets:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> dict[str, Any]:
        """Cumulative counts per upper bound (``"+Inf"`` last), their sum and count."""
        counts = list(self.counts)
        cumulative: dict[str, int] = {}
        running = 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            running += count
            cumulative[bound] = running
        return {"buckets": cumulative, "sum": self.total, "count": running}


class CommitStats:
    """Per committed transaction: its duration (begin to commit) and its number of changes."""

    def __init__(self) -> None:
        self.seconds = _Buckets(COMMIT_SECONDS_BOUNDS)
        self.changes = _Buckets(GROUP_SIZE_BOUNDS)

    def record(self, seconds: float, changes: int) -> None:
        self.seconds.add(seconds)
        self.changes.add(changes)

    def snapshot(self) -> dict[str, Any]:
        return {"commit_seconds": self.seconds.snapshot(), "group_size": self.changes.snapshot()}
