"""The floor: every question answered by hand-written SQL through asyncpg, no HTTP, no GraphQL.

Each function takes an asyncpg connection and answers one question the way the best hand-written
client of the database would: one statement where one will do, prepared by asyncpg's statement
cache, rows decoded but no response document built (as ``../shared/peer-bench``'s floor). The
``*_document`` helpers turn floor rows into the API's response shape, for verification only
(outside the timed path).

The floor answers exactly what the API answers: the same tenant scoping (``sponsor_id``), the
same stratum (all patients), the same value rule (stored value, else numerator / denominator x
the multiplier of the definition version the point was reported under), the same delta export
(live points and tombstones, ordered by (updated_at, id), period locks applied).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from analytics.runs import RunChart, run_chart
from bench.targets import Q1_POINTS, Q1_TEAMS, Batch, Targets, Values

FLOOR_CLIENT = "bench-floor"
"""``created_by``/``updated_by`` of the floor's Q3 writes (in ``Q3_UPSERT_SQL``)."""

Q1_COLLABORATIVE_SQL = """
SELECT code, name, topic, start_date, end_date
FROM collaboratives WHERE sponsor_id = $1 AND id = $2
"""

Q1_SERIES_SQL = """
WITH t AS (
    SELECT t.id, t.code, t.name, o.name AS organization_name, o.state
    FROM teams t
    JOIN organizations o ON o.sponsor_id = t.sponsor_id AND o.id = t.organization_id
    WHERE t.sponsor_id = $1 AND t.collaborative_id = $2
    ORDER BY t.code
    LIMIT $3
)
SELECT t.code AS team_code, t.name AS team_name, t.organization_name, t.state,
       m.code AS measure_code, v.name AS measure_name, v.type, v.unit,
       d.period, d.numerator, d.denominator, d.value
FROM t
CROSS JOIN collaborative_measures cm
JOIN measures m ON m.sponsor_id = cm.sponsor_id AND m.id = cm.measure_id
JOIN measure_versions v
  ON v.sponsor_id = m.sponsor_id AND v.measure_id = m.id AND v.version = m.current_version
LEFT JOIN LATERAL (
    SELECT p.period, p.numerator, p.denominator,
           coalesce(p.value, p.numerator::float8 / nullif(p.denominator, 0) * pv.multiplier)
             AS value
    FROM data_points p
    LEFT JOIN measure_versions pv
      ON pv.sponsor_id = p.sponsor_id AND pv.measure_id = p.measure_id
     AND pv.version = p.measure_version
    WHERE p.sponsor_id = $1 AND p.team_id = t.id AND p.measure_id = m.id AND p.stratum = ''
    ORDER BY p.period DESC
    LIMIT $4
) d ON true
WHERE cm.sponsor_id = $1 AND cm.collaborative_id = $2
ORDER BY t.code, cm.position, m.id, d.period
"""

Q2_SQL = """
SELECT d.period,
       count(*) FILTER (WHERE d.numerator IS NOT NULL AND d.denominator > 0) AS teams_reporting,
       sum(d.numerator) AS numerator,
       sum(d.denominator) AS denominator,
       sum(d.numerator)::float8 / nullif(sum(d.denominator), 0) * $4 AS rate,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY d.numerator::float8 / nullif(d.denominator, 0) * $4) AS median
FROM data_points d
WHERE d.sponsor_id = $1 AND d.measure_id = $3 AND d.stratum = ''
  AND d.team_id IN (SELECT id FROM teams WHERE sponsor_id = $1 AND collaborative_id = $2)
GROUP BY d.period
ORDER BY d.period
"""

Q3_UPSERT_SQL = """
INSERT INTO data_points (
    sponsor_id, id, team_id, measure_id, measure_version, period, stratum, numerator,
    denominator, value, annotation, status, source, receipt_id, created_at, created_by,
    updated_at, updated_by)
SELECT $1, gen_random_uuid(), r.team_id, r.measure_id, 1, r.period, '', r.numerator,
       r.denominator, r.value, '', 'SUBMITTED', 'bench', NULL, now(), 'bench-floor', now(),
       'bench-floor'
FROM unnest($2::uuid[], $3::uuid[], $4::varchar[], $5::bigint[], $6::bigint[],
            $7::float8[]) AS r(team_id, measure_id, period, numerator, denominator, value)
ON CONFLICT (sponsor_id, team_id, measure_id, period, stratum) DO UPDATE SET
    numerator = excluded.numerator,
    denominator = excluded.denominator,
    value = excluded.value,
    updated_at = excluded.updated_at,
    updated_by = excluded.updated_by
"""

Q4_PAGE_SQL = """
WITH page AS (
    (SELECT id, team_id, measure_id, measure_version, period, stratum, numerator, denominator,
            value, annotation, status, false AS deleted, updated_at, updated_by, receipt_id
     FROM data_points
     WHERE sponsor_id = $1 AND updated_at >= $2 AND (updated_at > $2 OR id > $3)
     ORDER BY updated_at, id
     LIMIT $4)
    UNION ALL
    (SELECT id, team_id, measure_id, measure_version, period, stratum, NULL, NULL, NULL, '',
            NULL, true, deleted_at, deleted_by, receipt_id
     FROM data_point_tombstones
     WHERE sponsor_id = $1 AND deleted_at >= $2 AND (deleted_at > $2 OR id > $3)
     ORDER BY deleted_at, id
     LIMIT $4)
    ORDER BY updated_at, id
    LIMIT $4
)
SELECT p.id, t.code AS team_code, m.code AS measure_code, p.measure_version, p.period,
       p.stratum, p.numerator, p.denominator, p.value, p.annotation,
       CASE WHEN p.deleted THEN NULL
            WHEN l.through_period IS NOT NULL AND p.period <= l.through_period THEN 'LOCKED'
            ELSE p.status END AS status,
       p.deleted, p.updated_at, p.updated_by, p.receipt_id
FROM page p
JOIN teams t ON t.sponsor_id = $1 AND t.id = p.team_id
JOIN measures m ON m.sponsor_id = $1 AND m.id = p.measure_id
LEFT JOIN period_locks l ON l.sponsor_id = $1 AND l.collaborative_id = t.collaborative_id
ORDER BY p.updated_at, p.id
"""

Q5_SQL = """
SELECT t.code AS team_code, o.code AS organization_code, p.period, p.numerator,
       p.denominator, p.value, p.measure_version, p.updated_at
FROM data_points p
JOIN teams t ON t.sponsor_id = p.sponsor_id AND t.id = p.team_id
JOIN organizations o ON o.sponsor_id = t.sponsor_id AND o.id = t.organization_id
WHERE p.sponsor_id = $1 AND p.measure_id = $2 AND p.period = $3 AND p.stratum = ''
ORDER BY t.code
"""

EPOCH = datetime.fromisoformat("0001-01-01T00:00:00+00:00")
NIL = uuid.UUID(int=0)


# --- the questions ---------------------------------------------------------------------------


async def q1(connection: Any, targets: Targets) -> tuple[Any, list[Any]]:
    """Q1 dashboard: the collaborative, its first 50 teams, each one's last 12 points of every
    measure of the set (two statements: the header and one LATERAL query)."""
    header = await connection.fetchrow(
        Q1_COLLABORATIVE_SQL, targets.sponsor_id, targets.collaborative_id
    )
    rows = await connection.fetch(
        Q1_SERIES_SQL, targets.sponsor_id, targets.collaborative_id, Q1_TEAMS, Q1_POINTS
    )
    return header, rows


async def q2(connection: Any, targets: Targets) -> list[Any]:
    """Q2 aggregate: per month, teams reporting, Σnum, Σden, pooled rate, median team rate."""
    rows: list[Any] = await connection.fetch(
        Q2_SQL,
        targets.sponsor_id,
        targets.collaborative_id,
        targets.measure_id,
        targets.multiplier,
    )
    return rows


async def q2_chart(connection: Any, targets: Targets) -> tuple[list[Any], RunChart]:
    """Q2 with the run chart of the pooled rates (computed by ``analytics.runs``)."""
    rows = await q2(connection, targets)
    return rows, run_chart([row["rate"] for row in rows])


async def q3(connection: Any, batch: Batch, values: list[Values]) -> int:
    """Q3 ingest: one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE`` per batch."""
    await connection.execute(
        Q3_UPSERT_SQL,
        batch.rows[0].sponsor_id,
        [row.team_id for row in batch.rows],
        [row.measure_id for row in batch.rows],
        [row.period for row in batch.rows],
        [v.numerator for v in values],
        [v.denominator for v in values],
        [v.value for v in values],
    )
    return len(batch.rows)


async def q4_page(
    connection: Any, sponsor_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, size: int
) -> list[Any]:
    """One page of the delta export after the keyset ``after`` (None: from the start)."""
    moment, point_id = after if after is not None else (EPOCH, NIL)
    rows: list[Any] = await connection.fetch(Q4_PAGE_SQL, sponsor_id, moment, point_id, size)
    return rows


async def q4(connection: Any, sponsor_id: uuid.UUID, points: int, page_size: int) -> list[Any]:
    """Q4 export: the first ``points`` rows of the delta export, page by page (keyset)."""
    out: list[Any] = []
    after: tuple[datetime, uuid.UUID] | None = None
    while len(out) < points:
        page = await q4_page(connection, sponsor_id, after, min(page_size, points - len(out)))
        out.extend(page)
        if len(page) < page_size:
            break
        after = (page[-1]["updated_at"], page[-1]["id"])
    return out


async def q5(connection: Any, targets: Targets) -> list[Any]:
    """Q5 FHIR search: the points one measure's summary MeasureReports carry for one month."""
    rows: list[Any] = await connection.fetch(
        Q5_SQL, targets.sponsor_id, targets.measure_id, targets.last_period
    )
    return rows


# --- documents in the API's shape (verification only) ----------------------------------------


def q1_document(header: Any, rows: list[Any]) -> dict[str, Any]:
    """The ``collaborative`` object of the API's Q1 response, from the floor's rows."""
    teams: list[dict[str, Any]] = []
    for row in rows:
        if not teams or teams[-1]["code"] != row["team_code"]:
            teams.append(
                {
                    "code": row["team_code"],
                    "name": row["team_name"],
                    "organization": {"name": row["organization_name"], "state": row["state"]},
                    "series": [],
                }
            )
        series = teams[-1]["series"]
        if not series or series[-1]["measure"]["code"] != row["measure_code"]:
            series.append(
                {
                    "measure": {
                        "code": row["measure_code"],
                        "name": row["measure_name"],
                        "type": row["type"],
                        "unit": row["unit"],
                    },
                    "points": [],
                }
            )
        if row["period"] is not None:
            series[-1]["points"].append(
                {
                    "period": row["period"],
                    "numerator": row["numerator"],
                    "denominator": row["denominator"],
                    "value": row["value"],
                }
            )
    return {
        "code": header["code"],
        "name": header["name"],
        "topic": header["topic"],
        "startDate": header["start_date"].isoformat() if header["start_date"] else None,
        "endDate": header["end_date"].isoformat() if header["end_date"] else None,
        "teams": {"nodes": teams},
    }


def q2_points(rows: list[Any]) -> list[dict[str, Any]]:
    """The aggregate points of the API's Q2 response, from the floor's rows."""
    return [
        {
            "period": row["period"],
            "teamsReporting": row["teams_reporting"],
            "numerator": None if row["numerator"] is None else int(row["numerator"]),
            "denominator": None if row["denominator"] is None else int(row["denominator"]),
            "rate": row["rate"],
            "medianOfTeamRates": row["median"],
        }
        for row in rows
    ]


def q2_chart_summary(chart: RunChart) -> dict[str, Any]:
    """What verification compares of a run chart: centre lines, run statistics, signals."""
    return {
        "parts": [
            {
                "centerLine": part.center_line,
                "longestRun": part.longest_run,
                "longestRunLimit": part.longest_run_limit,
                "crossings": part.crossings,
                "crossingsLimit": part.crossings_limit,
            }
            for part in chart.parts
        ],
        "signals": sorted(signal.rule.value for signal in chart.signals),
    }


def q4_rows(rows: list[Any]) -> list[dict[str, Any]]:
    """Export rows in the API's field names (without the opaque global id)."""
    return [
        {
            "team": row["team_code"],
            "measure": row["measure_code"],
            "period": row["period"],
            "stratum": row["stratum"],
            "numerator": row["numerator"],
            "denominator": row["denominator"],
            "value": row["value"],
            "annotation": row["annotation"],
            "status": row["status"],
            "deleted": row["deleted"],
            "updatedAt": row["updated_at"],
            "updatedBy": row["updated_by"],
        }
        for row in rows
    ]
