"""Mutations: ``defineMeasure`` and ``addMeasureToCollaborative`` (scope program:write)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.enums import ImprovementDirection, MeasureType, Scoring
from db.errors import DomainError, InvalidInput
from db.queries.measures import (
    MeasureDefinitionInput,
    add_measure_to_collaborative,
    define_measure,
)
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.errors import ConflictError, NotFoundError, ValidationError, error_from_domain
from schema.measures.types import CollaborativeMeasure, Measure
from schema.permissions import HasScope
from schema.validation import check_code, check_text

LONG_TEXT = 10_000
"""Longest operational-definition text (numerator, denominator, exclusions...)."""

MAX_EXTERNAL_CODES = 20
"""Most external codes one measure may carry."""


@strawberry.input(description="The measure's code in another system.")
class ExternalCodeInput:
    system: str = strawberry.field(description="The other system, e.g. 'dhis2'.")
    code: str = strawberry.field(description="The measure's code in that system.")


@strawberry.input(
    description=(
        "A measure's complete operational definition. Omitted optional fields take their "
        "defaults (they are not inherited from the previous version)."
    )
)
class DefineMeasureInput:
    code: str = strawberry.field(description="Code, unique within the sponsor.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(default="", description="What the measure tells.")
    type: MeasureType = strawberry.field(description="Outcome, process, balancing or structure.")
    scoring: Scoring = strawberry.field(description="How the value is computed.")
    numerator: str = strawberry.field(
        default="", description="Numerator (required for PROPORTION, RATE and RATIO)."
    )
    denominator: str = strawberry.field(
        default="", description="Denominator (required for PROPORTION, RATE and RATIO)."
    )
    exclusions: str = strawberry.field(default="", description="Exclusions.")
    unit: str = strawberry.field(default="", description="Unit of the displayed value.")
    multiplier: float = strawberry.field(
        default=1.0, description="Factor of the displayed value; finite and above 0."
    )
    improvement_direction: ImprovementDirection = strawberry.field(
        description="Which way is better."
    )
    data_source: str = strawberry.field(default="", description="Where the data come from.")
    sampling: str = strawberry.field(default="", description="Sampling plan.")
    frequency: str = strawberry.field(default="MONTHLY", description="Reporting frequency.")
    fhir_canonical: str | None = strawberry.field(
        default=None, description="Canonical URL of the matching FHIR Measure."
    )
    external_codes: list[ExternalCodeInput] = strawberry.field(
        default_factory=list, description="Codes of the measure in other systems (one a system)."
    )


@strawberry.input(description="A measure to add to a collaborative's measure set.")
class AddMeasureToCollaborativeInput:
    collaborative: str = strawberry.field(description="Code of the collaborative.")
    measure: str = strawberry.field(description="Code of the measure.")
    required: bool = strawberry.field(
        default=True, description="Mandatory for every team (else optional)."
    )
    goal: float | None = strawberry.field(
        default=None, description="Goal line in the measure's displayed unit; finite."
    )
    goal_description: str = strawberry.field(default="", description="The goal in words.")
    position: int | None = strawberry.field(
        default=None, description="Place in the set (0 or more); last when omitted."
    )


@strawberry.type(description="The measure as defined now.")
class DefineMeasureSuccess:
    measure: Measure = strawberry.field(description="The measure at its current definition.")
    created: bool = strawberry.field(description="The measure did not exist before.")
    version_created: bool = strawberry.field(
        description="A new definition version was written (false when nothing changed)."
    )


@strawberry.type(description="The measure joined the collaborative's measure set.")
class AddMeasureToCollaborativeSuccess:
    collaborative: Collaborative = strawberry.field(description="The collaborative.")
    collaborative_measure: CollaborativeMeasure = strawberry.field(
        description="The new entry of its measure set."
    )


DefineMeasureResult = Annotated[
    DefineMeasureSuccess | ValidationError | ConflictError,
    strawberry.union("DefineMeasureResult"),
]
AddMeasureToCollaborativeResult = Annotated[
    AddMeasureToCollaborativeSuccess | NotFoundError | ConflictError | ValidationError,
    strawberry.union("AddMeasureToCollaborativeResult"),
]


def _definition(input: DefineMeasureInput) -> MeasureDefinitionInput:
    """The checked definition of the input (InvalidInput naming the camelCase field)."""
    check_code(input.code, "code")
    check_text(input.name, "name", max_length=200, required=True)
    for field, value in (
        ("description", input.description),
        ("numerator", input.numerator),
        ("denominator", input.denominator),
        ("exclusions", input.exclusions),
        ("dataSource", input.data_source),
        ("sampling", input.sampling),
    ):
        check_text(value, field, max_length=LONG_TEXT)
    check_text(input.unit, "unit", max_length=64)
    check_text(input.frequency, "frequency", max_length=32, required=True)
    check_text(input.fhir_canonical, "fhirCanonical", max_length=500)
    if len(input.external_codes) > MAX_EXTERNAL_CODES:
        raise InvalidInput(f"at most {MAX_EXTERNAL_CODES} external codes", field="externalCodes")
    codes: dict[str, str] = {}
    for item in input.external_codes:
        check_text(item.system, "externalCodes", max_length=200, required=True)
        check_text(item.code, "externalCodes", max_length=200, required=True)
        if item.system in codes:
            raise InvalidInput(
                f"external code system {item.system!r} is given twice", field="externalCodes"
            )
        codes[item.system] = item.code
    return MeasureDefinitionInput(
        name=input.name,
        type=input.type,
        scoring=input.scoring,
        improvement_direction=input.improvement_direction,
        description=input.description,
        numerator=input.numerator,
        denominator=input.denominator,
        exclusions=input.exclusions,
        unit=input.unit,
        multiplier=input.multiplier,
        data_source=input.data_source,
        sampling=input.sampling,
        frequency=input.frequency,
        fhir_canonical=input.fhir_canonical,
        external_codes=codes,
    )


@strawberry.type
class MeasureMutations:
    @strawberry.mutation(
        description=(
            "Define a measure: creates it at version 1, or — for an existing code — writes a new "
            "version when any definition field differs from the current version; an identical "
            "definition changes nothing (versionCreated false)."
        ),
        permission_classes=[HasScope("program:write")],
    )
    async def define_measure(self, info: Info, input: DefineMeasureInput) -> DefineMeasureResult:
        try:
            definition = _definition(input)
            async with info.context.db.begin() as session:
                outcome = await define_measure(
                    session, info.context.actor(), code=input.code, definition=definition
                )
        except DomainError as exc:
            error = error_from_domain(exc)
            if isinstance(error, ValidationError | ConflictError):
                return error
            # defineMeasure names nothing that could be missing: any other failure is invalid input
            return ValidationError(message=error.message, code="VALIDATION", field=None)
        return DefineMeasureSuccess(
            measure=Measure.from_model(outcome.result),
            created=outcome.created,
            version_created=outcome.version_created,
        )

    @strawberry.mutation(
        description=(
            "Add a measure to a collaborative's measure set. A measure already in the set is a "
            "CONFLICT (the entry is not changed); unknown codes are NOT_FOUND."
        ),
        permission_classes=[HasScope("program:write")],
    )
    async def add_measure_to_collaborative(
        self, info: Info, input: AddMeasureToCollaborativeInput
    ) -> AddMeasureToCollaborativeResult:
        try:
            check_code(input.collaborative, "collaborative")
            check_code(input.measure, "measure")
            check_text(input.goal_description, "goalDescription", max_length=LONG_TEXT)
            async with info.context.db.begin() as session:
                outcome = await add_measure_to_collaborative(
                    session,
                    info.context.actor(),
                    collaborative_code=input.collaborative,
                    measure_code=input.measure,
                    required=input.required,
                    goal=input.goal,
                    goal_description=input.goal_description,
                    position=input.position,
                )
        except DomainError as exc:
            return error_from_domain(exc)
        return AddMeasureToCollaborativeSuccess(
            collaborative=Collaborative.from_model(outcome.collaborative),
            collaborative_measure=CollaborativeMeasure.from_entry(outcome.entry),
        )
