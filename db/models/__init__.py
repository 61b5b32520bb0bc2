"""All models, imported here so that ``Base.metadata`` knows every table (alembic relies on it)."""

from db.models.audit import AuditEvent
from db.models.auth import Client, ClientTeam, SigningKey
from db.models.catalog import Resource, ResourceCollaborative, ResourceTag
from db.models.collaboratives import Collaborative, Phase, StaffAssignment
from db.models.content import (
    Assessment,
    ChangeConcept,
    ChangeConceptResource,
    ChangeIdea,
    ChangeIdeaResource,
    Instrument,
    InstrumentItem,
    InstrumentSection,
    InstrumentVersion,
    PdsaCycle,
    PdsaCycleMeasure,
    SurveyResponse,
)
from db.models.data import DataPoint
from db.models.exchange import (
    DataPointChangeSet,
    DataPointTombstone,
    IdempotencyKey,
    MeasureDataReceipt,
    PeriodLock,
)
from db.models.measures import CollaborativeMeasure, Measure, MeasureVersion
from db.models.rollups import AggregateCell, AggregateChange, AggregateSeries
from db.models.sharing import (
    MeasureEquivalence,
    PseudonymKey,
    SharingAccessLog,
    SharingAgreement,
    SharingAgreementCollaborative,
    SharingAgreementMeasure,
)
from db.models.sponsors import Person, Sponsor
from db.models.teams import Organization, Team, TeamMember
from db.models.webhooks import Webhook, WebhookCollaborative, WebhookDelivery

__all__ = [
    "AggregateCell",
    "AggregateChange",
    "AggregateSeries",
    "Assessment",
    "AuditEvent",
    "ChangeConcept",
    "ChangeConceptResource",
    "ChangeIdea",
    "ChangeIdeaResource",
    "Client",
    "ClientTeam",
    "Collaborative",
    "CollaborativeMeasure",
    "DataPoint",
    "DataPointChangeSet",
    "DataPointTombstone",
    "IdempotencyKey",
    "Instrument",
    "InstrumentItem",
    "InstrumentSection",
    "InstrumentVersion",
    "Measure",
    "MeasureDataReceipt",
    "MeasureEquivalence",
    "MeasureVersion",
    "Organization",
    "PdsaCycle",
    "PdsaCycleMeasure",
    "PeriodLock",
    "Person",
    "Phase",
    "PseudonymKey",
    "Resource",
    "ResourceCollaborative",
    "ResourceTag",
    "SharingAccessLog",
    "SharingAgreement",
    "SharingAgreementCollaborative",
    "SharingAgreementMeasure",
    "SigningKey",
    "Sponsor",
    "StaffAssignment",
    "SurveyResponse",
    "Team",
    "TeamMember",
    "Webhook",
    "WebhookCollaborative",
    "WebhookDelivery",
]
