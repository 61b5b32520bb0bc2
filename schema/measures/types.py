"""GraphQL projections of measures, their definition versions and collaboratives' measure sets."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry

from db.enums import ImprovementDirection, MeasureType, Scoring
from db.models import MeasureVersion
from db.queries.measures import MeasureSetEntry, VersionedMeasure, set_order_key
from db.queries.paging import Keyset, Page
from schema.context import Info
from schema.errors import invalid_argument
from schema.federation import SPONSOR_CODE_KEY, entity_sponsor_id, sponsor_slug_of
from schema.ids import encode_global_id
from schema.node import Node
from schema.pagination import Connection, page_request, to_connection
from schema.sponsors.types import Sponsor

MEASURE_SET_ORDER = "collaborativeMeasures:POSITION:ASC"
"""The one ordering of a measure set (cursors name it)."""


@strawberry.type(description="The measure's identifier in another system (FHIR, DHIS2, LOINC...).")
class ExternalCode:
    system: str = strawberry.field(description="The other system, e.g. 'dhis2'.")
    code: str = strawberry.field(description="The measure's code in that system.")


def external_codes(raw: Mapping[str, Any]) -> list[ExternalCode]:
    """The stored ``{system: code}`` mapping as a list sorted by system."""
    return [ExternalCode(system=str(k), code=str(v)) for k, v in sorted(raw.items())]


@strawberry.type(description="Fields of an operational definition (shared by the types below).")
class DefinitionFields:
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="What the measure tells and why it matters.")
    type: MeasureType = strawberry.field(description="Outcome, process, balancing or structure.")
    scoring: Scoring = strawberry.field(description="How the value is computed from the data.")
    numerator: str = strawberry.field(description="Operational definition of the numerator.")
    denominator: str = strawberry.field(description="Operational definition of the denominator.")
    exclusions: str = strawberry.field(description="Who or what is left out of the denominator.")
    unit: str = strawberry.field(description="Unit of the displayed value, e.g. '%'.")
    multiplier: float = strawberry.field(
        description="Factor of the displayed value (100 for a percentage, 1000 per 1,000...)."
    )
    improvement_direction: ImprovementDirection = strawberry.field(
        description="Which way is better."
    )
    data_source: str = strawberry.field(description="Where the data come from.")
    sampling: str = strawberry.field(description="Sampling plan (all cases, a sample of 20...).")
    frequency: str = strawberry.field(description="Reporting frequency, e.g. MONTHLY.")
    fhir_canonical: str | None = strawberry.field(
        description="Canonical URL of the matching FHIR Measure, when there is one."
    )
    external_codes: list[ExternalCode] = strawberry.field(
        description="Codes of the measure in other systems."
    )


def _definition_values(row: MeasureVersion) -> dict[str, Any]:
    """Keyword arguments of :class:`DefinitionFields` from a definition row."""
    return {
        "name": row.name,
        "description": row.description,
        "type": row.type,
        "scoring": row.scoring,
        "numerator": row.numerator,
        "denominator": row.denominator,
        "exclusions": row.exclusions,
        "unit": row.unit,
        "multiplier": row.multiplier,
        "improvement_direction": row.improvement_direction,
        "data_source": row.data_source,
        "sampling": row.sampling,
        "frequency": row.frequency,
        "fhir_canonical": row.fhir_canonical,
        "external_codes": external_codes(row.external_codes or {}),
    }


@strawberry.type(description="One version of a measure's operational definition.")
class MeasureDefinition(Node, DefinitionFields):
    version: int = strawberry.field(description="Version number, from 1.")
    created_at: datetime = strawberry.field(description="When this version was defined.")

    @classmethod
    def from_model(cls, row: MeasureVersion) -> MeasureDefinition:
        return cls(
            id=strawberry.ID(encode_global_id("MeasureDefinition", row.id)),
            version=row.version,
            created_at=row.created_at,
            **_definition_values(row),
        )


@strawberry.type(
    description=(
        "A measure: a stable code and a versioned operational definition. The definition fields "
        "are those of `version` (the current version unless another one was asked for)."
    ),
    directives=[SPONSOR_CODE_KEY],
)
class Measure(Node, DefinitionFields):
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    version: int = strawberry.field(description="The definition version these fields show.")
    current_version: int = strawberry.field(description="The measure's current version number.")
    created_at: datetime = strawberry.field(description="When the measure was first defined.")
    updated_at: datetime = strawberry.field(description="When the measure last changed.")
    row_id: strawberry.Private[uuid.UUID]
    sponsor_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, found: VersionedMeasure) -> Measure:
        measure, definition = found.measure, found.definition
        return cls(
            id=strawberry.ID(encode_global_id("Measure", measure.id)),
            code=measure.code,
            version=definition.version,
            current_version=measure.current_version,
            created_at=measure.created_at,
            updated_at=measure.updated_at,
            row_id=measure.id,
            sponsor_id=measure.sponsor_id,
            **_definition_values(definition),
        )

    @strawberry.field(description="Slug of the sponsor; with `code` the federation key.")
    async def sponsor_slug(self, info: Info) -> str:
        return await sponsor_slug_of(info, self.sponsor_id)

    @classmethod
    async def resolve_reference(cls, info: Info, **key: str) -> Measure | None:
        """The entity of a federation representation (batched per type; own sponsor only)."""
        if entity_sponsor_id(info, key.get("sponsorSlug")) is None:
            return None
        row = await info.context.loaders.measure_by_code.load(key.get("code", ""))
        return None if row is None else cls.from_model(row)

    @strawberry.field(description="Every version of the definition, oldest first.")
    async def versions(self, info: Info) -> list[MeasureDefinition]:
        rows = await info.context.loaders.measure_versions_by_measure_id.load(self.row_id)
        return [MeasureDefinition.from_model(row) for row in rows]

    @strawberry.field(description="The sponsor that defined the measure.")
    async def sponsor(self, info: Info) -> Sponsor:
        row = await info.context.loaders.sponsor_by_id.load(self.sponsor_id)
        assert row is not None
        return Sponsor.from_model(row)


@strawberry.type(description="A measure in a collaborative's measure set.")
class CollaborativeMeasure:
    measure: Measure = strawberry.field(description="The measure, at its current definition.")
    required: bool = strawberry.field(description="Mandatory for every team (else optional).")
    goal: float | None = strawberry.field(
        description="The collaborative's goal line in the measure's displayed unit."
    )
    goal_description: str = strawberry.field(description="The goal in words.")
    position: int = strawberry.field(description="Place of the measure in the set.")
    added_at: datetime = strawberry.field(description="When the measure joined the set.")

    @classmethod
    def from_entry(cls, entry: MeasureSetEntry) -> CollaborativeMeasure:
        row = entry.membership
        return cls(
            measure=Measure.from_model(VersionedMeasure(entry.measure, entry.definition)),
            required=row.required,
            goal=row.goal,
            goal_description=row.goal_description,
            position=row.position,
            added_at=row.added_at,
        )


async def measure_set_connection(
    info: Info, collaborative_id: uuid.UUID, *, first: int | None, after: str | None
) -> Connection[CollaborativeMeasure]:
    """A page of a collaborative's measure set.

    Sets are small (4-10 measures): the loader brings each whole set in one batched query and the
    page is cut in memory; ``totalCount`` is the size of the set.
    """
    size, keyset = page_request(info, order=MEASURE_SET_ORDER, first=first, after=after)
    entries = await info.context.loaders.measure_set_by_collaborative_id.load(collaborative_id)
    start = 0
    if keyset is not None:
        if not isinstance(keyset.value, int) or isinstance(keyset.value, bool):
            raise invalid_argument("invalid cursor: malformed cursor")
        position = (keyset.value, keyset.id)
        start = next(
            (i for i, e in enumerate(entries) if set_order_key(e) > position), len(entries)
        )
    chosen = entries[start : start + size]
    page = Page(
        rows=chosen,
        keysets=[Keyset(value=e.membership.position, id=e.membership.measure_id) for e in chosen],
        has_next=start + size < len(entries),
        total=len(entries),
    )
    return to_connection(
        page,
        order=MEASURE_SET_ORDER,
        project=CollaborativeMeasure.from_entry,
        after=keyset is not None,
    )
