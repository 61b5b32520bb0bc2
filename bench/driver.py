"""The run: load the dataset, start the server, verify, drive the load, report.

For each question the API (a real ``collabx serve`` over loopback) and the floor (asyncpg, same
concurrency, a pool of that size) run a fixed number of requests in a closed loop — every worker
sends its next request when its last one answered — after an unrecorded warm-up, for ``rounds``
rounds (API then floor each round); each figure is the median over rounds. Latency is from
sending a request to having its last byte; p50/p99 are nearest-rank over a run's requests.

Before anything is measured, :func:`verify` checks that the API and the floor answer each question
with the same data (like ``../shared/peer-bench``'s ``--verify``). A question whose API field or
route does not exist (yet) is skipped with the reason; one whose answers differ is measured but
marked unverified. Never a timed assertion anywhere: the numbers are reported, not judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import api, floor
from bench.api import Q5_PAGE_SIZE, BadResponse, HttpConnection, Request
from bench.generate import Dataset, asyncpg_dsn, create_database, drop_database, generate
from bench.profile import Recording, py_spy, summarise
from bench.server import Server, cpu_seconds
from bench.targets import BATCH_ROWS, Batch, Targets, make_batches, new_values, pick_targets

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = "COLLABX_BENCH_POSTGRES_URL"
REQUEST_TIMEOUT = 300.0
SERVER_ENV = {
    "COLLABX_RATE_LIMIT_CAPACITY": "1000000000",
    "COLLABX_RATE_LIMIT_REFILL_PER_SECOND": "1000000000",
    "COLLABX_MAX_PAGE_SIZE": str(Q5_PAGE_SIZE),
}
"""Production settings except the per-client rate-limit buckets, made too big to ever empty (a
benchmark is one client at full speed; the buckets are still charged on every request), and a
max page size that lets Q5's FHIR search answer a month's reports in one page, as the floor's
one statement does (at scale 1 a measure has over 100 reports a month, the default max)."""
QUESTIONS = ("Q1", "Q1-typed", "Q2", "Q2-chart", "Q3", "Q3-typed", "Q4", "Q5")
TITLES = {
    "Q1": "dashboard: 50 teams x measure set x last 12 points (series as `columns`)",
    "Q1-typed": "the Q1 dashboard with typed point objects (`points`)",
    "Q2": "aggregate per month (teams, Σnum, Σden, pooled rate, median)",
    "Q2-chart": "aggregate with its run chart",
    "Q3": "ingest: submitMeasureDataColumns (compact form), 1,000-row batches",
    "Q3-typed": "ingest: submitMeasureData (typed row objects), 1,000-row batches",
    "Q4": "delta export by keyset paging (a request is a page)",
    "Q5": "FHIR MeasureReport search",
}


@dataclass(frozen=True)
class Plan:
    """Requests of one question: measured per run (API, floor), warm-up, concurrency and rounds
    (None: the run's). Q4's requests are pages: its counts come from ``export_points``."""

    api: int
    floor: int
    warmup: int
    concurrency: int | None = None
    rounds: int | None = None


@dataclass(frozen=True)
class Config:
    """Everything a run needs; :func:`full_config` and :func:`quick_config` are the presets."""

    label: str
    scale: float
    plans: dict[str, Plan]
    rounds: int = 1
    concurrency: int = 16
    seed: int = 20240601
    export_points: int = 100_000
    export_page_size: int = 100
    memory_export_points: int = 1_000_000
    memory_streams: int = 4
    questions: tuple[str, ...] = QUESTIONS
    postgres_url: str = field(
        default_factory=lambda: os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    )
    results_path: Path = HERE / "results.json"
    report_path: Path = HERE / "RESULTS.md"
    work_dir: Path = HERE / "results"
    profile: bool = False
    database_prefix: str = "collabx_bench"
    """Name prefix of the run's own database (it must start with ``collabx_bench``)."""
    server_env: dict[str, str] = field(default_factory=lambda: dict(SERVER_ENV))
    command: str = "python -m bench"


def full_config(**overrides: Any) -> Config:
    """``make bench``: scale 1, 3 rounds, a 100,000-point export (one round: it is long), a
    1,000,000-point memory probe. Runs are sized for the service as it was when the harness
    was written (Q1 about 1 req/s): scale them with ``--requests-factor``."""
    plans = {
        "Q1": Plan(api=64, floor=160, warmup=16),
        "Q1-typed": Plan(api=32, floor=160, warmup=16),
        "Q2": Plan(api=600, floor=4_000, warmup=100),
        "Q2-chart": Plan(api=400, floor=4_000, warmup=100),
        "Q3": Plan(api=64, floor=300, warmup=16),
        "Q3-typed": Plan(api=64, floor=300, warmup=16),
        "Q4": Plan(api=1_000, floor=1_000, warmup=0, rounds=1),
        "Q5": Plan(api=600, floor=4_000, warmup=100),
    }
    config = Config(label="full", scale=1.0, plans=plans, rounds=3, command="make bench")
    return replace(config, **overrides)


def quick_config(**overrides: Any) -> Config:
    """``make bench-quick``: scale 0.05, one round, fewer requests (under 3 minutes)."""
    plans = {
        "Q1": Plan(api=32, floor=48, warmup=4),
        "Q1-typed": Plan(api=16, floor=48, warmup=4),
        "Q2": Plan(api=150, floor=1_000, warmup=20),
        "Q2-chart": Plan(api=150, floor=1_000, warmup=20),
        "Q3": Plan(api=16, floor=48, warmup=2),
        "Q3-typed": Plan(api=16, floor=48, warmup=2),
        "Q4": Plan(api=50, floor=50, warmup=0),
        "Q5": Plan(api=150, floor=1_000, warmup=20),
    }
    config = Config(
        label="quick",
        scale=0.05,
        plans=plans,
        rounds=1,
        export_points=5_000,
        memory_export_points=30_000,
        memory_streams=2,
        command="make bench-quick",
    )
    return replace(config, **overrides)


# --- measuring -------------------------------------------------------------------------------


Operation = Callable[[int, int], Awaitable[int]]
"""``op(worker, request index)`` → rows handled; raises on a bad answer."""


@dataclass
class Run:
    """One measured run of one side."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    rows: int
    cpu_own_s: float = 0.0
    cpu_server_s: float = 0.0
    cpu_postgres_s: float = 0.0
    sample_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1] * 1000


async def closed_loop(requests: int, concurrency: int, op: Operation) -> Run:
    """``requests`` calls of ``op`` by ``concurrency`` workers, each starting its next call when
    its last one returned."""
    next_index = 0
    latencies: list[float] = []
    errors = 0
    rows = 0
    sample_error = ""

    async def worker(number: int) -> None:
        nonlocal next_index, errors, rows, sample_error
        while next_index < requests:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    handled = await op(number, index)
                rows += handled  # not `rows += await op()`: that reads `rows` before the await
            except Exception as exc:  # counted and reported, like a bad HTTP answer
                errors += 1
                sample_error = sample_error or f"{type(exc).__name__}: {exc}"[:500]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(max(1, min(concurrency, requests)))))
    seconds = time.perf_counter() - started
    return Run(requests, errors, seconds, latencies, rows, sample_error=sample_error)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Bench:
    """The state of one run: data, server, pool, tokens, targets."""

    config: Config
    dataset: Dataset
    server: Server
    pool: Any
    admin: Any
    targets: Targets
    batches: list[Batch]
    tokens: dict[str, str] = field(default_factory=dict)
    connections: list[HttpConnection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    q5_measure: str = ""

    # --- helpers ---

    async def refresh_tokens(self) -> None:
        for slug, client in self.dataset.clients.items():
            self.tokens[slug] = await self.server.token(client.client_id, client.secret)

    def request(self, method: str, path: str, slug: str, body: bytes = b"") -> Request:
        return Request.build(
            self.server.host, self.server.port, method, path, token=self.tokens[slug], body=body
        )

    def graphql(self, slug: str, document: str, variables: dict[str, Any]) -> Request:
        return self.request("POST", "/graphql", slug, api.graphql_body(document, variables))

    def connection(self, worker: int) -> HttpConnection:
        while len(self.connections) <= worker:
            self.connections.append(HttpConnection(self.server.host, self.server.port))
        return self.connections[worker]

    async def close_connections(self) -> None:
        for connection in self.connections:
            await connection.close()
        self.connections.clear()

    async def send(self, worker: int, request: Request) -> bytes:
        """Send on the worker's connection; any failure drops the connection (it may be out of
        step) and raises BadResponse for a non-200 answer."""
        connection = self.connection(worker)
        try:
            status, body = await connection.send(request)
        except BaseException:
            await connection.close()
            raise
        if status != 200:
            raise BadResponse(f"HTTP {status}: {body[:300]!r}")
        return body

    async def postgres_pids(self) -> set[int]:
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return {int(row[0]) for row in rows}

    async def measured(self, requests: int, concurrency: int, op: Operation) -> Run:
        """A closed-loop run with the CPU it cost: this process, the server, our PostgreSQL
        backends (those connected to the bench database; a backend that exited during the run,
        such as a pool's overflow connection, is not counted)."""
        pg_before = {pid: cpu_seconds(pid) for pid in await self.postgres_pids()}
        own_before, server_before = own_cpu_seconds(), self.server.cpu_seconds()
        run = await closed_loop(requests, concurrency, op)
        run.cpu_own_s = own_cpu_seconds() - own_before
        run.cpu_server_s = self.server.cpu_seconds() - server_before
        total = 0.0
        for pid in set(pg_before) | await self.postgres_pids():
            after = cpu_seconds(pid)
            if after is not None:
                total += after - (pg_before.get(pid) or 0.0)
        run.cpu_postgres_s = total
        return run

    # --- the operations of each question, per side ---

    def api_operation(self, question: str, salt: int, count: int) -> Operation:
        """The API side of a question; bodies that vary per request are built here, untimed."""
        t = self.targets
        if question in ("Q1", "Q1-typed"):
            document = api.Q1_DOCUMENT if question == "Q1" else api.Q1_TYPED_DOCUMENT
            request = self.graphql(t.sponsor_slug, document, api.q1_variables(t))
            return self._simple(request, api.check_graphql)
        if question in ("Q2", "Q2-chart"):
            document = api.Q2_DOCUMENT if question == "Q2" else api.Q2_CHART_DOCUMENT
            request = self.graphql(t.sponsor_slug, document, api.q2_variables(t))
            return self._simple(request, api.check_graphql)
        if question in ("Q3", "Q3-typed"):
            requests = []
            typed = question == "Q3-typed"
            for index in range(count):
                batch = self.batches[index % len(self.batches)]
                values = new_values(batch, salt * 1_000_003 + index)
                variables = api.q3_variables(batch, values, typed=typed)
                requests.append(
                    self.graphql(batch.sponsor_slug, api.q3_document(question), variables)
                )

            async def ingest(worker: int, index: int) -> int:
                body = await self.send(worker, requests[index])
                api.check_receipt(body, BATCH_ROWS)
                return BATCH_ROWS

            return ingest
        if question == "Q4":
            cursors: dict[int, tuple[str | None, int]] = {}
            slug, share = t.export_sponsor_slug, self.walk_share()

            async def page(worker: int, index: int) -> int:
                after, done = cursors.get(worker, (None, 0))
                variables = {"first": self.config.export_page_size, "after": after}
                request = self.graphql(slug, api.Q4_DOCUMENT, variables)
                found = api.graphql_data(await self.send(worker, request))["dataPoints"]
                rows = len(found["nodes"])
                done += rows
                more = found["pageInfo"]["hasNextPage"] and rows and done < share
                cursors[worker] = (found["pageInfo"]["endCursor"], done) if more else (None, 0)
                return rows

            return page
        if question == "Q5":
            request = self.request("GET", api.q5_path(t, self.q5_measure), t.sponsor_slug)

            def bundle(body: bytes) -> None:
                if b'"Bundle"' not in body:
                    raise BadResponse(body[:300].decode(errors="replace"))

            return self._simple(request, bundle)
        raise ValueError(question)

    def _simple(self, request: Request, check: Callable[[bytes], None]) -> Operation:
        async def op(worker: int, index: int) -> int:
            check(await self.send(worker, request))
            return 1

        return op

    def export_size(self) -> int:
        """Points of Q4: ``export_points``, at most what the export sponsor has."""
        return min(self.config.export_points, self.targets.export_available)

    def export_pages(self) -> int:
        """Q4's requests: the pages of ``export_size`` points."""
        return max(1, math.ceil(self.export_size() / self.config.export_page_size))

    def walk_share(self) -> int:
        """Points each of Q4's concurrent keyset walks reads before it starts over."""
        concurrency = self.config.plans["Q4"].concurrency or self.config.concurrency
        return max(1, math.ceil(self.export_size() / concurrency))

    async def api_export(
        self, worker: int, slug: str, points: int, keep: bool = False
    ) -> list[dict[str, Any]]:
        """The first ``points`` rows of a sponsor's delta export through ``dataPoints`` paging
        (rows kept only with ``keep``; otherwise a list of the right length of empty dicts)."""
        rows: list[dict[str, Any]] = []
        after: str | None = None
        while len(rows) < points:
            first = min(self.config.export_page_size, points - len(rows))
            request = self.graphql(slug, api.Q4_DOCUMENT, {"first": first, "after": after})
            page = api.graphql_data(await self.send(worker, request))["dataPoints"]
            rows.extend(page["nodes"] if keep else [{}] * len(page["nodes"]))
            if not page["pageInfo"]["hasNextPage"] or not page["nodes"]:
                break
            after = page["pageInfo"]["endCursor"]
        return rows

    def floor_operation(self, question: str, salt: int, count: int) -> Operation:
        t = self.targets
        pool = self.pool
        if question in ("Q1", "Q1-typed"):

            async def dashboard(worker: int, index: int) -> int:
                async with pool.acquire() as connection:
                    await floor.q1(connection, t)
                return 1

            return dashboard
        if question in ("Q2", "Q2-chart"):
            answer = floor.q2 if question == "Q2" else floor.q2_chart

            async def aggregate(worker: int, index: int) -> int:
                async with pool.acquire() as connection:
                    await answer(connection, t)
                return 1

            return aggregate
        if question in ("Q3", "Q3-typed"):
            work = []
            for index in range(count):
                batch = self.batches[index % len(self.batches)]
                work.append((batch, new_values(batch, salt * 1_000_003 + index)))

            async def ingest(worker: int, index: int) -> int:
                batch, values = work[index]
                async with pool.acquire() as connection:
                    return await floor.q3(connection, batch, values)

            return ingest
        if question == "Q4":
            keysets: dict[int, tuple[tuple[datetime, uuid.UUID] | None, int]] = {}
            share, size = self.walk_share(), self.config.export_page_size

            async def page(worker: int, index: int) -> int:
                after, done = keysets.get(worker, (None, 0))
                async with pool.acquire() as connection:
                    found = await floor.q4_page(connection, t.export_sponsor_id, after, size)
                done += len(found)
                more = len(found) == size and done < share
                last = (found[-1]["updated_at"], found[-1]["id"]) if found else None
                keysets[worker] = (last, done) if more else (None, 0)
                return len(found)

            return page
        if question == "Q5":

            async def search(worker: int, index: int) -> int:
                async with pool.acquire() as connection:
                    await floor.q5(connection, t)
                return 1

            return search
        raise ValueError(question)

    def rows_per_request(self, question: str) -> int | None:
        if question in ("Q3", "Q3-typed"):
            return BATCH_ROWS
        if question == "Q4":
            return self.config.export_page_size
        return None

    def requests(self, question: str, side: str) -> int:
        """Measured requests of one run of ``side`` (Q4: the pages of the export)."""
        if question == "Q4":
            return self.export_pages()
        plan = self.config.plans[question]
        return plan.api if side == "api" else plan.floor


# --- verification ----------------------------------------------------------------------------


def difference(api_value: Any, floor_value: Any, path: str = "") -> str | None:
    """Where two answers differ (floats within 1e-9 relative), or None when they agree."""
    if isinstance(api_value, dict) and isinstance(floor_value, dict):
        if set(api_value) != set(floor_value):
            return f"{path or '.'}: keys {sorted(api_value)} vs {sorted(floor_value)}"
        for key in api_value:
            found = difference(api_value[key], floor_value[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(api_value, list) and isinstance(floor_value, list):
        if len(api_value) != len(floor_value):
            return f"{path}: {len(api_value)} items vs {len(floor_value)}"
        for index, (a, b) in enumerate(zip(api_value, floor_value, strict=True)):
            found = difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(api_value, int | float) and isinstance(floor_value, int | float):
        if isinstance(api_value, bool) or isinstance(floor_value, bool):
            return None if api_value is floor_value else f"{path}: {api_value} vs {floor_value}"
        if math.isclose(api_value, floor_value, rel_tol=1e-9, abs_tol=1e-12):
            return None
    if api_value == floor_value:
        return None
    return f"{path}: API {api_value!r} vs floor {floor_value!r}"


@dataclass
class Check:
    """The verdict on one question before measuring."""

    verified: bool
    note: str
    skip: str | None = None


async def verify(bench: Bench, questions: Sequence[str]) -> dict[str, Check]:
    """Same data from the API and the floor, question by question (writes last: Q3)."""
    checks: dict[str, Check] = {}
    order = [
        q
        for q in ("Q1", "Q1-typed", "Q2", "Q2-chart", "Q4", "Q5", "Q3", "Q3-typed")
        if q in questions
    ]
    for question in order:
        try:
            checks[question] = await _verify_one(bench, question)
        except Exception as exc:  # the API cannot answer: skip the question, say why
            checks[question] = Check(False, "", skip=f"{type(exc).__name__}: {exc}"[:600])
    await bench.close_connections()
    return checks


def _parse_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        if isinstance(row.get("updatedAt"), str):
            row["updatedAt"] = datetime.fromisoformat(row["updatedAt"].replace("Z", "+00:00"))
    return rows


async def _verify_one(bench: Bench, question: str) -> Check:
    t = bench.targets
    async with bench.pool.acquire() as connection:
        if question in ("Q1", "Q1-typed"):
            document = api.Q1_DOCUMENT if question == "Q1" else api.Q1_TYPED_DOCUMENT
            data = api.graphql_data(
                await bench.send(0, bench.graphql(t.sponsor_slug, document, api.q1_variables(t)))
            )
            if question == "Q1":
                data = api.points_of_columns(data)
            header, rows = await floor.q1(connection, t)
            if len(rows) != t.expected_q1_points:
                return Check(
                    False, f"floor returned {len(rows)} points, expected {t.expected_q1_points}"
                )
            found = difference(data["collaborative"], floor.q1_document(header, rows))
            return Check(found is None, found or f"same document ({len(rows):,} points)")
        if question in ("Q2", "Q2-chart"):
            document = api.Q2_DOCUMENT if question == "Q2" else api.Q2_CHART_DOCUMENT
            data = api.graphql_data(
                await bench.send(0, bench.graphql(t.sponsor_slug, document, api.q2_variables(t)))
            )
            rows, chart = await floor.q2_chart(connection, t)
            found = difference(data["aggregate"]["points"], floor.q2_points(rows))
            if found is None and question == "Q2-chart":
                got = data["aggregate"]["runChart"]
                found = difference(
                    {
                        "parts": got["parts"],
                        "signals": sorted(signal["rule"] for signal in got["signals"]),
                    },
                    floor.q2_chart_summary(chart),
                    ".runChart",
                )
            return Check(found is None, found or f"same {len(rows)} monthly rows")
        if question == "Q4":
            size = min(bench.export_size(), 3 * bench.config.export_page_size)
            got = await bench.api_export(0, t.export_sponsor_slug, size, keep=True)
            for row in got:
                row.pop("id")
                row["team"], row["measure"] = row["team"]["code"], row["measure"]["code"]
            want = floor.q4_rows(
                await floor.q4(connection, t.export_sponsor_id, size, bench.config.export_page_size)
            )
            found = difference(_parse_times(got), want)
            return Check(found is None, found or f"same first {len(want):,} rows in the same order")
        if question == "Q5":
            return await _verify_fhir(bench, connection)
        if question in ("Q3", "Q3-typed"):
            return await _verify_ingest(bench, connection, question)
    raise ValueError(question)


def _population(report: dict[str, Any]) -> tuple[int | None, int | None]:
    """(numerator, denominator) counts of a summary MeasureReport's first group."""
    counts: dict[str, int] = {}
    for group in report.get("group") or []:
        for population in group.get("population") or []:
            codes = [c.get("code") for c in (population.get("code") or {}).get("coding") or []]
            for code in codes:
                if code in ("numerator", "denominator") and "count" in population:
                    counts[code] = population["count"]
    return counts.get("numerator"), counts.get("denominator")


async def _verify_fhir(bench: Bench, connection: Any) -> Check:
    """Q5: the search answers one report per point the floor finds (same counts)."""
    t = bench.targets
    rows = await floor.q5(connection, t)
    want = sorted((row["numerator"], row["denominator"]) for row in rows)
    tried = []
    for measure in [m for m in (t.measure_canonical, t.measure_code) if m]:
        status, body = await bench.connection(0).send(
            bench.request("GET", api.q5_path(t, measure), t.sponsor_slug)
        )
        if status == 404 and b"MeasureReport" not in body:
            raise BadResponse("GET /fhir/MeasureReport is not served (404): Q5 skipped")
        tried.append(f"measure={measure}: HTTP {status}")
        if status != 200:
            continue
        bundle = json.loads(body)
        reports = [e.get("resource") or {} for e in bundle.get("entry") or []]
        reports = [r for r in reports if r.get("resourceType") == "MeasureReport"]
        if not reports:
            tried[-1] += " with no MeasureReport"
            continue
        bench.q5_measure = measure
        got = sorted(_population(report) for report in reports)
        found = difference(got, want, ".reports")
        return Check(found is None, found or f"same {len(want)} reports (measure={measure})")
    raise BadResponse("no FHIR search answered with MeasureReports: " + "; ".join(tried))


async def _verify_ingest(bench: Bench, connection: Any, question: str = "Q3") -> Check:
    """Q3 (compact) or Q3-typed: a batch written through each side reads back as sent."""
    notes = []
    ok = True
    for side, batch in (("API", bench.batches[0]), ("floor", bench.batches[-1])):
        values = new_values(batch, 987_654 + len(side) + len(question))
        if side == "API":
            variables = api.q3_variables(batch, values, typed=question == "Q3-typed")
            body = await bench.send(
                0, bench.graphql(batch.sponsor_slug, api.q3_document(question), variables)
            )
            api.check_receipt(body, len(batch.rows))
        else:
            await floor.q3(connection, batch, values)
        stored = await connection.fetch(
            """
            SELECT p.numerator, p.denominator, p.value
            FROM unnest($1::uuid[], $2::uuid[], $3::varchar[]) WITH ORDINALITY AS k(t, m, p, n)
            JOIN data_points p ON p.sponsor_id = $4 AND p.team_id = k.t AND p.measure_id = k.m
             AND p.period = k.p AND p.stratum = ''
            ORDER BY k.n
            """,
            [row.team_id for row in batch.rows],
            [row.measure_id for row in batch.rows],
            [row.period for row in batch.rows],
            batch.rows[0].sponsor_id,
        )
        got = [(r["numerator"], r["denominator"], r["value"]) for r in stored]
        want = [(v.numerator, v.denominator, v.value) for v in values]
        same = got == want
        ok = ok and same
        notes.append(
            f"{side}: {len(batch.rows)} rows read back {'as sent' if same else 'DIFFERENT'}"
        )
    return Check(ok, "; ".join(notes))


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Measured runs of one question."""

    question: str
    check: Check
    api_runs: list[Run] = field(default_factory=list)
    floor_runs: list[Run] = field(default_factory=list)
    rows_per_request: int | None = None
    concurrency: int = 0
    peak_rss_mib: float | None = None


async def measure(bench: Bench, question: str, check: Check) -> Outcome:
    """Warm-up, then ``rounds`` rounds of API then floor."""
    config = bench.config
    plan = config.plans[question]
    concurrency = plan.concurrency or config.concurrency
    outcome = Outcome(
        question, check, rows_per_request=bench.rows_per_request(question), concurrency=concurrency
    )
    await bench.refresh_tokens()
    salt = 1
    if plan.warmup:
        for make in (bench.api_operation, bench.floor_operation):
            salt += 1
            await closed_loop(plan.warmup, concurrency, make(question, salt, plan.warmup))
    for _ in range(plan.rounds or config.rounds):
        for side in ("api", "floor"):
            salt += 1
            count = bench.requests(question, side)
            make = bench.api_operation if side == "api" else bench.floor_operation
            op = make(question, salt, count)
            if question in ("Q3", "Q3-typed"):  # every ingest run starts from a vacuumed table
                await bench.admin.execute("VACUUM data_points")
            run = await bench.measured(count, concurrency, op)
            (outcome.api_runs if side == "api" else outcome.floor_runs).append(run)
            print(f"  {question} {side}: {_run_line(run)}", flush=True)
    await bench.close_connections()
    outcome.peak_rss_mib = bench.server.peak_rss_mib()
    return outcome


def _run_line(run: Run) -> str:
    line = (
        f"{run.requests} requests in {run.seconds:.2f} s = {run.rps:,.1f} req/s,"
        f" p50 {run.percentile_ms(0.5):.1f} ms, p99 {run.percentile_ms(0.99):.1f} ms"
    )
    if run.errors:
        line += f", {run.errors} ERRORS ({run.sample_error})"
    return line


async def profile_questions(bench: Bench, questions: Sequence[str]) -> list[str]:
    """Extra, unrecorded API runs of Q1, Q1-typed, Q2, Q3 and Q5 under py-spy; Markdown
    summaries."""
    executable = py_spy()
    if executable is None:
        return ["py-spy is not installed (`.venv/bin/pip install py-spy`): no profile."]
    sections: list[str] = []
    for question in [q for q in ("Q1", "Q1-typed", "Q2", "Q3", "Q5") if q in questions]:
        plan = bench.config.plans[question]
        count = max(plan.api, 8)
        op = bench.api_operation(question, 99_000 + len(sections), count)
        output = bench.config.work_dir / f"profile-{question.lower()}.txt"
        recording = Recording(executable, bench.server.pid, output)
        await asyncio.sleep(1.0)  # attach
        run = await closed_loop(count, plan.concurrency or bench.config.concurrency, op)
        summary = summarise(await recording.stop())
        await bench.close_connections()
        sections.append(
            summary.text(f"{question} ({count} requests, {run.rps:,.1f} req/s under py-spy)")
        )
    return sections


@dataclass
class Memory:
    """The API process's memory: peak over the measured run, then over a big export."""

    peak_run_mib: float | None
    export_points: int = 0
    export_path: str = ""
    export_seconds: float = 0.0
    rss_before_export_mib: float | None = None
    peak_export_mib: float | None = None
    rss_after_export_mib: float | None = None
    peak_was_reset: bool = False
    note: str = ""


async def memory_probe(bench: Bench, peak_run_mib: float | None) -> Memory:
    """Peak RSS during an export of ``memory_export_points`` points: the streaming
    ``/export/data-points`` (NDJSON) when the server has it, else ``dataPoints`` paging; the
    points are read in ``memory_streams`` parallel streams, each cycling over the sponsors."""
    server = bench.server
    memory = Memory(peak_run_mib=peak_run_mib)
    await bench.refresh_tokens()
    memory.rss_before_export_mib = server.rss_mib()
    memory.peak_was_reset = server.reset_peak_rss()
    target = bench.config.memory_export_points
    slugs = sorted(bench.tokens)
    streams = max(1, bench.config.memory_streams)
    share = math.ceil(target / streams)
    use_ndjson = await _has_bulk_export(bench)
    memory.export_path = (
        "GET /export/data-points (NDJSON)" if use_ndjson else "GraphQL dataPoints paging"
    )

    async def stream(worker: int) -> int:
        done, turn = 0, worker
        while done < share:
            slug = slugs[turn % len(slugs)]
            turn += 1
            if use_ndjson:
                done += await _ndjson_export(bench, worker, slug, share - done)
            else:
                done += len(await bench.api_export(worker, slug, share - done))
        return done

    started = time.perf_counter()
    totals = await asyncio.gather(*(stream(w) for w in range(streams)))
    memory.export_seconds = time.perf_counter() - started
    memory.export_points = sum(totals)
    memory.peak_export_mib = server.peak_rss_mib()
    memory.rss_after_export_mib = server.rss_mib()
    await bench.close_connections()
    if not memory.peak_was_reset:
        memory.note = "VmHWM could not be reset: the export peak includes the run's peak"
    return memory


async def _has_bulk_export(bench: Bench) -> bool:
    slug = bench.targets.export_sponsor_slug
    async with httpx.AsyncClient(base_url=bench.server.base_url, timeout=30) as client:
        response = await client.head(
            "/export/data-points?format=ndjson",
            headers={"Authorization": f"Bearer {bench.tokens[slug]}"},
        )
    return response.status_code not in (404, 405)


async def _ndjson_export(bench: Bench, worker: int, slug: str, limit: int) -> int:
    """One streamed NDJSON export of a sponsor (lines counted, bytes dropped as they come)."""
    lines = 0

    def sink(piece: bytes) -> None:
        nonlocal lines
        lines += piece.count(b"\n")

    connection = bench.connection(worker)
    status, _ = await connection.send(
        bench.request("GET", "/export/data-points?format=ndjson", slug), sink=sink
    )
    if status != 200:
        raise BadResponse(f"HTTP {status} from /export/data-points")
    return max(1, lines)


async def run(config: Config) -> list[dict[str, Any]]:
    """The whole benchmark; writes ``results_path`` and ``report_path``; the result entries."""
    from bench.report import machine, render_report, result_entries

    started_at = datetime.now(UTC)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"bench ({config.label}): creating a database on {_safe(config.postgres_url)}", flush=True
    )
    url = await create_database(config.postgres_url, config.database_prefix)
    pool = admin = None
    try:
        dataset = await generate(url, config.scale, seed=config.seed)
        print(f"  {dataset.summary()}", flush=True)
        size = max([config.concurrency, *(p.concurrency or 0 for p in config.plans.values())])
        pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=size, max_size=size)
        admin = await asyncpg.connect(asyncpg_dsn(url))
        targets = await pick_targets(admin)
        batches = await make_batches(admin)
        server = Server(url, config.work_dir / "server.log", extra_env=config.server_env)
        async with server:
            bench = Bench(config, dataset, server, pool, admin, targets, batches)
            await bench.refresh_tokens()
            print(f"  server pid {server.pid} on {server.base_url}; verifying", flush=True)
            checks = await verify(bench, config.questions)
            for question, check in checks.items():
                state = "SKIP " + (check.skip or "") if check.skip else check.note
                flag = "ok" if check.verified else "--"
                print(f"  verify {question}: {flag} {state}", flush=True)
            outcomes: dict[str, Outcome] = {}
            for question in config.questions:
                check = checks[question]
                if check.skip:
                    outcomes[question] = Outcome(question, check)
                    continue
                print(f"  measuring {question}: {TITLES[question]}", flush=True)
                outcomes[question] = await measure(bench, question, check)
            peak_run_mib = server.peak_rss_mib()
            profiles = await profile_questions(bench, config.questions) if config.profile else []
            print("  memory probe", flush=True)
            memory = await memory_probe(bench, peak_run_mib)
            info = await machine(admin)
        entries = result_entries([outcomes[q] for q in config.questions], memory)
        report = render_report(
            config, dataset, targets, outcomes, memory, info, profiles, started_at
        )
        config.results_path.parent.mkdir(parents=True, exist_ok=True)
        config.results_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        config.report_path.write_text(report, encoding="utf-8")
        print(report, flush=True)
        return entries
    finally:
        if admin is not None:
            await admin.close()
        if pool is not None:
            await pool.close()
        with contextlib.suppress(Exception):
            await drop_database(config.postgres_url, url)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
