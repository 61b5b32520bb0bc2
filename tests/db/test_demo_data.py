"""The demo data is realistic enough to explore: sizes, 18 months, improvement, idempotent."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date

from sqlalchemy import func, select

from db.demo import DEMO_EHR_TEAM_CODES, DEMO_SPONSOR_SLUGS, seed_demo
from db.enums import CareModelDomain
from db.migrations import upgrade_to_head
from db.models import (
    Collaborative,
    CollaborativeMeasure,
    DataPoint,
    Measure,
    MeasureVersion,
    Phase,
    Resource,
    ResourceTag,
    Sponsor,
    StaffAssignment,
    Team,
)
from db.sessions import create_engine, create_sessionmaker

TODAY = date(2026, 11, 25)


async def test_demo_seed_is_rich_and_idempotent(empty_database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    engine = create_engine(empty_database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            first = await seed_demo(session, today=TODAY)
        async with sessions.begin() as session:
            second = await seed_demo(session, today=TODAY)
        assert first.created and not second.created

        async with sessions() as session:

            async def count(model: type, *where: object) -> int:
                query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
                return int(await session.scalar(query) or 0)

            assert await count(Sponsor) == 2
            slugs = set((await session.scalars(select(Sponsor.slug))).all())
            assert slugs == set(DEMO_SPONSOR_SLUGS)
            assert await count(Collaborative) >= 3
            assert await count(Phase) >= 3 * 5
            assert await count(StaffAssignment) >= 3 * 3
            assert await count(Team) >= 30
            assert await count(Resource) >= 20
            domains = set(
                (
                    await session.scalars(
                        select(ResourceTag.value).where(ResourceTag.tag_kind == "domain")
                    )
                ).all()
            )
            assert domains == {d.value for d in CareModelDomain}
            ehr_teams = set(
                (
                    await session.scalars(
                        select(Team.code).where(Team.code.in_(DEMO_EHR_TEAM_CODES))
                    )
                ).all()
            )
            assert ehr_teams == set(DEMO_EHR_TEAM_CODES)

            sets = (
                await session.execute(
                    select(CollaborativeMeasure.collaborative_id, func.count()).group_by(
                        CollaborativeMeasure.collaborative_id
                    )
                )
            ).all()
            assert len(sets) == 3 and all(size >= 6 for _, size in sets)
            definitions = (await session.scalars(select(MeasureVersion))).all()
            assert all(
                d.numerator and d.denominator for d in definitions if d.scoring == "PROPORTION"
            )

            periods = sorted(set((await session.scalars(select(DataPoint.period))).all()))
            assert len(periods) == 18
            assert periods[-1] == "2026-10"

            # Improvement is visible: the pooled asthma-control rate rises after the intervention.
            rows = (
                await session.execute(
                    select(DataPoint.period, DataPoint.numerator, DataPoint.denominator)
                    .join(
                        Measure,
                        (Measure.id == DataPoint.measure_id)
                        & (Measure.sponsor_id == DataPoint.sponsor_id),
                    )
                    .where(Measure.code == "asthma-control")
                )
            ).all()
            sums: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
            for period, numerator, denominator in rows:
                assert numerator is not None and denominator is not None
                assert 0 <= numerator <= denominator
                sums[period][0] += numerator
                sums[period][1] += denominator
            rates = [sums[p][0] / sums[p][1] for p in sorted(sums)]
            baseline, recent = sum(rates[:5]) / 5, sum(rates[-5:]) / 5
            assert recent - baseline > 0.15, (baseline, recent)
    finally:
        await engine.dispose()
