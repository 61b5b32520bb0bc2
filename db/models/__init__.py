"""All models, imported here so that ``Base.metadata`` knows every table (alembic relies on it)."""

from db.models.audit import AuditEvent
from db.models.auth import Client, ClientTeam, SigningKey
from db.models.catalog import Resource, ResourceCollaborative, ResourceTag
from db.models.collaboratives import Collaborative, Phase, StaffAssignment
from db.models.data import DataPoint
from db.models.exchange import (
    DataPointHistory,
    DataPointTombstone,
    IdempotencyKey,
    MeasureDataReceipt,
    PeriodLock,
)
from db.models.measures import CollaborativeMeasure, Measure, MeasureVersion
from db.models.sponsors import Person, Sponsor
from db.models.teams import Organization, Team, TeamMember

__all__ = [
    "AuditEvent",
    "Client",
    "ClientTeam",
    "Collaborative",
    "CollaborativeMeasure",
    "DataPoint",
    "DataPointHistory",
    "DataPointTombstone",
    "IdempotencyKey",
    "Measure",
    "MeasureDataReceipt",
    "MeasureVersion",
    "Organization",
    "PeriodLock",
    "Person",
    "Phase",
    "Resource",
    "ResourceCollaborative",
    "ResourceTag",
    "SigningKey",
    "Sponsor",
    "StaffAssignment",
    "Team",
    "TeamMember",
]
