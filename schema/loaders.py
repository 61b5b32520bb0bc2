"""Every DataLoader, built per request, named ``<entity>_by_<key>``.

Each batch opens its own short session (loaders run as concurrent tasks; a session must never be
shared between them) and is scoped to the caller's sponsor, so a loader cannot leak another
tenant's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, overload

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


Fetch = Callable[[AsyncSession, uuid.UUID, Sequence[KeyT]], Awaitable[Sequence[ValueT]]]
"""A batch fetch: (session, the caller's sponsor id, keys) → values in the order of the keys."""


class LazyLoader(Generic[KeyT, ValueT]):
    """A :class:`Loaders` attribute whose DataLoader is built on first use in a request.

    A request uses a handful of the ~50 loaders; building all of them up front cost every
    request ~0.1 ms. The built loader is stored in the instance's ``__dict__``, which shadows
    this (non-data) descriptor from then on.
    """

    def __init__(self, fetch: Fetch[KeyT, ValueT]) -> None:
        self.fetch = fetch
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, loaders: None, owner: type[Any]) -> LazyLoader[KeyT, ValueT]: ...

    @overload
    def __get__(self, loaders: Loaders, owner: type[Any]) -> DataLoader[KeyT, ValueT]: ...

    def __get__(
        self, loaders: Loaders | None, owner: type[Any]
    ) -> LazyLoader[KeyT, ValueT] | DataLoader[KeyT, ValueT]:
        if loaders is None:
            return self
        loader = loaders.build(self.fetch)
        loaders.__dict__[self.name] = loader
        return loader


class Loaders:
    """The DataLoaders of one request (each built when first used)."""

    def __init__(self, db: async_sessionmaker[AsyncSession], sponsor_id: uuid.UUID | None) -> None:
        self._db = db
        self._sponsor_id = sponsor_id or uuid.UUID(int=0)

    def build(self, fetch: Fetch[KeyT, ValueT]) -> DataLoader[KeyT, ValueT]:
        """A DataLoader whose every batch runs ``fetch`` in a session of its own."""
        db, sponsor_id = self._db, self._sponsor_id

        async def load(keys: list[KeyT]) -> Sequence[ValueT]:
            async with db() as session:
                return await fetch(session, sponsor_id, keys)

        return DataLoader(load_fn=load)

    sponsor_by_id = LazyLoader[uuid.UUID, Sponsor | None](
        lambda s, _sid, ids: sponsors.sponsors_by_ids(s, ids)
    )
    person_by_id = LazyLoader[uuid.UUID, Person | None](
        lambda s, sid, ids: sponsors.people_by_ids(s, sid, ids)
    )
    collaborative_by_id = LazyLoader[uuid.UUID, Collaborative | None](
        lambda s, sid, ids: collaboratives.collaboratives_by_ids(s, sid, ids)
    )
    phases_by_collaborative_id = LazyLoader[uuid.UUID, list[Phase]](
        lambda s, sid, ids: collaboratives.phases_by_collaborative_ids(s, sid, ids)
    )
    staff_by_collaborative_id = LazyLoader[uuid.UUID, list[StaffAssignment]](
        lambda s, sid, ids: collaboratives.staff_by_collaborative_ids(s, sid, ids)
    )
    measure_by_id = LazyLoader[uuid.UUID, VersionedMeasure | None](
        lambda s, sid, ids: measures.measures_by_ids(s, sid, ids)
    )
    measure_versions_by_measure_id = LazyLoader[uuid.UUID, list[MeasureVersion]](
        lambda s, sid, ids: measures.measure_versions_by_measure_ids(s, sid, ids)
    )
    measure_definition_by_id = LazyLoader[uuid.UUID, MeasureVersion | None](
        lambda s, sid, ids: measures.measure_definitions_by_ids(s, sid, ids)
    )
    measure_set_by_collaborative_id = LazyLoader[uuid.UUID, list[MeasureSetEntry]](
        lambda s, sid, ids: measures.measure_sets_by_collaborative_ids(s, sid, ids)
    )
    resource_by_id = LazyLoader[uuid.UUID, Resource | None](
        lambda s, sid, ids: catalog.resources_by_ids(s, sid, ids)
    )
    tags_by_resource_id = LazyLoader[uuid.UUID, list[ResourceTag]](
        lambda s, sid, ids: catalog.tags_by_resource_ids(s, sid, ids)
    )
    collaboratives_by_resource_id = LazyLoader[uuid.UUID, list[Collaborative]](
        lambda s, sid, ids: catalog.collaboratives_by_resource_ids(s, sid, ids)
    )
    # Keyed by (collaborative id, page size, after): one batch serves a whole query level.
    resource_page_by_collaborative_key = LazyLoader[CollaborativeResourcesKey, Page[Resource]](
        lambda s, sid, keys: catalog.resource_pages_by_collaborative_keys(s, sid, keys)
    )
    organization_by_id = LazyLoader[uuid.UUID, Organization | None](
        lambda s, sid, ids: teams.organizations_by_ids(s, sid, ids)
    )
    team_by_id = LazyLoader[uuid.UUID, Team | None](
        lambda s, sid, ids: teams.teams_by_ids(s, sid, ids)
    )
    # Federation entity keys (sponsorSlug, code) of the caller's sponsor: one query per type.
    collaborative_by_code = LazyLoader[str, Collaborative | None](
        lambda s, sid, codes: collaboratives.collaboratives_by_codes(s, sid, codes)
    )
    team_by_code = LazyLoader[str, Team | None](
        lambda s, sid, codes: teams.teams_by_codes(s, sid, codes)
    )
    organization_by_code = LazyLoader[str, Organization | None](
        lambda s, sid, codes: teams.organizations_by_codes(s, sid, codes)
    )
    measure_by_code = LazyLoader[str, VersionedMeasure | None](
        lambda s, sid, codes: measures.measures_by_codes(s, sid, codes)
    )
    members_by_team_id = LazyLoader[uuid.UUID, list[TeamMember]](
        lambda s, sid, ids: teams.members_by_team_ids(s, sid, ids)
    )
    # Keyed by (parent id, page size, after, filter): one batch serves a whole query level.
    teams_page_by_collaborative_id = LazyLoader[TeamPageKey, Page[Team]](
        lambda s, sid, keys: teams.team_pages_by_parent(s, sid, keys, parent="collaborative")
    )
    teams_page_by_organization_id = LazyLoader[TeamPageKey, Page[Team]](
        lambda s, sid, keys: teams.team_pages_by_parent(s, sid, keys, parent="organization")
    )
    # Keyed by (team, measure or None for the whole set, from, to, last).
    series_by_key = LazyLoader[SeriesKey, list[Series]](
        lambda s, sid, keys: series.series_by_keys(s, sid, keys)
    )
    # Keyed by (collaborative, period or None for the latest): totals and team values.
    scorecard_inputs_by_key = LazyLoader[ScorecardKey, ScorecardInputs](
        lambda s, sid, keys: aggregates.scorecard_inputs_by_keys(s, sid, keys)
    )
    data_point_by_id = LazyLoader[uuid.UUID, ExportedPoint | None](
        lambda s, sid, ids: data.data_points_by_ids(s, sid, ids)
    )
    # Improvement content: change packages, PDSA cycles, assessments, instruments, surveys.
    change_concepts_by_collaborative_id = LazyLoader[uuid.UUID, list[ChangeConcept]](
        lambda s, sid, ids: content.change_concepts_by_collaborative_ids(s, sid, ids)
    )
    change_concept_by_id = LazyLoader[uuid.UUID, ChangeConcept | None](
        lambda s, sid, ids: content.change_concepts_by_ids(s, sid, ids)
    )
    change_ideas_by_concept_id = LazyLoader[uuid.UUID, list[ChangeIdea]](
        lambda s, sid, ids: content.change_ideas_by_concept_ids(s, sid, ids)
    )
    change_idea_by_id = LazyLoader[uuid.UUID, ChangeIdea | None](
        lambda s, sid, ids: content.change_ideas_by_ids(s, sid, ids)
    )
    resources_by_change_concept_id = LazyLoader[uuid.UUID, list[Resource]](
        lambda s, sid, ids: content.resources_by_change_concept_ids(s, sid, ids)
    )
    resources_by_change_idea_id = LazyLoader[uuid.UUID, list[Resource]](
        lambda s, sid, ids: content.resources_by_change_idea_ids(s, sid, ids)
    )
    pdsa_cycles_by_team_id = LazyLoader[uuid.UUID, list[PdsaCycle]](
        lambda s, sid, ids: content.pdsa_cycles_by_team_ids(s, sid, ids)
    )
    pdsa_cycle_by_id = LazyLoader[uuid.UUID, PdsaCycle | None](
        lambda s, sid, ids: content.pdsa_cycles_by_ids(s, sid, ids)
    )
    measure_ids_by_pdsa_cycle_id = LazyLoader[uuid.UUID, list[uuid.UUID]](
        lambda s, sid, ids: content.measure_ids_by_pdsa_cycle_ids(s, sid, ids)
    )
    # Keyed by (team, measure): the cycles that mark a series, one statement per batch.
    pdsa_cycles_by_team_measure = LazyLoader[TeamMeasure, list[PdsaCycle]](
        lambda s, sid, keys: content.pdsa_cycles_by_team_measures(s, sid, keys)
    )
    assessments_by_team_id = LazyLoader[uuid.UUID, list[Assessment]](
        lambda s, sid, ids: content.assessments_by_team_ids(s, sid, ids)
    )
    assessment_by_id = LazyLoader[uuid.UUID, Assessment | None](
        lambda s, sid, ids: content.assessments_by_ids(s, sid, ids)
    )
    # Keyed by (collaborative, period): the month's scores of the collaborative's teams.
    assessments_by_collaborative_period = LazyLoader[CollaborativePeriod, list[Assessment]](
        lambda s, sid, keys: content.assessments_by_collaborative_periods(s, sid, keys)
    )
    instrument_by_id = LazyLoader[uuid.UUID, Instrument | None](
        lambda s, sid, ids: instruments.instruments_by_ids(s, sid, ids)
    )
    instrument_versions_by_instrument_id = LazyLoader[uuid.UUID, list[InstrumentVersion]](
        lambda s, sid, ids: instruments.versions_by_instrument_ids(s, sid, ids)
    )
    instrument_structure_by_version_id = LazyLoader[uuid.UUID, VersionStructure | None](
        lambda s, sid, ids: instruments.structures_by_version_ids(s, sid, ids)
    )
    survey_responses_by_team_id = LazyLoader[uuid.UUID, list[SurveyResponse]](
        lambda s, sid, ids: instruments.survey_responses_by_team_ids(s, sid, ids)
    )
    survey_response_by_id = LazyLoader[uuid.UUID, SurveyResponse | None](
        lambda s, sid, ids: instruments.survey_responses_by_ids(s, sid, ids)
    )
    # Webhooks (admin): the webhook, its collaboratives, a delivery.
    webhook_by_id = LazyLoader[uuid.UUID, Webhook | None](
        lambda s, sid, ids: webhooks.webhooks_by_ids(s, sid, ids)
    )
    collaborative_ids_by_webhook_id = LazyLoader[uuid.UUID, list[uuid.UUID]](
        lambda s, sid, ids: webhooks.collaborative_ids_by_webhook_ids(s, sid, ids)
    )
    webhook_delivery_by_id = LazyLoader[uuid.UUID, WebhookDelivery | None](
        lambda s, sid, ids: webhooks.deliveries_by_ids(s, sid, ids)
    )
    # Sharing agreements the caller's sponsor grants or receives; what they name (keyed by
    # grantor and agreement: a grantee reads another sponsor's rows here, and only here).
    sharing_agreement_by_id = LazyLoader[uuid.UUID, SharingAgreement | None](
        lambda s, sid, ids: agreements_by_ids(s, sid, ids, "ANY")
    )
    agreement_scope_by_key = LazyLoader[tuple[uuid.UUID, uuid.UUID], AgreementScope](
        lambda s, _sid, keys: agreement_scopes(s, keys)
    )
