"""Webhooks: partner endpoints that receive live events as signed HTTP POSTs."""
