"""What every question asks about, chosen from the loaded data, and the Q3 ingest batches.

The API and the floor get the same targets, so they answer exactly the same questions: Q1/Q2 the
collaborative with the most teams and its first PROPORTION measure (as ``../shared/peer-bench``
does), Q4 the sponsor with the most points, Q5 that measure in the last month.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from db.enums import Scoring

Q1_TEAMS = 50
Q1_POINTS = 12
BATCH_ROWS = 1_000


@dataclass(frozen=True)
class Targets:
    """The objects the questions name (ids for the floor, codes for the API)."""

    sponsor_id: uuid.UUID
    sponsor_slug: str
    collaborative_id: uuid.UUID
    collaborative_code: str
    collaborative_teams: int
    measure_id: uuid.UUID
    measure_code: str
    measure_canonical: str | None
    multiplier: float
    months: int
    last_period: str
    measures_in_set: int
    export_sponsor_id: uuid.UUID
    export_sponsor_slug: str
    export_available: int

    @property
    def expected_q1_points(self) -> int:
        """Points of the Q1 document: teams x measures x min(12, months)."""
        return (
            min(Q1_TEAMS, self.collaborative_teams)
            * self.measures_in_set
            * min(Q1_POINTS, self.months)
        )


async def pick_targets(connection: Any) -> Targets:
    """The targets of the loaded dataset (``connection`` is an asyncpg connection)."""
    top = await connection.fetchrow(
        """
        SELECT t.sponsor_id, s.slug, c.id, c.code, count(*) AS teams
        FROM teams t
        JOIN collaboratives c ON c.sponsor_id = t.sponsor_id AND c.id = t.collaborative_id
        JOIN sponsors s ON s.id = t.sponsor_id
        GROUP BY t.sponsor_id, s.slug, c.id, c.code
        ORDER BY count(*) DESC, c.code
        LIMIT 1
        """
    )
    measure = await connection.fetchrow(
        """
        SELECT m.id, m.code, v.multiplier, v.fhir_canonical
        FROM collaborative_measures cm
        JOIN measures m ON m.sponsor_id = cm.sponsor_id AND m.id = cm.measure_id
        JOIN measure_versions v
          ON v.sponsor_id = m.sponsor_id AND v.measure_id = m.id AND v.version = m.current_version
        WHERE cm.sponsor_id = $1 AND cm.collaborative_id = $2 AND v.scoring = $3
        ORDER BY cm.position, m.id
        LIMIT 1
        """,
        top[0],
        top[2],
        Scoring.PROPORTION.value,
    )
    in_set = await connection.fetchval(
        "SELECT count(*) FROM collaborative_measures"
        " WHERE sponsor_id = $1 AND collaborative_id = $2",
        top[0],
        top[2],
    )
    periods = await connection.fetch(
        "SELECT DISTINCT period FROM data_points WHERE sponsor_id = $1 AND measure_id = $2"
        " ORDER BY period",
        top[0],
        measure[0],
    )
    export = await connection.fetchrow(
        """
        SELECT p.sponsor_id, s.slug, count(*)
        FROM data_points p JOIN sponsors s ON s.id = p.sponsor_id
        GROUP BY p.sponsor_id, s.slug ORDER BY count(*) DESC, s.slug LIMIT 1
        """
    )
    return Targets(
        sponsor_id=top[0],
        sponsor_slug=top[1],
        collaborative_id=top[2],
        collaborative_code=top[3],
        collaborative_teams=int(top[4]),
        measure_id=measure[0],
        measure_code=measure[1],
        measure_canonical=measure[3],
        multiplier=float(measure[2]),
        months=len(periods),
        last_period=periods[-1][0],
        measures_in_set=int(in_set),
        export_sponsor_id=export[0],
        export_sponsor_slug=export[1],
        export_available=int(export[2]),
    )


@dataclass(frozen=True)
class BatchRow:
    """One key of an ingest batch, with what each side needs: ids (floor) and codes (API)."""

    sponsor_id: uuid.UUID
    team_id: uuid.UUID
    team_code: str
    measure_id: uuid.UUID
    measure_code: str
    scoring: Scoring
    period: str


@dataclass(frozen=True)
class Values:
    """New values for a row: numerator/denominator for ratio scorings, else a value."""

    numerator: int | None
    denominator: int | None
    value: float | None


@dataclass(frozen=True)
class Batch:
    """Existing keys of a few teams of one sponsor (so every row takes the update path)."""

    sponsor_slug: str
    rows: tuple[BatchRow, ...]


async def make_batches(connection: Any, size: int = BATCH_ROWS) -> list[Batch]:
    """Team-disjoint batches of ``size`` existing keys: each batch is the rows of consecutive
    teams of one sponsor (two teams at scale 1: 2 x 30 measures x 18 months, cut at 1,000).

    Batches share no team, so concurrent calls never wait on each other's per-team locks (EHR
    integrations push their own teams' data); each batch is sorted by key.
    """
    rows = await connection.fetch(
        """
        SELECT p.sponsor_id, s.slug, p.team_id, t.code, p.measure_id, m.code, v.scoring, p.period
        FROM data_points p
        JOIN sponsors s ON s.id = p.sponsor_id
        JOIN teams t ON t.sponsor_id = p.sponsor_id AND t.id = p.team_id
        JOIN measures m ON m.sponsor_id = p.sponsor_id AND m.id = p.measure_id
        JOIN measure_versions v
          ON v.sponsor_id = m.sponsor_id AND v.measure_id = m.id AND v.version = m.current_version
        WHERE p.stratum = ''
        ORDER BY s.slug, t.code, m.code, p.period
        """
    )
    teams: list[tuple[str, list[BatchRow]]] = []
    for sponsor_id, slug, team_id, team_code, measure_id, measure_code, scoring, period in rows:
        if not teams or teams[-1][1][0].team_id != team_id:
            teams.append((slug, []))
        teams[-1][1].append(
            BatchRow(
                sponsor_id, team_id, team_code, measure_id, measure_code, Scoring(scoring), period
            )
        )
    batches: list[Batch] = []
    current: list[BatchRow] = []
    current_slug = ""
    for slug, team_rows in teams:
        if slug != current_slug:
            current, current_slug = [], slug
        current.extend(team_rows)
        if len(current) >= size:  # the rest of this team's rows are left out: no team is shared
            batches.append(Batch(slug, tuple(current[:size])))
            current = []
    return batches


def new_values(batch: Batch, salt: int) -> list[Values]:
    """Fresh values for every row of ``batch`` (deterministic in ``salt``): each request writes
    values that differ from the stored ones, so the API updates rather than counts unchanged."""
    rng = random.Random(salt)  # noqa: S311 - reproducible data, not secrets
    values: list[Values] = []
    for row in batch.rows:
        if row.scoring in (Scoring.PROPORTION, Scoring.RATE, Scoring.RATIO):
            denominator = rng.randrange(20, 2000)
            numerator = rng.randrange(0, denominator + 1)
            values.append(Values(numerator, denominator, None))
        elif row.scoring is Scoring.COUNT:
            values.append(Values(None, None, float(rng.randrange(0, 60))))
        else:
            values.append(Values(None, None, rng.randrange(0, 500) / 4))
    return values
