"""GraphQL projections of measure data exchange: receipts, conflicts, exported data points,
period locks, and the error types of the data mutations.

Receipts and exported points are plain values (no per-field resolvers): a page of points gets
its teams and measures from the request's DataLoaders before it is projected (one statement
each per page, one object per distinct team and measure), so that a whole page is completed in
one loop (schema/fast_lists.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

import strawberry

from db import ingest
from db.enums import DataPointStatus
from db.models import PeriodLock as PeriodLockModel
from db.queries.data import ExportedPoint, Operation, Receipt, ReceiptStatus
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.errors import Error
from schema.ids import encode_global_id
from schema.measures.types import Measure
from schema.node import Node
from schema.scalars import Count, Period
from schema.teams.types import Team

MeasureDataReceiptStatus = strawberry.enum(
    ReceiptStatus,
    name="MeasureDataReceiptStatus",
    description=(
        "Outcome of a data call: COMPLETED (every row accepted), PARTIAL (atomic: false; the "
        "valid rows were written), REJECTED (nothing written), DRY_RUN (checked only)."
    ),
)
MeasureDataOperation = strawberry.enum(
    Operation, name="MeasureDataOperation", description="What a data call did."
)


@strawberry.type(description="Why one input row was rejected.")
class MeasureDataConflict:
    index: int = strawberry.field(description="Position of the row in the input (from 0).")
    code: str = strawberry.field(
        description="What is wrong, for programs (UNKNOWN_TEAM, INVALID_COUNT, PERIOD_LOCKED...)."
    )
    field: str = strawberry.field(description="The input field at fault (team, period...).")
    message: str = strawberry.field(description="What is wrong, for people.")


@strawberry.type(
    description=(
        "What a submitMeasureData or deleteMeasureData call did (or, in a dry run, would do). "
        "Every rejected row is explained in `conflicts`."
    )
)
class MeasureDataReceipt:
    receipt_id: strawberry.ID = strawberry.field(
        description=(
            "Id of the receipt; `receipt(id:)` reads it again and data points name it as their "
            "provenance. Dry runs are not stored."
        )
    )
    status: ReceiptStatus = strawberry.field(description="Outcome of the call.")
    operation: Operation = strawberry.field(description="Submission or deletion.")
    rows: int = strawberry.field(description="Rows in the input.")
    created: int = strawberry.field(
        description="Points created (including re-submitted deleted ones)."
    )
    updated: int = strawberry.field(description="Points whose values changed.")
    unchanged: int = strawberry.field(
        description=(
            "Rows equal to the stored point (same numerator, denominator, value, annotation), "
            "not written; for deletions, keys without a point."
        )
    )
    deleted: int = strawberry.field(description="Points deleted (deleteMeasureData).")
    rejected: int = strawberry.field(description="Rows rejected (each has conflicts).")
    conflicts: list[MeasureDataConflict] = strawberry.field(
        description="Why rows were rejected, by input position."
    )
    atomic: bool = strawberry.field(description="Whether one rejected row rejected all.")
    replayed: bool = strawberry.field(
        description=(
            "True when this is the stored receipt of an earlier call with the same idempotency "
            "key and the same rows (nothing was written this time)."
        )
    )
    idempotency_key: str | None = strawberry.field(description="The call's idempotency key.")
    client_id: str = strawberry.field(description="The client that made the call.")
    source: str = strawberry.field(description="Where the data came from (graphql, fhir...).")
    submitted_at: datetime = strawberry.field(description="When the call ran.")

    @classmethod
    def from_receipt(cls, receipt: Receipt) -> MeasureDataReceipt:
        return cls(
            receipt_id=strawberry.ID(str(receipt.id)),
            status=receipt.status,
            operation=receipt.operation,
            rows=receipt.row_count,
            created=receipt.created,
            updated=receipt.updated,
            unchanged=receipt.unchanged,
            deleted=receipt.deleted,
            rejected=receipt.rejected,
            conflicts=[
                MeasureDataConflict(index=c.index, code=c.code, field=c.field, message=c.message)
                for c in receipt.conflicts
            ],
            atomic=receipt.atomic,
            replayed=receipt.replayed,
            idempotency_key=receipt.idempotency_key,
            client_id=receipt.client_id,
            source=receipt.source,
            submitted_at=receipt.created_at,
        )


@strawberry.type(description="The batch holds more rows than allowed; nothing was checked.")
class BatchTooLargeError(Error):
    max_rows: int = strawberry.field(description="Most rows one call may hold.")
    rows: int = strawberry.field(description="Rows in this call.")

    @classmethod
    def from_domain(cls, exc: ingest.BatchTooLarge) -> BatchTooLargeError:
        return cls(message=exc.message, code=exc.code, max_rows=exc.max_rows, rows=exc.rows)


@strawberry.type(
    description="The idempotency key was used before with a different request; use a new key."
)
class IdempotencyMismatchError(Error):
    idempotency_key: str | None = strawberry.field(description="The key.")

    @classmethod
    def from_domain(cls, exc: ingest.IdempotencyMismatch) -> IdempotencyMismatchError:
        return cls(message=exc.message, code=exc.code, idempotency_key=exc.key)


@strawberry.type(
    description=(
        "A call with the same idempotency key is still running; retry after a moment "
        "(the retry returns its receipt)."
    )
)
class InProgressError(Error):
    idempotency_key: str | None = strawberry.field(description="The key.")
    retry_after_seconds: int = strawberry.field(description="Suggested wait before retrying.")

    @classmethod
    def from_domain(cls, exc: ingest.InProgress) -> InProgressError:
        return cls(
            message=exc.message,
            code=exc.code,
            idempotency_key=exc.key,
            retry_after_seconds=exc.retry_after,
        )


@strawberry.type(
    description=(
        "A data point as the delta export shows it: a live point, or the tombstone of a deleted "
        "one (`deleted: true`, values null)."
    )
)
class DataPoint(Node):
    measure_version: int = strawberry.field(
        description="The definition version the point was reported under."
    )
    period: Period = strawberry.field(description="The month, 'YYYY-MM'.")
    stratum: str = strawberry.field(description="Stratum; '' for all patients.")
    numerator: Count | None = strawberry.field(description="Numerator count, when reported.")
    denominator: Count | None = strawberry.field(description="Denominator count, when reported.")
    value: float | None = strawberry.field(
        description=(
            "The reported value (MEAN and COUNT measures); null for proportions, rates and "
            "ratios, whose value is numerator / denominator x the definition's multiplier."
        )
    )
    annotation: str = strawberry.field(description="Note on the point; '' when none.")
    status: DataPointStatus | None = strawberry.field(
        description=(
            "Review state; LOCKED while the period is locked for the team's collaborative; "
            "null for deleted points."
        )
    )
    deleted: bool = strawberry.field(description="True for the tombstone of a deleted point.")
    updated_at: datetime = strawberry.field(
        description="When the point was last written or deleted (the export's order)."
    )
    updated_by: str = strawberry.field(description="Client that last wrote or deleted it.")
    receipt_id: strawberry.ID | None = strawberry.field(
        description="Receipt of the call that last wrote or deleted it (null for loaded data)."
    )
    team: Team = strawberry.field(description="The team that reported the point.")
    measure: Measure = strawberry.field(description="The measure, at its current definition.")
    team_id: strawberry.Private[uuid.UUID]
    measure_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_exported(cls, point: ExportedPoint, team: Team, measure: Measure) -> DataPoint:
        return cls(
            id=strawberry.ID(encode_global_id("DataPoint", point.id)),
            measure_version=point.measure_version,
            period=Period(point.period),
            stratum=point.stratum,
            numerator=None if point.numerator is None else Count(point.numerator),
            denominator=None if point.denominator is None else Count(point.denominator),
            value=point.value,
            annotation=point.annotation,
            status=point.status,
            deleted=point.deleted,
            updated_at=point.updated_at,
            updated_by=point.updated_by,
            receipt_id=None if point.receipt_id is None else strawberry.ID(str(point.receipt_id)),
            team=team,
            measure=measure,
            team_id=point.team_id,
            measure_id=point.measure_id,
        )


async def exported_data_points(info: Info, points: Sequence[ExportedPoint]) -> list[DataPoint]:
    """``points`` as DataPoint objects with their teams and measures, loaded for all of them at
    once (a page of the export names a few teams and measures many times over)."""
    loaders = info.context.loaders
    team_ids = list(dict.fromkeys(point.team_id for point in points))
    measure_ids = list(dict.fromkeys(point.measure_id for point in points))
    team_rows, measure_rows = await asyncio.gather(
        loaders.team_by_id.load_many(team_ids), loaders.measure_by_id.load_many(measure_ids)
    )
    teams: dict[uuid.UUID, Team] = {}
    for team_id, team_row in zip(team_ids, team_rows, strict=True):
        assert team_row is not None, "points reference teams of the same sponsor"
        teams[team_id] = Team.from_model(team_row)
    measures: dict[uuid.UUID, Measure] = {}
    for measure_id, measure_row in zip(measure_ids, measure_rows, strict=True):
        assert measure_row is not None, "points reference measures of the same sponsor"
        measures[measure_id] = Measure.from_model(measure_row)
    return [
        DataPoint.from_exported(point, teams[point.team_id], measures[point.measure_id])
        for point in points
    ]


@strawberry.type(description="A collaborative's locked periods: every month through `through`.")
class PeriodLock:
    through: Period = strawberry.field(description="Last locked month; earlier ones are locked.")
    locked_by: str = strawberry.field(description="Client that set the lock.")
    locked_at: datetime = strawberry.field(description="When the lock was set or moved.")

    @classmethod
    def from_model(cls, row: PeriodLockModel) -> PeriodLock:
        return cls(
            through=Period(row.through_period), locked_by=row.locked_by, locked_at=row.locked_at
        )


@strawberry.type(description="The collaborative's periods are locked through the month given.")
class LockPeriodsSuccess:
    collaborative: Collaborative = strawberry.field(description="The collaborative.")
    lock: PeriodLock = strawberry.field(description="The lock now.")
    changed: bool = strawberry.field(
        description="False when the periods were already locked that far (nothing changed)."
    )


@strawberry.type(description="The collaborative's periods were unlocked.")
class UnlockPeriodsSuccess:
    collaborative: Collaborative = strawberry.field(description="The collaborative.")
    lock: PeriodLock | None = strawberry.field(
        description="What stays locked; null when no period is locked."
    )
    changed: bool = strawberry.field(description="False when nothing changed.")
