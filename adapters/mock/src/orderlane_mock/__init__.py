"""orderlane-mock: a scriptable in-process venue and its orderlane adapter."""

from orderlane_mock.adapter import MockAdapter, create_adapter
from orderlane_mock.venue import MockVenue, VenueOrder, VenueRequest

__all__ = ["MockAdapter", "MockVenue", "VenueOrder", "VenueRequest", "create_adapter"]
