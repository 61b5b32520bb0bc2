"""Sponsors and people."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Person, Sponsor


async def get_sponsor_by_slug(session: AsyncSession, slug: str) -> Sponsor | None:
    """The sponsor with this slug, or None."""
    return await session.scalar(select(Sponsor).where(Sponsor.slug == slug))


async def sponsors_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Sponsor | None]:
    """Sponsors in the order of ``ids`` (None where missing), for a DataLoader."""
    rows = (await session.scalars(select(Sponsor).where(Sponsor.id.in_(ids)))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def list_sponsors(session: AsyncSession, *, ids: Sequence[uuid.UUID]) -> Sequence[Sponsor]:
    """The sponsors among ``ids`` (those the caller may see), by slug."""
    return (
        await session.scalars(select(Sponsor).where(Sponsor.id.in_(ids)).order_by(Sponsor.slug))
    ).all()


async def people_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Person | None]:
    """People of one sponsor in the order of ``ids``."""
    rows = (
        await session.scalars(
            select(Person).where(Person.sponsor_id == sponsor_id, Person.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def sponsors_by_slugs(session: AsyncSession, slugs: Iterable[str]) -> dict[str, Sponsor]:
    """Sponsors by slug (one statement); unknown slugs are absent."""
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    rows = await session.scalars(select(Sponsor).where(Sponsor.slug.in_(wanted)))
    return {row.slug: row for row in rows}
