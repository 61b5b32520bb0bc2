"""The resource catalog: reads with full-text search on both backends, and the catalog writes.

Full-text search uses the objects of migration ``0002_catalog_search``: on PostgreSQL the GIN
index over ``to_tsvector('simple', title || ' ' || summary)``, on SQLite the FTS5 table
``resources_fts`` kept in step by triggers. The user's text is never handed to either engine as
query syntax: it is cut into words here (runs of letters and digits, what FTS5's ``unicode61``
tokenizer and PostgreSQL's parser both treat as one word), and every word must match a whole word
of the title or summary. So ``title:``, ``"``, ``*``, ``AND OR NOT`` or ``(`` are plain text, and
simple words give the same rows on both backends.

Known differences between the backends, for text beyond simple words: PostgreSQL's parser keeps
host names, e-mail addresses and decimals (``example.com``, ``3.5``) as one token where FTS5 splits
them, and FTS5 folds diacritics (``café`` matches ``cafe``) where the ``simple`` configuration
does not.

Validation raises :class:`~db.errors.InvalidInput` with the input field (snake_case; the GraphQL
layer camel-cases it); unknown collaborative codes raise :class:`~db.errors.NotFound`.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    Select,
    Uuid,
    and_,
    column,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.elements import TextClause

from db.base import utcnow
from db.enums import CareModelDomain, ResourceKind
from db.errors import InvalidInput, NotFound
from db.models import Collaborative, Resource, ResourceCollaborative, ResourceTag
from db.models.catalog import RESOURCE_SEARCH_TEXT, TAG_DOMAIN, TAG_TOPIC
from db.queries.audit import Actor, record_event, snapshot
from db.queries.paging import Keyset, Page, check_keyset, keyset_page

TITLE_MAX = 300
SUMMARY_MAX = 20_000
URL_MAX = 1000
TOPIC_MAX = 120
TOPICS_MAX = 50
COLLABORATIVES_MAX = 100
SEARCH_MAX = 200
"""Longest accepted search text (characters)."""

RESOURCE_SORTS: dict[str, InstrumentedAttribute[Any]] = {
    "TITLE": Resource.title,
    "PUBLISHED_ON": Resource.published_on,
    "CREATED_AT": Resource.created_at,
}
"""Orderings of ``list_resources``; ``PUBLISHED_ON`` puts undated resources last."""

_NULLABLE_SORTS = {"PUBLISHED_ON"}

_WORD = re.compile(r"[^\W_]+")

_resources_fts = table(
    "resources_fts",
    column("sponsor_id", Uuid()),
    column("resource_id", Uuid()),
)
"""The SQLite FTS5 table (only the columns we filter on; ``Uuid`` binds the stored hex form)."""

_DOMAIN_ORDER = {domain.value: index for index, domain in enumerate(CareModelDomain)}


def search_terms(search: str) -> list[str]:
    """The words of a search text: runs of letters and digits, NFC-normalized, lower-cased."""
    return [word.lower() for word in _WORD.findall(unicodedata.normalize("NFC", search))]


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 query matching rows containing every term: each one a quoted FTS5 string."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def search_condition(
    dialect: str, sponsor_id: uuid.UUID, terms: Sequence[str]
) -> ColumnElement[bool] | TextClause:
    """Resources whose title or summary contain every term as a whole word."""
    if dialect == "sqlite":
        matching = select(_resources_fts.c.resource_id).where(
            literal_column("resources_fts").op("MATCH")(fts5_query(terms)),
            _resources_fts.c.sponsor_id == sponsor_id,
        )
        return Resource.id.in_(matching)
    # Spelled exactly like the index expression, with constant configurations, so that
    # PostgreSQL uses ix_resources_search.
    return text(
        f"to_tsvector('simple', {_qualified(RESOURCE_SEARCH_TEXT)}) "
        "@@ plainto_tsquery('simple', :resource_search)"
    ).bindparams(resource_search=" ".join(terms))


def _qualified(expression: str) -> str:
    return re.sub(r"\b(title|summary)\b", r"resources.\1", expression)


@dataclass(frozen=True)
class ResourceFilter:
    """Filters of ``resources``; None means "any"."""

    kind: ResourceKind | None = None
    care_model_domain: CareModelDomain | None = None
    topic: str | None = None
    collaborative_code: str | None = None
    search: str | None = None


def _tag_condition(kind: str, value: str) -> ColumnElement[bool]:
    return exists().where(
        ResourceTag.sponsor_id == Resource.sponsor_id,
        ResourceTag.resource_id == Resource.id,
        ResourceTag.tag_kind == kind,
        ResourceTag.value == value,
    )


def _filtered(
    dialect: str, sponsor_id: uuid.UUID, filter: ResourceFilter
) -> Select[Resource] | None:
    """The filtered query, or None when the filter cannot match anything."""
    query = select(Resource).where(Resource.sponsor_id == sponsor_id)
    if filter.kind is not None:
        query = query.where(Resource.kind == filter.kind)
    if filter.care_model_domain is not None:
        query = query.where(_tag_condition(TAG_DOMAIN, filter.care_model_domain.value))
    if filter.topic is not None:
        query = query.where(_tag_condition(TAG_TOPIC, filter.topic.strip()))
    if filter.collaborative_code is not None:
        query = query.where(
            exists().where(
                ResourceCollaborative.sponsor_id == Resource.sponsor_id,
                ResourceCollaborative.resource_id == Resource.id,
                Collaborative.sponsor_id == ResourceCollaborative.sponsor_id,
                Collaborative.id == ResourceCollaborative.collaborative_id,
                Collaborative.code == filter.collaborative_code,
            )
        )
    if filter.search is not None and filter.search.strip():
        terms = search_terms(filter.search)
        if not terms:
            return None
        query = query.where(search_condition(dialect, sponsor_id, terms))
    return query


async def list_resources(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    *,
    filter: ResourceFilter,
    sort: str = "TITLE",
    descending: bool = False,
    first: int,
    after: Keyset | None = None,
) -> Page[Resource]:
    """One page of a sponsor's catalog.

    A search with no words in it (only punctuation) matches nothing; a blank one is no filter.
    """
    query = _filtered(_dialect(session), sponsor_id, filter)
    if query is None:
        return Page(rows=[], keysets=[], has_next=False, total=0)
    if sort in _NULLABLE_SORTS:
        return await _nulls_last_page(
            session,
            query,
            sort=RESOURCE_SORTS[sort],
            descending=descending,
            first=first,
            after=after,
        )
    return await keyset_page(
        session,
        query,
        sort=RESOURCE_SORTS[sort],
        tiebreak=Resource.id,
        descending=descending,
        first=first,
        after=after,
    )


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "sessions are bound to the engine"
    return bind.dialect.name


async def _nulls_last_page(
    session: AsyncSession,
    query: Select[Resource],
    *,
    sort: InstrumentedAttribute[Any],
    descending: bool,
    first: int,
    after: Keyset | None,
) -> Page[Resource]:
    """Like ``keyset_page`` for a nullable sort column: rows without a value come last, by id.

    Both backends order NULLs differently by default, so the order is spelled out.
    """
    check_keyset(after, sort)
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    tiebreak = Resource.id
    if after is not None:
        if after.value is None:
            position = and_(sort.is_(None), tiebreak > after.id)
        elif descending:
            position = or_(
                sort < after.value,
                and_(sort == after.value, tiebreak > after.id),
                sort.is_(None),
            )
        else:
            position = or_(
                sort > after.value,
                and_(sort == after.value, tiebreak > after.id),
                sort.is_(None),
            )
        query = query.where(position)
    order = (sort.is_(None), sort.desc() if descending else sort.asc(), tiebreak.asc())
    rows = list((await session.scalars(query.order_by(*order).limit(first + 1))).all())
    has_next = len(rows) > first
    rows = rows[:first]
    keysets = [Keyset(value=getattr(row, sort.key), id=row.id) for row in rows]
    return Page(rows=rows, keysets=keysets, has_next=has_next, total=int(total or 0))


async def get_resource(
    session: AsyncSession, sponsor_id: uuid.UUID, resource_id: uuid.UUID
) -> Resource | None:
    """A sponsor's resource by id."""
    return await session.scalar(
        select(Resource).where(Resource.sponsor_id == sponsor_id, Resource.id == resource_id)
    )


async def resources_by_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Resource | None]:
    """Resources of one sponsor in the order of ``ids`` (None where missing)."""
    rows = (
        await session.scalars(
            select(Resource).where(Resource.sponsor_id == sponsor_id, Resource.id.in_(ids))
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def tags_by_resource_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[ResourceTag]]:
    """Each resource's tags, in ``ids`` order: domains in Care Model order, then topics by value."""
    rows = (
        await session.scalars(
            select(ResourceTag).where(
                ResourceTag.sponsor_id == sponsor_id, ResourceTag.resource_id.in_(ids)
            )
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[ResourceTag]] = defaultdict(list)
    for row in sorted(rows, key=_tag_order):
        grouped[row.resource_id].append(row)
    return [grouped[i] for i in ids]


def _tag_order(tag: ResourceTag) -> tuple[int, int, str]:
    if tag.tag_kind == TAG_DOMAIN:
        return (0, _DOMAIN_ORDER.get(tag.value, len(_DOMAIN_ORDER)), tag.value)
    return (1, 0, tag.value)


async def collaboratives_by_resource_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[list[Collaborative]]:
    """Each resource's linked collaboratives by code, in the order of ``ids``."""
    rows = (
        await session.execute(
            select(ResourceCollaborative.resource_id, Collaborative)
            .join(
                Collaborative,
                and_(
                    Collaborative.sponsor_id == ResourceCollaborative.sponsor_id,
                    Collaborative.id == ResourceCollaborative.collaborative_id,
                ),
            )
            .where(
                ResourceCollaborative.sponsor_id == sponsor_id,
                ResourceCollaborative.resource_id.in_(ids),
            )
            .order_by(Collaborative.code, Collaborative.id)
        )
    ).all()
    grouped: defaultdict[uuid.UUID, list[Collaborative]] = defaultdict(list)
    for resource_id, collaborative in rows:
        grouped[resource_id].append(collaborative)
    return [grouped[i] for i in ids]


CollaborativeResourcesKey = tuple[uuid.UUID, int, Keyset | None]
"""(collaborative id, page size, position after) of one collaborative's page of resources."""


async def resource_pages_by_collaborative_keys(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[CollaborativeResourcesKey]
) -> list[Page[Resource]]:
    """Pages of resources (by title, id) of many collaboratives, in the order of ``keys``.

    Keys sharing a page size and position (a whole level of a query) take two queries in all.
    """
    groups: defaultdict[tuple[int, Keyset | None], list[uuid.UUID]] = defaultdict(list)
    for collaborative_id, first, after in keys:
        groups[(first, after)].append(collaborative_id)
    pages: dict[CollaborativeResourcesKey, Page[Resource]] = {}
    for (first, after), ids in groups.items():
        found = await resource_pages_by_collaborative_ids(
            session, sponsor_id, ids, first=first, after=after
        )
        for collaborative_id, page in zip(ids, found, strict=True):
            pages[(collaborative_id, first, after)] = page
    return [pages[key] for key in keys]


async def resource_pages_by_collaborative_ids(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    *,
    first: int,
    after: Keyset | None,
) -> list[Page[Resource]]:
    """One page of resources (by title, id) for each collaborative, in the order of ``ids``."""
    link = and_(
        ResourceCollaborative.sponsor_id == Resource.sponsor_id,
        ResourceCollaborative.resource_id == Resource.id,
    )
    scope = and_(
        Resource.sponsor_id == sponsor_id,
        ResourceCollaborative.collaborative_id.in_(ids),
    )
    totals = dict(
        (
            await session.execute(
                select(ResourceCollaborative.collaborative_id, func.count())
                .join(Resource, link)
                .where(scope)
                .group_by(ResourceCollaborative.collaborative_id)
            )
        ).all()
    )
    query = select(
        Resource,
        ResourceCollaborative.collaborative_id.label("collaborative_id"),
        func.row_number()
        .over(
            partition_by=ResourceCollaborative.collaborative_id,
            order_by=(Resource.title, Resource.id),
        )
        .label("position"),
    ).join(ResourceCollaborative, link)
    query = query.where(scope)
    if after is not None:
        query = query.where(
            or_(
                Resource.title > after.value,
                and_(Resource.title == after.value, Resource.id > after.id),
            )
        )
    ranked = query.subquery()
    row = aliased(Resource, ranked)
    result = await session.execute(
        select(row, ranked.c.collaborative_id)
        .where(ranked.c.position <= first + 1)
        .order_by(ranked.c.collaborative_id, ranked.c.position)
    )
    grouped: defaultdict[uuid.UUID, list[Resource]] = defaultdict(list)
    for resource, collaborative_id in result:
        grouped[collaborative_id].append(resource)
    pages = []
    for collaborative_id in ids:
        rows = grouped[collaborative_id]
        pages.append(
            Page(
                rows=rows[:first],
                keysets=[Keyset(value=r.title, id=r.id) for r in rows[:first]],
                has_next=len(rows) > first,
                total=int(totals.get(collaborative_id, 0)),
            )
        )
    return pages


@dataclass(frozen=True)
class ResourceChanges:
    """Fields of a resource to set; None leaves a field as it is (on update), lists replace.

    An empty ``url`` removes the link.
    """

    kind: ResourceKind | None = None
    title: str | None = None
    summary: str | None = None
    url: str | None = None
    published_on: date | None = None
    care_model_domains: Sequence[CareModelDomain] | None = None
    topics: Sequence[str] | None = None
    collaborative_codes: Sequence[str] | None = None


def _check_text(value: str, field: str, *, min_length: int, max_length: int) -> None:
    if "\x00" in value:
        raise InvalidInput("text must not contain NUL characters", field=field)
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(f"must be {min_length} to {max_length} characters long", field=field)


def _clean(changes: ResourceChanges) -> ResourceChanges:
    """The changes validated and normalized (stripped text, lists without duplicates)."""
    title = changes.title.strip() if changes.title is not None else None
    if title is not None:
        _check_text(title, "title", min_length=1, max_length=TITLE_MAX)
    if changes.summary is not None:
        _check_text(changes.summary, "summary", min_length=0, max_length=SUMMARY_MAX)
    url = changes.url.strip() if changes.url is not None else None
    if url:
        _check_url(url)
    topics: list[str] | None = None
    if changes.topics is not None:
        if len(changes.topics) > TOPICS_MAX:
            raise InvalidInput(f"at most {TOPICS_MAX} topics", field="topics")
        topics = []
        for topic in changes.topics:
            cleaned = topic.strip()
            _check_text(cleaned, "topics", min_length=1, max_length=TOPIC_MAX)
            if cleaned not in topics:
                topics.append(cleaned)
    codes: list[str] | None = None
    if changes.collaborative_codes is not None:
        if len(changes.collaborative_codes) > COLLABORATIVES_MAX:
            raise InvalidInput(
                f"at most {COLLABORATIVES_MAX} collaboratives", field="collaboratives"
            )
        codes = list(dict.fromkeys(changes.collaborative_codes))
        for code in codes:
            _check_text(code, "collaboratives", min_length=1, max_length=64)
    domains = (
        list(dict.fromkeys(changes.care_model_domains))
        if changes.care_model_domains is not None
        else None
    )
    return ResourceChanges(
        kind=changes.kind,
        title=title,
        summary=changes.summary,
        url=url,
        published_on=changes.published_on,
        care_model_domains=domains,
        topics=topics,
        collaborative_codes=codes,
    )


def _check_url(url: str) -> None:
    _check_text(url, "url", min_length=1, max_length=URL_MAX)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput("not a valid URL", field="url") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the URL must be an absolute http(s) URL", field="url")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        raise InvalidInput("the URL must not contain spaces or control characters", field="url")


async def _collaborative_ids(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Sequence[str]
) -> list[uuid.UUID]:
    """Ids of the sponsor's collaboratives named by ``codes`` (NotFound for any unknown code)."""
    if not codes:
        return []
    rows = (
        await session.execute(
            select(Collaborative.code, Collaborative.id).where(
                Collaborative.sponsor_id == sponsor_id, Collaborative.code.in_(codes)
            )
        )
    ).all()
    by_code = dict(rows)
    missing = [code for code in codes if code not in by_code]
    if missing:
        raise NotFound(f"no collaborative {missing[0]!r}", field="collaboratives")
    return [by_code[code] for code in codes]


async def _replace_tags(
    session: AsyncSession, resource: Resource, kind: str, values: Sequence[str]
) -> None:
    await session.execute(
        delete(ResourceTag).where(
            ResourceTag.sponsor_id == resource.sponsor_id,
            ResourceTag.resource_id == resource.id,
            ResourceTag.tag_kind == kind,
        )
    )
    session.add_all(
        ResourceTag(
            sponsor_id=resource.sponsor_id, resource_id=resource.id, tag_kind=kind, value=value
        )
        for value in values
    )


async def _replace_links(
    session: AsyncSession, resource: Resource, collaborative_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        delete(ResourceCollaborative).where(
            ResourceCollaborative.sponsor_id == resource.sponsor_id,
            ResourceCollaborative.resource_id == resource.id,
        )
    )
    session.add_all(
        ResourceCollaborative(
            sponsor_id=resource.sponsor_id,
            resource_id=resource.id,
            collaborative_id=collaborative_id,
        )
        for collaborative_id in collaborative_ids
    )


async def _full_snapshot(session: AsyncSession, resource: Resource) -> dict[str, Any]:
    """The resource's columns plus its domains, topics and collaborative codes (for audit)."""
    await session.flush()
    (tags,) = await tags_by_resource_ids(session, resource.sponsor_id, [resource.id])
    (collaboratives,) = await collaboratives_by_resource_ids(
        session, resource.sponsor_id, [resource.id]
    )
    data = snapshot(resource)
    data["care_model_domains"] = [tag.value for tag in tags if tag.tag_kind == TAG_DOMAIN]
    data["topics"] = [tag.value for tag in tags if tag.tag_kind == TAG_TOPIC]
    data["collaboratives"] = [row.code for row in collaboratives]
    return data


async def create_resource(
    session: AsyncSession, actor: Actor, *, changes: ResourceChanges
) -> Resource:
    """Add a resource with its tags and collaborative links; audited."""
    changes = _clean(changes)
    if changes.kind is None:
        raise InvalidInput("kind is required", field="kind")
    if changes.title is None:
        raise InvalidInput("title is required", field="title")
    collaborative_ids = await _collaborative_ids(
        session, actor.sponsor_id, changes.collaborative_codes or ()
    )
    resource = Resource(
        sponsor_id=actor.sponsor_id,
        id=uuid.uuid4(),
        kind=changes.kind,
        title=changes.title,
        summary=changes.summary or "",
        url=changes.url or None,
        published_on=changes.published_on,
    )
    session.add(resource)
    await session.flush()
    await _replace_tags(
        session, resource, TAG_DOMAIN, [d.value for d in changes.care_model_domains or ()]
    )
    await _replace_tags(session, resource, TAG_TOPIC, changes.topics or ())
    await _replace_links(session, resource, collaborative_ids)
    await record_event(
        session,
        actor,
        action="resource.create",
        entity_type="Resource",
        entity_id=resource.id,
        before=None,
        after=await _full_snapshot(session, resource),
    )
    return resource


async def update_resource(
    session: AsyncSession, actor: Actor, resource_id: uuid.UUID, *, changes: ResourceChanges
) -> Resource:
    """Change a resource's fields, replacing the tag and link lists that are given; audited."""
    changes = _clean(changes)
    resource = await get_resource(session, actor.sponsor_id, resource_id)
    if resource is None:
        raise NotFound("no such resource", field="id")
    before = await _full_snapshot(session, resource)
    for field in ("kind", "title", "summary", "published_on"):
        value = getattr(changes, field)
        if value is not None:
            setattr(resource, field, value)
    if changes.url is not None:
        resource.url = changes.url or None
    if changes.collaborative_codes is not None:
        ids = await _collaborative_ids(session, actor.sponsor_id, changes.collaborative_codes)
        await _replace_links(session, resource, ids)
    if changes.care_model_domains is not None:
        await _replace_tags(
            session, resource, TAG_DOMAIN, [d.value for d in changes.care_model_domains]
        )
    if changes.topics is not None:
        await _replace_tags(session, resource, TAG_TOPIC, changes.topics)
    resource.updated_at = utcnow()
    await record_event(
        session,
        actor,
        action="resource.update",
        entity_type="Resource",
        entity_id=resource.id,
        before=before,
        after=await _full_snapshot(session, resource),
    )
    return resource
