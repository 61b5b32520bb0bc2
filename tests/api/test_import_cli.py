"""``collabx import data.csv --sponsor SLUG``: created/updated/unchanged counts, conflicts by
line, atomic and non-atomic imports, dry runs, header errors, and a large file streamed in
batches (20,000 rows here; 100,000 in the slow suite)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api.cli import main
from api.imports import import_csv
from api.state import AppState
from tests.api.exchange_data import MEAN, PROPORTION, TEAM, TEAM_B, points, setup_exchange
from tests.factories import Tenant

HEADER = "team,measure,period,numerator,denominator,value,stratum,annotation\n"


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app's database, named by the environment for the CLI."""
    monkeypatch.setenv("COLLABX_DATABASE_URL", database_url)
    yield database_url


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=False)


async def run(*args: str) -> Result:
    """Run the CLI (it starts its own event loop, so in a thread)."""
    return await asyncio.to_thread(_invoke, list(args))


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_import_reports_conflicts_by_line_and_is_atomic(
    tenant: Tenant, database: str, tmp_path: Path
) -> None:
    await setup_exchange(tenant)
    good = (
        f"{TEAM},{PROPORTION},2024-01,5,10,,,first\n"
        f"{TEAM},{PROPORTION},2024-02,6,10,,payer:medicaid,\n"
        f'{TEAM},{MEAN},2024-01,,,4.5,,"two\nlines"\n'
        f"{TEAM_B},{PROPORTION},2024-01,1,2,,,\n"
    )
    bad = (
        f"{TEAM},{PROPORTION},2024-03,11,10,,,\n"  # line 7
        f"nobody,{PROPORTION},2024-03,1,10,,,\n"  # line 8
        f"{TEAM},{PROPORTION},2024-04,many,10,,,\n"  # line 9
        f"{TEAM},{PROPORTION},2024-01,5,10,,,again\n"  # line 10: a repeat of line 2
        f"{TEAM},{PROPORTION},2999-01,1,2,,,\n"  # line 11
        f"{TEAM},{PROPORTION},2024-05,1,2\n"  # line 12: too few fields
    )
    path = write(tmp_path, HEADER + good + bad)
    result = await run("import", str(path), "--sponsor", tenant.slug, "--batch-size", "3")
    assert result.exit_code == 1, result.output
    assert "10 rows in 3 batch(es)" in result.output
    assert "rejected 6" in result.output
    for line, code in (
        (7, "NUMERATOR_EXCEEDS_DENOMINATOR (numerator)"),
        (8, "UNKNOWN_TEAM (team)"),
        (9, "INVALID_COUNT (numerator)"),
        (10, "DUPLICATE_ROW (period) line 2 has the same"),
        (11, "FUTURE_PERIOD (period)"),
        (12, "INVALID_ROW 5 fields; the header has 8"),
    ):
        assert f"line {line}: {code}" in result.output, result.output
    assert "nothing was written" in result.output
    assert await points(tenant) == []

    dry = await run("import", str(path), "--sponsor", tenant.slug, "--dry-run", "--no-atomic")
    assert dry.exit_code == 1 and "dry run: nothing was written" in dry.output
    assert await points(tenant) == []

    partial = await run("import", str(path), "--sponsor", tenant.slug, "--no-atomic")
    assert partial.exit_code == 1, partial.output
    assert "created 4, updated 0, unchanged 0, rejected 6" in partial.output
    assert "the valid rows were written" in partial.output
    stored = await points(tenant)
    assert [(p["team"], p["measure"], p["period"], p["stratum"]) for p in stored] == [
        (TEAM, PROPORTION, "2024-01", ""),
        (TEAM, PROPORTION, "2024-02", "payer:medicaid"),
        (TEAM, MEAN, "2024-01", ""),
        (TEAM_B, PROPORTION, "2024-01", ""),
    ]
    assert stored[0]["annotation"] == "first"
    assert stored[2]["value"] == 4.5 and stored[2]["annotation"] == "two\nlines"

    # the valid rows again, one changed: unchanged and updated, atomic, exit 0
    changed = good.replace("2024-01,5,10,,,first", "2024-01,5,10,,,second")
    again = await run("import", str(write(tmp_path, HEADER + changed)), "--sponsor", tenant.slug)
    assert again.exit_code == 0, again.output
    assert "created 0, updated 1, unchanged 3, rejected 0" in again.output
    assert (await points(tenant))[0]["annotation"] == "second"


async def test_header_and_sponsor_errors(tenant: Tenant, database: str, tmp_path: Path) -> None:
    await setup_exchange(tenant)
    for text, message in (
        ("", "the file is empty"),
        ("team,measure,period,colour\n", "unknown column(s) 'colour'"),
        ("team,measure,numerator\n", "missing column(s) period"),
        ("team,measure,period,team\n", "column(s) team appear more than once"),
    ):
        result = await run("import", str(write(tmp_path, text)), "--sponsor", tenant.slug)
        assert result.exit_code == 1, text
        assert message in result.output, result.output
    path = write(tmp_path, HEADER)
    unknown = await run("import", str(path), "--sponsor", "no-such-sponsor")
    assert unknown.exit_code == 1 and "no sponsor 'no-such-sponsor'" in unknown.output
    empty = await run("import", str(path), "--sponsor", tenant.slug)
    assert empty.exit_code == 0 and "0 rows in 0 batch(es)" in empty.output
    # a byte-order mark and columns in another order, the optional ones left out
    minimal = write(tmp_path, f"\ufeffperiod,team,measure,value\n2024-01,{TEAM},{MEAN},3\n")
    result = await run("import", str(minimal), "--sponsor", tenant.slug)
    assert result.exit_code == 0, result.output
    assert [p["value"] for p in await points(tenant)] == [3.0]


def _large_file(path: Path, rows: int) -> Path:
    """``rows`` distinct points of one team and measure: 100 strata per month from 1900 on."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        for index in range(rows):
            month = index // 100
            period = f"{1900 + month // 12}-{month % 12 + 1:02d}"
            handle.write(f"{TEAM},{PROPORTION},{period},{index % 7},7,,s{index % 100},\n")
    return path


async def _import_large(tenant: Tenant, tmp_path: Path, rows: int, *, trace: bool) -> None:
    await setup_exchange(tenant)
    path = _large_file(tmp_path / "large.csv", rows)
    state: AppState = tenant.factory.app.state.collabx
    seen = 0

    def advance(size: int) -> None:
        nonlocal seen
        seen += size

    started = time.monotonic()
    if trace:
        tracemalloc.start()
    try:
        summary = await import_csv(
            state.sessionmaker,
            sponsor_slug=tenant.slug,
            path=path,
            batch_size=5_000,
            progress=advance,
        )
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert summary.rejected == 0, summary.conflicts
    assert (summary.rows, summary.created, summary.batches) == (rows, rows, -(-rows // 5_000))
    assert summary.written
    assert seen == path.stat().st_size
    # streamed: one batch at a time (holding 100,000 parsed rows and checking them at once
    # takes several times this)
    assert peak < 100 * 2**20, peak
    print(f"imported {rows} rows in {elapsed:.1f} s, peak {peak / 2**20:.1f} MiB")


async def test_large_file_is_streamed_in_batches(tenant: Tenant, tmp_path: Path) -> None:
    await _import_large(tenant, tmp_path, 20_000, trace=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_hundred_thousand_rows(tenant: Tenant, tmp_path: Path) -> None:
    """100,000 rows (about 12 s on SQLite without tracing; the memory tracing slows it)."""
    await _import_large(tenant, tmp_path, 100_000, trace=True)
