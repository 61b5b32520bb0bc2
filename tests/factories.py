"""Test data builders: isolated tenants with clients, tokens, and GraphQL calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from api.state import AppState
from db.enums import DEFAULT_SCOPES, ClientKind
from db.models import Sponsor
from db.queries.auth import create_client


@dataclass
class Tenant:
    """A sponsor made for one test, with an admin client and a way to call the API as it."""

    slug: str
    sponsor_id: uuid.UUID
    factory: TenantFactory
    admin_id: str
    admin_secret: str
    _tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, client_id: str | None = None, secret: str | None = None) -> str:
        """An access token of one of this tenant's clients (the admin by default)."""
        client_id = client_id or self.admin_id
        if client_id not in self._tokens:
            self._tokens[client_id] = await self.factory.token(
                client_id, secret or self.admin_secret
            )
        return self._tokens[client_id]

    async def add_client(
        self,
        kind: ClientKind,
        *,
        scopes: tuple[str, ...] | None = None,
        teams: tuple[str, ...] = (),
    ) -> tuple[str, str]:
        """Create another client of this sponsor; returns (client_id, secret)."""
        state: AppState = self.factory.app.state.collabx
        async with state.sessionmaker.begin() as session:
            record, secret = await create_client(
                session,
                sponsor_slug=self.slug,
                kind=kind,
                scopes=scopes if scopes is not None else DEFAULT_SCOPES[kind],
                team_codes=teams,
            )
        return record.client_id, secret

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """POST a GraphQL document as this tenant's admin (or with ``token``); the JSON body."""
        bearer = token or await self.token()
        response = await self.factory.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


class TenantFactory:
    """Makes tenants on the app's database."""

    def __init__(self, app: Starlette, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    async def create(self, name: str = "Test Sponsor") -> Tenant:
        """A new sponsor with a random slug and an ADMIN client."""
        state: AppState = self.app.state.collabx
        slug = f"t-{uuid.uuid4().hex[:10]}"
        async with state.sessionmaker.begin() as session:
            sponsor = Sponsor(id=uuid.uuid4(), slug=slug, name=name, description="")
            session.add(sponsor)
            await session.flush()
            record, secret = await create_client(
                session,
                sponsor_slug=slug,
                kind=ClientKind.ADMIN,
                scopes=DEFAULT_SCOPES[ClientKind.ADMIN],
            )
        return Tenant(
            slug=slug,
            sponsor_id=sponsor.id,
            factory=self,
            admin_id=record.client_id,
            admin_secret=secret,
        )

    async def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        """A token from the token endpoint (client credentials, HTTP Basic)."""
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        response = await self.http.post("/oauth/token", data=data, auth=(client_id, secret))
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token
