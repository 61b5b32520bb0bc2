"""Aggregates of measure data across teams: the aggregate query, scorecards, suppression."""
