"""Sharing across sponsors: agreements, shared reads, the access log, measure links."""
