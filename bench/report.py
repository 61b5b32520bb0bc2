"""The run's outputs: ``results.json`` entries, the Markdown table and ``RESULTS.md``.

Each figure is the median over the run's rounds; ratios are API / floor (higher is better for
throughput: 1.0 would be the floor's speed).
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.driver import Config, Memory, Outcome, Run
    from bench.generate import Dataset
    from bench.targets import Targets

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "SQLAlchemy",
    "asyncpg",
)

LOG_PATH = Path(__file__).with_name("LOG.md")
"""The hand-written optimisation log, appended to every ``RESULTS.md`` (which runs overwrite)."""

FIELD_REFERENCE = """\
Figures of the field from `../shared/peer-bench/results.md` (2-core box, PostgreSQL 15, its own
dataset of the same shape at scale 1, concurrency 16, median of 5 rounds). Its questions are
close to, not identical with, ours (no tenancy, integer ids, no value rule): compare ratios.

| | Q1 dashboard | Q2 aggregate | Q3 ingest, 1,000-row batches |
|---|---:|---:|---:|
| raw-SQL floor (asyncpg) | 35.5 req/s | 2,056 req/s | 211,060 rows/s |
| PostGraphile 5.1.5 | 10.2 req/s (0.27x) | 1,101 req/s (0.54x) | 113,710 rows/s (0.54x) |
| strawberry + SQLAlchemy ORM + DataLoaders | 1.1 req/s (0.03x) | 197 req/s (0.10x) \
| 10,480 rows/s (0.05x) |
| targets of issue 7 for CollabX | ≥ 0.5x | ≥ 0.6x | ≥ 0.6x (rows/s) |
"""


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(api: float | None, floor: float | None) -> float | None:
    if api is None or not floor:
        return None
    return round(api / floor, 3)


def _per_request_ms(runs: Sequence[Run], attribute: str) -> float | None:
    values = [getattr(run, attribute) * 1000 / run.requests for run in runs if run.requests]
    return _round(_median(values))


def result_entries(outcomes: Sequence[Outcome], memory: Memory) -> list[dict[str, Any]]:
    """The ``results.json`` list: one object per question, then one for memory."""
    from bench.driver import TITLES

    entries: list[dict[str, Any]] = []
    for outcome in outcomes:
        api, floor = outcome.api_runs, outcome.floor_runs
        api_rps = _median([run.rps for run in api])
        floor_rps = _median([run.rps for run in floor])
        entry: dict[str, Any] = {
            "question": outcome.question,
            "title": TITLES[outcome.question],
            "skipped": outcome.check.skip,
            "verified": outcome.check.verified,
            "verify_note": outcome.check.note,
            "api_rps": _round(api_rps),
            "floor_rps": _round(floor_rps),
            "rps_ratio": _ratio(api_rps, floor_rps),
            "api_p50_ms": _round(_median([run.percentile_ms(0.5) for run in api])),
            "floor_p50_ms": _round(_median([run.percentile_ms(0.5) for run in floor])),
            "api_p99_ms": _round(_median([run.percentile_ms(0.99) for run in api])),
            "floor_p99_ms": _round(_median([run.percentile_ms(0.99) for run in floor])),
            "api_requests": api[0].requests if api else 0,
            "floor_requests": floor[0].requests if floor else 0,
            "rounds": len(api),
            "concurrency": outcome.concurrency,
            "api_errors": sum(run.errors for run in api),
            "floor_errors": sum(run.errors for run in floor),
            "api_sample_error": next((run.sample_error for run in api if run.sample_error), ""),
            "floor_sample_error": next((run.sample_error for run in floor if run.sample_error), ""),
            "api_runs_rps": [round(run.rps, 2) for run in api],
            "floor_runs_rps": [round(run.rps, 2) for run in floor],
            "api_server_cpu_ms_per_req": _per_request_ms(api, "cpu_server_s"),
            "api_postgres_cpu_ms_per_req": _per_request_ms(api, "cpu_postgres_s"),
            "api_client_cpu_ms_per_req": _per_request_ms(api, "cpu_own_s"),
            "floor_cpu_ms_per_req": _per_request_ms(floor, "cpu_own_s"),
            "floor_postgres_cpu_ms_per_req": _per_request_ms(floor, "cpu_postgres_s"),
            "api_peak_rss_mib": _round(outcome.peak_rss_mib, 1),
        }
        if outcome.rows_per_request is not None:
            api_rows = _median([run.rows_per_s for run in api])
            floor_rows = _median([run.rows_per_s for run in floor])
            entry |= {
                "rows_per_request": outcome.rows_per_request,
                "api_rows_per_s": _round(api_rows, 1),
                "floor_rows_per_s": _round(floor_rows, 1),
                "rows_per_s_ratio": _ratio(api_rows, floor_rows),
            }
        entries.append(entry)
    entries.append(
        {
            "question": "memory",
            "api_peak_rss_mib_run": _round(memory.peak_run_mib, 1),
            "export_points": memory.export_points,
            "export_path": memory.export_path,
            "export_seconds": _round(memory.export_seconds),
            "api_rss_before_export_mib": _round(memory.rss_before_export_mib, 1),
            "api_peak_rss_mib_export": _round(memory.peak_export_mib, 1),
            "api_rss_after_export_mib": _round(memory.rss_after_export_mib, 1),
            "note": memory.note,
        }
    )
    return entries


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(entries: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of a run: API and floor side by side, ratio api / floor."""
    lines = [
        "| question | api req/s | floor req/s | api / floor | api p50 ms | floor p50 ms "
        "| api p99 ms | floor p99 ms | api rows/s | floor rows/s | rows/s api / floor | verified |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for e in entries:
        if e["question"] == "memory":
            continue
        if e["skipped"]:
            lines.append(f"| {e['question']} | skipped: {e['skipped'][:160]} |" + " |" * 10)
            continue
        ratio = "-" if e["rps_ratio"] is None else f"**{e['rps_ratio']:.2f}x**"
        rows_ratio = e.get("rows_per_s_ratio")
        errors = ""
        if e["api_errors"] or e["floor_errors"]:
            errors = f" ({e['api_errors']} api / {e['floor_errors']} floor errors)"
        lines.append(
            f"| {e['question']} | {_number(e['api_rps'])} | {_number(e['floor_rps'])} | {ratio} "
            f"| {_number(e['api_p50_ms'])} | {_number(e['floor_p50_ms'])} "
            f"| {_number(e['api_p99_ms'])} | {_number(e['floor_p99_ms'])} "
            f"| {_number(e.get('api_rows_per_s'), 0)} | {_number(e.get('floor_rows_per_s'), 0)} "
            f"| {'-' if rows_ratio is None else f'{rows_ratio:.2f}x'} "
            f"| {'yes' if e['verified'] else 'NO'}{errors} |"
        )
    return "\n".join(lines)


def cpu_table(entries: Sequence[dict[str, Any]]) -> str:
    """CPU milliseconds per request: where the work is done on each side."""
    lines = [
        "| question | API server | PostgreSQL (API) | load client | floor (asyncpg + driver) "
        "| PostgreSQL (floor) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in entries:
        if e["question"] == "memory" or e["skipped"]:
            continue
        lines.append(
            f"| {e['question']} | {_number(e['api_server_cpu_ms_per_req'], 2)} "
            f"| {_number(e['api_postgres_cpu_ms_per_req'], 2)} "
            f"| {_number(e['api_client_cpu_ms_per_req'], 2)} "
            f"| {_number(e['floor_cpu_ms_per_req'], 2)} "
            f"| {_number(e['floor_postgres_cpu_ms_per_req'], 2)} |"
        )
    return "\n".join(lines)


def _host() -> dict[str, str]:
    """CPU count and model, memory."""
    info: dict[str, str] = {"nproc": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            info["cpu"] = next(
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            )
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
            info["memory"] = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        info["memory"] = "unknown"
    return info


async def machine(connection: Any) -> dict[str, str]:
    """What the numbers were measured on."""
    info = _host()
    info["postgresql"] = str(await connection.fetchval("SELECT version()"))
    settings = await connection.fetch(
        "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN"
        " ('shared_buffers', 'max_parallel_workers_per_gather', 'jit', 'synchronous_commit')"
    )
    info["postgresql settings"] = ", ".join(f"{r['name']}={r['setting']}" for r in settings)
    info["python"] = platform.python_version()
    packages = []
    for name in PACKAGES:
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            packages.append(f"{name} (not installed)")
    info["packages"] = ", ".join(packages)
    info["os"] = platform.platform()
    load1, load5, _ = os.getloadavg()
    info["load average at the end"] = f"{load1:.2f} (1 min), {load5:.2f} (5 min)"
    return info


def _workers(config: Config) -> str:
    workers = config.server_env.get("COLLABX_WORKERS", "1")
    if workers == "1":
        return "one uvicorn process (COLLABX_WORKERS=1, the default)"
    return f"{workers} uvicorn worker processes (CPU and memory are summed over them)"


def _server_line(config: Config) -> str:
    overrides = ", ".join(f"`{k}={v}`" for k, v in config.server_env.items())
    return (
        "`collabx serve` in its own process with production settings (COLLABX_DEBUG=0, no demo;"
        f" {_workers(config)}, loop and http `auto` = uvloop and httptools; its access log goes"
        " to a file)"
        + (f"; environment overrides: {overrides}" if overrides else "")
        + ". The rate-limit buckets are made too big to empty (a benchmark is one client at full"
        " speed); they are still charged on every request."
    )


def render_report(
    config: Config,
    dataset: Dataset,
    targets: Targets,
    outcomes: dict[str, Outcome],
    memory: Memory,
    info: dict[str, str],
    profiles: Sequence[str],
    started_at: datetime,
) -> str:
    """``RESULTS.md``: the last run's table, how it was made, and on what."""
    entries = result_entries([outcomes[q] for q in config.questions], memory)
    pages = max(
        1, -(-min(config.export_points, targets.export_available) // config.export_page_size)
    )
    plans = ", ".join(
        f"{q} {pages if q == 'Q4' else p.api}/{pages if q == 'Q4' else p.floor}"
        + (f" at c={p.concurrency}" if p.concurrency else "")
        + (f" x{p.rounds} round(s)" if p.rounds else "")
        for q, p in config.plans.items()
        if q in config.questions
    )
    lines = [
        "# CollabX benchmark: the API beside the raw-SQL floor",
        "",
        f"Last run: `{config.command}` ({config.label}), {started_at:%Y-%m-%d %H:%M} UTC.",
        f"Dataset: {dataset.summary()}.",
        f"Targets: collaborative `{targets.collaborative_code}` ({targets.collaborative_teams}"
        f" teams, {targets.measures_in_set} measures), measure `{targets.measure_code}`,"
        f" export of sponsor `{targets.export_sponsor_slug}` ({targets.export_available:,}"
        f" points), FHIR period {targets.last_period}.",
        f"Load: closed loop, concurrency {config.concurrency}, {config.rounds} round(s) of"
        f" API then floor after a warm-up; requests per run (api/floor): {plans}. Q4 reads the"
        f" first {min(config.export_points, targets.export_available):,} points of the delta"
        f" export in pages of {config.export_page_size} (a request is a page), split over the"
        " concurrent keyset walks, each from the start. Figures are medians over rounds.",
        f"Server: {_server_line(config)}",
        "",
        table(entries),
        "",
        "api / floor is the throughput ratio (1.00x = the floor's speed). The floor is"
        " hand-written SQL through asyncpg in the benchmark's own process: no HTTP, no JSON, no"
        " authentication, no validation, no receipts or history (Q3) — a bound, not a server.",
        "",
        "## Memory of the API process",
        "",
        f"- Peak RSS (VmHWM) over the whole measured run: {_number(memory.peak_run_mib)} MiB.",
        f"- Export of {memory.export_points:,} points through {memory.export_path}"
        f" ({config.memory_streams} streams, {memory.export_seconds:.1f} s): RSS"
        f" {_number(memory.rss_before_export_mib)} MiB before, peak"
        f" {_number(memory.peak_export_mib)} MiB, {_number(memory.rss_after_export_mib)} MiB"
        " after." + (f" {memory.note}." if memory.note else ""),
        "",
        "## CPU per request (ms)",
        "",
        cpu_table(entries),
        "",
        "PostgreSQL counts the backends connected to the bench database (backends and parallel"
        " workers that exited during a run are not counted); the load client is this"
        " benchmark's HTTP client.",
        "",
        "## Verification (before measuring)",
        "",
    ]
    for question in config.questions:
        check = outcomes[question].check
        if check.skip:
            lines.append(f"- {question}: skipped — {check.skip}")
        else:
            lines.append(
                f"- {question}: {'same data' if check.verified else 'DIFFERENT'}: {check.note}"
            )
    lines += ["", "## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in info.items()]
    lines += [
        "",
        "Everything (PostgreSQL, the API server, the load client and the floor) shares this"
        " machine. Runs made while other work is going on are noisy: trust ratios more than"
        " absolute numbers, and rerun `make bench` on a quiet machine for figures to keep.",
        "",
    ]
    if profiles:
        lines += ["## Profile (py-spy, API process)", ""]
        lines += list(profiles)
    lines += ["## The field", "", FIELD_REFERENCE]
    log = optimisation_log()
    if log:
        lines += [log]
    return "\n".join(lines)


def optimisation_log(path: Path = LOG_PATH) -> str:
    """``bench/LOG.md`` (its own ``## Optimisation log`` heading included), or '' without it."""
    try:
        return path.read_text(encoding="utf-8").strip() + "\n"
    except OSError:
        return ""
