"""Bulk CSV import of data points (``collabx import data.csv --sponsor SLUG``).

The file is UTF-8 CSV (a byte-order mark is fine) with a header naming some of the columns
:data:`COLUMNS`; ``team``, ``measure`` and ``period`` are required, the others optional, any
other column is an error (nothing is imported). Empty cells are null (``stratum`` then means
all patients). Rows go in batches through :func:`db.ingest.submit_measure_data` — the GraphQL
and FHIR path — as the system actor ``cli:import`` (source ``file``), so every check and code
is the same. The file is streamed: only one batch of rows, the first conflicts and an 8-byte
digest per row key (to find duplicates across batches) are held, so 100,000 rows need a few MB.

- ``atomic`` (default): all batches run in one transaction; a single rejected row rolls back
  everything (the later batches are only checked). ``--no-atomic``: each batch commits on its
  own and writes its valid rows.
- ``dry_run``: every check runs, nothing is written.
- Rows that cannot become an ingest row (a field count that differs from the header, a count
  that is not a number, a key repeated from an earlier line) are rejected here with the codes
  ``INVALID_ROW``, ``INVALID_COUNT`` and ``DUPLICATE_ROW``.
- Conflicts name the file's line (the header is line 1; a quoted field spanning lines counts
  where its record starts).
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import ingest
from db.ingest import IngestOptions, RowInput
from db.queries.audit import Actor
from db.queries.data import Receipt
from db.queries.sponsors import get_sponsor_by_slug

COLUMNS = (
    "team",
    "measure",
    "period",
    "numerator",
    "denominator",
    "value",
    "stratum",
    "annotation",
)
REQUIRED = ("team", "measure", "period")
ACTOR_ID = "cli:import"
MAX_CONFLICTS = 20
"""Conflicts kept (and printed) at most; the counts cover every row."""


class CsvImportError(Exception):
    """The file cannot be imported at all (header, encoding, CSV syntax, unknown sponsor)."""


@dataclass(frozen=True)
class LineConflict:
    """A rejected row: its line in the file, the code, the column, why."""

    line: int
    code: str
    field: str
    message: str


@dataclass
class ImportSummary:
    """What an import did (or, when not ``written``, would have done)."""

    rows: int = 0
    batches: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    conflicts: list[LineConflict] = field(default_factory=list)
    written: bool = False

    def reject(self, conflict: LineConflict) -> None:
        """Count a rejected row and keep its conflict when there is room."""
        self.add_conflict(conflict)
        self.rejected += 1

    def add_conflict(self, conflict: LineConflict) -> None:
        """Keep a conflict (one row may have several) when there is room."""
        if len(self.conflicts) < MAX_CONFLICTS:
            self.conflicts.append(conflict)


def _lines(handle: TextIO, progress: Callable[[int], None]) -> Iterator[str]:
    """The file's lines, reporting how many bytes each one was."""
    for line in handle:
        progress(len(line.encode("utf-8", "surrogatepass")))
        yield line


def read_header(reader: Iterator[list[str]]) -> list[str]:
    """The header's column names, or CsvImportError naming what is wrong."""
    try:
        header = next(reader)
    except StopIteration:
        raise CsvImportError("the file is empty: a header line is required") from None
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise CsvImportError(
            f"unknown column(s) {', '.join(repr(n[:40]) for n in unknown)}; "
            f"the columns are {', '.join(COLUMNS)}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CsvImportError(f"column(s) {', '.join(repeated)} appear more than once")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise CsvImportError(
            f"missing column(s) {', '.join(missing)}; a header needs {', '.join(REQUIRED)}"
        )
    return names


def _number(text: str, name: str, line: int) -> int | float | LineConflict | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return LineConflict(line, "INVALID_COUNT", name, f"{name} {text[:30]!r} is not a number")


def parse_row(names: list[str], record: list[str], line: int) -> RowInput | LineConflict:
    """One CSV record as an ingest row, or the reason it cannot be one."""
    if len(record) != len(names):
        return LineConflict(
            line, "INVALID_ROW", "", f"{len(record)} fields; the header has {len(names)}"
        )
    cells = dict(zip(names, record, strict=True))
    numbers: dict[str, int | float | None] = {}
    for name in ("numerator", "denominator", "value"):
        parsed = _number(cells.get(name, ""), name, line)
        if isinstance(parsed, LineConflict):
            return parsed
        numbers[name] = parsed
    annotation = cells.get("annotation", "")
    return RowInput(
        team=cells["team"].strip(),
        measure=cells["measure"].strip(),
        period=cells["period"].strip(),
        numerator=numbers["numerator"],
        denominator=numbers["denominator"],
        value=numbers["value"],
        stratum=cells.get("stratum", ""),
        annotation=annotation or None,
    )


def _digest(row: RowInput) -> int:
    """A 64-bit digest of a row's key (a collision is a 1 in 10^9 chance over 100,000 rows)."""
    key = "\x1f".join((row.team, row.measure, row.period, row.stratum))
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class _Batch:
    rows: list[RowInput] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def batches(
    handle: TextIO,
    summary: ImportSummary,
    *,
    batch_size: int,
    progress: Callable[[int], None],
) -> Iterator[_Batch]:
    """The file's valid rows in batches; rows rejected here are counted in ``summary``."""
    reader = csv.reader(_lines(handle, progress))
    try:
        names = read_header(reader)
        seen: dict[int, int] = {}
        batch = _Batch()
        line = reader.line_num + 1
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record:
                continue  # a blank line
            summary.rows += 1
            parsed = parse_row(names, record, start)
            if isinstance(parsed, LineConflict):
                summary.reject(parsed)
                continue
            digest = _digest(parsed)
            first = seen.setdefault(digest, start)
            if first != start:
                summary.reject(
                    LineConflict(
                        start,
                        "DUPLICATE_ROW",
                        "period",
                        f"line {first} has the same team, measure, period and stratum",
                    )
                )
                continue
            batch.rows.append(parsed)
            batch.lines.append(start)
            if len(batch.rows) >= batch_size:
                yield batch
                batch = _Batch()
        if batch.rows:
            yield batch
    except csv.Error as exc:
        raise CsvImportError(f"line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CsvImportError(f"the file is not UTF-8 (after line {reader.line_num})") from exc


def _count(summary: ImportSummary, receipt: Receipt, batch: _Batch) -> None:
    summary.batches += 1
    summary.created += receipt.created
    summary.updated += receipt.updated
    summary.unchanged += receipt.unchanged
    summary.rejected += receipt.rejected
    for conflict in receipt.conflicts:
        summary.add_conflict(
            LineConflict(
                batch.lines[conflict.index], conflict.code, conflict.field, conflict.message
            )
        )


async def import_csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    sponsor_slug: str,
    path: Path,
    dry_run: bool = False,
    atomic: bool = True,
    batch_size: int = 5_000,
    progress: Callable[[int], None] = lambda _: None,
) -> ImportSummary:
    """Import a CSV file of data points into a sponsor (see the module docstring)."""
    async with sessionmaker() as session:
        sponsor = await get_sponsor_by_slug(session, sponsor_slug)
    if sponsor is None:
        raise CsvImportError(f"no sponsor {sponsor_slug!r}")
    actor = Actor(
        client_id=ACTOR_ID, kind="SYSTEM", sponsor_id=sponsor.id, request_id=uuid.uuid4().hex
    )
    summary = ImportSummary()

    def options(*, checking_only: bool) -> IngestOptions:
        return IngestOptions(
            atomic=atomic,
            dry_run=dry_run or checking_only,
            source="file",
            max_rows=batch_size,
        )

    with path.open(encoding="utf-8-sig", newline="") as handle:
        chunks = batches(handle, summary, batch_size=batch_size, progress=progress)
        if not atomic:
            for batch in chunks:
                async with sessionmaker.begin() as session:
                    receipt = await ingest.submit_measure_data(
                        session, actor, batch.rows, options(checking_only=False)
                    )
                _count(summary, receipt, batch)
                summary.written = summary.written or (
                    not dry_run and receipt.created + receipt.updated > 0
                )
            return summary
        async with sessionmaker() as session:
            transaction = await session.begin()
            try:
                for batch in chunks:
                    receipt = await ingest.submit_measure_data(
                        session, actor, batch.rows, options(checking_only=summary.rejected > 0)
                    )
                    _count(summary, receipt, batch)
            except BaseException:
                await transaction.rollback()
                raise
            if dry_run or summary.rejected:
                await transaction.rollback()
            else:
                await transaction.commit()
                summary.written = summary.created + summary.updated > 0
    return summary


def summary_text(summary: ImportSummary, *, dry_run: bool, atomic: bool) -> str:
    """The final report an operator reads."""
    lines = [
        f"{summary.rows} rows in {summary.batches} batch(es): created {summary.created}, "
        f"updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {summary.rejected}"
    ]
    if summary.conflicts:
        shown = len(summary.conflicts)
        lines.append(f"first {shown} conflict(s):" if shown == MAX_CONFLICTS else "conflicts:")
        for conflict in summary.conflicts:
            where = f" ({conflict.field})" if conflict.field else ""
            lines.append(f"  line {conflict.line}: {conflict.code}{where} {conflict.message}")
    if dry_run:
        lines.append("dry run: nothing was written")
    elif atomic and summary.rejected:
        lines.append(
            "nothing was written: the import is atomic and rows were rejected "
            "(fix them, or use --no-atomic to write the valid rows)"
        )
    elif summary.rejected:
        lines.append("the valid rows were written; the rejected ones were not")
    return "\n".join(lines)
