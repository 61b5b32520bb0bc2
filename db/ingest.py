"""The one bulk path that writes measure data: GraphQL ``submitMeasureData`` /
``deleteMeasureData`` today, FHIR MeasureReport and file import later.

A call runs inside the caller's transaction (``async with sessionmaker.begin()``) and does, in
order:

1. **Idempotency** (Stripe style). With a key, the key row is inserted *first*, in the same
   transaction as the data, unique per (sponsor, client, key). A second call with the same key
   waits on that unique index until the first commits (PostgreSQL; SQLite serializes writers),
   then finds the key: same request hash → the first receipt is returned and nothing is written;
   another hash → :class:`IdempotencyMismatch`. Waiting longer than ``key_wait`` answers
   :class:`InProgress` (retryable). Keys live at least :data:`KEY_TTL`; an expired key is taken
   over by the next call that uses it. A rejected call (nothing accepted) does not keep its key,
   so the caller can fix the rows and retry with the same key (as Stripe does not keep requests
   that failed validation).
2. **Checks**, with a constant number of statements per batch (teams, measures with their
   current definitions, measure-set memberships, period locks, existing points, tombstones) —
   never one per row. Every rejected row gets conflicts ``{index, code, field, message}``.
3. **Writes**, only when not a dry run: on PostgreSQL one statement, ``INSERT … SELECT FROM
   unnest(…) ON CONFLICT DO UPDATE`` for every created or changed point, with the call's change
   set (the history: every point written, its values before and after, one row per call)
   inserted by the same statement (SQLite: one executemany of the same upsert, then the change
   set); unchanged rows (same numerator, denominator, value and annotation) are not written.
   Deletions record their change set too. The receipt and one ``audit_events`` row record the
   call.

On PostgreSQL the batch statements go to the session's asyncpg connection directly (same
transaction): they bind whole arrays and read thousands of rows, which SQLAlchemy would process
value by value. The compact GraphQL form (:class:`RowColumns`) becomes the same rows.

Concurrent writers of the same team are serialized (PostgreSQL: a transaction-level advisory
lock per team, taken in a fixed order; SQLite: the receipt is written first, which takes the
database's write lock before anything is read), so the created/updated counts and the history's
"before" values are exact.

The per-row codes (API.md): UNKNOWN_TEAM, UNKNOWN_MEASURE, NOT_ENROLLED, FORBIDDEN,
INVALID_COUNT, NUMERATOR_EXCEEDS_DENOMINATOR, ZERO_DENOMINATOR, MISSING_VALUE, INVALID_PERIOD,
FUTURE_PERIOD, PERIOD_LOCKED, DUPLICATE_ROW, INVALID_TEXT.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

import asyncpg
import orjson
from sqlalchemy import Table, and_, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import CODE_LENGTH, Base, utcnow
from db.enums import DataPointStatus, Scoring
from db.errors import DomainError, InvalidInput
from db.events import MAX_NOTIFY_BYTES, ChangeKind, DataChange, MeasureDataEvent, publish
from db.models import (
    CollaborativeMeasure,
    DataPoint,
    DataPointChangeSet,
    DataPointTombstone,
    IdempotencyKey,
    Measure,
    MeasureDataReceipt,
    MeasureVersion,
    PeriodLock,
    Team,
)
from db.models.exchange import IDEMPOTENCY_KEY_LENGTH
from db.queries.audit import Actor, record_event
from db.queries.data import Operation, Receipt, ReceiptStatus, RowConflict
from db.queries.history import (
    CREATE,
    DELETE,
    RESTORE,
    UPDATE,
    Values,
    change_set_document,
    value_columns,
)

T = TypeVar("T")

KEY_TTL = timedelta(hours=24)
"""How long an idempotency key is kept at least."""
MAX_COUNT = 2**53 - 1
"""Largest numerator or denominator: the largest integer every JSON parser reads exactly."""
ANNOTATION_LENGTH = 2_000
STRATUM_LENGTH = 64
MIN_YEAR = 1900
"""Earliest year of a period (as the ``Period`` scalar)."""
DEFAULT_KEY_WAIT = timedelta(seconds=10)
CHUNK = 1_000
"""Most values bound into one IN list (the backends cap the parameters of a statement)."""

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")
RATIO_SCORINGS = frozenset({Scoring.PROPORTION, Scoring.RATE, Scoring.RATIO})
"""Scorings whose data are a numerator and a denominator (the value is computed)."""

_LOCK_NAMESPACE = b"collabx.data_points.team:"


class BatchTooLarge(DomainError):
    """More rows than the configured limit; nothing was checked or written."""

    code = "BATCH_TOO_LARGE"

    def __init__(self, rows: int, max_rows: int) -> None:
        super().__init__(
            f"a batch holds at most {max_rows} rows; this one has {rows}: split it", field="rows"
        )
        self.rows = rows
        self.max_rows = max_rows


class IdempotencyMismatch(DomainError):
    """The idempotency key was used before with another request."""

    code = "IDEMPOTENCY_MISMATCH"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the idempotency key {key!r} was used with a different request; use a new key",
            field="idempotency_key",
        )
        self.key = key


class InProgress(DomainError):
    """Another call with the same idempotency key is still running; retry later."""

    code = "IN_PROGRESS"

    def __init__(self, key: str, retry_after: int = 1) -> None:
        super().__init__(
            f"a request with the idempotency key {key!r} is in progress; retry shortly",
            field="idempotency_key",
        )
        self.key = key
        self.retry_after = retry_after


class SubmittedRow(Protocol):
    """What ingest reads of a submitted row: :class:`RowInput`, or the GraphQL row input
    objects themselves (so a batch of them is not copied into tuples first)."""

    @property
    def team(self) -> str: ...
    @property
    def measure(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def numerator(self) -> int | float | None: ...
    @property
    def denominator(self) -> int | float | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def stratum(self) -> str: ...
    @property
    def annotation(self) -> str | None: ...


class RowInput(NamedTuple):
    """One submitted row. Counts arrive as JSON numbers (int or float) and are checked here, so
    that a fraction is a per-row INVALID_COUNT rather than a failure of the whole request. A
    tuple: a batch builds thousands (a third of a frozen dataclass's cost each)."""

    team: str
    measure: str
    period: str
    numerator: int | float | None = None
    denominator: int | float | None = None
    value: float | None = None
    stratum: str = ""
    annotation: str | None = None


@dataclass(frozen=True)
class RowColumns:
    """A batch as parallel columns: row ``i`` is the ``i``-th value of every column (the compact
    form of ``submitMeasureDataColumns``). ``team``, ``measure`` and ``period`` are required; an
    omitted optional column is null (``stratum``: '') in every row. Same checks and request hash
    as the rows it stands for (:meth:`rows`)."""

    team: Sequence[str]
    measure: Sequence[str]
    period: Sequence[str]
    numerator: Sequence[int | float | None] | None = None
    denominator: Sequence[int | float | None] | None = None
    value: Sequence[float | None] | None = None
    stratum: Sequence[str] | None = None
    annotation: Sequence[str | None] | None = None

    def rows(self, max_rows: int) -> list[RowInput]:
        """The rows, or InvalidInput (columns of unequal lengths, field ``columns.<name>``) or
        BatchTooLarge — both before any row is built."""
        size = len(self.team)
        for name in (
            "measure",
            "period",
            "numerator",
            "denominator",
            "value",
            "stratum",
            "annotation",
        ):
            column = getattr(self, name)
            if column is not None and len(column) != size:
                raise InvalidInput(
                    f"every column holds one value per row: team has {size} values, "
                    f"{name} has {len(column)}",
                    field=f"columns.{name}",
                )
        if size > max_rows:
            raise BatchTooLarge(size, max_rows)
        if not size:
            raise InvalidInput("the columns must hold at least one row", field="columns")
        nothing: list[Any] = [None] * size
        return [
            RowInput(team, measure, period, numerator, denominator, value, stratum, annotation)
            for team, measure, period, numerator, denominator, value, stratum, annotation in zip(
                self.team,
                self.measure,
                self.period,
                nothing if self.numerator is None else self.numerator,
                nothing if self.denominator is None else self.denominator,
                nothing if self.value is None else self.value,
                [""] * size if self.stratum is None else self.stratum,
                nothing if self.annotation is None else self.annotation,
                strict=True,
            )
        ]


@dataclass(frozen=True)
class DeleteRowInput:
    """One point to delete, by its key."""

    team: str
    measure: str
    period: str
    stratum: str = ""


@dataclass(frozen=True)
class IngestOptions:
    """How a call runs. ``team_ids`` binds a client to teams (EHR integrations; None: any team of
    the sponsor). ``now`` fixes the clock (the current month decides FUTURE_PERIOD)."""

    atomic: bool = True
    dry_run: bool = False
    idempotency_key: str | None = None
    team_ids: frozenset[uuid.UUID] | None = None
    source: str = "graphql"
    max_rows: int = 10_000
    now: datetime | None = None
    key_wait: timedelta = DEFAULT_KEY_WAIT


# --- small helpers ---------------------------------------------------------------------------


def _table(model: type[Base]) -> Table:
    """The Core table of a model (Core inserts skip the ORM's per-row bookkeeping)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _month(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def period_problem(period: str) -> str | None:
    """Why ``period`` is not a ``YYYY-MM`` month, or None."""
    match = PERIOD_PATTERN.fullmatch(period)
    if match is None:
        return f"{period[:20]!r} is not a period 'YYYY-MM'"
    year, month = int(match.group(1)), int(match.group(2))
    if year < MIN_YEAR:
        return f"the year of a period is {MIN_YEAR} or later"
    if not 1 <= month <= 12:
        return "the month of a period is between 01 and 12"
    return None


def _findable(code: str) -> bool:
    """False for text no stored code can be (never sent to the database: PostgreSQL rejects
    NUL bytes)."""
    return bool(code) and "\x00" not in code and len(code) <= CODE_LENGTH


def _count(raw: object) -> int | str:
    """A whole count from a JSON number, or why it is not one."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return "must be a number"
    if isinstance(raw, float):
        if not math.isfinite(raw) or not raw.is_integer():
            return "must be a whole number"
        if abs(raw) > MAX_COUNT:
            return f"must be at most {MAX_COUNT}"
        raw = int(raw)
    if raw < 0:
        return "must not be negative"
    if raw > MAX_COUNT:
        return f"must be at most {MAX_COUNT}"
    return raw


def _canonical_number(value: int | float | None) -> int | float | None:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def request_hash(operation: Operation, atomic: bool, rows: Sequence[Any]) -> str:
    """SHA-256 of the canonical JSON of a request: what an idempotency key is bound to.

    Counts are compared as numbers (``3`` and ``3.0`` are the same request); a missing
    annotation equals an empty one. ``dryRun`` is not part of it: a dry run never stores a key,
    and the real call after it may use the same key.
    """
    canonical: list[Any] = []
    for row in rows:
        if operation is Operation.SUBMIT:
            canonical.append(
                [
                    row.team,
                    row.measure,
                    row.period,
                    row.stratum,
                    _canonical_number(row.numerator),
                    _canonical_number(row.denominator),
                    None if row.value is None else float(row.value),
                    row.annotation or "",
                ]
            )
        else:
            canonical.append([row.team, row.measure, row.period, row.stratum])
    document = json.dumps(
        [operation.value, atomic, canonical], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_key(team_id: uuid.UUID) -> int:
    digest = hashlib.sha256(_LOCK_NAMESPACE + team_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- lookups (a constant number of statements per batch) -------------------------------------


@dataclass(frozen=True)
class _TeamInfo:
    id: uuid.UUID
    collaborative_id: uuid.UUID
    withdrawn_on_month: str | None


@dataclass(frozen=True)
class _MeasureInfo:
    id: uuid.UUID
    version: int
    scoring: Scoring


class _Existing(NamedTuple):
    """A stored point as the checks and the history need it (a tuple: cheap to build)."""

    id: uuid.UUID
    measure_version: int
    numerator: int | None
    denominator: int | None
    value: float | None
    annotation: str
    status: DataPointStatus

    def values(self) -> Values:
        """The stored values, as a change set's ``before`` holds them."""
        return (
            self.measure_version,
            self.numerator,
            self.denominator,
            self.value,
            self.annotation,
            self.status.value,
        )


_STATUSES: dict[str, DataPointStatus] = {status.value: status for status in DataPointStatus}
"""Stored status text → enum (a dict lookup: calling an Enum costs microseconds per row)."""

Key = tuple[uuid.UUID, uuid.UUID, str, str]
"""(team id, measure id, period, stratum): the natural key of a data point in a sponsor."""


_TEAMS_POSTGRES = """
SELECT code, id, collaborative_id, withdrawn_on FROM teams
WHERE sponsor_id = $1 AND code = ANY(CAST($2 AS varchar[]))
"""
_MEASURES_POSTGRES = """
SELECT m.code, m.id, m.current_version, v.scoring
FROM measures AS m
JOIN measure_versions AS v
  ON v.sponsor_id = m.sponsor_id AND v.measure_id = m.id AND v.version = m.current_version
WHERE m.sponsor_id = $1 AND m.code = ANY(CAST($2 AS varchar[]))
"""
_MEMBERSHIPS_POSTGRES = """
SELECT collaborative_id, measure_id FROM collaborative_measures
WHERE sponsor_id = $1 AND collaborative_id = ANY(CAST($2 AS uuid[]))
  AND measure_id = ANY(CAST($3 AS uuid[]))
"""
_LOCKS_POSTGRES = """
SELECT collaborative_id, through_period FROM period_locks
WHERE sponsor_id = $1 AND collaborative_id = ANY(CAST($2 AS uuid[]))
"""
"""The lookups of a batch on PostgreSQL: one statement each, the codes or ids as one array
(SQLite: IN lists of at most :data:`CHUNK` values)."""


async def _teams(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Iterable[str]
) -> dict[str, _TeamInfo]:
    wanted = sorted({code for code in codes if _findable(code)})
    found: dict[str, _TeamInfo] = {}
    if _is_postgres(session):
        driver = await _driver(session)
        chunks: Iterable[Any] = [await driver.fetch(_TEAMS_POSTGRES, sponsor_id, wanted)]
    else:
        chunks = [
            await session.execute(
                select(Team.code, Team.id, Team.collaborative_id, Team.withdrawn_on).where(
                    Team.sponsor_id == sponsor_id, Team.code.in_(chunk)
                )
            )
            for chunk in _chunks(wanted)
        ]
    for result in chunks:
        for code, team_id, collaborative_id, withdrawn_on in result:
            month = None if withdrawn_on is None else f"{withdrawn_on:%Y-%m}"
            found[code] = _TeamInfo(team_id, collaborative_id, month)
    return found


async def _measures(
    session: AsyncSession, sponsor_id: uuid.UUID, codes: Iterable[str]
) -> dict[str, _MeasureInfo]:
    wanted = sorted({code for code in codes if _findable(code)})
    found: dict[str, _MeasureInfo] = {}
    if _is_postgres(session):
        driver = await _driver(session)
        for code, measure_id, version, scoring in await driver.fetch(
            _MEASURES_POSTGRES, sponsor_id, wanted
        ):
            found[code] = _MeasureInfo(measure_id, version, Scoring[scoring])
        return found
    for chunk in _chunks(wanted):
        result = await session.execute(
            select(Measure.code, Measure.id, Measure.current_version, MeasureVersion.scoring)
            .join(
                MeasureVersion,
                and_(
                    MeasureVersion.sponsor_id == Measure.sponsor_id,
                    MeasureVersion.measure_id == Measure.id,
                    MeasureVersion.version == Measure.current_version,
                ),
            )
            .where(Measure.sponsor_id == sponsor_id, Measure.code.in_(chunk))
        )
        for code, measure_id, version, scoring in result:
            found[code] = _MeasureInfo(measure_id, version, scoring)
    return found


async def _memberships(
    session: AsyncSession,
    sponsor_id: uuid.UUID,
    collaborative_ids: set[uuid.UUID],
    measure_ids: set[uuid.UUID],
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(collaborative, measure) pairs of the measure sets involved."""
    if not collaborative_ids or not measure_ids:
        return set()
    pairs: set[tuple[uuid.UUID, uuid.UUID]] = set()
    if _is_postgres(session):
        driver = await _driver(session)
        rows = await driver.fetch(
            _MEMBERSHIPS_POSTGRES, sponsor_id, list(collaborative_ids), list(measure_ids)
        )
        pairs.update((row[0], row[1]) for row in rows)
        return pairs
    measures = sorted(measure_ids)
    for chunk in _chunks(sorted(collaborative_ids)):
        for measure_chunk in _chunks(measures):
            result = await session.execute(
                select(
                    CollaborativeMeasure.collaborative_id, CollaborativeMeasure.measure_id
                ).where(
                    CollaborativeMeasure.sponsor_id == sponsor_id,
                    CollaborativeMeasure.collaborative_id.in_(chunk),
                    CollaborativeMeasure.measure_id.in_(measure_chunk),
                )
            )
            pairs.update((row[0], row[1]) for row in result)
    return pairs


async def _locks(
    session: AsyncSession, sponsor_id: uuid.UUID, collaborative_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Locked-through period of each collaborative that has a lock."""
    locks: dict[uuid.UUID, str] = {}
    if _is_postgres(session):
        if collaborative_ids:
            driver = await _driver(session)
            rows = await driver.fetch(_LOCKS_POSTGRES, sponsor_id, list(collaborative_ids))
            locks.update((row[0], row[1]) for row in rows)
        return locks
    for chunk in _chunks(sorted(collaborative_ids)):
        result = await session.execute(
            select(PeriodLock.collaborative_id, PeriodLock.through_period).where(
                PeriodLock.sponsor_id == sponsor_id, PeriodLock.collaborative_id.in_(chunk)
            )
        )
        locks.update((row[0], row[1]) for row in result)
    return locks


_UNNEST_KEYS = """
    JOIN unnest(CAST($2 AS uuid[]), CAST($3 AS uuid[]), CAST($4 AS varchar[]),
                CAST($5 AS varchar[]))
         AS k(team_id, measure_id, period, stratum)
      ON t.team_id = k.team_id AND t.measure_id = k.measure_id
     AND t.period = k.period AND t.stratum = coalesce(k.stratum, '')
    WHERE t.sponsor_id = $1
      AND t.team_id = ANY(CAST($6 AS uuid[]))
      AND t.measure_id = ANY(CAST($7 AS uuid[]))
      AND t.period = ANY(CAST($8 AS varchar[]))
"""
"""The stored rows of a batch's keys (``$1`` the sponsor, then :func:`_key_arrays`). The
``= ANY`` sets bound the scan to a range of the unique index (a batch names few teams); without
them PostgreSQL hashes every point of the sponsor to join 1,000 keys (10 ms at 30,000 points,
growing with the table)."""

_EXISTING_POSTGRES = """
SELECT k.n, t.id, t.measure_version, t.numerator, t.denominator, t.value, t.annotation,
       t.status
FROM data_points AS t
JOIN unnest(CAST($2 AS uuid[]), CAST($3 AS uuid[]), CAST($4 AS varchar[]),
            CAST($5 AS varchar[])) WITH ORDINALITY
     AS k(team_id, measure_id, period, stratum, n)
  ON t.team_id = k.team_id AND t.measure_id = k.measure_id
 AND t.period = k.period AND t.stratum = coalesce(k.stratum, '')
WHERE t.sponsor_id = $1
  AND t.team_id = ANY(CAST($6 AS uuid[]))
  AND t.measure_id = ANY(CAST($7 AS uuid[]))
  AND t.period = ANY(CAST($8 AS varchar[]))
"""
"""The stored points of the keys, each named by its position in the arrays (from 1): the key
columns do not travel back."""

_TOMBSTONES_POSTGRES = f"""
SELECT t.id, t.team_id, t.measure_id, t.period, t.stratum
FROM data_point_tombstones AS t {_UNNEST_KEYS}
"""  # noqa: S608 - constant text


def _key_arrays(keys: Sequence[Key]) -> tuple[list[Any], ...]:
    """The keys as the arrays ``$2``-``$8`` of :data:`_UNNEST_KEYS`."""
    team_ids = [key[0] for key in keys]
    measure_ids = [key[1] for key in keys]
    periods = [key[2] for key in keys]
    strata = [key[3] for key in keys]
    if not any(strata):
        strata = []  # unnest pads with nulls, read as '' (all patients): 1,000 values less to send
    return (
        team_ids,
        measure_ids,
        periods,
        strata,
        list(set(team_ids)),
        list(set(measure_ids)),
        list(set(periods)),
    )


class _Raw:
    """The session's asyncpg connection, inside the session's transaction (PostgreSQL only).

    The batch statements (read the existing points, upsert with history, the lookups) bind
    whole arrays and return thousands of rows: through asyncpg directly they skip SQLAlchemy's
    per-parameter and per-row processing (a third of the ingest's CPU). The transaction is the
    session's: :func:`_begin` has already run a statement in it through SQLAlchemy.

    SQLAlchemy would have wrapped a lost connection in a ``DBAPIError`` that the edge answers
    with SERVICE_UNAVAILABLE (:func:`db.availability.is_unavailable`); asyncpg's own errors for
    it become a ``ConnectionError`` here, which the edge reads the same way.
    """

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    async def fetch(self, statement: str, *args: Any) -> list[Any]:
        with _lost_connection_as_connection_error():
            rows: list[Any] = await self._driver.fetch(statement, *args)
        return rows

    async def fetchval(self, statement: str, *args: Any) -> Any:
        with _lost_connection_as_connection_error():
            return await self._driver.fetchval(statement, *args)

    async def execute(self, statement: str, *args: Any) -> None:
        with _lost_connection_as_connection_error():
            await self._driver.execute(statement, *args)


_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


@contextlib.contextmanager
def _lost_connection_as_connection_error() -> Iterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        state = str(getattr(exc, "sqlstate", "") or "")
        if state.startswith("08") or state in _UNAVAILABLE_SQLSTATES:
            raise ConnectionError(f"the database connection was lost ({state})") from exc
        raise
    except asyncpg.InterfaceError as exc:
        if "closed" in str(exc):
            raise ConnectionError("the database connection was closed") from exc
        raise


async def _driver(session: AsyncSession) -> _Raw:
    """The session's asyncpg connection (see :class:`_Raw`)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return _Raw(raw.driver_connection)


async def _existing(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[Key]
) -> dict[Key, _Existing]:
    """The stored points of ``keys``.

    PostgreSQL: one join against the keys as arrays. SQLite: the points of the batch's teams,
    measures and periods (a superset, filtered here), in chunks of teams.
    """
    found: dict[Key, _Existing] = {}
    if not keys:
        return found
    statuses = _STATUSES
    if _is_postgres(session):
        driver = await _driver(session)
        for (
            n,
            point_id,
            version,
            numerator,
            denominator,
            value,
            annotation,
            status,
        ) in await driver.fetch(_EXISTING_POSTGRES, sponsor_id, *_key_arrays(keys)):
            found[keys[n - 1]] = _Existing(
                point_id, version, numerator, denominator, value, annotation or "", statuses[status]
            )
        return found
    wanted = set(keys)
    measure_ids = sorted({key[1] for key in keys})
    periods = sorted({key[2] for key in keys})
    for chunk in _chunks(sorted({key[0] for key in keys})):
        result = await session.execute(
            select(
                DataPoint.id,
                DataPoint.team_id,
                DataPoint.measure_id,
                DataPoint.period,
                DataPoint.stratum,
                DataPoint.measure_version,
                DataPoint.numerator,
                DataPoint.denominator,
                DataPoint.value,
                DataPoint.annotation,
                DataPoint.status,
            ).where(
                DataPoint.sponsor_id == sponsor_id,
                DataPoint.team_id.in_(chunk),
                DataPoint.measure_id.in_(measure_ids),
                DataPoint.period.in_(periods),
            )
        )
        for row in result:
            key = (row[1], row[2], row[3], row[4])
            if key in wanted:
                found[key] = _Existing(
                    row[0], row[5], row[6], row[7], row[8], row[9] or "", statuses[row[10]]
                )
    return found


async def _tombstones(
    session: AsyncSession, sponsor_id: uuid.UUID, keys: Sequence[Key]
) -> dict[Key, uuid.UUID]:
    """Ids of the tombstones of ``keys`` (a point submitted again takes its id back)."""
    found: dict[Key, uuid.UUID] = {}
    if not keys:
        return found
    wanted = set(keys)
    rows: list[Any] = []
    if _is_postgres(session):
        driver = await _driver(session)
        rows.extend(await driver.fetch(_TOMBSTONES_POSTGRES, sponsor_id, *_key_arrays(keys)))
    else:
        measure_ids = sorted({key[1] for key in keys})
        periods = sorted({key[2] for key in keys})
        for chunk in _chunks(sorted({key[0] for key in keys})):
            rows.extend(
                await session.execute(
                    select(
                        DataPointTombstone.id,
                        DataPointTombstone.team_id,
                        DataPointTombstone.measure_id,
                        DataPointTombstone.period,
                        DataPointTombstone.stratum,
                    ).where(
                        DataPointTombstone.sponsor_id == sponsor_id,
                        DataPointTombstone.team_id.in_(chunk),
                        DataPointTombstone.measure_id.in_(measure_ids),
                        DataPointTombstone.period.in_(periods),
                    )
                )
            )
    for row in rows:
        key = (row[1], row[2], row[3], row[4])
        if key in wanted:
            found[key] = row[0]
    return found


async def _lock_teams(session: AsyncSession, team_ids: set[uuid.UUID]) -> None:
    """Serialize writers of the same teams (PostgreSQL advisory locks held to commit).

    Locks are taken in one statement in ascending key order, so two batches never wait on each
    other in a cycle. SQLite needs nothing: the receipt written first holds its write lock.
    """
    if not team_ids or not _is_postgres(session):
        return
    keys = sorted({_lock_key(team_id) for team_id in team_ids})
    driver = await _driver(session)
    await driver.fetchval(
        "SELECT count(pg_advisory_xact_lock(k.key)) FROM "
        "(SELECT key FROM unnest(CAST($1 AS bigint[])) AS key ORDER BY key) AS k",
        keys,
    )


# --- idempotency -----------------------------------------------------------------------------


@dataclass
class _Call:
    """One call's identity and bookkeeping."""

    operation: Operation
    actor: Actor
    options: IngestOptions
    rows: int
    now: datetime
    receipt_id: uuid.UUID = field(default_factory=uuid.uuid4)
    request_hash: str = ""
    key_row_id: uuid.UUID | None = None


def _lock_timeout_error(exc: DBAPIError) -> bool:
    """True for 'could not obtain lock' (PostgreSQL 55P03) or SQLite's 'database is locked'."""
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate == "55P03":
        return True
    message = str(original).lower()
    return "lock timeout" in message or "database is locked" in message


async def _replay(session: AsyncSession, call: _Call, row: IdempotencyKey) -> Receipt:
    """The stored receipt of a key used before with the same request, else the error."""
    key = call.options.idempotency_key or ""
    if row.operation != call.operation.value or row.request_hash != call.request_hash:
        raise IdempotencyMismatch(key)
    receipt = await session.scalar(
        select(MeasureDataReceipt).where(
            MeasureDataReceipt.sponsor_id == call.actor.sponsor_id,
            MeasureDataReceipt.id == row.receipt_id,
        )
    )
    if receipt is None or row.status != "COMPLETED":
        raise InProgress(key)
    return Receipt.from_row(receipt, replayed=True)


async def _find_key(session: AsyncSession, call: _Call) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.sponsor_id == call.actor.sponsor_id,
            IdempotencyKey.client_id == call.actor.client_id,
            IdempotencyKey.key == call.options.idempotency_key,
        )
    )


async def _claim_key(session: AsyncSession, call: _Call) -> Receipt | None:
    """Insert the key row (first statement of the transaction); None when this call owns the
    key now, else the receipt to replay. Raises IdempotencyMismatch or InProgress."""
    key = call.options.idempotency_key
    assert key is not None
    values = {
        "sponsor_id": call.actor.sponsor_id,
        "id": uuid.uuid4(),
        "client_id": call.actor.client_id,
        "key": key,
        "operation": call.operation.value,
        "request_hash": call.request_hash,
        "receipt_id": call.receipt_id,
        "status": "IN_PROGRESS",
        "created_at": call.now,
        "expires_at": call.now + KEY_TTL,
    }
    postgres = _is_postgres(session)
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    statement = (
        dialect_insert(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["sponsor_id", "client_id", "key"])
        .returning(IdempotencyKey.id)
    )
    try:
        if postgres:
            milliseconds = max(1, int(call.options.key_wait.total_seconds() * 1000))
            await session.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))
        inserted = await session.scalar(statement)
        if postgres:
            await session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except DBAPIError as exc:
        if _lock_timeout_error(exc):
            raise InProgress(key, retry_after=1) from exc
        raise
    if inserted is not None:
        call.key_row_id = inserted
        return None
    existing = await _find_key(session, call)
    if existing is None:  # the first call rolled back and the key row went with it
        raise InProgress(key)
    if existing.expires_at <= call.now:
        taken = await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.sponsor_id == call.actor.sponsor_id,
                IdempotencyKey.id == existing.id,
                IdempotencyKey.expires_at <= call.now,
            )
            .values(
                operation=call.operation.value,
                request_hash=call.request_hash,
                receipt_id=call.receipt_id,
                status="IN_PROGRESS",
                created_at=call.now,
                expires_at=call.now + KEY_TTL,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) == 1:
            call.key_row_id = existing.id
            return None
        await session.refresh(existing)
    return await _replay(session, call, existing)


async def _peek_key(session: AsyncSession, call: _Call) -> Receipt | None:
    """Dry run: what the key would do, read only (the stored receipt, a mismatch, or None)."""
    existing = await _find_key(session, call)
    if existing is None or existing.expires_at <= call.now:
        return None
    return await _replay(session, call, existing)


async def delete_expired_idempotency_keys(
    session: AsyncSession, *, now: datetime | None = None
) -> int:
    """Remove keys past their expiry, of every sponsor (a maintenance job); how many went."""
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.expires_at < (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- checks ----------------------------------------------------------------------------------


@dataclass
class _Checked:
    """A row's resolved key and the values to store, once it passed every check."""

    index: int
    key: Key
    team: _TeamInfo
    measure: _MeasureInfo | None = None
    numerator: int | None = None
    denominator: int | None = None
    value: float | None = None
    annotation: str = ""


@dataclass
class _Batch:
    """Conflicts collected over a batch and the rows still standing."""

    conflicts: list[RowConflict] = field(default_factory=list)
    rejected: set[int] = field(default_factory=set)

    def reject(self, index: int, code: str, field_name: str, message: str) -> None:
        self.conflicts.append(RowConflict(index, code, field_name, message))
        self.rejected.add(index)


def _check_text(batch: _Batch, index: int, stratum: str, annotation: str | None) -> None:
    if not stratum and annotation is None:
        return
    if "\x00" in stratum:
        batch.reject(index, "INVALID_TEXT", "stratum", "stratum must not contain NUL bytes")
    elif len(stratum) > STRATUM_LENGTH:
        batch.reject(
            index, "INVALID_TEXT", "stratum", f"stratum is longer than {STRATUM_LENGTH} characters"
        )
    if annotation is not None:
        if "\x00" in annotation:
            batch.reject(
                index, "INVALID_TEXT", "annotation", "annotation must not contain NUL bytes"
            )
        elif len(annotation) > ANNOTATION_LENGTH:
            batch.reject(
                index,
                "INVALID_TEXT",
                "annotation",
                f"annotation is longer than {ANNOTATION_LENGTH} characters",
            )


def _check_period(batch: _Batch, index: int, period: str, current: str, *, future: bool) -> bool:
    problem = period_problem(period) if "\x00" not in period else "period must not contain NUL"
    if problem is not None:
        batch.reject(index, "INVALID_PERIOD", "period", problem)
        return False
    if future and period > current:
        batch.reject(
            index, "FUTURE_PERIOD", "period", f"{period} is after the current month ({current})"
        )
        return False
    return True


def _check_duplicates(batch: _Batch, keys: Sequence[tuple[str, str, str, str]]) -> None:
    first: dict[tuple[str, str, str, str], int] = {}
    for index, key in enumerate(keys):
        seen = first.setdefault(key, index)
        if seen != index:
            batch.reject(
                index,
                "DUPLICATE_ROW",
                "period",
                f"row {seen} has the same team, measure, period and stratum",
            )


def _resolve(
    batch: _Batch,
    index: int,
    team_code: str,
    measure_code: str,
    teams: dict[str, _TeamInfo],
    measures: dict[str, _MeasureInfo],
    options: IngestOptions,
) -> tuple[_TeamInfo | None, _MeasureInfo | None]:
    team = teams.get(team_code)
    if team is None:
        batch.reject(index, "UNKNOWN_TEAM", "team", f"no team {team_code[:CODE_LENGTH]!r}")
    elif options.team_ids is not None and team.id not in options.team_ids:
        batch.reject(index, "FORBIDDEN", "team", "this client may write for its own teams only")
        team = None
    measure = measures.get(measure_code)
    if measure is None:
        batch.reject(
            index, "UNKNOWN_MEASURE", "measure", f"no measure {measure_code[:CODE_LENGTH]!r}"
        )
    return team, measure


def _check_values(batch: _Batch, index: int, row: SubmittedRow, checked: _Checked) -> None:
    """Counts and value against the measure's scoring; fills ``checked`` when they pass."""
    measure = checked.measure
    assert measure is not None
    numerator_raw, denominator_raw, scoring = row.numerator, row.denominator, measure.scoring
    # The common rows first, without building any conflict: whole counts of a ratio scoring, or
    # a finite value alone (every other case, valid or not, takes the general path below).
    if scoring in RATIO_SCORINGS:
        if (
            type(numerator_raw) is int
            and type(denominator_raw) is int
            and 0 <= numerator_raw <= MAX_COUNT
            and 0 < denominator_raw <= MAX_COUNT
            and (numerator_raw <= denominator_raw or scoring is not Scoring.PROPORTION)
        ):
            checked.numerator, checked.denominator, checked.value = (
                numerator_raw,
                denominator_raw,
                None,
            )
            return
    elif numerator_raw is None and denominator_raw is None:
        raw = row.value
        if (
            type(raw) is float
            and math.isfinite(raw)
            and (scoring is not Scoring.COUNT or (0 <= raw <= MAX_COUNT and raw.is_integer()))
        ):
            checked.numerator, checked.denominator, checked.value = None, None, raw
            return
    before = len(batch.conflicts)
    counts: dict[str, int | None] = {}
    for name, raw in (("numerator", row.numerator), ("denominator", row.denominator)):
        if raw is None:
            counts[name] = None
            continue
        parsed = _count(raw)
        if isinstance(parsed, str):
            batch.reject(index, "INVALID_COUNT", name, f"{name} {parsed}")
            counts[name] = None
        else:
            counts[name] = parsed
    numerator, denominator = counts["numerator"], counts["denominator"]
    value: float | None = None
    if measure.scoring in RATIO_SCORINGS:
        for name, raw in (("numerator", row.numerator), ("denominator", row.denominator)):
            if raw is None:
                batch.reject(
                    index,
                    "MISSING_VALUE",
                    name,
                    f"{measure.scoring.value} measures need a numerator and a denominator",
                )
    else:
        raw_value = row.value
        if raw_value is None:
            batch.reject(
                index, "MISSING_VALUE", "value", f"{measure.scoring.value} measures need a value"
            )
        elif isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
            batch.reject(index, "INVALID_COUNT", "value", "value must be a number")
        elif not math.isfinite(raw_value):
            batch.reject(index, "INVALID_COUNT", "value", "value must be a finite number")
        elif measure.scoring is Scoring.COUNT and isinstance(_count(raw_value), str):
            batch.reject(index, "INVALID_COUNT", "value", f"a COUNT value {_count(raw_value)}")
        else:
            value = float(raw_value)
    if numerator is not None and denominator == 0:
        batch.reject(
            index, "ZERO_DENOMINATOR", "denominator", "denominator is 0 but a numerator is given"
        )
    elif (
        measure.scoring is Scoring.PROPORTION
        and numerator is not None
        and denominator is not None
        and numerator > denominator
    ):
        batch.reject(
            index,
            "NUMERATOR_EXCEEDS_DENOMINATOR",
            "numerator",
            f"numerator {numerator} exceeds denominator {denominator} (a proportion)",
        )
    if len(batch.conflicts) == before:
        checked.numerator, checked.denominator, checked.value = numerator, denominator, value


async def _resolve_batch(
    session: AsyncSession,
    call: _Call,
    batch: _Batch,
    codes: Sequence[tuple[str, str, str, str]],
    *,
    future: bool,
) -> tuple[dict[int, _Checked], dict[str, _TeamInfo], dict[str, _MeasureInfo]]:
    """Text-free checks shared by submissions and deletions: duplicates, periods, teams and
    measures. Returns the rows that resolved to a key."""
    current = _month(call.now)
    _check_duplicates(batch, codes)
    teams = await _teams(session, call.actor.sponsor_id, (code[0] for code in codes))
    measures = await _measures(session, call.actor.sponsor_id, (code[1] for code in codes))
    resolved: dict[int, _Checked] = {}
    good_periods: set[str] = set()  # a batch names a few months many times: check each once
    for index, (team_code, measure_code, period, stratum) in enumerate(codes):
        period_ok = period in good_periods
        if not period_ok:
            period_ok = _check_period(batch, index, period, current, future=future)
            if period_ok:
                good_periods.add(period)
        team, measure = _resolve(
            batch, index, team_code, measure_code, teams, measures, call.options
        )
        if team is None or measure is None or not period_ok:
            continue
        if "\x00" in stratum or len(stratum) > STRATUM_LENGTH:
            continue  # INVALID_TEXT already; such a key is never sent to the database
        resolved[index] = _Checked(
            index=index, key=(team.id, measure.id, period, stratum), team=team, measure=measure
        )
    return resolved, teams, measures


def _check_locks(
    batch: _Batch,
    resolved: dict[int, _Checked],
    locks: dict[uuid.UUID, str],
    existing: dict[Key, _Existing],
) -> None:
    for index, checked in resolved.items():
        through = locks.get(checked.team.collaborative_id)
        period = checked.key[2]
        if through is not None and period <= through:
            batch.reject(
                index,
                "PERIOD_LOCKED",
                "period",
                f"periods of this collaborative are locked through {through}",
            )
            continue
        point = existing.get(checked.key)
        if point is not None and point.status is DataPointStatus.LOCKED:
            batch.reject(index, "PERIOD_LOCKED", "period", "this data point is locked")


# --- the calls ----------------------------------------------------------------------------------


async def _begin(
    session: AsyncSession,
    operation: Operation,
    actor: Actor,
    rows: Sequence[Any],
    options: IngestOptions,
) -> tuple[_Call, Receipt | None]:
    """Size limit, request hash and idempotency key; a receipt when the call is a replay."""
    if len(rows) > options.max_rows:
        raise BatchTooLarge(len(rows), options.max_rows)
    if not rows:
        raise InvalidInput("rows must not be empty", field="rows")
    key = options.idempotency_key
    if key is not None and (not key or "\x00" in key or len(key) > IDEMPOTENCY_KEY_LENGTH):
        raise InvalidInput(
            f"an idempotency key is 1-{IDEMPOTENCY_KEY_LENGTH} characters without NUL bytes",
            field="idempotency_key",
        )
    call = _Call(
        operation=operation,
        actor=actor,
        options=options,
        rows=len(rows),
        now=options.now or utcnow(),
    )
    if _is_postgres(session):
        # The batch statements bind whole arrays; a cached generic plan cannot see their size
        # and may pick a nested loop over 10,000 keys (seconds instead of milliseconds).
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if key is None:
        return call, None
    call.request_hash = request_hash(operation, options.atomic, rows)
    if options.dry_run:
        return call, await _peek_key(session, call)
    return call, await _claim_key(session, call)


async def _open_receipt(session: AsyncSession, call: _Call) -> bool:
    """Whether the call stores a receipt (not a dry run). SQLite: write it first, which takes
    the write lock before anything is read, so concurrent writers cannot act on stale reads.
    PostgreSQL (the team locks serialize writers): :func:`_close` inserts it once, complete."""
    if call.options.dry_run:
        return False
    if not _is_postgres(session):
        await session.execute(
            insert(_table(MeasureDataReceipt)).values(
                **_receipt_values(call, ReceiptStatus.REJECTED, {}, ())
            )
        )
    return True


def _receipt_values(
    call: _Call, status: ReceiptStatus, counts: dict[str, int], conflicts: Sequence[RowConflict]
) -> dict[str, Any]:
    """The columns of a receipt row (Core statements: the ORM's unit of work costs a
    millisecond more per call)."""
    return dict(
        sponsor_id=call.actor.sponsor_id,
        id=call.receipt_id,
        operation=call.operation.value,
        status=status.value,
        source=call.options.source,
        client_id=call.actor.client_id,
        request_id=call.actor.request_id,
        idempotency_key=call.options.idempotency_key,
        atomic=call.options.atomic,
        row_count=call.rows,
        created=counts.get("created", 0),
        updated=counts.get("updated", 0),
        unchanged=counts.get("unchanged", 0),
        deleted=counts.get("deleted", 0),
        rejected=len({conflict.index for conflict in conflicts}),
        conflicts=[conflict.as_json() for conflict in conflicts],
        created_at=call.now,
    )


_RECEIPT_COUNTS = ("created", "updated", "unchanged", "deleted", "rejected")


def _status(call: _Call, accepted: int, rejected: int) -> ReceiptStatus:
    if call.options.dry_run:
        return ReceiptStatus.DRY_RUN
    if rejected and (call.options.atomic or not accepted):
        return ReceiptStatus.REJECTED
    return ReceiptStatus.PARTIAL if rejected else ReceiptStatus.COMPLETED


async def _close(
    session: AsyncSession,
    call: _Call,
    stored: bool,
    batch: _Batch,
    counts: dict[str, int],
    status: ReceiptStatus,
) -> Receipt:
    """Finish the receipt, the key and the audit; the receipt as returned."""
    conflicts = tuple(sorted(batch.conflicts, key=lambda c: c.index))
    receipt = Receipt(
        id=call.receipt_id,
        operation=call.operation,
        status=status,
        source=call.options.source,
        client_id=call.actor.client_id,
        idempotency_key=call.options.idempotency_key,
        atomic=call.options.atomic,
        row_count=call.rows,
        created=counts.get("created", 0),
        updated=counts.get("updated", 0),
        unchanged=counts.get("unchanged", 0),
        deleted=counts.get("deleted", 0),
        rejected=len(batch.rejected),
        conflicts=conflicts,
        created_at=call.now,
    )
    if not stored:
        return receipt
    values = _receipt_values(call, status, counts, conflicts)
    if _is_postgres(session):
        await session.execute(insert(_table(MeasureDataReceipt)).values(**values))
    else:
        table = _table(MeasureDataReceipt)
        await session.execute(
            update(table)
            .where(table.c.sponsor_id == call.actor.sponsor_id, table.c.id == call.receipt_id)
            .values({name: values[name] for name in ("status", *_RECEIPT_COUNTS, "conflicts")})
        )
    if call.key_row_id is not None:
        key_row = (IdempotencyKey.sponsor_id == call.actor.sponsor_id) & (
            IdempotencyKey.id == call.key_row_id
        )
        if status is ReceiptStatus.REJECTED:
            # validation failed: the key is not kept, so the fixed rows may reuse it
            await session.execute(
                delete(IdempotencyKey).where(key_row).execution_options(synchronize_session=False)
            )
        else:
            await session.execute(
                update(IdempotencyKey)
                .where(key_row)
                .values(status="COMPLETED")
                .execution_options(synchronize_session=False)
            )
    await record_event(
        session,
        call.actor,
        action=f"measure_data.{call.operation.value.lower()}",
        entity_type="MeasureDataReceipt",
        entity_id=call.receipt_id,
        before=None,
        after={
            "status": status.value,
            "source": call.options.source,
            "rows": call.rows,
            "created": receipt.created,
            "updated": receipt.updated,
            "unchanged": receipt.unchanged,
            "deleted": receipt.deleted,
            "rejected": receipt.rejected,
            "atomic": call.options.atomic,
            "idempotency_key": call.options.idempotency_key,
        },
    )
    await session.flush()
    return receipt


async def submit_measure_data(
    session: AsyncSession, actor: Actor, rows: Sequence[SubmittedRow], options: IngestOptions
) -> Receipt:
    """Check and upsert a batch of data points; the receipt of what was (or would be) done.

    Raises BatchTooLarge, InvalidInput (empty batch, malformed key), IdempotencyMismatch and
    InProgress; every per-row problem is a conflict in the receipt instead.
    """
    call, replay = await _begin(session, Operation.SUBMIT, actor, rows, options)
    if replay is not None:
        return replay
    stored = await _open_receipt(session, call)
    batch = _Batch()
    for index, row in enumerate(rows):
        _check_text(batch, index, row.stratum, row.annotation)
    codes = [(row.team, row.measure, row.period, row.stratum) for row in rows]
    resolved, _, _ = await _resolve_batch(session, call, batch, codes, future=True)
    collaboratives = {checked.team.collaborative_id for checked in resolved.values()}
    memberships = await _memberships(
        session,
        actor.sponsor_id,
        collaboratives,
        {checked.measure.id for checked in resolved.values() if checked.measure is not None},
    )
    locks = await _locks(session, actor.sponsor_id, collaboratives)
    if not options.dry_run:
        await _lock_teams(session, {checked.team.id for checked in resolved.values()})
    keys = [checked.key for checked in resolved.values()]
    existing = await _existing(session, actor.sponsor_id, keys)
    for index, checked in resolved.items():
        row = rows[index]
        assert checked.measure is not None
        team = checked.team
        if (team.collaborative_id, checked.measure.id) not in memberships:
            batch.reject(
                index,
                "NOT_ENROLLED",
                "measure",
                f"{row.measure!r} is not in the measure set of team {row.team!r}",
            )
        elif team.withdrawn_on_month is not None and checked.key[2] > team.withdrawn_on_month:
            batch.reject(
                index,
                "NOT_ENROLLED",
                "team",
                f"team {row.team!r} withdrew in {team.withdrawn_on_month}",
            )
        _check_values(batch, index, row, checked)
        checked.annotation = row.annotation or ""
    _check_locks(batch, resolved, locks, existing)
    accepted = [
        checked for index, checked in sorted(resolved.items()) if index not in batch.rejected
    ]
    status = _status(call, len(accepted), len(batch.rejected))
    counts: dict[str, int] = defaultdict(int)
    if status is ReceiptStatus.REJECTED or (options.atomic and batch.rejected):
        return await _close(session, call, stored, batch, counts, status)
    writes: list[tuple[_Checked, _Existing | None]] = []
    for checked in accepted:
        point = existing.get(checked.key)
        if point is None:
            counts["created"] += 1
            writes.append((checked, None))
        elif (point.numerator, point.denominator, point.value, point.annotation) == (
            checked.numerator,
            checked.denominator,
            checked.value,
            checked.annotation,
        ):
            counts["unchanged"] += 1
        else:
            counts["updated"] += 1
            writes.append((checked, point))
    if not options.dry_run and writes:
        await _write_points(session, call, writes)
        kinds = [(c, ChangeKind.CREATED if p is None else ChangeKind.UPDATED) for c, p in writes]
        await _announce(session, call, status, rows, kinds)
    return await _close(session, call, stored, batch, counts, status)


async def _announce(
    session: AsyncSession,
    call: _Call,
    status: ReceiptStatus,
    rows: Sequence[SubmittedRow] | Sequence[DeleteRowInput],
    changed: Sequence[tuple[_Checked, ChangeKind]],
) -> None:
    """Tell live subscribers what changed; :func:`db.events.publish` delivers it at commit.

    On PostgreSQL the event travels in a NOTIFY of at most 8,000 bytes, which cannot hold more
    than a few hundred keys: beyond that the event names the receipt only (listeners read the
    keys back), so the keys are not built at all.
    """
    collaborative_ids = frozenset(checked.team.collaborative_id for checked, _ in changed)
    changes: tuple[DataChange, ...] | None = None
    if len(changed) <= MAX_NOTIFY_BYTES // 20 or not _is_postgres(session):
        changes = tuple(
            DataChange(
                team_id=checked.team.id,
                team_code=rows[checked.index].team,
                collaborative_id=checked.team.collaborative_id,
                measure_id=checked.key[1],
                measure_code=rows[checked.index].measure,
                period=checked.key[2],
                stratum=checked.key[3],
                kind=kind,
            )
            for checked, kind in changed
        )
    await publish(
        session,
        MeasureDataEvent(
            sponsor_id=call.actor.sponsor_id,
            receipt_id=call.receipt_id,
            client_id=call.actor.client_id,
            operation=call.operation.value,
            status=status.value,
            at=call.now,
            collaborative_ids=collaborative_ids,
            changes=changes,
        ),
    )


def _after(checked: _Checked) -> Values:
    assert checked.measure is not None
    return (
        checked.measure.version,
        checked.numerator,
        checked.denominator,
        checked.value,
        checked.annotation,
        DataPointStatus.SUBMITTED.value,
    )


async def _write_points(
    session: AsyncSession, call: _Call, writes: Sequence[tuple[_Checked, _Existing | None]]
) -> None:
    """Upsert created and changed points, take back tombstones, record the change set."""
    sponsor_id = call.actor.sponsor_id
    created_keys = [checked.key for checked, point in writes if point is None]
    restored = await _tombstones(session, sponsor_id, created_keys)
    ids = [
        point.id if point is not None else restored.get(checked.key) or uuid.uuid4()
        for checked, point in writes
    ]
    actions = [
        UPDATE if point is not None else RESTORE if checked.key in restored else CREATE
        for checked, point in writes
    ]
    if _is_postgres(session):
        await _upsert_postgres(session, call, writes, ids, actions)
    else:
        await _upsert_sqlite(session, call, writes, ids)
        await _record_change_set(
            session,
            call,
            [
                (point_id, *checked.key, action)
                for (checked, _), point_id, action in zip(writes, ids, actions, strict=True)
            ],
            [None if point is None else point.values() for _, point in writes],
            [_after(checked) for checked, _ in writes],
        )
    if restored:
        for chunk in _chunks(sorted(restored.values())):
            await session.execute(
                delete(DataPointTombstone)
                .where(
                    DataPointTombstone.sponsor_id == sponsor_id,
                    DataPointTombstone.id.in_(chunk),
                )
                .execution_options(synchronize_session=False)
            )


async def _record_change_set(
    session: AsyncSession,
    call: _Call,
    keys: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str, str, str]],
    before: Sequence[Values | None],
    after: Sequence[Values | None] | None,
) -> None:
    """The call's change set, built here (PostgreSQL's upsert writes its own in SQL)."""
    await session.execute(
        insert(_table(DataPointChangeSet)),
        [
            {
                "sponsor_id": call.actor.sponsor_id,
                "id": call.receipt_id,
                "client_id": call.actor.client_id,
                "at": call.now,
                "changes": change_set_document(keys, before, after),
            }
        ],
    )


_UPSERT_POSTGRES = """
WITH r AS (
    SELECT u.id, u.team_id, u.measure_id, u.measure_version, u.period,
           coalesce(u.stratum, '') AS stratum, u.numerator, u.denominator, u.value,
           coalesce(u.annotation, '') AS annotation
    FROM unnest(
        CAST($7 AS uuid[]), CAST($8 AS uuid[]), CAST($9 AS uuid[]),
        CAST($10 AS integer[]), CAST($11 AS varchar[]), CAST($12 AS varchar[]),
        CAST($13 AS bigint[]), CAST($14 AS bigint[]),
        CAST($15 AS double precision[]), CAST($16 AS text[]))
    AS u(id, team_id, measure_id, measure_version, period, stratum, numerator, denominator,
         value, annotation)
), upserted AS (
    INSERT INTO data_points (
        sponsor_id, id, team_id, measure_id, measure_version, period, stratum, numerator,
        denominator, value, annotation, status, source, receipt_id, created_at, created_by,
        updated_at, updated_by)
    SELECT CAST($1 AS uuid), r.id, r.team_id, r.measure_id, r.measure_version,
           r.period, r.stratum, r.numerator, r.denominator, r.value, r.annotation,
           CAST($2 AS varchar), CAST($3 AS varchar), CAST($4 AS uuid),
           CAST($5 AS timestamptz), CAST($6 AS varchar), CAST($5 AS timestamptz),
           CAST($6 AS varchar)
    FROM r
    ON CONFLICT (sponsor_id, team_id, measure_id, period, stratum) DO UPDATE SET
        measure_version = excluded.measure_version,
        numerator = excluded.numerator,
        denominator = excluded.denominator,
        value = excluded.value,
        annotation = excluded.annotation,
        status = excluded.status,
        source = excluded.source,
        receipt_id = excluded.receipt_id,
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
), filled AS (
    SELECT array_fill(CAST('' AS varchar), ARRAY[cardinality(CAST($7 AS uuid[]))]) AS blank
)
INSERT INTO data_point_change_sets (sponsor_id, id, client_id, at, changes)
SELECT CAST($1 AS uuid), CAST($4 AS uuid), CAST($6 AS varchar), CAST($5 AS timestamptz),
       json_build_object(
           'data_point_id', CAST($7 AS uuid[]),
           'team_id', CAST($8 AS uuid[]),
           'measure_id', CAST($9 AS uuid[]),
           'period', CAST($11 AS varchar[]),
           'stratum', CASE WHEN cardinality(CAST($12 AS varchar[])) = 0 THEN filled.blank
                           ELSE CAST($12 AS varchar[]) END,
           'action', CAST($17 AS json),
           'before', CAST($18 AS json),
           'after', json_build_object(
               'measure_version', CAST($10 AS integer[]),
               'numerator', CAST($13 AS bigint[]),
               'denominator', CAST($14 AS bigint[]),
               'value', CAST($15 AS double precision[]),
               'annotation', CASE WHEN cardinality(CAST($16 AS text[])) = 0 THEN filled.blank
                                  ELSE CAST($16 AS text[]) END,
               'status', array_fill(CAST($2 AS varchar), ARRAY[cardinality(CAST($7 AS uuid[]))])))
FROM filled
"""
"""One statement for a whole batch: the rows travel once, as arrays, and feed both the upsert
and the change set (the call's history row, :class:`db.models.DataPointChangeSet`), whose
columns are those very arrays turned into JSON, plus the actions (``$17``) and the values before
(``$18``, nulls for created and restored points; the checks read them already), which only the
change set needs: they travel as JSON text (orjson writes it in microseconds, where asyncpg would
check every element of seven more arrays in Python). A data-modifying CTE always runs to
completion, read or not. All-'' strata and annotations travel as empty arrays (read as '' from
unnest's nulls) and are spelled out in the change set."""


async def _upsert_postgres(
    session: AsyncSession,
    call: _Call,
    writes: Sequence[tuple[_Checked, _Existing | None]],
    ids: Sequence[uuid.UUID],
    actions: Sequence[str],
) -> None:
    """Upsert and change set in one statement; the arrays are unnested server-side."""
    n = len(writes)
    team_ids: list[uuid.UUID] = [None] * n  # type: ignore[list-item]
    measure_ids: list[uuid.UUID] = [None] * n  # type: ignore[list-item]
    versions: list[int] = [1] * n
    periods: list[str] = [""] * n
    strata: list[str] = [""] * n
    numerators: list[int | None] = [None] * n
    denominators: list[int | None] = [None] * n
    vals: list[float | None] = [None] * n
    annotations: list[str] = [""] * n
    before: list[Values | None] = [None] * n
    for position, (checked, point) in enumerate(writes):
        key = checked.key
        team_ids[position], measure_ids[position] = key[0], key[1]
        periods[position], strata[position] = key[2], key[3]
        if checked.measure is not None:
            versions[position] = checked.measure.version
        numerators[position] = checked.numerator
        denominators[position] = checked.denominator
        vals[position] = checked.value
        annotations[position] = checked.annotation
        if point is not None:
            before[position] = point.values()
    driver = await _driver(session)
    await driver.execute(
        _UPSERT_POSTGRES,
        call.actor.sponsor_id,
        DataPointStatus.SUBMITTED.value,
        call.options.source,
        call.receipt_id,
        call.now,
        call.actor.client_id,
        list(ids),
        team_ids,
        measure_ids,
        versions,
        periods,
        strata if any(strata) else [],  # all '' (all patients): read as '' from unnest's nulls
        numerators,
        denominators,
        vals,
        annotations if any(annotations) else [],  # all '': read as '' from unnest's nulls
        orjson.dumps(actions).decode(),
        orjson.dumps(value_columns(before)).decode(),
    )


async def _upsert_sqlite(
    session: AsyncSession,
    call: _Call,
    writes: Sequence[tuple[_Checked, _Existing | None]],
    ids: Sequence[uuid.UUID],
) -> None:
    """The same upsert as one executemany."""
    statement = sqlite.insert(_table(DataPoint))
    updated = (
        "measure_version",
        "numerator",
        "denominator",
        "value",
        "annotation",
        "status",
        "source",
        "receipt_id",
        "updated_at",
        "updated_by",
    )
    statement = statement.on_conflict_do_update(
        index_elements=["sponsor_id", "team_id", "measure_id", "period", "stratum"],
        set_={name: statement.excluded[name] for name in updated},
    )
    sponsor_id, client_id = call.actor.sponsor_id, call.actor.client_id
    await session.execute(
        statement,
        [
            {
                "sponsor_id": sponsor_id,
                "id": point_id,
                "team_id": checked.key[0],
                "measure_id": checked.key[1],
                "measure_version": checked.measure.version if checked.measure else 1,
                "period": checked.key[2],
                "stratum": checked.key[3],
                "numerator": checked.numerator,
                "denominator": checked.denominator,
                "value": checked.value,
                "annotation": checked.annotation,
                "status": DataPointStatus.SUBMITTED,
                "source": call.options.source,
                "receipt_id": call.receipt_id,
                "created_at": call.now,
                "created_by": client_id,
                "updated_at": call.now,
                "updated_by": client_id,
            }
            for (checked, _), point_id in zip(writes, ids, strict=True)
        ],
    )


async def delete_measure_data(
    session: AsyncSession, actor: Actor, rows: Sequence[DeleteRowInput], options: IngestOptions
) -> Receipt:
    """Delete points by key: each leaves a tombstone (delta export) and its values in the call's
    change set (the history).

    Same idempotency, atomicity, locking and audit as :func:`submit_measure_data`. A key with no
    point counts as ``unchanged``. Team and measure need not be in a measure set any more.
    """
    call, replay = await _begin(session, Operation.DELETE, actor, rows, options)
    if replay is not None:
        return replay
    stored = await _open_receipt(session, call)
    batch = _Batch()
    for index, row in enumerate(rows):
        _check_text(batch, index, row.stratum, None)
    codes = [(row.team, row.measure, row.period, row.stratum) for row in rows]
    resolved, _, _ = await _resolve_batch(session, call, batch, codes, future=False)
    resolved = {index: c for index, c in resolved.items() if index not in batch.rejected}
    locks = await _locks(
        session, actor.sponsor_id, {checked.team.collaborative_id for checked in resolved.values()}
    )
    if not options.dry_run:
        await _lock_teams(session, {checked.team.id for checked in resolved.values()})
    existing = await _existing(session, actor.sponsor_id, [c.key for c in resolved.values()])
    _check_locks(batch, resolved, locks, existing)
    accepted = [c for index, c in sorted(resolved.items()) if index not in batch.rejected]
    status = _status(call, len(accepted), len(batch.rejected))
    counts: dict[str, int] = defaultdict(int)
    if status is ReceiptStatus.REJECTED or (options.atomic and batch.rejected):
        return await _close(session, call, stored, batch, counts, status)
    doomed = [(c, existing[c.key]) for c in accepted if c.key in existing]
    counts["deleted"] = len(doomed)
    counts["unchanged"] = len(accepted) - len(doomed)
    if not options.dry_run and doomed:
        await _write_deletions(session, call, doomed)
        kinds = [(checked, ChangeKind.DELETED) for checked, _ in doomed]
        await _announce(session, call, status, rows, kinds)
    return await _close(session, call, stored, batch, counts, status)


async def _write_deletions(
    session: AsyncSession, call: _Call, doomed: Sequence[tuple[_Checked, _Existing]]
) -> None:
    sponsor_id, client_id = call.actor.sponsor_id, call.actor.client_id
    ids = [point.id for _, point in doomed]
    for chunk in _chunks(ids):
        await session.execute(
            delete(DataPoint)
            .where(DataPoint.sponsor_id == sponsor_id, DataPoint.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        insert(_table(DataPointTombstone)),
        [
            {
                "sponsor_id": sponsor_id,
                "id": point.id,
                "team_id": checked.key[0],
                "measure_id": checked.key[1],
                "measure_version": point.measure_version,
                "period": checked.key[2],
                "stratum": checked.key[3],
                "receipt_id": call.receipt_id,
                "deleted_at": call.now,
                "deleted_by": client_id,
            }
            for checked, point in doomed
        ],
    )
    await _record_change_set(
        session,
        call,
        [(point.id, *checked.key, DELETE) for checked, point in doomed],
        [point.values() for _, point in doomed],
        None,
    )
