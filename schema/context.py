"""The typed, frozen per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from db.queries.audit import Actor
from schema.principal import Principal

if TYPE_CHECKING:
    from db.live import LiveEvents
    from db.queries.data import Receipt
    from schema.loaders import Loaders


class IngestObserver(Protocol):
    """Told about every measure data call (the edge counts them in its metrics)."""

    def observe_receipt(self, source: str, receipt: Receipt) -> None:
        """A call answered ``receipt``."""
        ...

    def observe_ingest_error(self, source: str, code: str) -> None:
        """A call was refused as a whole with ``code``."""
        ...


@dataclass(frozen=True)
class Limits:
    """Request limits the schema enforces itself (from settings at the edge)."""

    max_page_size: int = 100
    max_batch_rows: int = 10_000
    webhook_allow_private: bool = False
    """Webhook URLs may reach private and loopback addresses (COLLABX_WEBHOOK_ALLOW_PRIVATE)."""


@dataclass(frozen=True)
class Context:
    """Per request: who calls, how to open a short-lived session, and the DataLoaders.

    ``db`` is a sessionmaker, never a session: every loader batch and every mutation opens its
    own, because sibling resolvers run concurrently.
    """

    request: Request | WebSocket
    response: Response | None
    principal: Principal | None
    db: async_sessionmaker[AsyncSession]
    read_db: async_sessionmaker[AsyncSession]
    """Sessions for units of work that only read (autocommit on PostgreSQL: one round trip
    less at each end). Anything that writes, or reads in order to write, uses ``db``."""
    loaders: Loaders
    limits: Limits
    request_id: str
    ingest_observer: IngestObserver | None = None
    events: LiveEvents | None = None
    """The process's live events (subscriptions); None where nothing publishes them."""

    def actor(self) -> Actor:
        """The audit actor of this request (the principal must exist)."""
        principal = self.principal
        assert principal is not None, "mutations run behind authentication"
        return Actor(
            client_id=principal.client_id,
            kind=principal.kind.value,
            sponsor_id=principal.sponsor_id,
            request_id=self.request_id,
        )


Info = StrawberryInfo[Context, None]
"""What every resolver takes as ``info``."""
