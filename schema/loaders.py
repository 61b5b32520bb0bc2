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

from db.models import (
    Collaborative,
    MeasureVersion,
    Organization,
    Person,
    Phase,
    Resource,
    ResourceTag,
    Sponsor,
    StaffAssignment,
    Team,
    TeamMember,
)
from db.models.content import (
    Assessment,
    ChangeConcept,
    ChangeIdea,
    Instrument,
    InstrumentVersion,
    PdsaCycle,
    SurveyResponse,
)
from db.models.sharing import SharingAgreement
from db.models.webhooks import Webhook, WebhookDelivery
from db.queries import (
    aggregates,
    catalog,
    collaboratives,
    content,
    data,
    instruments,
    measures,
    series,
    sponsors,
    teams,
    webhooks,
)
from db.queries.aggregates import ScorecardInputs, ScorecardKey
from db.queries.catalog import CollaborativeResourcesKey
from db.queries.content import CollaborativePeriod, TeamMeasure
from db.queries.data import ExportedPoint
from db.queries.instruments import VersionStructure
from db.queries.measures import MeasureSetEntry, VersionedMeasure
from db.queries.paging import Page
from db.queries.series import Series, SeriesKey
from db.queries.sharing import AgreementScope, agreement_scopes, agreements_by_ids
from db.queries.teams import TeamPageKey

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
        self.measure_by_id: DataLoader[uuid.UUID, VersionedMeasure | None] = self._loader(
            lambda s, ids: measures.measures_by_ids(s, sid, ids)
        )
        self.measure_versions_by_measure_id: DataLoader[uuid.UUID, list[MeasureVersion]] = (
            self._loader(lambda s, ids: measures.measure_versions_by_measure_ids(s, sid, ids))
        )
        self.measure_definition_by_id: DataLoader[uuid.UUID, MeasureVersion | None] = self._loader(
            lambda s, ids: measures.measure_definitions_by_ids(s, sid, ids)
        )
        self.measure_set_by_collaborative_id: DataLoader[uuid.UUID, list[MeasureSetEntry]] = (
            self._loader(lambda s, ids: measures.measure_sets_by_collaborative_ids(s, sid, ids))
        )
        self.resource_by_id: DataLoader[uuid.UUID, Resource | None] = self._loader(
            lambda s, ids: catalog.resources_by_ids(s, sid, ids)
        )
        self.tags_by_resource_id: DataLoader[uuid.UUID, list[ResourceTag]] = self._loader(
            lambda s, ids: catalog.tags_by_resource_ids(s, sid, ids)
        )
        self.collaboratives_by_resource_id: DataLoader[uuid.UUID, list[Collaborative]] = (
            self._loader(lambda s, ids: catalog.collaboratives_by_resource_ids(s, sid, ids))
        )
        # Keyed by (collaborative id, page size, after): one batch serves a whole query level.
        self.resource_page_by_collaborative_key: DataLoader[
            CollaborativeResourcesKey, Page[Resource]
        ] = self._loader(lambda s, keys: catalog.resource_pages_by_collaborative_keys(s, sid, keys))
        self.organization_by_id: DataLoader[uuid.UUID, Organization | None] = self._loader(
            lambda s, ids: teams.organizations_by_ids(s, sid, ids)
        )
        self.team_by_id: DataLoader[uuid.UUID, Team | None] = self._loader(
            lambda s, ids: teams.teams_by_ids(s, sid, ids)
        )
        # Federation entity keys (sponsorSlug, code) of the caller's sponsor: one query per type.
        self.collaborative_by_code: DataLoader[str, Collaborative | None] = self._loader(
            lambda s, codes: collaboratives.collaboratives_by_codes(s, sid, codes)
        )
        self.team_by_code: DataLoader[str, Team | None] = self._loader(
            lambda s, codes: teams.teams_by_codes(s, sid, codes)
        )
        self.organization_by_code: DataLoader[str, Organization | None] = self._loader(
            lambda s, codes: teams.organizations_by_codes(s, sid, codes)
        )
        self.measure_by_code: DataLoader[str, VersionedMeasure | None] = self._loader(
            lambda s, codes: measures.measures_by_codes(s, sid, codes)
        )
        self.members_by_team_id: DataLoader[uuid.UUID, list[TeamMember]] = self._loader(
            lambda s, ids: teams.members_by_team_ids(s, sid, ids)
        )
        # Keyed by (parent id, page size, after, filter): one batch serves a whole query level.
        self.teams_page_by_collaborative_id: DataLoader[TeamPageKey, Page[Team]] = self._loader(
            lambda s, keys: teams.team_pages_by_parent(s, sid, keys, parent="collaborative")
        )
        self.teams_page_by_organization_id: DataLoader[TeamPageKey, Page[Team]] = self._loader(
            lambda s, keys: teams.team_pages_by_parent(s, sid, keys, parent="organization")
        )
        # Keyed by (team, measure or None for the whole set, from, to, last).
        self.series_by_key: DataLoader[SeriesKey, list[Series]] = self._loader(
            lambda s, keys: series.series_by_keys(s, sid, keys)
        )
        # Keyed by (collaborative, period or None for the latest): totals and team values.
        self.scorecard_inputs_by_key: DataLoader[ScorecardKey, ScorecardInputs] = self._loader(
            lambda s, keys: aggregates.scorecard_inputs_by_keys(s, sid, keys)
        )
        self.data_point_by_id: DataLoader[uuid.UUID, ExportedPoint | None] = self._loader(
            lambda s, ids: data.data_points_by_ids(s, sid, ids)
        )
        # Improvement content: change packages, PDSA cycles, assessments, instruments, surveys.
        self.change_concepts_by_collaborative_id: DataLoader[uuid.UUID, list[ChangeConcept]] = (
            self._loader(lambda s, ids: content.change_concepts_by_collaborative_ids(s, sid, ids))
        )
        self.change_concept_by_id: DataLoader[uuid.UUID, ChangeConcept | None] = self._loader(
            lambda s, ids: content.change_concepts_by_ids(s, sid, ids)
        )
        self.change_ideas_by_concept_id: DataLoader[uuid.UUID, list[ChangeIdea]] = self._loader(
            lambda s, ids: content.change_ideas_by_concept_ids(s, sid, ids)
        )
        self.change_idea_by_id: DataLoader[uuid.UUID, ChangeIdea | None] = self._loader(
            lambda s, ids: content.change_ideas_by_ids(s, sid, ids)
        )
        self.resources_by_change_concept_id: DataLoader[uuid.UUID, list[Resource]] = self._loader(
            lambda s, ids: content.resources_by_change_concept_ids(s, sid, ids)
        )
        self.resources_by_change_idea_id: DataLoader[uuid.UUID, list[Resource]] = self._loader(
            lambda s, ids: content.resources_by_change_idea_ids(s, sid, ids)
        )
        self.pdsa_cycles_by_team_id: DataLoader[uuid.UUID, list[PdsaCycle]] = self._loader(
            lambda s, ids: content.pdsa_cycles_by_team_ids(s, sid, ids)
        )
        self.pdsa_cycle_by_id: DataLoader[uuid.UUID, PdsaCycle | None] = self._loader(
            lambda s, ids: content.pdsa_cycles_by_ids(s, sid, ids)
        )
        self.measure_ids_by_pdsa_cycle_id: DataLoader[uuid.UUID, list[uuid.UUID]] = self._loader(
            lambda s, ids: content.measure_ids_by_pdsa_cycle_ids(s, sid, ids)
        )
        # Keyed by (team, measure): the cycles that mark a series, one statement per batch.
        self.pdsa_cycles_by_team_measure: DataLoader[TeamMeasure, list[PdsaCycle]] = self._loader(
            lambda s, keys: content.pdsa_cycles_by_team_measures(s, sid, keys)
        )
        self.assessments_by_team_id: DataLoader[uuid.UUID, list[Assessment]] = self._loader(
            lambda s, ids: content.assessments_by_team_ids(s, sid, ids)
        )
        self.assessment_by_id: DataLoader[uuid.UUID, Assessment | None] = self._loader(
            lambda s, ids: content.assessments_by_ids(s, sid, ids)
        )
        # Keyed by (collaborative, period): the month's scores of the collaborative's teams.
        self.assessments_by_collaborative_period: DataLoader[
            CollaborativePeriod, list[Assessment]
        ] = self._loader(lambda s, keys: content.assessments_by_collaborative_periods(s, sid, keys))
        self.instrument_by_id: DataLoader[uuid.UUID, Instrument | None] = self._loader(
            lambda s, ids: instruments.instruments_by_ids(s, sid, ids)
        )
        self.instrument_versions_by_instrument_id: DataLoader[
            uuid.UUID, list[InstrumentVersion]
        ] = self._loader(lambda s, ids: instruments.versions_by_instrument_ids(s, sid, ids))
        self.instrument_structure_by_version_id: DataLoader[uuid.UUID, VersionStructure | None] = (
            self._loader(lambda s, ids: instruments.structures_by_version_ids(s, sid, ids))
        )
        self.survey_responses_by_team_id: DataLoader[uuid.UUID, list[SurveyResponse]] = (
            self._loader(lambda s, ids: instruments.survey_responses_by_team_ids(s, sid, ids))
        )
        self.survey_response_by_id: DataLoader[uuid.UUID, SurveyResponse | None] = self._loader(
            lambda s, ids: instruments.survey_responses_by_ids(s, sid, ids)
        )
        # Webhooks (admin): the webhook, its collaboratives, a delivery.
        self.webhook_by_id: DataLoader[uuid.UUID, Webhook | None] = self._loader(
            lambda s, ids: webhooks.webhooks_by_ids(s, sid, ids)
        )
        self.collaborative_ids_by_webhook_id: DataLoader[uuid.UUID, list[uuid.UUID]] = self._loader(
            lambda s, ids: webhooks.collaborative_ids_by_webhook_ids(s, sid, ids)
        )
        self.webhook_delivery_by_id: DataLoader[uuid.UUID, WebhookDelivery | None] = self._loader(
            lambda s, ids: webhooks.deliveries_by_ids(s, sid, ids)
        )
        # Sharing agreements the caller's sponsor grants or receives; what they name (keyed by
        # grantor and agreement: a grantee reads another sponsor's rows here, and only here).
        self.sharing_agreement_by_id: DataLoader[uuid.UUID, SharingAgreement | None] = self._loader(
            lambda s, ids: agreements_by_ids(s, sid, ids, "ANY")
        )
        self.agreement_scope_by_key: DataLoader[tuple[uuid.UUID, uuid.UUID], AgreementScope] = (
            self._loader(agreement_scopes)
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
