"""The SDL of the schema as committed in ``schema/schema.graphql``."""

from __future__ import annotations

from pathlib import Path

from schema.schema import schema

COMMITTED_SDL = Path(__file__).with_name("schema.graphql")


def sdl() -> str:
    """The schema's SDL, newline-terminated."""
    return schema.as_str().rstrip("\n") + "\n"
