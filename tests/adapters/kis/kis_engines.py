"""Engines on the KIS adapters against a fake KIS venue, for the KIS tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orderlane import Engine, EngineConfig, FakeClock
from orderlane_kis.adapter import KisAdapter, create_live_adapter, create_paper_adapter
from orderlane_kis.fake import FakeKisVenue


def options(venue: FakeKisVenue, cache: Path, **extra: Any) -> dict[str, Any]:
    """The adapter options that reach ``venue`` with its credentials: a short timeout, no lag
    before lookups, no notices unless ``extra`` turns them on."""
    settings: dict[str, Any] = {"timeout": "2", "new_order_lag": "0", "push": False}
    if venue.mode == "live":
        settings["live_trading"] = venue.credentials.account
    return venue.adapter_options(cache, **{**settings, **extra})


def adapter_and_engine(
    venue: FakeKisVenue, clock: FakeClock, url: str, cache: Path, **extra: Any
) -> tuple[KisAdapter, Engine]:
    """The venue's mode's adapter and an engine on it (not started), on ``clock``."""
    factory = create_live_adapter if venue.mode == "live" else create_paper_adapter
    adapter = factory(options(venue, cache, **extra))
    assert isinstance(adapter, KisAdapter)
    engine = Engine(
        adapter,
        clock=clock,
        database_url=url,
        config=EngineConfig(load_entry_point_plugins=False),
    )
    return adapter, engine
