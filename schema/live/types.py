"""GraphQL projections of live events: committed measure data and newly detected chart signals.

Events are plain values built once per event and subscriber; only ``collaborative`` and
``receipt`` load anything, and only when the subscription document asks for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import strawberry

from analytics.charts import Side, SignalRule, Variation
from db.events import ChangeKind, DataChange, MeasureDataEvent
from db.queries.data import Operation, ReceiptStatus, get_receipt
from db.queries.live import DetectedSignal, SignalChart
from schema.charts import types as _charts  # noqa: F401  (registers SignalRule, SignalSide...)
from schema.collaboratives.types import Collaborative
from schema.context import Info
from schema.data.types import MeasureDataReceipt
from schema.principal import Principal
from schema.scalars import Period

strawberry.enum(
    ChangeKind,
    name="MeasureDataChangeKind",
    description="What a call did to a data point: CREATED, UPDATED or DELETED.",
)
strawberry.enum(
    SignalChart,
    description="The chart of a team's series a signal was found on.",
)


@strawberry.type(description="One data point a committed call created, updated or deleted.")
class MeasureDataChange:
    team: str = strawberry.field(description="Team code.")
    measure: str = strawberry.field(description="Measure code.")
    period: Period = strawberry.field(description="The month, 'YYYY-MM'.")
    stratum: str = strawberry.field(description="Stratum; '' for all patients.")
    change: ChangeKind = strawberry.field(description="What happened to the point.")

    @classmethod
    def from_change(cls, change: DataChange) -> MeasureDataChange:
        return cls(
            team=change.team_code,
            measure=change.measure_code,
            period=Period(change.period),
            stratum=change.stratum,
            change=change.kind,
        )


async def _collaborative(info: Info, collaborative_id: uuid.UUID) -> Collaborative | None:
    row = await info.context.loaders.collaborative_by_id.load(collaborative_id)
    return Collaborative.from_model(row) if row is not None else None


@strawberry.type(
    description=(
        "Measure data of a collaborative, committed: the call's receipt id and outcome and the "
        "data points it changed in this collaborative (for EHR integrations: of their own teams "
        "only). Sent after the transaction commits, never before."
    )
)
class MeasureDataSubmittedEvent:
    receipt_id: strawberry.ID = strawberry.field(
        description="Id of the call's receipt (`receipt(id:)` reads it)."
    )
    operation: Operation = strawberry.field(description="Submission or deletion.")
    status: ReceiptStatus = strawberry.field(
        description="COMPLETED, or PARTIAL for an `atomic: false` call with rejected rows."
    )
    client_id: str | None = strawberry.field(
        description=(
            "The client that made the call; null for EHR integrations when another client made it."
        )
    )
    submitted_at: datetime = strawberry.field(description="When the call ran.")
    changes: list[MeasureDataChange] = strawberry.field(
        description="The changed points of this collaborative that the subscriber may see."
    )
    created: int = strawberry.field(description="Points in `changes` that were created.")
    updated: int = strawberry.field(description="Points in `changes` whose values changed.")
    deleted: int = strawberry.field(description="Points in `changes` that were deleted.")
    collaborative_id: strawberry.Private[uuid.UUID]
    sponsor_id: strawberry.Private[uuid.UUID]
    receipt_row_id: strawberry.Private[uuid.UUID]
    receipt_visible: strawberry.Private[bool]

    @classmethod
    def build(
        cls,
        event: MeasureDataEvent,
        collaborative_id: uuid.UUID,
        changes: Sequence[DataChange],
        principal: Principal,
    ) -> MeasureDataSubmittedEvent:
        """The event as ``principal`` sees it (``changes`` already filtered for it)."""
        own = event.client_id == principal.client_id
        visible = own or not principal.is_team_bound
        kinds = [change.kind for change in changes]
        return cls(
            receipt_id=strawberry.ID(str(event.receipt_id)),
            operation=Operation(event.operation),
            status=ReceiptStatus(event.status),
            client_id=event.client_id if visible else None,
            submitted_at=event.at,
            changes=[MeasureDataChange.from_change(change) for change in changes],
            created=kinds.count(ChangeKind.CREATED),
            updated=kinds.count(ChangeKind.UPDATED),
            deleted=kinds.count(ChangeKind.DELETED),
            collaborative_id=collaborative_id,
            sponsor_id=event.sponsor_id,
            receipt_row_id=event.receipt_id,
            receipt_visible=visible,
        )

    @strawberry.field(description="The collaborative subscribed to.")
    async def collaborative(self, info: Info) -> Collaborative | None:
        return await _collaborative(info, self.collaborative_id)

    @strawberry.field(
        description=(
            "The whole receipt (every count, conflicts); null for EHR integrations unless they "
            "made the call, as `receipt(id:)` answers."
        )
    )
    async def receipt(self, info: Info) -> MeasureDataReceipt | None:
        if not self.receipt_visible:
            return None
        async with info.context.db() as session:
            found = await get_receipt(session, self.sponsor_id, self.receipt_row_id)
        return MeasureDataReceipt.from_receipt(found) if found is not None else None


@strawberry.type(
    description=(
        "A run- or control-chart signal that appeared on a team's series when data was "
        "committed (it was not there before the call), judged against the measure's improvement "
        "direction. Charts use the default rules (Anhøj) and gapless months, as `runChart` and "
        "`controlChart` do without arguments."
    )
)
class SignalDetectedEvent:
    receipt_id: strawberry.ID = strawberry.field(description="Receipt of the call that did it.")
    team: str = strawberry.field(description="Team code.")
    measure: str = strawberry.field(description="Measure code.")
    chart: SignalChart = strawberry.field(description="Run chart or control chart.")
    chart_type: str | None = strawberry.field(
        description="The control chart's type (P, U, C or I); null for a run chart."
    )
    rules: str = strawberry.field(description="The rule set that found it (ANHOEJ).")
    rule: SignalRule = strawberry.field(description="The rule that fired.")
    side: Side | None = strawberry.field(
        description="Above (HIGH) or below (LOW) the centre line; null for rules without a side."
    )
    variation: Variation | None = strawberry.field(
        description=(
            "IMPROVEMENT when the signal points the way the measure's improvement direction says "
            "is better, CONCERN when the other way; null for rules without a side."
        )
    )
    periods: list[Period] = strawberry.field(description="The periods that make the signal.")
    detected_at: datetime = strawberry.field(description="When the data was committed.")
    collaborative_id: strawberry.Private[uuid.UUID]

    @classmethod
    def build(cls, signal: DetectedSignal, at: datetime) -> SignalDetectedEvent:
        return cls(
            receipt_id=strawberry.ID(str(signal.receipt_id)),
            team=signal.team_code,
            measure=signal.measure_code,
            chart=signal.chart,
            chart_type=signal.chart_type,
            rules=signal.rules,
            rule=signal.rule,
            side=signal.side,
            variation=signal.variation,
            periods=[Period(period) for period in signal.periods],
            detected_at=at,
            collaborative_id=signal.collaborative_id,
        )

    @strawberry.field(description="The collaborative of the team.")
    async def collaborative(self, info: Info) -> Collaborative | None:
        return await _collaborative(info, self.collaborative_id)
