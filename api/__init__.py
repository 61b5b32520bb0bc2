"""HTTP edge of CollabX: Starlette app, authentication, CLI. Knows nothing of tables."""
