"""A fake KIS venue: a real server on loopback that answers like KIS Open API.

REST (tokens, approval key, hashkey, order-cash, order-rvsecncl, inquire-daily-ccld with
paging, inquire-balance) and the order-notice WebSocket at ``/tryitout``, in paper or live mode,
with KIS's page sizes, rate limits, message codes and header spelling. Tests script quotes,
fills, rejections and faults through its control API and read every request it received::

    async with FakeKisVenue("paper") as venue:
        client = MyKisClient(base_url=venue.rest_url, ws_url=venue.ws_url,
                             app_key=venue.credentials.app_key, ...)
        venue.set_quote("005930", 71_000)
        venue.add_fault("drop_after", operation="place")
        ...
        assert venue.request_count("place") == 2

``orderlane fake-kis serve`` runs it as its own process; :class:`RemoteVenue` drives that one.
"""

from orderlane_kis.fake.control import CONTROL_METHODS, FakeKisVenue, RemoteVenue
from orderlane_kis.fake.faults import FAULT_ACTIONS, Fault
from orderlane_kis.fake.notices import DRIFTED_COLUMNS, NOTICE_COLUMNS, decrypt, encrypt
from orderlane_kis.fake.tokens import Credentials
from orderlane_kis.fake.venue import (
    DEFAULT_INSTRUMENTS,
    PAGE_SIZES,
    RATE_LIMITS,
    RecordedRequest,
)

__all__ = [
    "CONTROL_METHODS",
    "DEFAULT_INSTRUMENTS",
    "DRIFTED_COLUMNS",
    "FAULT_ACTIONS",
    "NOTICE_COLUMNS",
    "PAGE_SIZES",
    "RATE_LIMITS",
    "Credentials",
    "FakeKisVenue",
    "Fault",
    "RecordedRequest",
    "RemoteVenue",
    "decrypt",
    "encrypt",
]
