"""Fixtures for the fake KIS venue's tests: venues on fake time and raw KIS clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kis.kis_raw_client import KisClient
from orderlane import FakeClock
from orderlane_kis.fake import FakeKisVenue


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _venue(mode: str, clock: FakeClock) -> AsyncIterator[FakeKisVenue]:
    venue = FakeKisVenue(mode, clock=clock, ping_interval=None)  # type: ignore[arg-type]
    async with venue:
        yield venue


@pytest.fixture
async def paper(clock: FakeClock) -> AsyncIterator[FakeKisVenue]:
    async for venue in _venue("paper", clock):
        yield venue


@pytest.fixture
async def live(clock: FakeClock) -> AsyncIterator[FakeKisVenue]:
    async for venue in _venue("live", clock):
        yield venue


async def _client(venue: FakeKisVenue, clock: FakeClock) -> AsyncIterator[KisClient]:
    async with httpx.AsyncClient(base_url=venue.rest_url, timeout=5.0) as http:
        client = KisClient(venue, http, clock)
        assert (await client.issue_token()).status_code == 200
        yield client


@pytest.fixture
async def kis(paper: FakeKisVenue, clock: FakeClock) -> AsyncIterator[KisClient]:
    async for client in _client(paper, clock):
        yield client


@pytest.fixture
async def kis_live(live: FakeKisVenue, clock: FakeClock) -> AsyncIterator[KisClient]:
    async for client in _client(live, clock):
        yield client
