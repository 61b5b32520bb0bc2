"""Persistence of CollabX: SQLAlchemy models and queries. Knows nothing of GraphQL or HTTP."""
