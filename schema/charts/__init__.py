"""Run and control charts of series (team series and aggregates) as GraphQL types."""
