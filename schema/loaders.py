"""Every DataLoader, built per request, named ``<entity>_by_<key>``.

Each batch opens its own short session (loaders run as concurrent tasks; a session must never be
shared between them) and is scoped to the caller's sponsor, so a loader cannot leak another
tenant's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from db.models import Collaborative, Person, Phase, Sponsor, StaffAssignment
from db.queries import collaboratives, sponsors

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")


class Loaders:
    """The DataLoaders of one request."""

    def __init__(self, db: async_sessionmaker[AsyncSession], sponsor_id: uuid.UUID | None) -> None:
        self._db = db
        self._sponsor_id = sponsor_id or uuid.UUID(int=0)
        sid = self._sponsor_id
        self.sponsor_by_id: DataLoader[uuid.UUID, Sponsor | None] = self._loader(
            lambda s, ids: sponsors.sponsors_by_ids(s, ids)
        )
        self.person_by_id: DataLoader[uuid.UUID, Person | None] = self._loader(
            lambda s, ids: sponsors.people_by_ids(s, sid, ids)
        )
        self.collaborative_by_id: DataLoader[uuid.UUID, Collaborative | None] = self._loader(
            lambda s, ids: collaboratives.collaboratives_by_ids(s, sid, ids)
        )
        self.phases_by_collaborative_id: DataLoader[uuid.UUID, list[Phase]] = self._loader(
            lambda s, ids: collaboratives.phases_by_collaborative_ids(s, sid, ids)
        )
        self.staff_by_collaborative_id: DataLoader[uuid.UUID, list[StaffAssignment]] = self._loader(
            lambda s, ids: collaboratives.staff_by_collaborative_ids(s, sid, ids)
        )

    def _loader(
        self,
        fetch: Callable[[AsyncSession, Sequence[KeyT]], Awaitable[Sequence[ValueT]]],
    ) -> DataLoader[KeyT, ValueT]:
        db = self._db

        async def load(keys: list[KeyT]) -> Sequence[ValueT]:
            async with db() as session:
                return await fetch(session, keys)

        return DataLoader(load_fn=load)
