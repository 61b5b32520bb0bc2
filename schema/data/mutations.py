"""Mutations: ``submitMeasureData`` and ``deleteMeasureData`` (scope data:write), ``lockPeriods``
and ``unlockPeriods`` (scope admin).

Data calls hand their rows to :mod:`db.ingest` unchanged: every per-row problem (a malformed
period, a fractional count, NUL bytes...) becomes a conflict of that row in the receipt, so the
row inputs are deliberately loose (``period: String!``, counts as ``Count``, any JSON number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryObjectDefinition, get_object_definition

from db import ingest
from db.errors import DomainError
from db.ingest import DeleteRowInput, IngestOptions, RowColumns, SubmittedRow
from db.queries.data import Receipt
from db.queries.data import lock_periods as lock_periods_row
from db.queries.data import unlock_periods as unlock_periods_row
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.data.types import (
    BatchTooLargeError,
    IdempotencyMismatchError,
    InProgressError,
    LockPeriodsSuccess,
    MeasureDataReceipt,
    PeriodLock,
    UnlockPeriodsSuccess,
)
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    error_from_domain,
)
from schema.permissions import HasScope, require_principal
from schema.principal import Principal
from schema.scalars import Count, Period
from schema.validation import check_text


@strawberry.input(description="One data point to submit, naming team and measure by code.")
class MeasureDataRowInput:
    team: str = strawberry.field(description="Team code.")
    measure: str = strawberry.field(description="Measure code.")
    period: str = strawberry.field(
        description="The month, 'YYYY-MM' (a malformed one is this row's INVALID_PERIOD)."
    )
    numerator: Count | None = strawberry.field(
        default=None, description="Numerator (PROPORTION, RATE, RATIO; optional otherwise)."
    )
    denominator: Count | None = strawberry.field(
        default=None, description="Denominator (PROPORTION, RATE, RATIO; optional otherwise)."
    )
    value: float | None = strawberry.field(
        default=None,
        description="The value (MEAN and COUNT measures); ignored for the other scorings.",
    )
    stratum: str = strawberry.field(
        default="", description="Stratum (e.g. 'payer:medicaid'), '' for all patients; 64 max."
    )
    annotation: str | None = strawberry.field(
        default=None, description="Note on the point (an event, a change tested); 2,000 max."
    )


def _row_from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """Build a row input straight from graphql-core's coerced value.

    Strawberry's generic conversion re-walks every field of every row through
    ``convert_argument`` (about 40 ms per 1,000 rows); a row holds only scalars that graphql-core
    has already coerced (``Count`` parsed, defaults filled in), so they are copied as they are.
    """
    row: Any = object.__new__(cls)
    row.__dict__.update(
        team=value["team"],
        measure=value["measure"],
        period=value["period"],
        numerator=value.get("numerator"),
        denominator=value.get("denominator"),
        value=value.get("value"),
        stratum=value.get("stratum", ""),
        annotation=value.get("annotation"),
    )
    return row


def _install_from_input(
    input_class: type, hook: Any, fields: set[str]
) -> StrawberryObjectDefinition:
    """Make ``hook`` build ``input_class`` from its coerced value; ``fields`` are the fields the
    hook sets, which must be every field of the class (a field added later fails at import)."""
    definition = get_object_definition(input_class, strict=True)
    declared = {field.python_name for field in definition.fields}
    if declared != fields:
        raise TypeError(
            f"{hook.__name__} sets {sorted(fields)}, {input_class.__name__} has {sorted(declared)}"
        )
    definition.from_input = hook
    return definition


_install_from_input(
    MeasureDataRowInput,
    _row_from_input,
    {"team", "measure", "period", "numerator", "denominator", "value", "stratum", "annotation"},
)


@strawberry.input(description="A batch of data points to create or update.")
class SubmitMeasureDataInput:
    rows: list[MeasureDataRowInput] = strawberry.field(
        description="The rows; at most the server's batch limit (10,000 by default)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Your key for this call (per client, kept at least 24 hours): the same key with the "
            "same rows returns the first receipt and writes nothing; with other rows it is an "
            "IDEMPOTENCY_MISMATCH. A REJECTED call does not keep its key."
        ),
    )
    dry_run: bool = strawberry.field(
        default=False, description="Run every check and return the receipt; write nothing."
    )
    atomic: bool = strawberry.field(
        default=True,
        description="True: any rejected row rejects the batch. False: valid rows are written.",
    )


def _submit_input_from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """Build a batch input with its rows in one loop (:func:`_row_from_input` for each).

    Strawberry's generic conversion calls ``convert_argument`` for every row before it reaches
    the row's own hook (~3 ms per 1,000 rows); the rows are plain objects of scalars that
    graphql-core has already coerced.
    """
    names = _submit_field_names(context)
    submitted: Any = object.__new__(cls)
    submitted.__dict__.update(
        rows=[_row_from_input(MeasureDataRowInput, row, context) for row in value[names["rows"]]],
        idempotency_key=value.get(names["idempotency_key"]),
        dry_run=value.get(names["dry_run"], False),
        atomic=value.get(names["atomic"], True),
    )
    return submitted


_submit_definition = _install_from_input(
    SubmitMeasureDataInput,
    _submit_input_from_input,
    {"rows", "idempotency_key", "dry_run", "atomic"},
)


def _submit_field_names(context: InputContext) -> dict[str, str]:
    """Python name -> GraphQL name of SubmitMeasureDataInput's fields (the keys of the coerced
    value), as the schema's name converter spells them."""
    converter = context.config.name_converter
    return {field.python_name: converter.from_field(field) for field in _submit_definition.fields}


@strawberry.input(
    description=(
        "The rows of a batch as parallel column lists: row i is the i-th value of every list, "
        "so every list given has one value per row. The compact form of MeasureDataRowInput "
        "(same checks, codes and idempotency); omitted optional columns are null ('' for "
        "stratum) in every row."
    )
)
class MeasureDataColumnsInput:
    team: list[str] = strawberry.field(description="Team codes.")
    measure: list[str] = strawberry.field(description="Measure codes.")
    period: list[str] = strawberry.field(
        description="Months, 'YYYY-MM' (a malformed one is its row's INVALID_PERIOD)."
    )
    numerator: list[Count | None] | None = strawberry.field(
        default=None, description="Numerators (PROPORTION, RATE, RATIO); null where none."
    )
    denominator: list[Count | None] | None = strawberry.field(
        default=None, description="Denominators (PROPORTION, RATE, RATIO); null where none."
    )
    value: list[float | None] | None = strawberry.field(
        default=None, description="Values (MEAN and COUNT measures); null where none."
    )
    stratum: list[str] | None = strawberry.field(
        default=None, description="Strata, '' for all patients; omitted: '' in every row."
    )
    annotation: list[str | None] | None = strawberry.field(
        default=None, description="Notes on the points; null where none."
    )


@strawberry.input(
    description=(
        "A batch of data points to create or update, as columns (submitMeasureDataColumns)."
    )
)
class SubmitMeasureDataColumnsInput:
    columns: MeasureDataColumnsInput = strawberry.field(
        description=(
            "The rows as parallel lists of equal length (VALIDATION otherwise); at most the "
            "server's batch limit (10,000 by default)."
        )
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "As in submitMeasureData, and shared with it: the same rows sent in either form "
            "are the same request."
        ),
    )
    dry_run: bool = strawberry.field(
        default=False, description="Run every check and return the receipt; write nothing."
    )
    atomic: bool = strawberry.field(
        default=True,
        description="True: any rejected row rejects the batch. False: valid rows are written.",
    )


@strawberry.input(description="The key of a data point to delete.")
class MeasureDataKeyInput:
    team: str = strawberry.field(description="Team code.")
    measure: str = strawberry.field(description="Measure code.")
    period: str = strawberry.field(description="The month, 'YYYY-MM'.")
    stratum: str = strawberry.field(default="", description="Stratum; '' for all patients.")


@strawberry.input(description="Data points to delete (they leave tombstones in the delta export).")
class DeleteMeasureDataInput:
    rows: list[MeasureDataKeyInput] = strawberry.field(description="The points' keys.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Your key for this call, as in submitMeasureData."
    )
    dry_run: bool = strawberry.field(
        default=False, description="Run every check and return the receipt; delete nothing."
    )
    atomic: bool = strawberry.field(
        default=True,
        description="True: any rejected row rejects the batch. False: valid rows are deleted.",
    )


@strawberry.input(description="Lock a collaborative's periods through a month.")
class LockPeriodsInput:
    collaborative: str = strawberry.field(description="Code of the collaborative.")
    through: Period = strawberry.field(
        description="Last month to lock; every earlier month is locked too."
    )


@strawberry.input(description="Unlock a collaborative's periods.")
class UnlockPeriodsInput:
    collaborative: str = strawberry.field(description="Code of the collaborative.")
    through: Period | None = strawberry.field(
        default=None,
        description=(
            "Keep the months up to this one locked and open the later ones; omitted: open "
            "every month."
        ),
    )


SubmitMeasureDataResult = Annotated[
    MeasureDataReceipt
    | ValidationError
    | ForbiddenError
    | BatchTooLargeError
    | IdempotencyMismatchError
    | InProgressError,
    strawberry.union("SubmitMeasureDataResult"),
]
DeleteMeasureDataResult = Annotated[
    MeasureDataReceipt
    | ValidationError
    | ForbiddenError
    | BatchTooLargeError
    | IdempotencyMismatchError
    | InProgressError,
    strawberry.union("DeleteMeasureDataResult"),
]
LockPeriodsResult = Annotated[
    LockPeriodsSuccess | NotFoundError | ValidationError,
    strawberry.union("LockPeriodsResult"),
]
UnlockPeriodsResult = Annotated[
    UnlockPeriodsSuccess | NotFoundError | ValidationError,
    strawberry.union("UnlockPeriodsResult"),
]

DataCallError = (
    ValidationError
    | ForbiddenError
    | BatchTooLargeError
    | IdempotencyMismatchError
    | InProgressError
)


def _options(
    info: Info, principal: Principal, *, key: str | None, dry_run: bool, atomic: bool
) -> IngestOptions:
    return IngestOptions(
        atomic=atomic,
        dry_run=dry_run,
        idempotency_key=key,
        team_ids=principal.team_ids if principal.is_team_bound else None,
        source="graphql",
        max_rows=info.context.limits.max_batch_rows,
    )


def _error(exc: DomainError) -> DataCallError:
    """The union member of an ingest failure."""
    if isinstance(exc, ingest.BatchTooLarge):
        return BatchTooLargeError.from_domain(exc)
    if isinstance(exc, ingest.IdempotencyMismatch):
        return IdempotencyMismatchError.from_domain(exc)
    if isinstance(exc, ingest.InProgress):
        return InProgressError.from_domain(exc)
    error = error_from_domain(exc)
    if isinstance(error, ValidationError):
        return error
    return ValidationError(message=error.message, code=error.code, field=error.field)


def _observed(info: Info, outcome: Receipt | DomainError) -> None:
    """Tell the edge's metrics what a data call did (rows by result, rejections by code)."""
    observer = info.context.ingest_observer
    if observer is None:
        return
    if isinstance(outcome, DomainError):
        observer.observe_ingest_error("graphql", outcome.code)
    else:
        observer.observe_receipt("graphql", outcome)


def _unbound(principal: Principal) -> ForbiddenError | None:
    """A team-bound client without any team may not write at all."""
    if principal.is_team_bound and not principal.team_ids:
        return ForbiddenError(
            message="this client is bound to no team, so it may not write data", code="FORBIDDEN"
        )
    return None


async def _submit(
    info: Info,
    rows: Sequence[SubmittedRow] | RowColumns,
    *,
    key: str | None,
    dry_run: bool,
    atomic: bool,
) -> SubmitMeasureDataResult:
    """Both forms of submitMeasureData: the rows (or their columns) through :mod:`db.ingest`."""
    principal = require_principal(info)
    forbidden = _unbound(principal)
    if forbidden is not None:
        return forbidden
    options = _options(info, principal, key=key, dry_run=dry_run, atomic=atomic)
    try:
        if isinstance(rows, RowColumns):
            rows = rows.rows(options.max_rows)
        async with info.context.db.begin() as session:
            receipt = await ingest.submit_measure_data(session, info.context.actor(), rows, options)
    except DomainError as exc:
        _observed(info, exc)
        return _error(exc)
    _observed(info, receipt)
    return MeasureDataReceipt.from_receipt(receipt)


@strawberry.type
class DataMutations:
    @strawberry.mutation(
        description=(
            "Create or update data points in one transaction and answer a receipt that counts "
            "created, updated, unchanged and rejected rows and explains every rejection."
        ),
        permission_classes=[HasScope("data:write")],
    )
    async def submit_measure_data(
        self, info: Info, input: SubmitMeasureDataInput
    ) -> SubmitMeasureDataResult:
        return await _submit(  # the row input objects go to ingest as they are
            info, input.rows, key=input.idempotency_key, dry_run=input.dry_run, atomic=input.atomic
        )

    @strawberry.mutation(
        description=(
            "submitMeasureData with the rows as parallel column lists (the compact form: a "
            "client sends one list per field instead of one object per row). Same checks, "
            "per-row codes (index = position in the lists), receipt and idempotency keys."
        ),
        permission_classes=[HasScope("data:write")],
    )
    async def submit_measure_data_columns(
        self, info: Info, input: SubmitMeasureDataColumnsInput
    ) -> SubmitMeasureDataResult:
        columns = input.columns
        return await _submit(
            info,
            RowColumns(
                team=columns.team,
                measure=columns.measure,
                period=columns.period,
                numerator=columns.numerator,
                denominator=columns.denominator,
                value=columns.value,
                stratum=columns.stratum,
                annotation=columns.annotation,
            ),
            key=input.idempotency_key,
            dry_run=input.dry_run,
            atomic=input.atomic,
        )

    @strawberry.mutation(
        description=(
            "Delete data points by key in one transaction; each leaves a tombstone in the delta "
            "export and its values in the history. Answers a receipt (`deleted` counts them)."
        ),
        permission_classes=[HasScope("data:write")],
    )
    async def delete_measure_data(
        self, info: Info, input: DeleteMeasureDataInput
    ) -> DeleteMeasureDataResult:
        principal = require_principal(info)
        forbidden = _unbound(principal)
        if forbidden is not None:
            return forbidden
        rows = [
            DeleteRowInput(
                team=row.team, measure=row.measure, period=row.period, stratum=row.stratum
            )
            for row in input.rows
        ]
        options = _options(
            info, principal, key=input.idempotency_key, dry_run=input.dry_run, atomic=input.atomic
        )
        try:
            async with info.context.db.begin() as session:
                receipt = await ingest.delete_measure_data(
                    session, info.context.actor(), rows, options
                )
        except DomainError as exc:
            _observed(info, exc)
            return _error(exc)
        _observed(info, receipt)
        return MeasureDataReceipt.from_receipt(receipt)

    @strawberry.mutation(
        description=(
            "Lock a collaborative's periods through a month (the approval step): submissions "
            "and deletions for locked months are rejected with PERIOD_LOCKED. A lock only "
            "moves forward here; unlockPeriods moves it back."
        ),
        permission_classes=[HasScope("admin")],
    )
    async def lock_periods(self, info: Info, input: LockPeriodsInput) -> LockPeriodsResult:
        try:
            check_text(input.collaborative, "collaborative", max_length=64, required=True)
            async with info.context.db.begin() as session:
                outcome = await lock_periods_row(
                    session,
                    info.context.actor(),
                    collaborative_code=input.collaborative,
                    through=input.through,
                )
        except DomainError as exc:
            error = error_from_domain(exc)
            assert not isinstance(error, ConflictError), "locking has no unique key to hit"
            return error
        assert outcome.lock is not None
        return LockPeriodsSuccess(
            collaborative=Collaborative.from_model(outcome.collaborative),
            lock=PeriodLock.from_model(outcome.lock),
            changed=outcome.changed,
        )

    @strawberry.mutation(
        description="Unlock a collaborative's periods, all of them or those after a month.",
        permission_classes=[HasScope("admin")],
    )
    async def unlock_periods(self, info: Info, input: UnlockPeriodsInput) -> UnlockPeriodsResult:
        try:
            check_text(input.collaborative, "collaborative", max_length=64, required=True)
            async with info.context.db.begin() as session:
                outcome = await unlock_periods_row(
                    session,
                    info.context.actor(),
                    collaborative_code=input.collaborative,
                    through=input.through,
                )
        except DomainError as exc:
            error = error_from_domain(exc)
            assert not isinstance(error, ConflictError), "unlocking has no unique key to hit"
            return error
        return UnlockPeriodsSuccess(
            collaborative=Collaborative.from_model(outcome.collaborative),
            lock=PeriodLock.from_model(outcome.lock) if outcome.lock is not None else None,
            changed=outcome.changed,
        )
