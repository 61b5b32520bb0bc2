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

from db.errors import InvalidInput

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


def check_keyset(keyset: Keyset | None, sort: InstrumentedAttribute[Any]) -> None:
    """Reject a keyset whose value cannot be compared with ``sort`` (a tampered cursor).

    Without this a crafted cursor reaches the SQL as a wrongly typed parameter, which the
    database answers with an error instead of an empty page.
    """
    if keyset is None or keyset.value is None:
        return
    value = keyset.value
    expected = sort.type.python_type
    if expected is datetime:
        valid = isinstance(value, datetime) and value.tzinfo is not None
    elif expected is date:
        valid = isinstance(value, date) and not isinstance(value, datetime)
    elif expected is str:
        valid = isinstance(value, str) and "\x00" not in value
    elif expected in (int, float):
        valid = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        valid = isinstance(value, expected)
    if not valid:
        raise InvalidInput("the cursor does not belong to this list or ordering", field="after")


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
    check_keyset(after, sort)
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
