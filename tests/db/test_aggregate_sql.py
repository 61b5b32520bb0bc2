"""Aggregates computed in SQL agree with the Python reference (``analytics.aggregates``) on both
backends, and the two backends agree with each other (the median above all: PostgreSQL's
``percentile_cont`` against SQLite's window-function equivalent, with even team counts)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.aggregates import (
    mean_of_rates,
    median_of_rates,
    pooled_rate,
    teams_meeting_goal,
    teams_reporting,
)
from db.enums import (
    CollaborativeStatus,
    DataPointStatus,
    ImprovementDirection,
    MeasureType,
    Scoring,
)
from db.migrations import upgrade_to_head
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Organization,
    Sponsor,
    Team,
)
from db.queries.aggregates import (
    AggregateFilter,
    PartTotals,
    ScorecardKey,
    aggregate_parts,
    median_team_values,
    scorecard_inputs_by_keys,
    team_values,
)
from db.sessions import create_engine, create_sessionmaker
from tests.conftest import empty_database, postgres_server_url

# --- a bulk builder (also used by tests/schema/test_aggregates.py) -----------------------------


@dataclass(frozen=True)
class MeasureDef:
    code: str
    scoring: Scoring = Scoring.PROPORTION
    multiplier: float = 100.0
    direction: ImprovementDirection = ImprovementDirection.INCREASE
    goal: float | None = None
    versions: tuple[float, ...] = ()
    """Multipliers of versions 2, 3... (version 1 has ``multiplier``)."""


@dataclass(frozen=True)
class PointDef:
    team: str
    measure: str
    period: str
    numerator: int | None = None
    denominator: int | None = None
    value: float | None = None
    version: int = 1
    stratum: str = ""


@dataclass
class Built:
    sponsor_id: uuid.UUID
    collaboratives: dict[str, uuid.UUID] = field(default_factory=dict)
    teams: dict[str, uuid.UUID] = field(default_factory=dict)
    measures: dict[str, uuid.UUID] = field(default_factory=dict)


async def build(
    session: AsyncSession,
    *,
    collaboratives: dict[str, Sequence[str]],
    measures: Sequence[MeasureDef],
    points: Sequence[PointDef],
    sponsor_id: uuid.UUID | None = None,
) -> Built:
    """Insert a program with core bulk inserts: ``collaboratives`` maps a collaborative code to
    its team codes; every measure is in every collaborative's set with its goal."""
    if sponsor_id is None:
        sponsor_id = uuid.uuid4()
        await session.execute(
            insert(Sponsor),
            [{"id": sponsor_id, "slug": f"s-{sponsor_id.hex[:10]}", "name": "Sponsor"}],
        )
    built = Built(sponsor_id)
    organization_id = uuid.uuid4()
    await session.execute(
        insert(Organization),
        [
            {
                "sponsor_id": sponsor_id,
                "id": organization_id,
                "code": f"o-{organization_id.hex[:8]}",
                "name": "Clinic",
            }
        ],
    )
    for code in collaboratives:
        built.collaboratives[code] = uuid.uuid4()
    await session.execute(
        insert(Collaborative),
        [
            {
                "sponsor_id": sponsor_id,
                "id": cid,
                "code": code,
                "name": code,
                "topic": "t",
                "status": CollaborativeStatus.ACTIVE,
            }
            for code, cid in built.collaboratives.items()
        ],
    )
    team_rows = []
    for code, team_codes in collaboratives.items():
        for team_code in team_codes:
            built.teams[team_code] = uuid.uuid4()
            team_rows.append(
                {
                    "sponsor_id": sponsor_id,
                    "id": built.teams[team_code],
                    "code": team_code,
                    "name": team_code,
                    "organization_id": organization_id,
                    "collaborative_id": built.collaboratives[code],
                }
            )
    if team_rows:
        await session.execute(insert(Team), team_rows)
    for measure in measures:
        built.measures[measure.code] = uuid.uuid4()
    await session.execute(
        insert(Measure),
        [
            {
                "sponsor_id": sponsor_id,
                "id": built.measures[m.code],
                "code": m.code,
                "current_version": 1 + len(m.versions),
            }
            for m in measures
        ],
    )
    await session.execute(
        insert(MeasureVersion),
        [
            {
                "sponsor_id": sponsor_id,
                "id": uuid.uuid4(),
                "measure_id": built.measures[m.code],
                "version": version,
                "name": m.code,
                "type": MeasureType.OUTCOME,
                "scoring": m.scoring,
                "multiplier": multiplier,
                "improvement_direction": m.direction,
            }
            for m in measures
            for version, multiplier in enumerate((m.multiplier, *m.versions), start=1)
        ],
    )
    await session.execute(
        insert(CollaborativeMeasure),
        [
            {
                "sponsor_id": sponsor_id,
                "collaborative_id": cid,
                "measure_id": built.measures[m.code],
                "goal": m.goal,
                "position": position,
            }
            for cid in built.collaboratives.values()
            for position, m in enumerate(measures)
        ],
    )
    if points:
        await session.execute(
            insert(DataPoint),
            [
                {
                    "sponsor_id": sponsor_id,
                    "id": uuid.uuid4(),
                    "team_id": built.teams[p.team],
                    "measure_id": built.measures[p.measure],
                    "measure_version": p.version,
                    "period": p.period,
                    "stratum": p.stratum,
                    "numerator": p.numerator,
                    "denominator": p.denominator,
                    "value": p.value,
                    "annotation": "",
                    "status": DataPointStatus.SUBMITTED,
                    "source": "test",
                }
                for p in points
            ],
        )
    return built


# --- the data of these tests -------------------------------------------------------------------

TEAMS_A = ["a1", "a2", "a3", "a4"]  # an even number of teams
TEAMS_B = ["b1", "b2", "b3"]
PERIODS = ["2024-01", "2024-02", "2024-03"]
COUNTS: dict[str, list[tuple[int, int]]] = {
    # team: (numerator, denominator) per period
    "a1": [(7, 10), (21, 30), (5, 9)],
    "a2": [(3, 7), (14, 20), (0, 4)],
    "a3": [(9, 11), (2, 3), (8, 8)],
    "a4": [(1, 3), (50, 61), (6, 13)],
    "b1": [(4, 5), (3, 9), (7, 7)],
    "b2": [(12, 40), (30, 33), (2, 2)],
    "b3": [(6, 6), (5, 12), (1, 10)],
}
MEANS: dict[str, list[float]] = {
    "a1": [52.5, 48.0, 47.1],
    "a2": [61.0, 59.9, 58.2],
    "a3": [45.3, 44.0, 49.8],
    "a4": [50.0, 50.0, 50.0],
}
GOAL = 60.0


def _points() -> list[PointDef]:
    rows = [
        PointDef(team, "control", period, numerator, denominator)
        for team, counts in COUNTS.items()
        for period, (numerator, denominator) in zip(PERIODS, counts, strict=True)
    ]
    rows += [
        PointDef(team, "wait", period, value=value)
        for team, values in MEANS.items()
        for period, value in zip(PERIODS, values, strict=True)
    ]
    # a version-2 point (multiplier 1000) counts at its own multiplier in the team value
    rows.append(PointDef("a1", "control", "2024-04", 3, 4, version=2))
    # other strata and a team without a usable value stay out of the all-patients aggregate
    rows.append(PointDef("a2", "control", "2024-01", 1, 1, stratum="age:5-11"))
    rows.append(PointDef("b3", "control", "2024-04", None, 0))
    return rows


MEASURES = [
    MeasureDef("control", goal=GOAL, versions=(1000.0,)),
    MeasureDef(
        "wait",
        Scoring.MEAN,
        multiplier=1.0,
        direction=ImprovementDirection.DECREASE,
        goal=50.0,
    ),
]


async def _build(session: AsyncSession) -> Built:
    return await build(
        session,
        collaboratives={"ca": TEAMS_A, "cb": TEAMS_B},
        measures=MEASURES,
        points=_points(),
    )


def _rates(teams: Sequence[str], index: int) -> list[float]:
    return [COUNTS[t][index][0] / COUNTS[t][index][1] * 100.0 for t in teams]


async def _answers(session: AsyncSession, built: Built, **filters: Any) -> dict[str, Any]:
    """Everything the SQL functions return for the ``control`` and ``wait`` measures."""
    ids = list(built.measures.values())
    filter = AggregateFilter(**filters)
    parts = await aggregate_parts(session, built.sponsor_id, ids, filter=filter)
    medians = await median_team_values(session, built.sponsor_id, ids, filter=filter)
    return {"parts": parts, "medians": medians}


def _by(parts: Sequence[PartTotals], built: Built, measure: str) -> dict[tuple[str, str], Any]:
    names = {cid: code for code, cid in built.collaboratives.items()}
    return {
        (p.period, names[p.collaborative_id]): p
        for p in parts
        if p.measure_id == built.measures[measure]
    }


# --- tests ---------------------------------------------------------------------------------------


async def test_sums_means_goals_and_even_medians_match_the_reference(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        built = await _build(session)
    async with sessions() as session:
        answers = await _answers(session, built)
    control = _by(answers["parts"], built, "control")
    medians = answers["medians"]
    for index, period in enumerate(PERIODS):
        for code, teams in (("ca", TEAMS_A), ("cb", TEAMS_B)):
            part = control[(period, code)]
            numerators = [COUNTS[t][index][0] for t in teams]
            denominators = [COUNTS[t][index][1] for t in teams]
            rates = _rates(teams, index)
            assert part.teams_reporting == teams_reporting(rates) == len(teams)
            assert (part.numerator, part.denominator) == (sum(numerators), sum(denominators))
            assert part.numerator / part.denominator * 100 == pytest.approx(
                pooled_rate(numerators, denominators, 100.0), rel=1e-15
            )
            assert part.value_sum / part.teams_reporting == pytest.approx(
                mean_of_rates(rates), rel=1e-12
            )
            assert part.teams_with_goal == len(teams)
            assert part.teams_meeting_goal == teams_meeting_goal(rates, GOAL, "INCREASE")
        all_rates = _rates(TEAMS_A + TEAMS_B, index)  # 7 teams: odd
        assert medians[(built.measures["control"], period)] == median_of_rates(all_rates)
    # version 2 (x 1000) in April; b3's zero denominator has no value but still is a row
    april = control[("2024-04", "ca")]
    assert (april.teams_reporting, april.numerator, april.denominator) == (1, 3, 4)
    assert april.value_sum == pytest.approx(750.0)
    assert control[("2024-04", "cb")].teams_reporting == 0
    assert control[("2024-04", "cb")].numerator is None

    wait = _by(answers["parts"], built, "wait")
    for index, period in enumerate(PERIODS):
        values = [MEANS[t][index] for t in TEAMS_A]
        part = wait[(period, "ca")]
        assert part.numerator is None and part.denominator is None
        assert part.value_sum == pytest.approx(math.fsum(values), rel=1e-12)
        assert part.teams_meeting_goal == teams_meeting_goal(values, 50.0, "DECREASE")
        # 4 teams: the median is the mean of the middle two, as percentile_cont(0.5)
        assert medians[(built.measures["wait"], period)] == median_of_rates(values)


async def test_filters_and_the_even_median_of_one_collaborative(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        built = await _build(session)
    async with sessions() as session:
        only_a = await _answers(session, built, collaborative_codes=frozenset({"ca"}))
        teams = await _answers(session, built, team_codes=frozenset({"a1", "b1"}))
        window = await _answers(session, built, from_period="2024-02", to_period="2024-03")
        stratum = await _answers(session, built, stratum="age:5-11")
        nothing = await _answers(session, built, team_codes=frozenset())
    control = built.measures["control"]
    assert {p.period for p in only_a["parts"]} == {*PERIODS, "2024-04"}
    assert {p.collaborative_id for p in only_a["parts"]} == {built.collaboratives["ca"]}
    for index, period in enumerate(PERIODS):
        assert only_a["medians"][(control, period)] == median_of_rates(_rates(TEAMS_A, index))
    assert {p.teams_reporting for p in teams["parts"] if p.measure_id == control} == {1}
    assert {p.period for p in window["parts"]} == {"2024-02", "2024-03"}
    (point,) = stratum["parts"]
    assert (point.period, point.numerator, point.denominator) == ("2024-01", 1, 1)
    assert nothing == {"parts": [], "medians": {}}


async def test_other_sponsors_data_never_count(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        built = await _build(session)
        other = await _build(session)
    async with sessions() as session:
        mine = await _answers(session, built)
        ids = list(other.measures.values())
        crossed = await aggregate_parts(session, built.sponsor_id, ids, filter=AggregateFilter())
    assert crossed == []
    assert sum(p.teams_reporting for p in mine["parts"]) == 7 * 3 + 1 + 4 * 3


async def test_scorecard_inputs_batch_collaboratives_and_cut_periods(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        built = await _build(session)
    keys = [
        ScorecardKey(built.collaboratives["ca"], "2024-02"),
        ScorecardKey(built.collaboratives["cb"]),
    ]
    async with sessions() as session:
        first, second = await scorecard_inputs_by_keys(session, built.sponsor_id, keys)
        values = await team_values(
            session, built.sponsor_id, [built.measures["control"]], filter=AggregateFilter()
        )
    assert {p.period for p in first.parts} == {"2024-01", "2024-02"}
    assert {p.period for p in second.parts} == {*PERIODS, "2024-04"}
    assert len(first.team_values) == 4 * 2 * 2  # 4 teams x 2 measures x 2 periods
    assert {v.team_id for v in second.team_values} == {built.teams[t] for t in TEAMS_B}
    b3 = [v for v in values if v.team_id == built.teams["b3"]]
    assert [(v.period, v.value) for v in b3][-1] == ("2024-04", None)


async def test_both_backends_give_the_same_answers(tmp_path: Path) -> None:
    """The same data on a SQLite and a PostgreSQL database: identical aggregates and medians
    (sums of floats to 1e-12, everything else exactly)."""
    server = postgres_server_url()
    assert server is not None
    results: list[dict[str, Any]] = []
    for backend in ("sqlite", "postgresql"):
        async with empty_database(backend, tmp_path) as url:
            await asyncio.to_thread(upgrade_to_head, url)
            engine = create_engine(url, pool_size=1)
            try:
                sessions = create_sessionmaker(engine)
                async with sessions.begin() as session:
                    built = await _build(session)
                async with sessions() as session:
                    answers = await _answers(session, built)
                names = {v: k for k, v in {**built.collaboratives, **built.measures}.items()}
                results.append(
                    {
                        "parts": {
                            (names[p.measure_id], p.period, names[p.collaborative_id]): p
                            for p in answers["parts"]
                        },
                        "medians": {
                            (names[m], period): value
                            for (m, period), value in answers["medians"].items()
                        },
                    }
                )
            finally:
                await engine.dispose()
    sqlite, postgresql = results
    assert sqlite["medians"] == postgresql["medians"]
    assert sqlite["parts"].keys() == postgresql["parts"].keys()
    for key, left in sqlite["parts"].items():
        right = postgresql["parts"][key]
        assert (left.teams_reporting, left.numerator, left.denominator) == (
            right.teams_reporting,
            right.numerator,
            right.denominator,
        )
        assert (left.teams_with_goal, left.teams_meeting_goal) == (
            right.teams_with_goal,
            right.teams_meeting_goal,
        )
        if left.value_sum is None:
            assert right.value_sum is None
        else:
            assert left.value_sum == pytest.approx(right.value_sum, rel=1e-12)
