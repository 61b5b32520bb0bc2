"""The benchmark dataset: deterministic, at a scale, loaded through the project's migrations.

Scale 1 is 5 sponsors, 40 collaboratives, 1,200 teams (one organization each), 30 measures per
collaborative (each collaborative's own, in its measure set) and 18 monthly points per team and
measure of its collaborative (2023-07 to 2024-12): 648,000 data points. Scale s multiplies
sponsors, collaboratives and teams (scale 10 = ten times the teams); measures per collaborative
and months stay fixed, so the points are 648,000 x s. Fractional scales (0.05) make quick runs.

Teams are spread over collaboratives with weight 1/sqrt(rank), as in ``../shared/peer-bench``:
collaborative 1 gets the most teams (107 at scale 1), so "the first 50 teams" really cuts.
Measure kinds cycle through PROPORTION (%), COUNT, MEAN and RATE, so every scoring path runs.

The schema comes from ``db.migrations.upgrade_to_head``; rows are written with COPY (asyncpg
``copy_records_to_table``) in the columns of the project's SQLAlchemy models, filling any other
column from its model default — a column the generator does not know and cannot fill is an error
rather than a silently different table. Everything derives from ``seed``: the same scale and seed
give the same rows, ids included. Clients are made by ``db.queries.auth.create_client``.

    python -m bench.generate --scale 0.05 --url postgresql+asyncpg://postgres@127.0.0.1/mydb
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.engine import make_url

from db.base import Base
from db.enums import (
    DEFAULT_SCOPES,
    ClientKind,
    CollaborativeStatus,
    DataPointStatus,
    ImprovementDirection,
    MeasureType,
    Scoring,
)
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

DEFAULT_SEED = 20240601
MEASURES_PER_COLLABORATIVE = 30
MONTHS = 18
FIRST_MONTH = (2023, 7)
LOADED_BY = "bench-loader"
"""``created_by``/``updated_by`` of generated points (no receipt: loaded data)."""
BASE_TIME = datetime(2023, 1, 1, tzinfo=UTC)

TOPICS = [
    "Sepsis",
    "Falls",
    "Readmissions",
    "Diabetes",
    "Hypertension",
    "Maternal Health",
    "Opioid Safety",
    "Pressure Injuries",
    "Hand Hygiene",
    "Depression Screening",
]
STATES = ["AL", "AZ", "CA", "CO", "CT", "FL", "GA", "IL", "MA", "MD", "MI", "MN", "NC", "NY"]
ORG_WORDS = ["Mercy", "Valley", "Regional", "County", "Riverside", "Summit", "Lakeside", "Unity"]
ORG_KINDS = ["Hospital", "Medical Center", "Health System", "Clinic", "Health Partners"]


@dataclass(frozen=True)
class MeasureKind:
    """A template of the measures every collaborative gets (cycled over its 30 measures)."""

    name: str
    type: MeasureType
    scoring: Scoring
    unit: str
    multiplier: float
    direction: ImprovementDirection


MEASURE_KINDS = (
    MeasureKind(
        "rate", MeasureType.OUTCOME, Scoring.PROPORTION, "%", 100.0, ImprovementDirection.INCREASE
    ),
    MeasureKind(
        "compliance",
        MeasureType.PROCESS,
        Scoring.PROPORTION,
        "%",
        100.0,
        ImprovementDirection.INCREASE,
    ),
    MeasureKind(
        "events", MeasureType.BALANCING, Scoring.COUNT, "events", 1.0, ImprovementDirection.DECREASE
    ),
    MeasureKind(
        "screened",
        MeasureType.PROCESS,
        Scoring.PROPORTION,
        "%",
        100.0,
        ImprovementDirection.INCREASE,
    ),
    MeasureKind(
        "length of stay",
        MeasureType.OUTCOME,
        Scoring.MEAN,
        "days",
        1.0,
        ImprovementDirection.DECREASE,
    ),
    MeasureKind(
        "adverse events",
        MeasureType.BALANCING,
        Scoring.RATE,
        "per 1,000 patient days",
        1000.0,
        ImprovementDirection.DECREASE,
    ),
)


@dataclass(frozen=True)
class Counts:
    """How many of each thing a scale makes."""

    sponsors: int
    collaboratives: int
    teams: int
    measures_per_collaborative: int = MEASURES_PER_COLLABORATIVE
    months: int = MONTHS

    @classmethod
    def at(cls, scale: float) -> Counts:
        """The counts of ``scale`` (1 = 5 sponsors, 40 collaboratives, 1,200 teams)."""
        if scale <= 0:
            raise ValueError("the scale must be positive")
        collaboratives = max(1, round(40 * scale))
        return cls(
            sponsors=max(1, round(5 * scale)),
            collaboratives=collaboratives,
            teams=max(collaboratives, round(1200 * scale)),
        )

    @property
    def data_points(self) -> int:
        """Every team reports every measure of its collaborative every month."""
        return self.teams * self.measures_per_collaborative * self.months


@dataclass(frozen=True)
class BenchClient:
    """An ADMIN client of one sponsor, with its secret in clear (the database is throw-away)."""

    sponsor_slug: str
    client_id: str
    secret: str


@dataclass
class Dataset:
    """What the generator made: counts, database URL, and a client per sponsor."""

    url: str
    scale: float
    seed: int
    counts: Counts
    clients: dict[str, BenchClient] = field(default_factory=dict)
    load_seconds: float = 0.0

    def summary(self) -> str:
        """One line for logs and the report."""
        c = self.counts
        return (
            f"scale {self.scale:g} (seed {self.seed}): {c.sponsors} sponsors, "
            f"{c.collaboratives} collaboratives, {c.teams} teams, "
            f"{c.collaboratives * c.measures_per_collaborative} measures, "
            f"{c.data_points:,} data points; loaded in {self.load_seconds:.1f} s"
        )


# --- databases -------------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    """A libpq/asyncpg DSN for a SQLAlchemy URL (``postgresql+asyncpg://`` → ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``url``."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str = "collabx_bench") -> str:
    """A new, empty database on the server of ``server_url`` (never an existing one)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    """Drop the database of ``url`` (connected through the server URL, forcing sessions out)."""
    name = make_url(url).database
    if not name or not name.startswith("collabx_bench"):
        raise ValueError(f"refusing to drop {name!r}: not a bench database")
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


# --- rows ------------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (deterministic)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def month(index: int) -> str:
    """``YYYY-MM`` of month ``index`` of the dataset (0 = 2023-07)."""
    year, month0 = divmod(FIRST_MONTH[1] - 1 + index, 12)
    return f"{FIRST_MONTH[0] + year:04d}-{month0 + 1:02d}"


def split_weighted(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` with weight 1/sqrt(rank), largest remainders, each ≥ 1."""
    weights = [1 / math.sqrt(i + 1) for i in range(parts)]
    raw = [total * w / sum(weights) for w in weights]
    out = [max(1, int(r)) for r in raw]
    order = sorted(range(parts), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    rest, i = total - sum(out), 0
    while rest > 0:
        out[order[i % parts]] += 1
        rest -= 1
        i += 1
    while rest < 0:
        largest = max(range(parts), key=lambda k: out[k])
        out[largest] -= 1
        rest += 1
    return out


def _plain(value: object) -> object:
    """A value as asyncpg's COPY wants it (enums as their strings, JSON as text)."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, str):
        return str(value)  # StrEnum members become plain strings
    return value


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def columns_for(model: type[Base], given: Iterable[str]) -> tuple[list[str], dict[str, object]]:
    """The columns COPY writes for ``model``: those ``given`` plus every other NOT NULL column
    without a server default, filled from its scalar model default.

    Raises when such a column has no usable default: the model grew a column the generator must
    learn about, and a silently different table would make the numbers meaningless.
    """
    given = list(given)
    filled: dict[str, object] = {}
    for column in _table(model).columns:
        if column.name in given or column.nullable or column.server_default is not None:
            continue
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            filled[column.name] = _plain(default.arg)  # type: ignore[attr-defined]
        else:
            raise RuntimeError(
                f"{model.__name__}.{column.name} is NOT NULL without a scalar default:"
                " teach bench/generate.py to fill it"
            )
    return [*given, *filled], filled


async def copy_rows(
    connection: asyncpg.Connection,
    model: type[Base],
    rows: Iterable[Mapping[str, object]],
    columns: Sequence[str],
) -> int:
    """COPY ``rows`` (dicts with exactly ``columns``) into ``model``'s table; the row count."""
    names, filled = columns_for(model, columns)
    extra = tuple(filled.values())
    count = 0

    def records() -> Iterator[tuple[object, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield (*(_plain(row[name]) for name in columns), *extra)

    await connection.copy_records_to_table(_table(model).name, records=records(), columns=names)
    return count


# --- the generator ---------------------------------------------------------------------------


@dataclass
class _Made:
    """Generated ids the later tables refer to."""

    sponsor_ids: list[uuid.UUID] = field(default_factory=list)
    sponsor_slugs: list[str] = field(default_factory=list)
    collaboratives: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    measures: dict[int, list[tuple[uuid.UUID, MeasureKind]]] = field(default_factory=dict)
    teams: list[tuple[uuid.UUID, uuid.UUID, int]] = field(default_factory=list)
    """(sponsor id, team id, collaborative index)"""


def _times(rng: random.Random, start: datetime) -> dict[str, datetime]:
    moment = start + timedelta(seconds=rng.randrange(0, 86_400 * 30))
    return {"created_at": moment, "updated_at": moment}


def _programs(rng: random.Random, counts: Counts, made: _Made) -> dict[str, list[dict[str, Any]]]:
    """Sponsors, organizations, collaboratives, teams, measures, versions and measure sets."""
    tables: dict[str, list[dict[str, Any]]] = {
        name: []
        for name in (
            "sponsors",
            "organizations",
            "collaboratives",
            "teams",
            "measures",
            "versions",
            "sets",
        )
    }
    for i in range(counts.sponsors):
        sponsor_id, slug = _uuid(rng), f"bench-sponsor-{i + 1:02d}"
        made.sponsor_ids.append(sponsor_id)
        made.sponsor_slugs.append(slug)
        tables["sponsors"].append(
            {
                "id": sponsor_id,
                "slug": slug,
                "name": f"Bench Sponsor {i + 1}",
                "description": "",
                "created_at": BASE_TIME,
            }
        )
    for c in range(counts.collaboratives):
        sponsor_id = made.sponsor_ids[c % counts.sponsors]
        collaborative_id = _uuid(rng)
        made.collaboratives.append((sponsor_id, collaborative_id))
        start = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 180))
        topic = TOPICS[c % len(TOPICS)]
        tables["collaboratives"].append(
            {
                "sponsor_id": sponsor_id,
                "id": collaborative_id,
                "code": f"collab-{c + 1:03d}",
                "name": f"{topic} Collaborative {c + 1}",
                "topic": topic,
                "aim": "",
                "description": "",
                "status": CollaborativeStatus.ACTIVE,
                "start_date": start,
                "end_date": start + timedelta(days=rng.randrange(540, 900)),
                **_times(rng, BASE_TIME),
            }
        )
        made.measures[c] = []
        for j in range(counts.measures_per_collaborative):
            kind = MEASURE_KINDS[j % len(MEASURE_KINDS)]
            measure_id, code = _uuid(rng), f"c{c + 1:03d}-m{j + 1:02d}"
            made.measures[c].append((measure_id, kind))
            times = _times(rng, BASE_TIME)
            tables["measures"].append(
                {"sponsor_id": sponsor_id, "id": measure_id, "code": code, "current_version": 1}
                | times
            )
            tables["versions"].append(
                {
                    "sponsor_id": sponsor_id,
                    "id": _uuid(rng),
                    "measure_id": measure_id,
                    "version": 1,
                    "name": f"{topic} {kind.name} #{j + 1}",
                    "description": "",
                    "type": kind.type,
                    "scoring": kind.scoring,
                    "numerator": "",
                    "denominator": "",
                    "exclusions": "",
                    "unit": kind.unit,
                    "multiplier": kind.multiplier,
                    "improvement_direction": kind.direction,
                    "data_source": "",
                    "sampling": "",
                    "frequency": "MONTHLY",
                    "fhir_canonical": f"https://collabx.example.org/fhir/Measure/{code}",
                    "external_codes": {},
                    "created_at": times["created_at"],
                }
            )
            goal = (
                round(rng.uniform(60, 95), 1)
                if kind.scoring is Scoring.PROPORTION
                else float(rng.randrange(1, 20))
            )
            tables["sets"].append(
                {
                    "sponsor_id": sponsor_id,
                    "collaborative_id": collaborative_id,
                    "measure_id": measure_id,
                    "required": True,
                    "goal": goal,
                    "goal_description": "",
                    "position": j,
                    "added_at": times["created_at"],
                }
            )
    number = 0
    for c, size in enumerate(split_weighted(counts.teams, counts.collaboratives)):
        sponsor_id, collaborative_id = made.collaboratives[c]
        for _ in range(size):
            number += 1
            organization_id, team_id = _uuid(rng), _uuid(rng)
            org_name = f"{rng.choice(ORG_WORDS)} {rng.choice(ORG_KINDS)} #{number}"
            tables["organizations"].append(
                {
                    "sponsor_id": sponsor_id,
                    "id": organization_id,
                    "code": f"org-{number:05d}",
                    "name": org_name,
                    "city": "",
                    "state": rng.choice(STATES),
                    "region": "",
                    **_times(rng, BASE_TIME),
                }
            )
            tables["teams"].append(
                {
                    "sponsor_id": sponsor_id,
                    "id": team_id,
                    "code": f"team-{number:05d}",
                    "name": f"{org_name} improvement team",
                    "organization_id": organization_id,
                    "collaborative_id": collaborative_id,
                    "joined_on": date(2023, 6, 1),
                    "withdrawn_on": None,
                    **_times(rng, BASE_TIME),
                }
            )
            made.teams.append((sponsor_id, team_id, c))
    return tables


POINT_COLUMNS = (
    "sponsor_id",
    "id",
    "team_id",
    "measure_id",
    "measure_version",
    "period",
    "stratum",
    "numerator",
    "denominator",
    "value",
    "annotation",
    "status",
    "source",
    "receipt_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)


def _points(rng: random.Random, counts: Counts, made: _Made) -> Iterator[dict[str, object]]:
    """Every team's points of every measure of its collaborative, month by month.

    A point was written some time in the 20 days after its month ended, so the delta export
    (ordered by ``updated_at``) walks the data roughly in time order.
    """
    periods = [month(k) for k in range(counts.months)]
    written = [
        datetime(int(p[:4]), int(p[5:]), 1, tzinfo=UTC) + timedelta(days=32) for p in periods
    ]
    for sponsor_id, team_id, c in made.teams:
        for measure_id, kind in made.measures[c]:
            if kind.scoring is Scoring.PROPORTION:
                base, trend, size = (
                    rng.uniform(0.2, 0.8),
                    rng.uniform(-0.01, 0.02),
                    rng.randrange(20, 200),
                )
            elif kind.scoring is Scoring.RATE:
                base, trend, size = (
                    rng.uniform(1, 8),
                    rng.uniform(-0.1, 0.05),
                    rng.randrange(500, 3000),
                )
            else:
                base, trend, size = rng.uniform(2, 40), rng.uniform(-0.2, 0.1), 0
            for k, period in enumerate(periods):
                numerator: int | None = None
                denominator: int | None = None
                value: float | None = None
                if kind.scoring is Scoring.PROPORTION:
                    denominator = max(1, int(size * rng.uniform(0.8, 1.2)))
                    share = min(1.0, max(0.0, base + trend * k + rng.gauss(0, 0.05)))
                    numerator = round(denominator * share)
                elif kind.scoring is Scoring.RATE:
                    denominator = max(1, int(size * rng.uniform(0.8, 1.2)))
                    per_thousand = max(0.0, base + trend * k + rng.gauss(0, 0.5))
                    numerator = round(denominator * per_thousand / 1000)
                elif kind.scoring is Scoring.COUNT:
                    value = float(max(0, round(rng.gauss(base + trend * k, math.sqrt(base)))))
                else:
                    value = round(max(0.5, rng.gauss(base / 5 + trend * k / 5, 0.4)), 2)
                moment = written[k] + timedelta(seconds=rng.randrange(0, 86_400 * 20))
                yield {
                    "sponsor_id": sponsor_id,
                    "id": _uuid(rng),
                    "team_id": team_id,
                    "measure_id": measure_id,
                    "measure_version": 1,
                    "period": period,
                    "stratum": "",
                    "numerator": numerator,
                    "denominator": denominator,
                    "value": value,
                    "annotation": "",
                    "status": DataPointStatus.SUBMITTED,
                    "source": "import",
                    "receipt_id": None,
                    "created_at": moment,
                    "created_by": LOADED_BY,
                    "updated_at": moment,
                    "updated_by": LOADED_BY,
                }


async def _create_clients(url: str, slugs: Sequence[str]) -> dict[str, BenchClient]:
    """One ADMIN client per sponsor, through the project's own client code."""
    from db.queries.auth import create_client
    from db.sessions import create_engine, create_sessionmaker

    engine = create_engine(url, pool_size=1)
    clients: dict[str, BenchClient] = {}
    try:
        async with create_sessionmaker(engine).begin() as session:
            for slug in slugs:
                record, secret = await create_client(
                    session,
                    sponsor_slug=slug,
                    kind=ClientKind.ADMIN,
                    scopes=DEFAULT_SCOPES[ClientKind.ADMIN],
                    client_id=f"bench-admin-{slug}",
                    name=f"bench admin of {slug}",
                )
                clients[slug] = BenchClient(slug, record.client_id, secret)
    finally:
        await engine.dispose()
    return clients


async def generate(
    url: str, scale: float, *, seed: int = DEFAULT_SEED, jit: bool = False
) -> Dataset:
    """Migrate the (empty) database of ``url`` to head and load the dataset of ``scale``.

    ``jit=False`` switches PostgreSQL's JIT off for this database (as ``../shared/peer-bench``
    does for every contender): it compiles high-cost plans and adds tens of ms to single queries.
    """
    from db.migrations import upgrade_to_head

    started = time.perf_counter()
    counts = Counts.at(scale)
    await asyncio.to_thread(upgrade_to_head, url)
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    made = _Made()
    tables = _programs(rng, counts, made)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if not jit:
            name = make_url(url).database
            await connection.execute(f'ALTER DATABASE "{name}" SET jit = off')
        for model, key in (
            (Sponsor, "sponsors"),
            (Organization, "organizations"),
            (Collaborative, "collaboratives"),
            (Measure, "measures"),
            (MeasureVersion, "versions"),
            (CollaborativeMeasure, "sets"),
            (Team, "teams"),
        ):
            rows = tables[key]
            await copy_rows(connection, model, rows, list(rows[0]))
        written = await copy_rows(connection, DataPoint, _points(rng, counts, made), POINT_COLUMNS)
        assert written == counts.data_points, (written, counts.data_points)
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    dataset = Dataset(url=url, scale=scale, seed=seed, counts=counts)
    dataset.clients = await _create_clients(url, made.sponsor_slugs)
    dataset.load_seconds = time.perf_counter() - started
    return dataset


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--url", required=True, help="SQLAlchemy URL of an EMPTY PostgreSQL database to fill"
    )
    args = parser.parse_args()
    dataset = await generate(args.url, args.scale, seed=args.seed)
    print(dataset.summary())
    print(json.dumps({slug: c.__dict__ for slug, c in dataset.clients.items()}, indent=2))


if __name__ == "__main__":
    asyncio.run(_main())
