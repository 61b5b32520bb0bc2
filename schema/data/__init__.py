"""Measure data exchange: submissions, deletions, receipts, the delta export, period locks."""
