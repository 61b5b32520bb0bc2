"""GraphQL projections of aggregates (``AggregateSeries``) and collaborative scorecards.

The database sums each period (``db.queries.aggregates``); this module combines the per-
collaborative rows of a period into one point, applies the reader's suppression
(:mod:`schema.aggregates.access`) and charts the result through :class:`ChartedSeries`.

What a point's values mean, by the measure's scoring:

* PROPORTION, RATE, RATIO: ``numerator`` and ``denominator`` are Σ over the teams that reported
  both; ``rate`` is the pooled rate Σ numerators / Σ denominators x the multiplier of the
  measure's current definition (not the mean of team rates);
* MEAN: no counts; ``rate`` is the mean of the team means (each team weighs the same: the data
  carry no patient counts to weigh them by);
* COUNT: no counts; ``rate`` is the total count of the teams reporting.

``meanOfTeamRates`` and ``medianOfTeamRates`` are over the teams' own values (as their series show
them); ``teamsMeetingGoal`` counts the teams whose value reaches the collaborative's goal line in
the measure's improvement direction, and is given only when the aggregate is of exactly one
collaborative (a goal line belongs to a collaborative's measure set).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import strawberry

from analytics import suppression as analytics_suppression
from analytics.charts import RunChartRules, Variation
from analytics.runs import run_chart
from analytics.suppression import Cell, SuppressionPolicy, SuppressionReason
from db.enums import ImprovementDirection, Scoring
from db.queries.aggregates import PartTotals, ScorecardKey, TeamValue
from db.queries.measures import MeasureSetEntry, VersionedMeasure
from schema.aggregates.access import AggregateAccess, disclose_total
from schema.charts.types import (
    RATIO_SCORINGS,
    ChartedSeries,
    ChartInput,
    ChartPointInput,
    ChartSignal,
    ChartUnavailableReason,
    build_run_chart,
    chart_input,
)
from schema.context import Info
from schema.measures.types import Measure
from schema.scalars import Count, Period
from schema.sharing.types import PooledDefinition

strawberry.enum(
    analytics_suppression.SuppressionReason,
    description=(
        "Why an aggregate value is hidden: SMALL_CELL (a count from 1 to cellMin - 1, or a value "
        "derived from one), TOO_FEW_TEAMS (fewer than minTeams teams), COMPLEMENTARY (it would "
        "let a hidden value be recomputed from values shown elsewhere)."
    ),
)


@strawberry.input(
    description=(
        "Which teams an aggregate covers; every list given must match (an empty list matches "
        "nothing). Omitted: every team of the caller's sponsor that has data of the measure."
    )
)
class AggregateScope:
    collaboratives: list[str] | None = strawberry.field(
        default=None, description="Collaborative codes: teams enrolled in one of them."
    )
    sponsors: list[str] | None = strawberry.field(
        default=None,
        description=(
            "Sponsor slugs whose data to pool (default: the measure's sponsor). Another sponsor "
            "contributes only under a sharing agreement in force with the caller's sponsor, "
            "only the collaboratives it names, and only an equivalent measure (linked by both "
            "sides or sharing a FHIR canonical); see `pooledDefinitions`."
        ),
    )
    teams: list[str] | None = strawberry.field(
        default=None,
        description="Team codes (exact readers only: suppressed readers aggregate collaboratives).",
    )


@strawberry.type(description="The small-cell suppression a reader's aggregates go through.")
class SuppressionPolicyInfo:
    cell_min: int = strawberry.field(
        description="Counts from 1 to cellMin - 1 are hidden, with the values derived from them."
    )
    min_teams: int = strawberry.field(
        description="A point made from fewer contributing teams is hidden entirely."
    )

    @classmethod
    def from_policy(cls, policy: SuppressionPolicy | None) -> SuppressionPolicyInfo | None:
        if policy is None:
            return None
        return cls(cell_min=policy.cell_min, min_teams=policy.min_teams)


@strawberry.type(description="One period of an aggregate across teams.")
class AggregatePoint:
    period: Period = strawberry.field(description="The month.")
    teams_reporting: int = strawberry.field(description="Teams with a value in the period.")
    numerator: Count | None = strawberry.field(
        description="Σ numerators (measures with counts); null when hidden or not applicable."
    )
    denominator: Count | None = strawberry.field(
        description="Σ denominators (measures with counts); null when hidden or not applicable."
    )
    rate: float | None = strawberry.field(
        description=(
            "The aggregate value in the measure's unit: pooled rate Σnum / Σden x multiplier; "
            "mean of team means for MEAN, total count for COUNT measures. Null when hidden."
        )
    )
    mean_of_team_rates: float | None = strawberry.field(
        description="Unweighted mean of the teams' values."
    )
    median_of_team_rates: float | None = strawberry.field(
        description="Median of the teams' values (mean of the middle two for an even count)."
    )
    teams_meeting_goal: int | None = strawberry.field(
        description=(
            "Teams whose value reaches the collaborative's goal line in the improvement "
            "direction; null unless the scope is one collaborative with a goal, or when hidden."
        )
    )
    suppressed: bool = strawberry.field(description="Whether any value of the point is hidden.")
    suppression_reason: SuppressionReason | None = strawberry.field(
        description="Why values are hidden; null when nothing is."
    )


@dataclass(frozen=True)
class MeasureFacts:
    """What aggregation needs to know about a measure."""

    measure_id: uuid.UUID
    scoring: Scoring
    multiplier: float
    direction: ImprovementDirection

    @classmethod
    def of(cls, found: VersionedMeasure) -> MeasureFacts:
        definition = found.definition
        return cls(
            measure_id=found.measure.id,
            scoring=definition.scoring,
            multiplier=definition.multiplier,
            direction=definition.improvement_direction,
        )


def _sum_optional(values: Iterable[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _sum_floats(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _cell(facts: MeasureFacts, part: PartTotals) -> Cell:
    """A period's (or a part's) suppression cell: counts, the total count, or just teams."""
    if facts.scoring in RATIO_SCORINGS:
        return Cell(part.numerator, part.denominator, part.teams_reporting)
    if facts.scoring is Scoring.COUNT:
        return Cell(part.value_sum, None, part.teams_reporting)
    return Cell(None, None, part.teams_reporting)


def _combine(period: str, parts: Sequence[PartTotals]) -> PartTotals:
    """The parts of one period added up (the collaborative id of the first stands for all)."""
    return PartTotals(
        measure_id=parts[0].measure_id,
        period=period,
        collaborative_id=parts[0].collaborative_id,
        teams_reporting=sum(part.teams_reporting for part in parts),
        numerator=_sum_optional(part.numerator for part in parts),
        denominator=_sum_optional(part.denominator for part in parts),
        value_sum=_sum_floats(part.value_sum for part in parts),
        teams_with_goal=sum(part.teams_with_goal for part in parts),
        teams_meeting_goal=sum(part.teams_meeting_goal for part in parts),
    )


def _rate(facts: MeasureFacts, total: PartTotals) -> float | None:
    """The aggregate value of a period (see the module docstring)."""
    if facts.scoring in RATIO_SCORINGS:
        if total.numerator is None or not total.denominator:
            return None
        return total.numerator / total.denominator * facts.multiplier
    if facts.scoring is Scoring.COUNT:
        return total.value_sum
    return _mean(total)


def _mean(total: PartTotals) -> float | None:
    if total.value_sum is None or not total.teams_reporting:
        return None
    return total.value_sum / total.teams_reporting


def aggregate_points(
    facts: MeasureFacts,
    parts: Sequence[PartTotals],
    medians: dict[tuple[uuid.UUID, str], float],
    *,
    access: AggregateAccess,
    goal_applies: bool,
) -> list[AggregatePoint]:
    """One point per period with data, in time order, as the reader may see it."""
    by_period: defaultdict[str, list[PartTotals]] = defaultdict(list)
    for part in parts:
        by_period[part.period].append(part)
    points: list[AggregatePoint] = []
    for period in sorted(by_period):
        period_parts = by_period[period]
        total = _combine(period, period_parts)
        meeting = total.teams_meeting_goal if goal_applies and total.teams_with_goal else None
        # counts are shown for measures scored by them only: a MEAN point may carry counts
        # (patients seen...) that its suppression cell does not cover
        counts = facts.scoring in RATIO_SCORINGS
        numerator = total.numerator if counts else None
        denominator = total.denominator if counts else None
        point = AggregatePoint(
            period=Period(period),
            teams_reporting=total.teams_reporting,
            numerator=None if numerator is None else Count(numerator),
            denominator=None if denominator is None else Count(denominator),
            rate=_rate(facts, total),
            mean_of_team_rates=_mean(total),
            median_of_team_rates=medians.get((facts.measure_id, period)),
            teams_meeting_goal=meeting,
            suppressed=False,
            suppression_reason=None,
        )
        if access.policy is not None:
            point = _suppressed(point, facts, period_parts, total, access.policy)
        points.append(point)
    return points


def _suppressed(
    point: AggregatePoint,
    facts: MeasureFacts,
    parts: Sequence[PartTotals],
    total: PartTotals,
    policy: SuppressionPolicy,
) -> AggregatePoint:
    """``point`` with what ``policy`` hides set to null: every value derived from a hidden count
    (rate, mean, median, teams meeting goal) goes with it."""
    seen = disclose_total(
        [_cell(facts, part) for part in parts],
        _cell(facts, total),
        policy,
        multiplier=facts.multiplier,
    )
    if seen.reason is None:
        return point
    return AggregatePoint(
        period=point.period,
        teams_reporting=point.teams_reporting,
        numerator=None if seen.numerator_hidden else point.numerator,
        denominator=None if seen.denominator_hidden else point.denominator,
        rate=None,
        mean_of_team_rates=None,
        median_of_team_rates=None,
        teams_meeting_goal=None,
        suppressed=True,
        suppression_reason=seen.reason,
    )


@strawberry.type(
    description=(
        "A measure aggregated across teams, one point per month with data (oldest first). Its "
        "charts chart the points' `rate` (P/U charts: Σ numerators and Σ denominators) over "
        "gapless months; when the reader's suppression hides any point they are not computable."
    )
)
class AggregateSeries(ChartedSeries):
    measure: Measure = strawberry.field(description="The measure, at its current definition.")
    stratum: str = strawberry.field(description="The stratum aggregated; '' for all patients.")
    goal: float | None = strawberry.field(
        description=(
            "The goal line of the collaborative when the scope is exactly one collaborative "
            "(in the measure's displayed unit); null otherwise."
        )
    )
    exact: bool = strawberry.field(
        description="True when the reader sees exact values; false when suppression applies."
    )
    suppression_policy: SuppressionPolicyInfo | None = strawberry.field(
        description="The suppression applied to this reader; null for exact readers."
    )
    points: list[AggregatePoint] = strawberry.field(description="One point per month with data.")
    pooled_definitions: list[PooledDefinition] = strawberry.field(
        default_factory=list,
        description=(
            "The measure definitions pooled, one per sponsor whose data the points include "
            "(the caller's own, and those shared with it by an agreement in force)."
        ),
    )
    facts: strawberry.Private[MeasureFacts]

    async def chart_input(self, info: Info) -> ChartInput:
        """The points' rates (and counts) over gapless months; hidden ones make it unavailable."""
        hidden = any(point.suppressed for point in self.points)
        return chart_input(
            [
                ChartPointInput(point.period, point.rate, point.numerator, point.denominator)
                for point in self.points
            ],
            scoring=self.facts.scoring,
            multiplier=self.facts.multiplier,
            direction=self.facts.direction.value,
            unavailable=ChartUnavailableReason.SUPPRESSED if hidden else None,
        )


# --- scorecards ------------------------------------------------------------------------------


@strawberry.type(description="One measure of a collaborative's scorecard, in one period.")
class ScorecardMeasure:
    measure: Measure = strawberry.field(description="The measure, at its current definition.")
    required: bool = strawberry.field(description="Mandatory for every team (else optional).")
    goal: float | None = strawberry.field(
        description="The collaborative's goal line in the measure's displayed unit."
    )
    teams_reporting: int = strawberry.field(description="Teams with a value in the period.")
    numerator: Count | None = strawberry.field(description="Σ numerators in the period.")
    denominator: Count | None = strawberry.field(description="Σ denominators in the period.")
    rate: float | None = strawberry.field(
        description=(
            "The collaborative's value in the period: pooled rate (Σnum / Σden x multiplier), "
            "mean of team means (MEAN) or total count (COUNT)."
        )
    )
    teams_meeting_goal: int | None = strawberry.field(
        description="Teams whose value reaches the goal in the period; null without a goal."
    )
    teams_with_improvement_signal: int | None = strawberry.field(
        description=(
            "Teams whose own run chart (their series up to the period, the rules asked for) "
            "shows a signal in the improvement direction."
        )
    )
    teams_with_concern_signal: int | None = strawberry.field(
        description="Teams whose own run chart shows a signal against the improvement direction."
    )
    signals: list[ChartSignal] = strawberry.field(
        description=(
            "Signals of the run chart of the collaborative's own series (its `rate` per month, "
            "up to the period); empty when not computable."
        )
    )
    signals_computable: bool = strawberry.field(
        description="False when the collaborative's series has no data or has hidden values."
    )
    suppressed: bool = strawberry.field(description="Whether any value is hidden.")
    suppression_reason: SuppressionReason | None = strawberry.field(
        description="Why values are hidden; null when nothing is."
    )


@strawberry.type(
    description=(
        "Where a collaborative stands in one period: per measure of its set, teams reporting, "
        "pooled rate, goal, teams meeting it, teams whose own series shows an improvement "
        "signal, and the signals of the collaborative's series."
    )
)
class Scorecard:
    period: Period | None = strawberry.field(
        description="The period (the latest with data when not asked); null without data."
    )
    rules: RunChartRules = strawberry.field(description="The run-chart rules used for signals.")
    exact: bool = strawberry.field(
        description="True when the reader sees exact values; false when suppression applies."
    )
    measures: list[ScorecardMeasure] = strawberry.field(
        description="One entry per measure of the set, in the set's order."
    )


def _team_signal_counts(
    values: Sequence[TeamValue], facts: MeasureFacts, rules: RunChartRules
) -> tuple[int, int]:
    """How many teams' own run charts show an IMPROVEMENT signal, and how many a CONCERN one."""
    by_team: defaultdict[uuid.UUID, list[ChartPointInput]] = defaultdict(list)
    for value in values:
        by_team[value.team_id].append(ChartPointInput(value.period, value.value))
    improving = concerning = 0
    for points in by_team.values():
        series = chart_input(
            points,
            scoring=facts.scoring,
            multiplier=facts.multiplier,
            direction=facts.direction.value,
        )
        chart = run_chart(series.values, rules=rules, improvement_direction=series.direction)
        variations = {signal.variation for signal in chart.signals}
        improving += Variation.IMPROVEMENT in variations
        concerning += Variation.CONCERN in variations
    return improving, concerning


def scorecard(
    entries: Sequence[MeasureSetEntry],
    parts: Sequence[PartTotals],
    values: Sequence[TeamValue],
    *,
    period: str | None,
    rules: RunChartRules,
    access: AggregateAccess,
) -> Scorecard:
    """A collaborative's scorecard from its measure set, its per-period totals (one part per
    period: one collaborative) and its teams' values, all already cut at ``period``."""
    period = period or max((part.period for part in parts), default=None)
    parts_by_measure: defaultdict[uuid.UUID, list[PartTotals]] = defaultdict(list)
    for part in parts:
        parts_by_measure[part.measure_id].append(part)
    values_by_measure: defaultdict[uuid.UUID, list[TeamValue]] = defaultdict(list)
    for value in values:
        values_by_measure[value.measure_id].append(value)
    measures: list[ScorecardMeasure] = []
    for entry in entries:
        facts = MeasureFacts.of(VersionedMeasure(entry.measure, entry.definition))
        goal = entry.membership.goal
        points = aggregate_points(
            facts, parts_by_measure[facts.measure_id], {}, access=access, goal_applies=True
        )
        current = next((point for point in points if point.period == period), None)
        hidden = any(point.suppressed for point in points)
        series = chart_input(
            [ChartPointInput(point.period, point.rate) for point in points],
            scoring=facts.scoring,
            multiplier=facts.multiplier,
            direction=facts.direction.value,
            unavailable=ChartUnavailableReason.SUPPRESSED if hidden else None,
        )
        signals: list[ChartSignal] = []
        if series.unavailable is None:
            chart = build_run_chart(series, rules=rules, freeze=None, parts=None, exclude=None)
            signals = chart.signals
        improving, concerning = _team_signal_counts(
            values_by_measure[facts.measure_id], facts, rules
        )
        shown = current is not None and not current.suppressed
        measures.append(
            ScorecardMeasure(
                measure=Measure.from_model(VersionedMeasure(entry.measure, entry.definition)),
                required=entry.membership.required,
                goal=goal,
                teams_reporting=current.teams_reporting if current else 0,
                numerator=current.numerator if current else None,
                denominator=current.denominator if current else None,
                rate=current.rate if current else None,
                teams_meeting_goal=(
                    current.teams_meeting_goal if current and goal is not None else None
                ),
                teams_with_improvement_signal=improving if shown or current is None else None,
                teams_with_concern_signal=concerning if shown or current is None else None,
                signals=signals,
                signals_computable=series.unavailable is None,
                suppressed=current.suppressed if current else False,
                suppression_reason=current.suppression_reason if current else None,
            )
        )
    return Scorecard(
        period=None if period is None else Period(period),
        rules=rules,
        exact=access.exact,
        measures=measures,
    )


async def collaborative_scorecard(
    info: Info,
    *,
    collaborative_id: uuid.UUID,
    period: str | None,
    rules: RunChartRules,
    access: AggregateAccess,
) -> Scorecard:
    """``Collaborative.scorecard``: the set and the inputs through batched DataLoaders."""
    loaders = info.context.loaders
    entries = await loaders.measure_set_by_collaborative_id.load(collaborative_id)
    inputs = await loaders.scorecard_inputs_by_key.load(ScorecardKey(collaborative_id, period))
    return scorecard(
        entries,
        inputs.parts,
        inputs.team_values,
        period=period,
        rules=rules,
        access=access,
    )
