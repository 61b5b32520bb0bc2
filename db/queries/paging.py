"""Keyset pagination: stable cursors over (sort column, id), and a total count.

A cursor holds the sort value and the id of the last row seen, so pages never skip or repeat rows
when rows are inserted between requests (unlike OFFSET).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

RowT = TypeVar("RowT")

SortValue = str | int | float | date | datetime | bool | None


@dataclass(frozen=True)
class Keyset:
    """The position after which a page starts: the last row's sort value and id."""

    value: SortValue
    id: uuid.UUID


@dataclass(frozen=True)
class Page(Generic[RowT]):
    """One page of rows, each with its keyset, whether more follow, and the filtered total."""

    rows: Sequence[RowT]
    keysets: Sequence[Keyset]
    has_next: bool
    total: int


async def keyset_page(
    session: AsyncSession,
    query: Select[RowT],
    *,
    sort: InstrumentedAttribute[Any],
    tiebreak: InstrumentedAttribute[uuid.UUID],
    descending: bool,
    first: int,
    after: Keyset | None,
) -> Page[RowT]:
    """Run ``query`` (already filtered) as one page ordered by ``sort`` then ``tiebreak``."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if after is not None:
        if descending:
            position = or_(sort < after.value, and_(sort == after.value, tiebreak < after.id))
        else:
            position = or_(sort > after.value, and_(sort == after.value, tiebreak > after.id))
        query = query.where(position)
    order = (sort.desc(), tiebreak.desc()) if descending else (sort.asc(), tiebreak.asc())
    rows = list((await session.scalars(query.order_by(*order).limit(first + 1))).all())
    has_next = len(rows) > first
    rows = rows[:first]
    keysets = [Keyset(value=getattr(row, sort.key), id=getattr(row, tiebreak.key)) for row in rows]
    return Page(rows=rows, keysets=keysets, has_next=has_next, total=int(total or 0))
