"""GraphQL surface of CollabX: strawberry types, resolvers, loaders. Never writes SQL."""
