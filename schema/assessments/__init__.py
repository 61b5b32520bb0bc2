"""The IHI Assessment Scale: monthly faculty and self scores of teams, and summaries."""
