"""Sponsors and people."""
