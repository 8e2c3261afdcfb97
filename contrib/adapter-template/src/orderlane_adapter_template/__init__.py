"""An orderlane adapter to copy: an in-process venue, the adapter that talks to it, and the
venue harness that runs orderlane's conformance suite against both.

Rename the package, replace :mod:`.venue` with your broker's client, and keep the suite green.
"""

from orderlane_adapter_template.adapter import TemplateAdapter, create_adapter
from orderlane_adapter_template.venue import TemplateVenue, VenueError

__all__ = ["TemplateAdapter", "TemplateVenue", "VenueError", "create_adapter"]
