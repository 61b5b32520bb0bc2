"""Live updates: GraphQL subscriptions of committed measure data and chart signals."""
