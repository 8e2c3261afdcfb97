"""KRX's stock tick grid and session calendar, shared by the KIS adapters and the fake venue."""

from __future__ import annotations

from datetime import date, time

import pytest

from orderlane_kis.krx import is_business_day, is_on_tick, nearest_ticks, tick_size, utc_of_kst


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1_999, 1),
        (2_000, 5),
        (4_995, 5),
        (5_000, 10),
        (19_990, 10),
        (20_000, 50),
        (49_950, 50),
        (50_000, 100),
        (199_900, 100),
        (200_000, 500),
        (499_500, 500),
        (500_000, 1_000),
    ],
)
def test_tick_sizes_by_band(price: int, tick: int) -> None:
    assert tick_size(price) == tick
    assert is_on_tick(price)
    assert not is_on_tick(price + 1) or tick == 1


@pytest.mark.parametrize(
    ("price", "nearest"),
    [
        (72_050, (72_000, 72_100)),
        (49_990, (49_950, 50_000)),
        (199_950, (199_900, 200_000)),
        (4_999, (4_995, 5_000)),
        (72_000, (72_000, 72_000)),
    ],
)
def test_nearest_valid_prices_across_band_edges(price: int, nearest: tuple[int, int]) -> None:
    assert nearest_ticks(price) == nearest
    assert all(is_on_tick(p) for p in nearest)


def test_zero_and_negative_prices_are_never_on_tick() -> None:
    assert not is_on_tick(0)
    assert not is_on_tick(-100)


def test_business_days_and_session_times() -> None:
    assert is_business_day(date(2026, 1, 5))
    assert not is_business_day(date(2026, 1, 4))
    assert not is_business_day(date(2026, 1, 5), frozenset({date(2026, 1, 5)}))
    assert utc_of_kst(date(2026, 1, 5), time(9, 0)).hour == 0
