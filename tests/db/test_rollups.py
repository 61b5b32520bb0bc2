"""The monthly rollups (``db.queries.rollups``) always answer what the data points answer.

Every write to an input of a series (data points inserted, updated, deleted; a goal line; a
measure's current version; a team's collaborative) leaves a change row behind (triggers of
migration 0007), and a read recomputes a changed series. Checked on both backends: any sequence
of writes and reads (hypothesis) gives the per-point answer; a refresh computed before a write
never hides that write; of two racing refreshes the older one is never stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.maintenance import Maintenance
from db.enums import DataPointStatus
from db.models import AggregateChange, CollaborativeMeasure, DataPoint, Measure, Team
from db.queries.aggregates import (
    AggregateFilter,
    PartTotals,
    aggregate_parts,
    cell_median_team_values,
)
from db.queries.rollups import RolledUp, rolled_up_parts, store_refresh, waiting_briefly
from tests.conftest import make_settings
from tests.db.test_aggregate_sql import Built, MeasureDef, PointDef, build

TEAMS: dict[str, Sequence[str]] = {"ra": ["ra1", "ra2", "ra3"], "rb": ["rb1", "rb2"]}
PERIODS = ["2024-01", "2024-02", "2024-03"]


async def _program(sessions: async_sessionmaker[AsyncSession]) -> Built:
    points = [
        PointDef(team, "m", period, (index * 3 + month) % 7, 7, version=1 + month % 2)
        for teams in TEAMS.values()
        for index, team in enumerate(teams)
        for month, period in enumerate(PERIODS[:2])
    ]
    async with sessions.begin() as session:
        return await build(
            session,
            collaboratives=TEAMS,
            # version 2 is current; the tests make version 1 current again
            measures=[MeasureDef("m", goal=40.0, versions=(100.0,))],
            points=points,
        )


def _key(part: PartTotals) -> tuple[str, str, str]:
    return (str(part.measure_id), part.period, str(part.collaborative_id))


async def _per_point(
    session: AsyncSession, built: Built, filter: AggregateFilter
) -> tuple[list[PartTotals], dict[Any, float]]:
    ids = [built.measures["m"]]
    parts = await aggregate_parts(session, built.sponsor_id, ids, filter=filter)
    medians = await cell_median_team_values(session, built.sponsor_id, ids, filter=filter)
    return sorted(parts, key=_key), medians


async def _rolled(
    sessions: async_sessionmaker[AsyncSession], built: Built, filter: AggregateFilter
) -> RolledUp:
    async with sessions() as session:
        rolled = await rolled_up_parts(
            session, built.sponsor_id, [built.measures["m"]], filter=filter
        )
    assert rolled is not None
    return rolled


async def _read_and_store(
    sessions: async_sessionmaker[AsyncSession], built: Built, filter: AggregateFilter
) -> RolledUp:
    rolled = await _rolled(sessions, built, filter)
    if rolled.refresh is not None:
        async with sessions.begin() as session:
            await store_refresh(session, rolled.refresh)
    return rolled


async def _assert_matches(
    sessions: async_sessionmaker[AsyncSession], built: Built, filter: AggregateFilter
) -> RolledUp:
    rolled = await _read_and_store(sessions, built, filter)
    async with sessions() as session:
        parts, medians = await _per_point(session, built, filter)
    # Σ of float team values depends on the order PostgreSQL happens to add them in (one plan
    # or another): equal to the last bits, not bit for bit. Everything else is exact.
    assert [_exact(part) for part in sorted(rolled.parts, key=_key)] == [
        _exact(part) for part in parts
    ]
    assert [part.value_sum for part in sorted(rolled.parts, key=_key)] == pytest.approx(
        [part.value_sum for part in parts], rel=1e-12
    )
    assert rolled.cell_medians == medians
    return rolled


def _exact(part: PartTotals) -> PartTotals:
    return replace(part, value_sum=None)


async def _write_point(
    session: AsyncSession, built: Built, team: str, period: str, numerator: int | None
) -> None:
    """Insert, update (numerator) or delete (None) one point of measure ``m``."""
    where = (
        DataPoint.sponsor_id == built.sponsor_id,
        DataPoint.team_id == built.teams[team],
        DataPoint.measure_id == built.measures["m"],
        DataPoint.period == period,
        DataPoint.stratum == "",
    )
    if numerator is None:
        await session.execute(delete(DataPoint).where(*where))
        return
    found = (await session.execute(select(DataPoint.id).where(*where))).first()
    if found is not None:
        await session.execute(update(DataPoint).where(*where).values(numerator=numerator))
        return
    session.add(
        DataPoint(
            sponsor_id=built.sponsor_id,
            team_id=built.teams[team],
            measure_id=built.measures["m"],
            measure_version=2,
            period=period,
            stratum="",
            numerator=numerator,
            denominator=10,
            value=None,
            status=DataPointStatus.SUBMITTED,
            source="test",
        )
    )
    await session.flush()


async def _pending(sessions: async_sessionmaker[AsyncSession], built: Built) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AggregateChange)
            .where(AggregateChange.sponsor_id == built.sponsor_id)
        )
    return int(count or 0)


async def test_a_stored_series_is_read_without_recomputing_until_a_point_changes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    only_a = AggregateFilter(collaborative_codes=frozenset({"ra"}))
    first = await _assert_matches(sessions, built, only_a)
    assert first.refresh is not None and len(first.refresh.series) == 1
    again = await _assert_matches(sessions, built, only_a)
    assert again.refresh is None  # stored and current
    async with sessions.begin() as session:
        await _write_point(session, built, "ra1", "2024-01", 9)
    changed = await _assert_matches(sessions, built, only_a)
    assert changed.refresh is not None
    # the other collaborative's series was not touched by the write
    only_b = AggregateFilter(collaborative_codes=frozenset({"rb"}))
    await _assert_matches(sessions, built, only_b)
    assert (await _assert_matches(sessions, built, only_b)).refresh is None


async def test_a_refresh_computed_before_a_write_does_not_hide_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    everything = AggregateFilter()
    stale = await _rolled(sessions, built, everything)
    assert stale.refresh is not None
    async with sessions.begin() as session:
        await _write_point(session, built, "rb2", "2024-03", 5)
    async with sessions.begin() as session:
        assert await store_refresh(session, stale.refresh) == 2
    # The write's change row outlived the older refresh: the next read recomputes it.
    fresh = await _assert_matches(sessions, built, everything)
    assert fresh.refresh is not None
    assert any(part.period == "2024-03" for part in fresh.parts)


async def test_of_two_racing_refreshes_the_older_is_not_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    everything = AggregateFilter()
    await _read_and_store(sessions, built, everything)
    async with sessions.begin() as session:
        await _write_point(session, built, "ra2", "2024-02", 1)
    older = await _rolled(sessions, built, everything)
    async with sessions.begin() as session:
        await _write_point(session, built, "ra2", "2024-02", 6)
    newer = await _rolled(sessions, built, everything)
    assert older.refresh is not None and newer.refresh is not None
    async with sessions.begin() as session:
        assert await store_refresh(session, newer.refresh) == 1
    async with sessions.begin() as session:
        assert await store_refresh(session, older.refresh) == 0  # its generation moved on
    await _assert_matches(sessions, built, everything)


async def test_goal_lines_versions_and_moved_teams_mark_their_series_changed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    everything = AggregateFilter()
    await _read_and_store(sessions, built, everything)
    measure_id = built.measures["m"]
    changes: list[Any] = [
        update(CollaborativeMeasure)
        .where(
            CollaborativeMeasure.sponsor_id == built.sponsor_id,
            CollaborativeMeasure.measure_id == measure_id,
        )
        .values(goal=20.0),
        update(Measure).where(Measure.id == measure_id).values(current_version=1),
        update(Team)
        .where(Team.id == built.teams["ra3"])
        .values(collaborative_id=built.collaboratives["rb"]),
    ]
    for change in changes:
        async with sessions.begin() as session:
            await session.execute(change)
        assert await _pending(sessions, built), change
        rolled = await _assert_matches(sessions, built, everything)
        assert rolled.refresh is not None


async def test_maintenance_stores_the_series_nobody_read(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    built = await _program(sessions)
    assert await _pending(sessions, built) == 2  # one per collaborative's series
    app = create_app(make_settings(database_url))
    async with LifespanManager(app):
        maintenance = Maintenance(app.state.collabx)
        assert await maintenance.refresh_rollups(sponsor_id=built.sponsor_id) == 2
    assert await _pending(sessions, built) == 0
    stored = await _assert_matches(sessions, built, AggregateFilter())
    assert stored.refresh is None  # read from the cells the maintenance pass stored


async def test_a_point_moved_to_another_team_marks_both_series(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    everything = AggregateFilter()
    await _read_and_store(sessions, built, everything)
    async with sessions.begin() as session:
        await session.execute(
            update(DataPoint)
            .where(
                DataPoint.sponsor_id == built.sponsor_id,
                DataPoint.team_id == built.teams["ra1"],
                DataPoint.period == "2024-01",
            )
            .values(team_id=built.teams["rb1"], period="2024-03")
        )
    rolled = await _assert_matches(sessions, built, everything)
    assert rolled.refresh is not None
    assert {series.collaborative_id for series in rolled.refresh.series} == set(
        built.collaboratives.values()
    )


async def test_storing_a_refresh_gives_up_soon_behind_another_writer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The store waits a quarter second for a lock, not SQLite's 30 s busy timeout (nor
    PostgreSQL's unbounded wait); the answer was computed already."""
    built = await _program(sessions)
    rolled = await _rolled(sessions, built, AggregateFilter())
    assert rolled.refresh is not None
    async with sessions() as blocker, blocker.begin():
        # Another writer holds a lock the store needs: SQLite's one write lock; on
        # PostgreSQL the change rows the store deletes.
        await blocker.execute(
            update(AggregateChange)
            .where(AggregateChange.sponsor_id == built.sponsor_id)
            .values(stratum="")
        )
        started = time.monotonic()
        with pytest.raises(DBAPIError):
            async with sessions.begin() as session, waiting_briefly(session):
                await store_refresh(session, rolled.refresh)
        assert time.monotonic() - started < 10
    async with sessions() as session:  # the refresh was not stored: still pending
        assert await _pending(sessions, built) == 2
        if session.get_bind().dialect.name == "sqlite":
            connection = await session.connection()
            for _ in range(4):  # every pooled connection waits its 30 s again
                timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
                assert timeout == 30_000


async def test_named_teams_read_the_data_points(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    built = await _program(sessions)
    async with sessions() as session:
        rolled = await rolled_up_parts(
            session,
            built.sponsor_id,
            [built.measures["m"]],
            filter=AggregateFilter(team_codes=frozenset({"ra1"})),
        )
    assert rolled is None


WRITES = st.tuples(
    st.sampled_from([team for teams in TEAMS.values() for team in teams]),
    st.sampled_from(PERIODS),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
)
STEP = st.one_of(
    st.lists(WRITES, min_size=1, max_size=4).map(lambda writes: ("write", writes)),
    st.sampled_from(
        [
            ("read", AggregateFilter()),
            ("read", AggregateFilter(collaborative_codes=frozenset({"ra"}))),
            ("read", AggregateFilter(from_period="2024-02")),
            ("read", AggregateFilter(to_period="2024-01", collaborative_codes=frozenset({"rb"}))),
        ]
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
async def test_any_writes_and_reads_answer_what_the_points_answer(
    sessions: async_sessionmaker[AsyncSession], steps: Sequence[tuple[str, Any]]
) -> None:
    built = await _program(sessions)
    for kind, argument in steps:
        if kind == "write":
            async with sessions.begin() as session:
                for team, period, numerator in argument:
                    await _write_point(session, built, team, period, numerator)
        else:
            await _assert_matches(sessions, built, argument)
    await _assert_matches(sessions, built, AggregateFilter())
