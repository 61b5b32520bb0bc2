"""db.ingest directly: a constant number of statements per batch, the clock, withdrawn teams,
stored LOCKED points, key expiry and cleanup, IN_PROGRESS on a held key (PostgreSQL), and the
property that any sequence of submissions, replays and deletions leaves exactly the last accepted
value of every key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.enums import (
    ClientKind,
    CollaborativeStatus,
    DataPointStatus,
    ImprovementDirection,
    MeasureType,
    Scoring,
)
from db.ingest import (
    DeleteRowInput,
    IdempotencyMismatch,
    IngestOptions,
    InProgress,
    RowInput,
    delete_expired_idempotency_keys,
    delete_measure_data,
    request_hash,
    submit_measure_data,
)
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    DataPointTombstone,
    IdempotencyKey,
    Measure,
    MeasureVersion,
    Organization,
    Sponsor,
    Team,
)
from db.queries.audit import Actor
from db.queries.data import Operation, ReceiptStatus
from db.sessions import create_engine, create_sessionmaker

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
TEAMS = ("north", "south")
MEASURE = "control"
MEAN = "los"


@dataclass(frozen=True)
class World:
    """One sponsor with two teams in a collaborative whose set holds a proportion and a mean."""

    sponsor_id: uuid.UUID
    collaborative_id: uuid.UUID
    team_ids: dict[str, uuid.UUID]
    actor: Actor


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=4)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def make_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    sponsor_id, collaborative_id, organization_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    team_ids = {code: uuid.uuid4() for code in TEAMS}
    async with sessions.begin() as session:
        session.add(Sponsor(id=sponsor_id, slug=f"s-{sponsor_id.hex[:10]}", name="S"))
        await session.flush()
        session.add(
            Collaborative(
                sponsor_id=sponsor_id,
                id=collaborative_id,
                code="asthma",
                name="Asthma",
                topic="Asthma",
                status=CollaborativeStatus.ACTIVE,
            )
        )
        session.add(Organization(sponsor_id=sponsor_id, id=organization_id, code="o", name="O"))
        await session.flush()
        for code, team_id in team_ids.items():
            session.add(
                Team(
                    sponsor_id=sponsor_id,
                    id=team_id,
                    code=code,
                    name=code,
                    organization_id=organization_id,
                    collaborative_id=collaborative_id,
                )
            )
        for code, scoring in ((MEASURE, Scoring.PROPORTION), (MEAN, Scoring.MEAN)):
            measure_id = uuid.uuid4()
            session.add(Measure(sponsor_id=sponsor_id, id=measure_id, code=code))
            await session.flush()
            session.add(
                MeasureVersion(
                    sponsor_id=sponsor_id,
                    id=uuid.uuid4(),
                    measure_id=measure_id,
                    version=1,
                    name=code,
                    type=MeasureType.OUTCOME,
                    scoring=scoring,
                    improvement_direction=ImprovementDirection.INCREASE,
                )
            )
            session.add(
                CollaborativeMeasure(
                    sponsor_id=sponsor_id, collaborative_id=collaborative_id, measure_id=measure_id
                )
            )
    actor = Actor(
        client_id=f"c-{sponsor_id.hex[:8]}", kind=ClientKind.ADMIN.value, sponsor_id=sponsor_id
    )
    return World(sponsor_id, collaborative_id, team_ids, actor)


async def submit(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    rows: list[RowInput],
    **options: Any,
) -> Any:
    async with sessions.begin() as session:
        return await submit_measure_data(
            session, world.actor, rows, IngestOptions(now=NOW, **options)
        )


async def remove(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    rows: list[DeleteRowInput],
    **options: Any,
) -> Any:
    async with sessions.begin() as session:
        return await delete_measure_data(
            session, world.actor, rows, IngestOptions(now=NOW, **options)
        )


async def live_points(
    sessions: async_sessionmaker[AsyncSession], world: World
) -> dict[tuple[str, str, str], tuple[int | None, int | None]]:
    names = {team_id: code for code, team_id in world.team_ids.items()}
    async with sessions() as session:
        rows = await session.execute(
            select(
                DataPoint.team_id,
                DataPoint.period,
                DataPoint.stratum,
                DataPoint.numerator,
                DataPoint.denominator,
            ).where(DataPoint.sponsor_id == world.sponsor_id)
        )
        return {(names[t], p, s): (n, d) for t, p, s, n, d in rows}


async def tombstone_keys(
    sessions: async_sessionmaker[AsyncSession], world: World
) -> set[tuple[str, str, str]]:
    names = {team_id: code for code, team_id in world.team_ids.items()}
    async with sessions() as session:
        rows = await session.execute(
            select(
                DataPointTombstone.team_id, DataPointTombstone.period, DataPointTombstone.stratum
            ).where(DataPointTombstone.sponsor_id == world.sponsor_id)
        )
        return {(names[t], p, s) for t, p, s in rows}


@contextmanager
def counted(sessions: async_sessionmaker[AsyncSession]) -> Iterator[list[str]]:
    engine = sessions.kw["bind"].sync_engine
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --- checks and statements -------------------------------------------------------------------


async def test_statements_per_batch_do_not_grow_with_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)

    def batch(periods: list[str], numerator: int) -> list[RowInput]:
        return [
            RowInput(team, MEASURE, period, numerator, 10, stratum=stratum)
            for team in TEAMS
            for period in periods
            for stratum in ("", "a", "b")
        ]

    small = [f"2020-{m:02d}" for m in range(1, 3)]
    large = [f"{y}-{m:02d}" for y in range(2010, 2020) for m in range(1, 13)]
    sizes = []
    for periods in (small, large):
        with counted(sessions) as created:
            receipt = await submit(sessions, world, batch(periods, 1))
        assert receipt.created == len(periods) * 6
        with counted(sessions) as updated:
            receipt = await submit(sessions, world, batch(periods, 2))
        assert receipt.updated == len(periods) * 6
        sizes.append((len(created), len(updated)))
    assert sizes[0] == sizes[1], sizes


async def test_future_period_follows_the_clock_and_withdrawn_teams_are_not_enrolled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    async with sessions.begin() as session:
        await session.execute(
            update(Team)
            .where(Team.sponsor_id == world.sponsor_id, Team.id == world.team_ids["south"])
            .values(withdrawn_on=date(2024, 3, 10))
        )
    receipt = await submit(
        sessions,
        world,
        [
            RowInput("north", MEASURE, "2024-06", 1, 2),  # the current month is fine
            RowInput("north", MEASURE, "2024-07", 1, 2),
            RowInput("south", MEASURE, "2024-03", 1, 2),  # the month it withdrew
            RowInput("south", MEASURE, "2024-04", 1, 2),
            RowInput("north", MEAN, "2024-01", value=float("nan")),
            RowInput("north", MEASURE, "1899-12", 1, 2),
        ],
        atomic=False,
    )
    codes = {(c.index, c.code, c.field) for c in receipt.conflicts}
    assert codes == {
        (1, "FUTURE_PERIOD", "period"),
        (3, "NOT_ENROLLED", "team"),
        (4, "INVALID_COUNT", "value"),
        (5, "INVALID_PERIOD", "period"),
    }
    assert receipt.created == 2 and receipt.status is ReceiptStatus.PARTIAL


async def test_a_stored_locked_point_is_not_overwritten(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    await submit(sessions, world, [RowInput("north", MEASURE, "2024-01", 1, 2)])
    async with sessions.begin() as session:
        await session.execute(
            update(DataPoint)
            .where(DataPoint.sponsor_id == world.sponsor_id)
            .values(status=DataPointStatus.LOCKED)
        )
    receipt = await submit(sessions, world, [RowInput("north", MEASURE, "2024-01", 2, 2)])
    assert [(c.code, c.field) for c in receipt.conflicts] == [("PERIOD_LOCKED", "period")]
    assert await live_points(sessions, world) == {("north", "2024-01", ""): (1, 2)}


# --- idempotency keys --------------------------------------------------------------------------


async def test_keys_expire_and_are_cleaned_up(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions)
    rows = [RowInput("north", MEASURE, "2024-01", 1, 2)]
    first = await submit(sessions, world, rows, idempotency_key="k")
    with pytest.raises(IdempotencyMismatch):
        await submit(
            sessions, world, [RowInput("north", MEASURE, "2024-01", 2, 2)], idempotency_key="k"
        )
    async with sessions.begin() as session:
        assert await delete_expired_idempotency_keys(session, now=NOW + timedelta(hours=23)) == 0
    async with sessions.begin() as session:
        removed = await delete_expired_idempotency_keys(session, now=NOW + timedelta(hours=25))
        assert removed >= 1
        left = await session.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.sponsor_id == world.sponsor_id)
        )
        assert left == 0
    second = await submit(sessions, world, rows, idempotency_key="k")
    assert second.id != first.id and second.unchanged == 1


def test_request_hash_is_canonical() -> None:
    rows = [RowInput("a", "m", "2024-01", 3, 4)]
    same = [RowInput("a", "m", "2024-01", 3.0, 4, annotation="")]
    assert request_hash(Operation.SUBMIT, True, rows) == request_hash(Operation.SUBMIT, True, same)
    assert request_hash(Operation.SUBMIT, True, rows) != request_hash(Operation.SUBMIT, False, rows)
    assert request_hash(Operation.SUBMIT, True, rows) != request_hash(
        Operation.SUBMIT, True, [RowInput("a", "m", "2024-01", 3, 5)]
    )
    keys = [DeleteRowInput("a", "m", "2024-01")]
    submitted = [RowInput("a", "m", "2024-01")]
    assert request_hash(Operation.DELETE, True, keys) != request_hash(
        Operation.SUBMIT, True, submitted
    )


async def test_a_held_key_answers_in_progress_after_the_wait(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serializes whole transactions; PostgreSQL waits on the key row")
    world = await make_world(sessions)
    rows = [RowInput("north", MEASURE, "2024-01", 1, 2)]
    holder = sessions()
    try:
        await holder.begin()
        await submit_measure_data(
            holder, world.actor, rows, IngestOptions(now=NOW, idempotency_key="held")
        )
        with pytest.raises(InProgress):
            await submit(
                sessions, world, rows, idempotency_key="held", key_wait=timedelta(milliseconds=200)
            )
        waiting = asyncio.create_task(submit(sessions, world, rows, idempotency_key="held"))
        await asyncio.sleep(0.2)
        await holder.commit()
        replay = await waiting
        assert replay.replayed and replay.created == 1
    finally:
        await holder.close()


# --- the property -------------------------------------------------------------------------------

PERIODS = ("2024-01", "2024-02", "2024-03")
STRATA = ("", "x")

row_strategy = st.builds(
    lambda team, period, stratum, numerator, denominator: (
        team,
        period,
        stratum,
        numerator,
        denominator,
    ),
    st.sampled_from(TEAMS),
    st.sampled_from(PERIODS),
    st.sampled_from(STRATA),
    st.integers(0, 4),
    st.one_of(st.none(), st.integers(0, 4)),
)
operation_strategy = st.one_of(
    st.tuples(
        st.just("submit"),
        st.lists(row_strategy, min_size=1, max_size=4),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(st.just("replay"), st.integers(0, 10)),
    st.tuples(
        st.just("delete"),
        st.lists(
            st.tuples(st.sampled_from(TEAMS), st.sampled_from(PERIODS), st.sampled_from(STRATA)),
            min_size=1,
            max_size=3,
        ),
        st.booleans(),
    ),
)

Key = tuple[str, str, str]


def _valid_rows(rows: list[Any]) -> tuple[dict[Key, tuple[int, int]], bool]:
    """The rows a submission accepts (later duplicates rejected) and whether any was rejected."""
    accepted: dict[Key, tuple[int, int]] = {}
    seen: set[Key] = set()
    rejected = False
    for team, period, stratum, numerator, denominator in rows:
        key = (team, period, stratum)
        duplicate = key in seen
        seen.add(key)
        if duplicate or denominator is None or denominator == 0 or numerator > denominator:
            rejected = True
            continue
        accepted[key] = (numerator, denominator)
    return accepted, rejected


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation_strategy, min_size=1, max_size=8))
async def test_any_sequence_leaves_the_last_accepted_value_of_every_key(
    sessions: async_sessionmaker[AsyncSession], operations: list[Any]
) -> None:
    world = await make_world(sessions)
    model: dict[Key, tuple[int, int]] = {}
    ever: set[Key] = set()
    submitted: list[tuple[list[Any], bool, str | None, Any]] = []
    for number, operation in enumerate(operations):
        if operation[0] == "delete":
            _, keys, atomic = operation
            receipt = await remove(
                sessions,
                world,
                [DeleteRowInput(t, MEASURE, p, s) for t, p, s in keys],
                atomic=atomic,
            )
            duplicates = len(keys) != len(set(keys))
            if not (atomic and duplicates):
                for key in keys:
                    model.pop(key, None)
            assert receipt.rejected == len(keys) - len(set(keys))
            continue
        if operation[0] == "replay":
            if not submitted:
                continue
            rows, atomic, key, first = submitted[operation[1] % len(submitted)]
        else:
            _, rows, atomic, with_key = operation
            key, first = (f"k{number}" if with_key else None), None
        receipt = await submit(
            sessions,
            world,
            [RowInput(t, MEASURE, p, n, d, stratum=s) for t, p, s, n, d in rows],
            atomic=atomic,
            idempotency_key=key,
        )
        accepted, rejected = _valid_rows(rows)
        kept = first is not None and first.status is not ReceiptStatus.REJECTED and key
        if kept:
            assert receipt.replayed and receipt.id == first.id
        else:
            assert not receipt.replayed
            if not (atomic and rejected):
                model.update(accepted)
                ever.update(accepted)
        if operation[0] == "submit":
            submitted.append((rows, atomic, key, receipt))
    assert await live_points(sessions, world) == {
        key: (numerator, denominator) for key, (numerator, denominator) in model.items()
    }
    assert await tombstone_keys(sessions, world) == ever - set(model)
