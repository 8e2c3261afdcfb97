"""A fake KIS venue: a real server on loopback that answers like KIS Open API."""
