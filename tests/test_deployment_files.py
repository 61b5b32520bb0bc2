"""docker-compose.yml, Dockerfile, .env.example and the README's two commands hold together.

Docker does not run on CI, so the compose file is checked by parsing it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_runs_postgres_16_with_a_healthcheck() -> None:
    db = _compose()["services"]["db"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_compose_migrates_once_before_the_api_starts() -> None:
    services = _compose()["services"]
    migrate, api = services["migrate"], services["api"]
    assert migrate["command"] == ["collabx", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_api_points_at_the_database_service_and_publishes_its_port() -> None:
    services = _compose()["services"]
    environment = services["api"]["environment"]
    url = make_url(environment["COLLABX_DATABASE_URL"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "db"
    assert url.database == services["db"]["environment"]["POSTGRES_DB"]
    assert url.username == services["db"]["environment"]["POSTGRES_USER"]
    assert environment["COLLABX_HOST"] == "0.0.0.0"
    port = environment["COLLABX_PORT"]
    assert f"{port}:{port}" in services["api"]["ports"]
    assert services["migrate"]["environment"]["COLLABX_DATABASE_URL"] == str(
        environment["COLLABX_DATABASE_URL"]
    )


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^#?\s*(COLLABX_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    expected = {f"COLLABX_{name.upper()}" for name in Settings.model_fields}
    assert expected <= listed, f"missing from .env.example: {sorted(expected - listed)}"


def test_readme_first_code_block_is_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash)?\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


def test_ci_runs_the_readme_test_command_with_postgres_required() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "COLLABX_TEST_POSTGRES_URL" in script
    assert "COLLABX_REQUIRE_POSTGRES=1" in script
    assert script.rstrip().endswith("make test")


def test_issuer_defaults_to_where_the_server_listens() -> None:
    assert Settings(port=8765).issuer == "http://127.0.0.1:8765"
    assert Settings(issuer="https://collabx.example.org").issuer == "https://collabx.example.org"
