"""What live events need from the database: a receipt's changed keys, and the chart signals a
receipt made appear.

:func:`load_changes` reads a receipt's changes back when its notification had no room for them.
:func:`detect_signals` compares each affected series (team x measure, all patients) before and
after the receipt: the "after" series is read from ``data_points``; the "before" series is the
same with the receipt's changes undone (created points removed, updated and deleted ones back to
the values the receipt's change set kept). Both are laid out as gapless months (as the GraphQL
charts draw them) and charted with the default rules — an Anhøj run
chart and the scoring's Shewhart chart (P, U, C or I) with Anhøj rules, as qicharts2 does — and a
signal of the "after" chart is *new* when no signal of the same chart, rule and side covered any
of its periods before. Each new signal is tagged IMPROVEMENT or CONCERN from the measure's
improvement direction.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.charts import Side, Signal, SignalRule, Variation, chart_type_for_scoring
from analytics.control import control_chart
from analytics.periods import month_range
from analytics.runs import run_chart
from db.events import ChangeKind, DataChange
from db.models import Measure, MeasureVersion, Team
from db.queries.history import CREATE, DELETE, RESTORE, UPDATE, read_change_set
from db.queries.series import ALL_PATIENTS, SeriesKey, series_by_keys

DEFAULT_RULES = "ANHOEJ"
"""The rule set signals are detected with (run and control charts)."""


class SignalChart(enum.StrEnum):
    """Which chart of a series a signal was found on."""

    RUN_CHART = "RUN_CHART"
    CONTROL_CHART = "CONTROL_CHART"


_HISTORY_KINDS = {
    CREATE: ChangeKind.CREATED,
    UPDATE: ChangeKind.UPDATED,
    RESTORE: ChangeKind.CREATED,
    DELETE: ChangeKind.DELETED,
}


async def load_changes(
    session: AsyncSession, sponsor_id: uuid.UUID, receipt_id: uuid.UUID
) -> tuple[DataChange, ...]:
    """The points a receipt changed, from its change set (created, updated, restored and
    deleted points)."""
    found: dict[tuple[uuid.UUID, uuid.UUID, str, str], ChangeKind] = {
        (entry.team_id, entry.measure_id, entry.period, entry.stratum): _HISTORY_KINDS[entry.action]
        for entry in await read_change_set(session, sponsor_id, receipt_id)
    }
    if not found:
        return ()
    team_ids = {key[0] for key in found}
    measure_ids = {key[1] for key in found}
    teams = {
        row[0]: (row[1], row[2])
        for row in await session.execute(
            select(Team.id, Team.code, Team.collaborative_id).where(
                Team.sponsor_id == sponsor_id, Team.id.in_(team_ids)
            )
        )
    }
    measures = {
        row[0]: row[1]
        for row in await session.execute(
            select(Measure.id, Measure.code).where(
                Measure.sponsor_id == sponsor_id, Measure.id.in_(measure_ids)
            )
        )
    }
    changes = [
        DataChange(
            team_id=team_id,
            team_code=teams[team_id][0],
            collaborative_id=teams[team_id][1],
            measure_id=measure_id,
            measure_code=measures[measure_id],
            period=period,
            stratum=stratum,
            kind=kind,
        )
        for (team_id, measure_id, period, stratum), kind in found.items()
        if team_id in teams and measure_id in measures
    ]
    changes.sort(key=lambda c: (c.team_code, c.measure_code, c.period, c.stratum))
    return tuple(changes)


@dataclass(frozen=True)
class DetectedSignal:
    """A signal that appeared on a team's series with a receipt."""

    receipt_id: uuid.UUID
    team_id: uuid.UUID
    team_code: str
    collaborative_id: uuid.UUID
    measure_id: uuid.UUID
    measure_code: str
    chart: SignalChart
    chart_type: str | None
    """The control chart's type (P, U, C, I); None for a run chart."""
    rules: str
    rule: SignalRule
    side: Side | None
    variation: Variation | None
    periods: tuple[str, ...]

    @property
    def event_id(self) -> str:
        """Stable id of this signal event (the same in every process)."""
        first = self.periods[0] if self.periods else "-"
        return (
            f"signal:{self.receipt_id}:{self.team_id}:{self.measure_id}:"
            f"{self.chart.value}:{self.rule.value}:{self.side or '-'}:{first}"
        )


@dataclass(frozen=True)
class _Definition:
    scoring: str
    direction: str
    multiplier: float
    multipliers: dict[int, float]


@dataclass
class _Value:
    numerator: float | None
    denominator: float | None
    value: float | None


async def _definitions(
    session: AsyncSession, sponsor_id: uuid.UUID, measure_ids: set[uuid.UUID]
) -> dict[uuid.UUID, _Definition]:
    rows = await session.execute(
        select(
            MeasureVersion.measure_id,
            MeasureVersion.version,
            MeasureVersion.multiplier,
            MeasureVersion.scoring,
            MeasureVersion.improvement_direction,
            Measure.current_version,
        )
        .join(
            Measure,
            and_(
                Measure.sponsor_id == MeasureVersion.sponsor_id,
                Measure.id == MeasureVersion.measure_id,
            ),
        )
        .where(MeasureVersion.sponsor_id == sponsor_id, MeasureVersion.measure_id.in_(measure_ids))
    )
    versions: defaultdict[uuid.UUID, dict[int, float]] = defaultdict(dict)
    current: dict[uuid.UUID, tuple[str, str, float]] = {}
    for measure_id, version, multiplier, scoring, direction, current_version in rows:
        versions[measure_id][version] = multiplier
        if version == current_version:
            current[measure_id] = (str(scoring.value), str(direction.value), multiplier)
    return {
        measure_id: _Definition(scoring, direction, multiplier, dict(versions[measure_id]))
        for measure_id, (scoring, direction, multiplier) in current.items()
    }


def _value_of(stored: dict[str, Any], definition: _Definition) -> _Value:
    """A point's values from a history snapshot (``before`` of an update or deletion)."""
    numerator = stored.get("numerator")
    denominator = stored.get("denominator")
    value = stored.get("value")
    if value is None and numerator is not None and denominator:
        version = stored.get("measure_version")
        multiplier = definition.multipliers.get(int(version or 0), definition.multiplier)
        value = numerator / denominator * multiplier
    return _Value(numerator, denominator, value)


def _signals(
    points: dict[str, _Value], definition: _Definition
) -> list[tuple[SignalChart, str | None, Signal, tuple[str, ...]]]:
    """(chart, chart type, signal, periods) of the run chart and the control chart."""
    if not points:
        return []
    known = sorted(points)
    # Gapless months, as the GraphQL charts draw them: a month without data is a None point.
    periods = month_range(known[0], known[-1])
    empty = _Value(None, None, None)
    points = {period: points.get(period, empty) for period in periods}
    values = [points[p].value for p in periods]
    found: list[tuple[SignalChart, str | None, Signal, tuple[str, ...]]] = []
    run = run_chart(values, improvement_direction=definition.direction)
    for signal in run.signals:
        found.append(
            (SignalChart.RUN_CHART, None, signal, tuple(periods[i] for i in signal.indices))
        )
    chart_type = chart_type_for_scoring(definition.scoring)
    control = control_chart(
        chart_type,
        values=values,
        numerators=[points[p].numerator for p in periods],
        denominators=[points[p].denominator for p in periods],
        multiplier=definition.multiplier,
        improvement_direction=definition.direction,
    )
    for signal in control.signals:
        found.append(
            (
                SignalChart.CONTROL_CHART,
                chart_type.value,
                signal,
                tuple(periods[i] for i in signal.indices),
            )
        )
    return found


async def detect_signals(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    receipt_id: uuid.UUID,
    changes: Sequence[DataChange],
) -> list[DetectedSignal]:
    """The signals the receipt made appear on the series it changed (all patients only)."""
    touched: dict[tuple[uuid.UUID, uuid.UUID], list[DataChange]] = defaultdict(list)
    for change in changes:
        if change.stratum == ALL_PATIENTS:
            touched[(change.team_id, change.measure_id)].append(change)
    if not touched:
        return []
    definitions = await _definitions(session, sponsor_id, {pair[1] for pair in touched})
    pairs = [pair for pair in touched if pair[1] in definitions]
    keys = [
        SeriesKey(team_id=pair[0], measure_code=touched[pair][0].measure_code) for pair in pairs
    ]
    series_lists = await series_by_keys(session, sponsor_id, keys)
    history: dict[tuple[uuid.UUID, uuid.UUID, str], dict[str, Any]] = {
        (entry.team_id, entry.measure_id, entry.period): entry.before
        for entry in await read_change_set(session, sponsor_id, receipt_id)
        if entry.stratum == ALL_PATIENTS and entry.before is not None
    }
    detected: list[DetectedSignal] = []
    for pair, series_list in zip(pairs, series_lists, strict=True):
        definition = definitions[pair[1]]
        after = {
            point.period: _Value(point.numerator, point.denominator, point.value)
            for series in series_list
            for point in series.points
        }
        before = dict(after)
        for change in touched[pair]:
            stored = history.get((pair[0], pair[1], change.period))
            if change.kind is ChangeKind.CREATED or stored is None:
                before.pop(change.period, None)
            else:
                before[change.period] = _value_of(stored, definition)
        old = _signals(before, definition)
        sample = touched[pair][0]
        for chart, chart_type, signal, periods in _signals(after, definition):
            covered = set(periods)
            if any(
                c == chart and s.rule == signal.rule and s.side == signal.side and covered & set(p)
                for c, _, s, p in old
            ):
                continue
            detected.append(
                DetectedSignal(
                    receipt_id=receipt_id,
                    team_id=pair[0],
                    team_code=sample.team_code,
                    collaborative_id=sample.collaborative_id,
                    measure_id=pair[1],
                    measure_code=sample.measure_code,
                    chart=chart,
                    chart_type=chart_type,
                    rules=DEFAULT_RULES,
                    rule=signal.rule,
                    side=signal.side,
                    variation=signal.variation,
                    periods=periods,
                )
            )
    return detected
