"""Domain enumerations shared by the models and (wrapped by strawberry) the GraphQL schema.

Values are the stored strings and the GraphQL enum values alike, so they are the public contract.
"""

from __future__ import annotations

import enum


class ClientKind(enum.StrEnum):
    """What kind of system a client is (API.md, Principals and scopes)."""

    ADMIN = "ADMIN"
    DASHBOARD = "DASHBOARD"
    EHR_INTEGRATION = "EHR_INTEGRATION"
    PARTNER = "PARTNER"


class CollaborativeStatus(enum.StrEnum):
    """Life cycle of a collaborative."""

    PLANNED = "PLANNED"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class PhaseKind(enum.StrEnum):
    """Kinds of phases of a Breakthrough Series collaborative."""

    PREWORK = "PREWORK"
    LEARNING_SESSION = "LEARNING_SESSION"
    ACTION_PERIOD = "ACTION_PERIOD"
    CONGRESS = "CONGRESS"
    SUSTAIN = "SUSTAIN"


class StaffRole(enum.StrEnum):
    """Roles of a collaborative's staff."""

    CHAIR = "CHAIR"
    FACULTY = "FACULTY"
    IMPROVEMENT_ADVISOR = "IMPROVEMENT_ADVISOR"
    DIRECTOR = "DIRECTOR"
    DATA_MANAGER = "DATA_MANAGER"


class TeamRole(enum.StrEnum):
    """Roles inside a team."""

    SENIOR_LEADER = "SENIOR_LEADER"
    CLINICAL_CHAMPION = "CLINICAL_CHAMPION"
    TECHNICAL_EXPERT = "TECHNICAL_EXPERT"
    DAY_TO_DAY_LEAD = "DAY_TO_DAY_LEAD"
    DATA_LEAD = "DATA_LEAD"
    PATIENT_FAMILY_PARTNER = "PATIENT_FAMILY_PARTNER"
    MEMBER = "MEMBER"


class MeasureType(enum.StrEnum):
    """Model for Improvement measure families (BALANCING has no FHIR code: mapped on export)."""

    OUTCOME = "OUTCOME"
    PROCESS = "PROCESS"
    BALANCING = "BALANCING"
    STRUCTURE = "STRUCTURE"


class Scoring(enum.StrEnum):
    """How a measure's value is computed from its data."""

    PROPORTION = "PROPORTION"
    RATE = "RATE"
    RATIO = "RATIO"
    MEAN = "MEAN"
    COUNT = "COUNT"


class ImprovementDirection(enum.StrEnum):
    """Which way is better."""

    INCREASE = "INCREASE"
    DECREASE = "DECREASE"


class DataPointStatus(enum.StrEnum):
    """Review state of a data point; LOCKED points are never overwritten by ingest."""

    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    LOCKED = "LOCKED"


class ResourceKind(enum.StrEnum):
    """Kinds of catalog resources."""

    TOOL = "TOOL"
    TOOLKIT = "TOOLKIT"
    CHANGE_CONCEPT = "CHANGE_CONCEPT"
    CHANGE_IDEA = "CHANGE_IDEA"
    IMPROVEMENT_STORY = "IMPROVEMENT_STORY"
    TRAINING = "TRAINING"
    CONFERENCE = "CONFERENCE"
    WEBINAR = "WEBINAR"


class CareModelDomain(enum.StrEnum):
    """The six domains of the Care Model (adapted from Wagner's Chronic Care Model)."""

    HEALTH_SYSTEM = "HEALTH_SYSTEM"
    COMMUNITY_RESOURCES = "COMMUNITY_RESOURCES"
    SELF_MANAGEMENT_SUPPORT = "SELF_MANAGEMENT_SUPPORT"
    DELIVERY_SYSTEM_DESIGN = "DELIVERY_SYSTEM_DESIGN"
    DECISION_SUPPORT = "DECISION_SUPPORT"
    CLINICAL_INFORMATION_SYSTEMS = "CLINICAL_INFORMATION_SYSTEMS"


class PdsaAct(enum.StrEnum):
    """The decision that ends a PDSA cycle (the "Act" step)."""

    ADOPT = "ADOPT"
    ADAPT = "ADAPT"
    ABANDON = "ABANDON"
    EXPAND = "EXPAND"


class PdsaStatus(enum.StrEnum):
    """Where a PDSA cycle is: derived from what has been recorded, never stored."""

    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class AssessmentRater(enum.StrEnum):
    """Who scored a team on the IHI Assessment Scale: collaborative faculty or the team itself."""

    FACULTY = "FACULTY"
    SELF = "SELF"


class SurveyWave(enum.StrEnum):
    """When a team answered a survey instrument; DATED waves are identified by their date."""

    BASELINE = "BASELINE"
    MIDPOINT = "MIDPOINT"
    FINAL = "FINAL"
    DATED = "DATED"


class WebhookEventType(enum.StrEnum):
    """What a webhook can be told about (the subscriptions of the same names)."""

    MEASURE_DATA_SUBMITTED = "MEASURE_DATA_SUBMITTED"
    SIGNAL_DETECTED = "SIGNAL_DETECTED"


class WebhookDeliveryStatus(enum.StrEnum):
    """Where one webhook delivery is: waiting for (another) attempt, or done either way."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


ALL_SCOPES: tuple[str, ...] = (
    "program:read",
    "program:write",
    "data:read",
    "data:write",
    "aggregate:read",
    "catalog:read",
    "catalog:write",
    "admin",
)
"""Every scope a client may hold (API.md)."""

DEFAULT_SCOPES: dict[ClientKind, tuple[str, ...]] = {
    ClientKind.ADMIN: ALL_SCOPES,
    ClientKind.DASHBOARD: ("program:read", "data:read", "aggregate:read", "catalog:read"),
    ClientKind.EHR_INTEGRATION: ("data:write", "program:read", "data:read"),
    ClientKind.PARTNER: ("aggregate:read", "catalog:read"),
}
"""The typical scopes of each kind, used when a client is created without explicit scopes."""


class SharingLevel(enum.StrEnum):
    """What a sharing agreement lets the grantee sponsor see (least to most)."""

    AGGREGATE = "AGGREGATE"
    TEAM_DEIDENTIFIED = "TEAM_DEIDENTIFIED"
    TEAM_IDENTIFIED = "TEAM_IDENTIFIED"
