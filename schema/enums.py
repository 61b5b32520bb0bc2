"""The domain enumerations as GraphQL enums (values in capitals, as API.md fixes them).

``strawberry.enum`` registers the ``db.enums`` classes themselves, so types annotate fields with
the ``db.enums`` classes; ``schema.schema`` imports this module before building the schema.
"""

from __future__ import annotations

import strawberry

from db import enums

ClientKind = strawberry.enum(enums.ClientKind, description="What kind of system a client is.")
CollaborativeStatus = strawberry.enum(
    enums.CollaborativeStatus, description="Life cycle of a collaborative."
)
PhaseKind = strawberry.enum(enums.PhaseKind, description="Kind of a collaborative's phase.")
StaffRole = strawberry.enum(enums.StaffRole, description="Role on a collaborative's staff.")
TeamRole = strawberry.enum(enums.TeamRole, description="Role inside a team.")
MeasureType = strawberry.enum(enums.MeasureType, description="Model for Improvement family.")
Scoring = strawberry.enum(enums.Scoring, description="How a measure's value is computed.")
ImprovementDirection = strawberry.enum(
    enums.ImprovementDirection, description="Which way is better."
)
DataPointStatus = strawberry.enum(enums.DataPointStatus, description="Review state of a point.")
ResourceKind = strawberry.enum(enums.ResourceKind, description="Kind of catalog resource.")
CareModelDomain = strawberry.enum(
    enums.CareModelDomain, description="Domain of the Care Model (Wagner's Chronic Care Model)."
)
PdsaAct = strawberry.enum(enums.PdsaAct, description="The decision that ends a PDSA cycle.")
PdsaStatus = strawberry.enum(
    enums.PdsaStatus, description="Where a PDSA cycle is (derived from what is recorded)."
)
AssessmentRater = strawberry.enum(
    enums.AssessmentRater, description="Who scored a team on the IHI Assessment Scale."
)
SurveyWave = strawberry.enum(enums.SurveyWave, description="When a team answered a survey.")
