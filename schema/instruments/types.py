"""GraphQL projections of survey instruments (versions, sections, items, scales) and of teams'
responses with their server-side scores.

Scores follow :mod:`analytics.survey_scoring`: a subscale is the mean of its answered items when
at least the version's ``minAnsweredShare`` of them are answered, the overall score the mean of
the subscales when every subscale is scored. A version's structure is read once per request
batch (three statements) and shared by every response scored against it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from analytics.survey_scoring import Band, Scale
from db.enums import SurveyWave
from db.models import Instrument as InstrumentModel
from db.models import InstrumentVersion as InstrumentVersionModel
from db.models import SurveyResponse as SurveyResponseModel
from db.queries.instruments import VersionStructure
from schema.context import Info
from schema.ids import encode_global_id
from schema.node import Node
from schema.team_access import check_team_read

if TYPE_CHECKING:
    from schema.teams.types import Team


@strawberry.type(description="A labelled range of a scale, e.g. 9-11 'Fully developed'.")
class ScaleBand:
    min: float = strawberry.field(description="Lowest score of the band.")
    max: float = strawberry.field(description="Highest item answer of the band.")
    label: str = strawberry.field(description="What scores in the band mean.")

    @classmethod
    def from_band(cls, band: Band) -> ScaleBand:
        return cls(min=band.min, max=band.max, label=band.label)


@strawberry.type(
    description=(
        "The answers an item accepts and how scores read: a score belongs to the band with the "
        "greatest min not above it (means fall between the bands' whole-number ranges)."
    )
)
class InstrumentScale:
    min: float = strawberry.field(description="Lowest answer.")
    max: float = strawberry.field(description="Highest answer.")
    step: float | None = strawberry.field(
        description="Answers are min + k x step; null for any number in the range."
    )
    bands: list[ScaleBand] = strawberry.field(description="The bands, lowest first.")

    @classmethod
    def from_scale(cls, scale: Scale) -> InstrumentScale:
        return cls(
            min=scale.min,
            max=scale.max,
            step=scale.step,
            bands=[ScaleBand.from_band(band) for band in scale.bands],
        )


@strawberry.type(description="An item of an instrument: its code and short label.")
class InstrumentItem:
    code: str = strawberry.field(description="Code, unique in the version; answers name it.")
    label: str = strawberry.field(description="Short label (not the item's full text).")
    scale: InstrumentScale = strawberry.field(description="The answers it accepts.")


@strawberry.type(description="A section (subscale) of an instrument version.")
class InstrumentSection:
    code: str = strawberry.field(description="Code, unique in the version.")
    title: str = strawberry.field(description="Title, e.g. 'Part 3b: Decision Support'.")
    scale: InstrumentScale = strawberry.field(description="The scale of its items and score.")
    items: list[InstrumentItem] = strawberry.field(description="Its items, in order.")


def _sections(structure: VersionStructure) -> list[InstrumentSection]:
    sections = []
    for section in structure.sections:
        scale = InstrumentScale.from_scale(structure.section_scale(section))
        sections.append(
            InstrumentSection(
                code=section.code,
                title=section.title,
                scale=scale,
                items=[
                    InstrumentItem(code=item.code, label=item.label, scale=scale)
                    for item in structure.items.get(section.id, ())
                ],
            )
        )
    return sections


@strawberry.type(description="One version of an instrument, immutable once loaded.")
class InstrumentVersion(Node):
    version: str = strawberry.field(description="Version label, e.g. '3.5'.")
    source: str = strawberry.field(description="Citation and what the definition includes.")
    scale: InstrumentScale = strawberry.field(
        description="The version's scale: bands the overall score."
    )
    min_answered_share: float = strawberry.field(
        description=(
            "Missing-item rule: the share (0-1] of a section's items that must be answered for "
            "the section to be scored."
        )
    )
    created_at: datetime = strawberry.field(description="When the version was loaded.")
    row_id: strawberry.Private[uuid.UUID]
    instrument_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: InstrumentVersionModel) -> InstrumentVersion:
        structure = VersionStructure(version=row, sections=())
        return cls(
            id=strawberry.ID(encode_global_id("InstrumentVersion", row.id)),
            version=row.version,
            source=row.source,
            scale=InstrumentScale.from_scale(structure.scale),
            min_answered_share=row.min_answered_share,
            created_at=row.created_at,
            row_id=row.id,
            instrument_id=row.instrument_id,
        )

    @strawberry.field(description="The sections (subscales) with their items, in order.")
    async def sections(self, info: Info) -> list[InstrumentSection]:
        structure = await info.context.loaders.instrument_structure_by_version_id.load(self.row_id)
        assert structure is not None, "the version was just read"
        return _sections(structure)

    @strawberry.field(description="Number of items in every section.")
    async def item_count(self, info: Info) -> int:
        structure = await info.context.loaders.instrument_structure_by_version_id.load(self.row_id)
        assert structure is not None, "the version was just read"
        return sum(len(items) for items in structure.items.values())

    @strawberry.field(description="The instrument.")
    async def instrument(self, info: Info) -> Instrument:
        row = await info.context.loaders.instrument_by_id.load(self.instrument_id)
        assert row is not None, "versions reference instruments of the same sponsor"
        return Instrument.from_model(row)


@strawberry.type(description="A survey instrument teams answer, e.g. the ACIC.")
class Instrument(Node):
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="What it assesses and how it is scored.")
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, row: InstrumentModel) -> Instrument:
        return cls(
            id=strawberry.ID(encode_global_id("Instrument", row.id)),
            code=row.code,
            name=row.name,
            description=row.description,
            row_id=row.id,
        )

    @strawberry.field(description="Its versions, oldest first.")
    async def versions(self, info: Info) -> list[InstrumentVersion]:
        rows = await info.context.loaders.instrument_versions_by_instrument_id.load(self.row_id)
        return [InstrumentVersion.from_model(row) for row in rows]

    @strawberry.field(description="The newest version: what new responses use by default.")
    async def current_version(self, info: Info) -> InstrumentVersion | None:
        rows = await info.context.loaders.instrument_versions_by_instrument_id.load(self.row_id)
        return InstrumentVersion.from_model(rows[-1]) if rows else None


@strawberry.type(description="The answer to one item.")
class SurveyAnswer:
    item: str = strawberry.field(description="The item's code.")
    value: float = strawberry.field(description="The answer.")


@strawberry.type(description="A subscale's score in one response.")
class SubscaleScore:
    code: str = strawberry.field(description="The section's code.")
    title: str = strawberry.field(description="The section's title.")
    score: float | None = strawberry.field(
        description="Mean of the answered items; null when too few are answered."
    )
    band: ScaleBand | None = strawberry.field(description="The score's band; null without one.")
    answered_items: int = strawberry.field(description="Items answered.")
    total_items: int = strawberry.field(description="Items in the section.")


@strawberry.type(description="A response's scores, computed by the server.")
class SurveyScores:
    overall: float | None = strawberry.field(
        description="Mean of the subscale scores; null unless every subscale is scored."
    )
    overall_band: ScaleBand | None = strawberry.field(description="The overall score's band.")
    complete: bool = strawberry.field(description="True when every subscale is scored.")
    subscales: list[SubscaleScore] = strawberry.field(description="Every section, in order.")


@strawberry.type(description="A team's answers to an instrument in one wave, with its scores.")
class SurveyResponse(Node):
    wave: SurveyWave = strawberry.field(
        description="BASELINE, MIDPOINT, FINAL, or DATED (identified by administeredOn)."
    )
    administered_on: date | None = strawberry.field(description="When the team answered.")
    recorded_at: datetime = strawberry.field(description="When the answers were last recorded.")
    recorded_by: str = strawberry.field(description="Client that recorded them last.")
    row_id: strawberry.Private[uuid.UUID]
    team_id: strawberry.Private[uuid.UUID]
    instrument_id: strawberry.Private[uuid.UUID]
    version_id: strawberry.Private[uuid.UUID]
    raw_answers: strawberry.Private[dict[str, float]]

    @classmethod
    def from_model(cls, row: SurveyResponseModel) -> SurveyResponse:
        return cls(
            id=strawberry.ID(encode_global_id("SurveyResponse", row.id)),
            wave=row.wave,
            administered_on=row.administered_on,
            recorded_at=row.updated_at,
            recorded_by=row.recorded_by,
            row_id=row.id,
            team_id=row.team_id,
            instrument_id=row.instrument_id,
            version_id=row.version_id,
            raw_answers={str(k): float(v) for k, v in row.answers.items()},
        )

    async def _structure(self, info: Info) -> VersionStructure:
        structure = await info.context.loaders.instrument_structure_by_version_id.load(
            self.version_id
        )
        assert structure is not None, "responses reference versions of the same sponsor"
        return structure

    @strawberry.field(description="The instrument answered.")
    async def instrument(self, info: Info) -> Instrument:
        row = await info.context.loaders.instrument_by_id.load(self.instrument_id)
        assert row is not None, "responses reference instruments of the same sponsor"
        return Instrument.from_model(row)

    @strawberry.field(description="The version answered (its items and scales).")
    async def version(self, info: Info) -> InstrumentVersion:
        return InstrumentVersion.from_model((await self._structure(info)).version)

    @strawberry.field(description="The team that answered.")
    async def team(self, info: Info) -> Annotated[Team, strawberry.lazy("schema.teams.types")]:
        from schema.teams.types import Team  # teams.types imports this module

        row = await info.context.loaders.team_by_id.load(self.team_id)
        assert row is not None, "responses reference teams of the same sponsor"
        return Team.from_model(row)

    @strawberry.field(description="The answered items, in the instrument's order.")
    async def answers(self, info: Info) -> list[SurveyAnswer]:
        structure = await self._structure(info)
        return [
            SurveyAnswer(item=item.code, value=self.raw_answers[item.code])
            for section in structure.sections
            for item in structure.items.get(section.id, ())
            if item.code in self.raw_answers
        ]

    @strawberry.field(description="Subscale and overall scores (see Instrument for the rules).")
    async def scores(self, info: Info) -> SurveyScores:
        structure = await self._structure(info)
        scores = structure.score(dict(self.raw_answers))
        titles = {section.code: section.title for section in structure.sections}
        return SurveyScores(
            overall=scores.overall,
            overall_band=ScaleBand.from_band(scores.overall_band) if scores.overall_band else None,
            complete=scores.complete,
            subscales=[
                SubscaleScore(
                    code=section.code,
                    title=titles[section.code],
                    score=section.score,
                    band=ScaleBand.from_band(section.band) if section.band else None,
                    answered_items=section.answered,
                    total_items=section.items,
                )
                for section in scores.sections
            ],
        )


async def team_survey_responses(
    info: Info, team_id: uuid.UUID, *, instrument: str | None, wave: SurveyWave | None
) -> list[SurveyResponse]:
    """``Team.surveyResponses``: by instrument code, then baseline, midpoint, dated waves by
    date, final; optionally one instrument (code) or one wave."""
    check_team_read(info, team_id)
    rows = await info.context.loaders.survey_responses_by_team_id.load(team_id)
    if instrument is not None:
        found = await info.context.loaders.instrument_by_id.load_many(
            list({row.instrument_id for row in rows})
        )
        wanted = {row.id for row in found if row is not None and row.code == instrument}
        rows = [row for row in rows if row.instrument_id in wanted]
    return [SurveyResponse.from_model(row) for row in rows if wave is None or row.wave is wave]
