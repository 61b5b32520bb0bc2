"""The benchmark harness end to end at a tiny scale, on PostgreSQL.

Generates scale 0.005 (6 teams, 3,240 points) into a database of its own, starts a real
``collabx serve``, verifies that the API and the floor answer every question alike, runs one
round of a few requests per question and writes ``results.json`` and ``RESULTS.md`` to a
temporary folder. It checks that the harness works and its output is well formed — never how
fast anything is (issue 7: no timed assertions).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bench.driver import QUESTIONS, Plan, quick_config, run
from tests.conftest import postgres_server_url

TINY = Plan(api=2, floor=2, warmup=1, concurrency=2)
QUESTION_KEYS = {
    "question",
    "api_rps",
    "floor_rps",
    "rps_ratio",
    "api_p50_ms",
    "floor_p50_ms",
    "api_p99_ms",
    "floor_p99_ms",
    "api_errors",
    "floor_errors",
    "verified",
    "skipped",
    "api_peak_rss_mib",
}
ROWS_KEYS = {"api_rows_per_s", "floor_rows_per_s", "rows_per_s_ratio", "rows_per_request"}
ALWAYS_THERE = ("Q1", "Q3", "Q4")
"""Questions whose API exists since the data-exchange issue: never skipped."""


async def _databases(server_url: str, prefix: str) -> set[str]:
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
        )
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


@pytest.mark.timeout(300)
async def test_bench_pipeline_verifies_measures_and_reports(tmp_path: Path) -> None:
    server_url = postgres_server_url()
    assert server_url is not None
    prefix = f"collabx_bench_smoke_{uuid.uuid4().hex[:6]}"
    config = quick_config(
        scale=0.005,
        concurrency=2,
        plans=dict.fromkeys(QUESTIONS, TINY),
        export_points=250,
        memory_export_points=500,
        memory_streams=1,
        postgres_url=server_url,
        results_path=tmp_path / "results.json",
        report_path=tmp_path / "RESULTS.md",
        work_dir=tmp_path / "work",
        database_prefix=prefix,
    )

    entries = await run(config)

    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved == entries
    by_question = {entry["question"]: entry for entry in saved}
    assert list(by_question) == [*QUESTIONS, "memory"]
    for question in QUESTIONS:
        entry = by_question[question]
        assert set(entry) >= QUESTION_KEYS, question
        if question in ("Q3", "Q4"):
            assert set(entry) >= ROWS_KEYS, question
        if entry["skipped"]:
            assert question not in ALWAYS_THERE, entry["skipped"]
            assert entry["api_rps"] is None
            continue
        assert entry["verified"] is True, (question, entry["verify_note"])
        assert entry["api_errors"] == 0, (question, entry["api_sample_error"])
        assert entry["floor_errors"] == 0, (question, entry["floor_sample_error"])
        requests = 3 if question == "Q4" else TINY.api  # Q4: the pages of 250 points
        assert entry["api_requests"] == entry["floor_requests"] == requests
        for key in ("api_rps", "floor_rps", "rps_ratio", "api_p50_ms", "floor_p99_ms"):
            assert isinstance(entry[key], float), (question, key, entry[key])
    assert by_question["Q3"]["rows_per_request"] == 1_000
    assert by_question["Q4"]["rows_per_request"] == 100
    memory = by_question["memory"]
    assert memory["export_points"] > 0
    assert isinstance(memory["api_peak_rss_mib_export"], float)
    assert isinstance(memory["api_peak_rss_mib_run"], float)

    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "| Q1 |" in report and "api / floor" in report
    assert "## Machine" in report and "nproc:" in report and "PostgreSQL" in report
    assert await _databases(server_url, prefix) == set(), "the bench database was not dropped"
