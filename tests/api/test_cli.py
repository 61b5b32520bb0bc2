"""The ``collabx`` command: clients, keys and schema export, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from click.testing import CliRunner, Result
from sqlalchemy import select

from api.app import create_app
from api.cli import main
from db.migrations import upgrade_to_head
from db.models import AuditEvent
from db.sessions import create_engine
from schema.sdl import sdl
from tests.conftest import make_settings


@pytest.fixture
async def database(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A migrated database of this test's own, on each backend, named by the environment."""
    monkeypatch.setenv("COLLABX_DATABASE_URL", empty_database_url)
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    yield empty_database_url


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=False)


async def run(*args: str) -> Result:
    """Run the CLI (it starts its own event loop, so in a thread)."""
    return await asyncio.to_thread(_invoke, list(args))


async def invoke(*args: str) -> str:
    """Run the CLI and expect success; its output."""
    result = await run(*args)
    assert result.exit_code == 0, result.output
    return result.output


async def test_client_lifecycle(database: str) -> None:
    await invoke("seed", "--demo")
    created = json.loads(
        await invoke(
            "client",
            "create",
            "--sponsor",
            "childrens-health-network",
            "--kind",
            "DASHBOARD",
            "--json",
        )
    )
    assert set(created) == {"client_id", "client_secret"}
    assert len(created["client_secret"]) >= 40
    listing = json.loads(await invoke("client", "list", "--json"))
    mine = next(c for c in listing if c["client_id"] == created["client_id"])
    assert mine["kind"] == "DASHBOARD"
    assert mine["scopes"] == "program:read data:read aggregate:read catalog:read"
    assert created["client_secret"] not in json.dumps(listing)
    assert {c["client_id"] for c in listing} >= {"demo-admin", "demo-ehr", "demo-partner"}
    demo_ehr = next(c for c in listing if c["client_id"] == "demo-ehr")
    assert demo_ehr["teams"] == 2

    rotated = json.loads(await invoke("client", "rotate-secret", created["client_id"]))
    assert rotated["client_secret"] != created["client_secret"]
    await invoke("client", "revoke", created["client_id"])
    listing = json.loads(await invoke("client", "list", "--json"))
    assert next(c for c in listing if c["client_id"] == created["client_id"])["revoked_at"]
    engine = create_engine(database, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(AuditEvent.action, AuditEvent.actor_client_id, AuditEvent.after).where(
                        AuditEvent.entity_type == "Client"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    mine = [
        (a, who) for a, who, after in rows if after and after["client_id"] == created["client_id"]
    ]
    assert mine == [
        ("client.create", "cli"),
        ("client.rotate_secret", "cli"),
        ("client.revoke", "cli"),
    ]
    assert all("secret" not in json.dumps(after) for _, _, after in rows)


async def test_rotated_secret_replaces_the_old_one(database: str) -> None:
    await invoke("seed", "--demo")
    rotated = json.loads(await invoke("client", "rotate-secret", "demo-admin"))
    app = create_app(make_settings(database, demo=True))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            grant = {"grant_type": "client_credentials"}
            old = await http.post(
                "/oauth/token", data=grant, auth=("demo-admin", "demo-admin-secret")
            )
            assert old.status_code == 401
            new = await http.post(
                "/oauth/token", data=grant, auth=("demo-admin", rotated["client_secret"])
            )
            assert new.status_code == 200


async def test_client_create_rejects_bad_input(database: str) -> None:
    unknown_sponsor = await run("client", "create", "--sponsor", "nope", "--kind", "ADMIN")
    assert unknown_sponsor.exit_code != 0
    assert "no sponsor with slug 'nope'" in unknown_sponsor.output
    bad_scope = await run(
        "client", "create", "--sponsor", "x", "--kind", "ADMIN", "--scopes", "root"
    )
    assert bad_scope.exit_code != 0
    assert "unknown scope" in bad_scope.output
    revoke_missing = await run("client", "revoke", "ghost")
    assert revoke_missing.exit_code != 0
    assert "no client 'ghost'" in revoke_missing.output


async def test_ehr_client_is_bound_to_named_teams(database: str) -> None:
    await invoke("seed", "--demo")
    unknown_team = await run(
        "client",
        "create",
        "--sponsor",
        "childrens-health-network",
        "--kind",
        "EHR_INTEGRATION",
        "--team",
        "no-such-team",
    )
    assert unknown_team.exit_code != 0
    assert "no-such-team" in unknown_team.output


async def test_keys_rotate_adds_a_key(database: str) -> None:
    first = await invoke("keys", "rotate")
    second = await invoke("keys", "rotate")
    assert first.startswith("new signing key ")
    assert first != second


async def test_seed_again_after_a_demo_client_was_revoked(database: str) -> None:
    await invoke("seed", "--demo")
    await invoke("client", "revoke", "demo-ehr")
    again = await invoke("seed", "--demo")
    assert "already present; 0 demo client(s) created" in again


async def test_seed_is_idempotent(database: str) -> None:
    first = await invoke("seed", "--demo")
    assert "seeded 2 sponsors" in first
    assert "demo-partner-secret" in first
    second = await invoke("seed", "--demo")
    assert "already present" in second


def test_export_schema_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    result = _invoke(["export-schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == sdl()
