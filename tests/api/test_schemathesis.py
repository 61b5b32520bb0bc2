"""A bounded schemathesis run against a live uvicorn: zero server errors.

Every root query and mutation of the introspected schema gets its share of
:data:`POSITIVE_BUDGET` generated operations (valid against the schema, at least 2 each) and of
:data:`NEGATIVE_BUDGET` invalid ones (at least 1 each), with a fixed seed, sent by the demo
ADMIN client (every scope) to a server on a freshly seeded database of each backend. A 5xx
status, or a GraphQL error coded ``INTERNAL_SERVER_ERROR`` (an unexpected exception, masked), is
a failure; expected errors (``VALIDATION``, ``NOT_FOUND``...) are not. Schemathesis' own
``not_a_server_error`` check is not used: it counts every resolver error with a path, such as a
tampered cursor's ``VALIDATION``, as a server error.

Custom scalars get strategies that mix valid and invalid values (``Period``, ``Count``), so the
scalar parsers are fuzzed too. Rate limiting is off for this server (a 429 is not a failure, but
would cut the run short). Marked slow (about 15 s per backend with the server's start).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.graphql import nodes

from tests.conftest import empty_database

ROOT = Path(__file__).resolve().parents[2]
COLLABX = [sys.executable, "-m", "api"]
POSITIVE_BUDGET = 320
NEGATIVE_BUDGET = 120
"""Examples of the whole run (a few hundred), shared out over the root fields."""
SEED = 20261101

schemathesis.graphql.scalar(
    "Period",
    st.one_of(
        st.from_regex(r"\A(19|20)\d\d-(0[1-9]|1[0-2])\Z"),
        st.sampled_from(["2025-13", "0000-01", "1899-12", "10000-01", ""]),
        st.text(max_size=12),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "Count",
    st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    ),
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
async def fuzz_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with empty_database(backend, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_server(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn on a migrated demo database, rate limits off, production settings otherwise."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
    env.update(
        COLLABX_DATABASE_URL=fuzz_database,
        COLLABX_PORT=str(port),
        COLLABX_ISSUER=f"http://127.0.0.1:{port}",
        COLLABX_DEMO="1",
        COLLABX_RATE_LIMIT_ENABLED="0",
    )
    for args in (["migrate"], ["seed", "--demo"]):
        result = subprocess.run(
            COLLABX + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    log_path = tmp_path_factory.mktemp("fuzz-log") / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*COLLABX, "serve"], env=env, cwd=ROOT, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(f"server exited early:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                pytest.fail("server did not become ready in 30 s")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]


def _server_error(response: Any) -> bool:
    if response.status_code >= 500:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return any(
        (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
        for error in errors or ()
        if isinstance(error, dict)
    )


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    failures: list[str],
) -> int:
    """Send ``examples`` generated cases of one operation; record server errors; how many."""
    sent = 0
    label = f"{operation.label} ({mode.value})"

    @seed(SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(headers=headers, timeout=30)
        if _server_error(response):
            failures.append(f"{label}: {response.status_code} {response.text[:500]}\n{case.body}")

    call()
    return sent


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_fuzzed_operations_cause_no_server_errors(fuzz_server: str) -> None:
    issued = httpx.post(
        f"{fuzz_server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-admin", "demo-admin-secret"),
    )
    assert issued.status_code == 200, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    schema = schemathesis.graphql.from_url(f"{fuzz_server}/graphql", headers=headers, timeout=30)
    failures: list[str] = []
    sent = 0
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 25, [operation.label for operation in operations]
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, max(2, POSITIVE_BUDGET // len(operations))),
            (GenerationMode.NEGATIVE, max(1, NEGATIVE_BUDGET // len(operations))),
        ):
            sent += _fuzz(operation, mode, examples, headers, failures)
    assert not failures, "\n\n".join(failures[:10])
    assert sent >= 200
    # The server still serves after the run.
    after = httpx.post(
        f"{fuzz_server}/graphql", json={"query": "{ viewer { kind } }"}, headers=headers
    )
    assert after.status_code == 200 and after.json()["data"]["viewer"]["kind"] == "ADMIN"
