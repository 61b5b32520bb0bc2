"""The demo's improvement content tells the measures' story: change packages, PDSA cycles from
Learning Session 1, monthly assessments rising to the headline, ACIC waves improving."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter, defaultdict
from datetime import date

from sqlalchemy import select

from analytics.assessment_scale import label
from db.demo import COLLABORATIVE_BY_CODE, MONTHS, TEAMS, _Calendar, _team_code, seed_demo
from db.demo_content import BLANK_AT_BASELINE, build_content_rows
from db.enums import AssessmentRater, PdsaAct, SurveyWave
from db.migrations import upgrade_to_head
from db.models import (
    Assessment,
    ChangeConcept,
    ChangeIdea,
    PdsaCycle,
    PdsaCycleMeasure,
    SurveyResponse,
    Team,
)
from db.queries.instruments import structures_by_version_ids
from db.sessions import create_engine, create_sessionmaker

TODAY = date(2026, 11, 25)


def test_content_follows_the_teams_story() -> None:
    rows = build_content_rows(TODAY)
    calendar = _Calendar.ending_before(TODAY)
    concepts = rows[ChangeConcept]
    assert Counter(r["collaborative_id"] for r in concepts).most_common()[-1][1] == 4
    assert len(rows[ChangeIdea]) >= 20

    cycles_by_team = Counter(r["team_id"] for r in rows[PdsaCycle])
    assert len(cycles_by_team) == len(TEAMS)  # every team tests changes
    ls1 = {spec.code: calendar.period(spec.ls1_index) for spec in COLLABORATIVE_BY_CODE.values()}
    teams = {r["team_id"]: r for r in rows[PdsaCycle]}
    assert all(r["start_date"] < TODAY for r in rows[PdsaCycle])
    assert all(r["start_date"] >= calendar.month(0) for r in teams.values())
    assert {r["act"] for r in rows[PdsaCycle]} == {*PdsaAct, None}
    linked = {r["cycle_id"] for r in rows[PdsaCycleMeasure]}
    assert linked == {r["id"] for r in rows[PdsaCycle]}  # every cycle marks a measure
    followed = {r["follows_id"] for r in rows[PdsaCycle]} - {None}
    assert followed and followed <= {r["id"] for r in rows[PdsaCycle]}
    assert min(f"{r['start_date']:%Y-%m}" for r in rows[PdsaCycle]) >= min(ls1.values())

    faculty: defaultdict[str, list[float]] = defaultdict(list)
    for row in rows[Assessment]:
        label(row["score"])  # every score is on the scale
        if row["rater"] is AssessmentRater.FACULTY:
            faculty[row["period"]].append(row["score"])
    last = calendar.period(MONTHS - 1)
    share_now = sum(s >= 4.0 for s in faculty[last]) / len(faculty[last])
    share_early = sum(s >= 4.0 for s in faculty[calendar.period(8)]) / len(
        faculty[calendar.period(8)]
    )
    assert share_early < 0.1 < 0.4 < share_now
    assert statistics.fmean(faculty[last]) > statistics.fmean(faculty[calendar.period(5)]) + 1


async def test_seeded_acic_waves_improve_and_show_the_missing_item_rule(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine).begin() as session:
            summary = await seed_demo(session, today=TODAY)
        assert summary.pdsa_cycles > 300 and summary.assessments > 800
        assert summary.survey_responses > 40
        async with create_sessionmaker(engine)() as session:
            responses = (await session.scalars(select(SurveyResponse))).all()
            codes = {row[0]: row[1] for row in await session.execute(select(Team.id, Team.code))}
            version_ids = list({r.version_id for r in responses})
            sponsor_id = responses[0].sponsor_id
            structures = await structures_by_version_ids(session, sponsor_id, version_ids)
        structure = structures[0]
        assert structure is not None
        by_team: defaultdict[str, dict[SurveyWave, float | None]] = defaultdict(dict)
        for response in responses:
            by_team[codes[response.team_id]][response.wave] = structure.score(
                response.answers
            ).overall
        finals = {team: waves for team, waves in by_team.items() if SurveyWave.FINAL in waves}
        assert len(finals) >= 8
        for team, waves in finals.items():
            baseline, final = waves[SurveyWave.BASELINE], waves[SurveyWave.FINAL]
            assert baseline is not None and final is not None
            assert final > baseline, team
        assert by_team[BLANK_AT_BASELINE[0]][SurveyWave.BASELINE] is None  # incomplete
        assert by_team[BLANK_AT_BASELINE[0]][SurveyWave.MIDPOINT] is not None
        assert _team_code(TEAMS[0]) in by_team  # an EHR demo team has its ACIC
    finally:
        await engine.dispose()
