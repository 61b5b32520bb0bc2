"""Collaboratives: programs, their phases and staff."""
