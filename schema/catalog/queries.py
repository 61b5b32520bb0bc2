"""Queries: ``resources(filter, orderBy, first, after)`` and ``resource(id)``."""

from __future__ import annotations

import enum

import strawberry

from db.enums import CareModelDomain, ResourceKind
from db.queries.catalog import SEARCH_MAX, list_resources
from db.queries.catalog import ResourceFilter as ResourceFilterQuery
from schema.catalog.types import Resource
from schema.context import Info
from schema.errors import invalid_argument
from schema.ids import row_id_of
from schema.pagination import Connection, OrderDirection, page_request, to_connection
from schema.permissions import HasScope, require_principal


@strawberry.input(description="Filters of the resource catalog; all given filters must match.")
class ResourceFilter:
    kind: ResourceKind | None = strawberry.field(default=None, description="Kind of resource.")
    care_model_domain: CareModelDomain | None = strawberry.field(
        default=None, description="Tagged with this Care Model domain."
    )
    topic: str | None = strawberry.field(
        default=None, description="Tagged with this topic (exact, case-sensitive)."
    )
    collaborative: str | None = strawberry.field(
        default=None, description="Linked to the collaborative with this code."
    )
    search: str | None = strawberry.field(
        default=None,
        description=(
            "Full-text search: every word must appear as a whole word in the title or summary "
            "(case-insensitive; punctuation and operators are plain text). At most "
            f"{SEARCH_MAX} characters; a text without words matches nothing."
        ),
    )


@strawberry.enum(description="Sort keys of resources.")
class ResourceOrderField(enum.Enum):
    TITLE = "TITLE"
    PUBLISHED_ON = "PUBLISHED_ON"
    CREATED_AT = "CREATED_AT"


@strawberry.input(description="Ordering of resources (ties broken by id; undated last).")
class ResourceOrder:
    field: ResourceOrderField = strawberry.field(
        default=ResourceOrderField.TITLE, description="Sort key."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="Sort direction."
    )


def _check_filter(filter: ResourceFilter) -> None:
    """Reject text the backends would treat differently (NUL) or that is unreasonably long."""
    for name, value in (
        ("topic", filter.topic),
        ("collaborative", filter.collaborative),
        ("search", filter.search),
    ):
        if value is not None and "\x00" in value:
            raise invalid_argument(f"filter.{name} must not contain NUL characters")
    if filter.search is not None and len(filter.search) > SEARCH_MAX:
        raise invalid_argument(f"filter.search is longer than {SEARCH_MAX} characters")


@strawberry.type
class CatalogQueries:
    @strawberry.field(
        description="The caller's resource catalog, filtered, searched and paged.",
        permission_classes=[HasScope("catalog:read")],
    )
    async def resources(
        self,
        info: Info,
        filter: ResourceFilter | None = None,
        order_by: ResourceOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Resource]:
        principal = require_principal(info)
        filter = filter or ResourceFilter()
        order_by = order_by or ResourceOrder()
        _check_filter(filter)
        order = f"resources:{order_by.field.value}:{order_by.direction.value}"
        size, keyset = page_request(info, order=order, first=first, after=after)
        async with info.context.db() as session:
            page = await list_resources(
                session,
                principal.sponsor_id,
                filter=ResourceFilterQuery(
                    kind=filter.kind,
                    care_model_domain=filter.care_model_domain,
                    topic=filter.topic,
                    collaborative_code=filter.collaborative,
                    search=filter.search,
                ),
                sort=order_by.field.value,
                descending=order_by.direction is OrderDirection.DESC,
                first=size,
                after=keyset,
            )
        return to_connection(
            page, order=order, project=Resource.from_model, after=keyset is not None
        )

    @strawberry.field(
        description="A resource by global id; null when not visible to the caller.",
        permission_classes=[HasScope("catalog:read")],
    )
    async def resource(self, info: Info, id: strawberry.ID) -> Resource | None:
        require_principal(info)
        row_id = row_id_of(id, "Resource")
        if row_id is None:
            return None
        row = await info.context.loaders.resource_by_id.load(row_id)
        return Resource.from_model(row) if row is not None else None
