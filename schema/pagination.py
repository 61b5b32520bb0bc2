"""Relay connections with keyset cursors, ``totalCount`` and ordering, shared by every list."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from db.queries.paging import Keyset, Page
from schema.context import Info
from schema.errors import PublicError, invalid_argument
from schema.ids import InvalidId, decode_cursor, encode_cursor

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")

DEFAULT_PAGE_SIZE = 20


@strawberry.enum(description="Sort direction.")
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More rows follow this page.")
    has_previous_page: bool = strawberry.field(description="Rows precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first row.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row; pass as after.")


@strawberry.type(description="A row of a connection with its cursor.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Opaque position of this row.")
    node: NodeT = strawberry.field(description="The row.")


@strawberry.type(description="A page of a list (Relay connection).")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The rows of this page.")
    page_info: PageInfo = strawberry.field(description="Paging state.")
    total_count: int = strawberry.field(description="Rows matching the filter, in all pages.")

    @strawberry.field(description="The rows of this page without cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


def page_request(
    info: Info, *, order: str, first: int | None, after: str | None
) -> tuple[int, Keyset | None]:
    """Validated page size and decoded ``after`` cursor.

    A page larger than the max page size is a query limit (QUERY_TOO_COMPLEX, as API.md groups
    it with depth and cost); a negative size or a bad cursor is a VALIDATION error.
    """
    limit = info.context.limits.max_page_size
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0:
        raise invalid_argument("first must not be negative")
    if size > limit:
        raise PublicError(
            f"Query too complex: first: {size} exceeds the max page size of {limit}.",
            "QUERY_TOO_COMPLEX",
        )
    if after is None:
        return size, None
    try:
        return size, decode_cursor(order, after)
    except InvalidId as exc:
        raise invalid_argument(f"invalid cursor: {exc}") from exc


def to_connection(
    page: Page[RowT], *, order: str, project: Callable[[RowT], NodeT], after: bool
) -> Connection[NodeT]:
    """A connection of ``page``, each row projected to its GraphQL type."""
    edges = [
        Edge(cursor=encode_cursor(order, keyset), node=project(row))
        for row, keyset in zip(page.rows, page.keysets, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=after,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total,
    )


def empty_connection() -> Connection[NodeT]:
    """A connection with no rows (e.g. for a sponsor the caller cannot see)."""
    return Connection(
        edges=[],
        page_info=PageInfo(
            has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None
        ),
        total_count=0,
    )
