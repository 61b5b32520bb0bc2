"""Demo clients: well-known ids and secrets, for trying CollabX locally. Never in production.

``collabx serve`` outside demo mode (``COLLABX_DEMO``) refuses to start while any of them exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from db.demo import DEMO_EHR_TEAM_CODES, DEMO_SPONSOR_SLUGS
from db.enums import DEFAULT_SCOPES, ClientKind
from db.queries.auth import create_client, existing_client_ids


@dataclass(frozen=True)
class DemoClient:
    """A demo client: its id, kind, home sponsor and bound teams; the secret is ``<id>-secret``."""

    client_id: str
    kind: ClientKind
    sponsor_slug: str
    team_codes: tuple[str, ...] = ()

    @property
    def secret(self) -> str:
        return f"{self.client_id}-secret"


DEMO_CLIENTS: tuple[DemoClient, ...] = (
    DemoClient("demo-admin", ClientKind.ADMIN, DEMO_SPONSOR_SLUGS[0]),
    DemoClient("demo-dashboard", ClientKind.DASHBOARD, DEMO_SPONSOR_SLUGS[0]),
    DemoClient("demo-ehr", ClientKind.EHR_INTEGRATION, DEMO_SPONSOR_SLUGS[0], DEMO_EHR_TEAM_CODES),
    DemoClient("demo-partner", ClientKind.PARTNER, DEMO_SPONSOR_SLUGS[1]),
)
DEMO_CLIENT_IDS = tuple(client.client_id for client in DEMO_CLIENTS)


async def ensure_demo_clients(session: AsyncSession) -> list[DemoClient]:
    """Create the demo clients that do not exist yet; returns those created."""
    # Revoked demo clients count as present: re-creating them would clash with their ids.
    present = set(await existing_client_ids(session, DEMO_CLIENT_IDS, include_revoked=True))
    created = []
    for demo in DEMO_CLIENTS:
        if demo.client_id in present:
            continue
        await create_client(
            session,
            sponsor_slug=demo.sponsor_slug,
            kind=demo.kind,
            scopes=DEFAULT_SCOPES[demo.kind],
            team_codes=demo.team_codes,
            client_id=demo.client_id,
            secret=demo.secret,
            name=f"Demo {demo.kind.value.lower().replace('_', ' ')} client",
        )
        created.append(demo)
    return created


async def demo_clients_present(session: AsyncSession) -> list[str]:
    """Ids of demo clients that exist and are not revoked."""
    return await existing_client_ids(session, DEMO_CLIENT_IDS)


def credentials_text(base_url: str) -> str:
    """What ``make run`` prints: the demo clients and how to get a token."""
    lines = [
        "Demo clients (DEMO ONLY: well-known secrets; never use them in production):",
    ]
    for demo in DEMO_CLIENTS:
        teams = f"  teams: {', '.join(demo.team_codes)}" if demo.team_codes else ""
        lines.append(
            f"  {demo.client_id:<15} secret {demo.secret:<22} {demo.kind.value:<16}"
            f" sponsor {demo.sponsor_slug}{teams}"
        )
    lines += [
        "Get a token:",
        f"  curl -s -u demo-dashboard:demo-dashboard-secret -d grant_type=client_credentials"
        f" {base_url}/oauth/token",
        f"GraphiQL: {base_url}/graphql",
    ]
    return "\n".join(lines)
