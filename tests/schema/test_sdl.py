"""The committed SDL matches the schema (regenerate with ``make schema``)."""

from __future__ import annotations

from schema.sdl import COMMITTED_SDL, sdl


def test_committed_sdl_is_current() -> None:
    assert COMMITTED_SDL.exists(), "run `make schema` and commit schema/schema.graphql"
    assert COMMITTED_SDL.read_text(encoding="utf-8") == sdl(), (
        "schema/schema.graphql is stale: run `make schema` and commit it"
    )


def test_contract_names_are_in_the_schema() -> None:
    text = sdl()
    for name in (
        "interface Node",
        "interface Error",
        "enum ClientKind",
        "EHR_INTEGRATION",
        "enum CollaborativeStatus",
        "enum PhaseKind",
        "LEARNING_SESSION",
        "enum StaffRole",
        "IMPROVEMENT_ADVISOR",
        "viewer: Viewer!",
        "union CreateCollaborativeResult",
        "union UpdateCollaborativeResult",
    ):
        assert name in text, name
