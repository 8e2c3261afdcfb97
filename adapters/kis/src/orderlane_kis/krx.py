"""KRX market rules the adapters and the fake venue share: the stock tick grid and session hours.

Limit prices of KOSPI and KOSDAQ stocks must sit on one tick grid (since 2023); KIS refuses an
off-tick price with a business error whose code is not documented, so the adapters check the grid
before sending and the fake venue refuses such prices as KIS does. Prices are whole won.
The regular session runs 09:00 to 15:30 KST on business days; the trading day of a fill is its
KST date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

__all__ = [
    "KST",
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "is_business_day",
    "is_on_tick",
    "kst",
    "nearest_ticks",
    "tick_size",
    "utc_of_kst",
]

#: Korea Standard Time (no daylight saving).
KST = timezone(timedelta(hours=9), "KST")
SESSION_OPEN = time(9, 0)
SESSION_CLOSE = time(15, 30)

# (lower bound of the band, tick size), highest band first.
_GRID = (
    (500_000, 1_000),
    (200_000, 500),
    (50_000, 100),
    (20_000, 50),
    (5_000, 10),
    (2_000, 5),
    (0, 1),
)


def tick_size(price: int) -> int:
    """The tick size of a stock price of ``price`` won."""
    for floor, tick in _GRID:
        if price >= floor:
            return tick
    return 1


def is_on_tick(price: int) -> bool:
    """Whether ``price`` is a valid limit price for a stock (positive and on the grid)."""
    return price > 0 and price % tick_size(price) == 0


def nearest_ticks(price: int) -> tuple[int, int]:
    """The valid prices just below and just above ``price`` (both ``price`` when it is valid).

    Near a band edge the two sides use different ticks: 49,990 lies between 49,950 and 50,000.
    """
    if is_on_tick(price):
        return price, price
    below = price - price % tick_size(price)
    # Every band starts on a multiple of both its own tick and the one below it, so one step
    # of the lower band's tick lands on the grid even across a band edge.
    return below, below + tick_size(below)


def kst(moment: datetime) -> datetime:
    """``moment`` (timezone-aware) in Korea Standard Time."""
    return moment.astimezone(KST)


def kst_day(moment: datetime) -> date:
    """The KST date of ``moment`` (timezone-aware): its trading day in Korea."""
    return moment.astimezone(KST).date()


def is_business_day(day: date, holidays: frozenset[date] = frozenset()) -> bool:
    """Monday to Friday, except the given exchange holidays."""
    return day.weekday() < 5 and day not in holidays


def utc_of_kst(day: date, at: time) -> datetime:
    """The UTC moment of ``at`` KST on ``day``."""
    return datetime.combine(day, at, KST).astimezone(UTC)
