"""What the adapter remembers per order, kept for the trading day it belongs to.

KIS order numbers name an order within a day's inquiry, and the adapter remembers a little per
order: the branch a cancel must name, the running total of its executions from the notices, when
it was last sent. An engine that runs for weeks would keep every order's entry forever, and a
running total that outlived its day could be added to by a later day's order of the same number.
A :class:`DayMap` keeps today's entries (KST) and, for reading only where asked, yesterday's;
older ones are dropped as the day turns. KRX orders do not outlive their day: its regular
session ends at 15:30 KST, so no order spans midnight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from datetime import date, timedelta
from typing import TypeVar

from orderlane import Clock, SystemClock
from orderlane_kis.krx import kst_day

__all__ = ["DayMap", "TradingDay"]

K = TypeVar("K")
V = TypeVar("V")


class TradingDay:
    """Today's date in Korea by the engine's clock, once the adapter has started with one (the
    system clock before that)."""

    def __init__(self) -> None:
        self.clock: Clock = SystemClock()

    def __call__(self) -> date:
        return kst_day(self.clock.now())


class DayMap(MutableMapping[K, V]):
    """A mapping whose entries belong to the day they were written on (``today()``).

    Reads see today's entries and, with ``keep_yesterday``, yesterday's; writes go to today's,
    and a deletion removes the key from both days. When the day turns, today's entries become
    yesterday's and older ones are dropped, so the map holds at most two days of orders.
    """

    def __init__(self, today: Callable[[], date], *, keep_yesterday: bool = True) -> None:
        self._today = today
        self._keep_yesterday = keep_yesterday
        self._day: date | None = None
        self._current: dict[K, V] = {}
        self._previous: dict[K, V] = {}

    def __repr__(self) -> str:
        return (
            f"DayMap(day={self._day}, today={len(self._current)}, yesterday={len(self._previous)})"
        )

    def _turn(self) -> None:
        day = self._today()
        if day == self._day:
            return
        if self._day is not None and day == self._day + timedelta(days=1):
            self._previous, self._current = self._current, {}
        elif self._day is not None:  # more than a day later, or a clock set back
            self._previous, self._current = {}, {}
        self._day = day

    def _readable(self) -> tuple[dict[K, V], ...]:
        self._turn()
        return (self._current, self._previous) if self._keep_yesterday else (self._current,)

    def __getitem__(self, key: K) -> V:
        for entries in self._readable():
            if key in entries:
                return entries[key]
        raise KeyError(key)

    def __setitem__(self, key: K, value: V) -> None:
        self._turn()
        self._current[key] = value

    def __delitem__(self, key: K) -> None:
        found = False
        for entries in self._readable():
            if key in entries:
                del entries[key]
                found = True
        if not found:
            raise KeyError(key)

    def __iter__(self) -> Iterator[K]:
        seen: set[K] = set()
        for entries in self._readable():
            for key in entries:
                if key not in seen:
                    seen.add(key)
                    yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)
