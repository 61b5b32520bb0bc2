"""The reference dashboard at ``/dashboard``: served without a token and holding no data, and,
in headless Chromium against a real demo server, showing the API's scorecard and updating live.

The browser is Debian's ``chromium`` driven by ``playwright-core`` (pinned in
tools/dashboard-browser), installed with ``npm ci`` into the ignored ``.tools/dashboard-browser``
when missing or changed. The browser test is skipped only when node/npm or chromium are missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_server_smoke import COLLABX, ROOT, _env, _free_port, _run
from tests.conftest import empty_database

TOOL_SOURCE = ROOT / "tools" / "dashboard-browser"
TOOL_DIR = ROOT / ".tools" / "dashboard-browser"
CHROMIUM = Path("/usr/bin/chromium")

SCORECARD = """
query Scorecard($code: String!) {
  collaborative(code: $code) {
    id
    scorecard { period measures { measure { code } rate goal teamsMeetingGoal } }
  }
}
"""

POINTS = """
query Points($team: String!, $measure: String!) {
  team(code: $team) {
    measureSeries(measure: $measure) { points { period numerator denominator } }
  }
}
"""

SUBMIT = """
mutation Submit($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { receiptId status updated }
    ... on Error { code message }
  }
}
"""

DEMO_COLLABORATIVE = "pediatric-asthma"
LIVE_TEAM = "asthma-northgate-eastside"
LIVE_MEASURE = "asthma-control"


async def test_page_and_assets_are_served_without_a_token(http: httpx.AsyncClient) -> None:
    page = await http.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/dashboard/dashboard.js">' in page.text
    script = await http.get("/dashboard/dashboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "graphql-transport-ws" in script.text
    assert "localStorage" not in script.text and "sessionStorage" not in script.text
    assert "document.cookie" not in script.text
    style = await http.get("/dashboard/dashboard.css")
    assert style.status_code == 200
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert (await http.get("/dashboard/nothing.js")).status_code == 404
    assert (await http.get("/dashboard/../api/app.py")).status_code in (401, 404)
    # The rest of the API still wants a token.
    assert (await http.post("/graphql", json={"query": "{ viewer { kind } }"})).status_code == 401


async def test_page_holds_no_data(http: httpx.AsyncClient) -> None:
    """No codes, names or numbers of any tenant: everything comes from the API with a token."""
    for path in ("/dashboard", "/dashboard/dashboard.js", "/dashboard/dashboard.css"):
        text = (await http.get(path)).text.lower()
        for word in ("asthma", "northgate", "demo-", "dashboard-secret", 'value="', "bearer ey"):
            assert word not in text, (path, word)


def _browser_script() -> Path:
    """check.mjs with playwright-core installed next to it; skips without node/npm or chromium."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for the dashboard browser test")
    if not CHROMIUM.is_file():
        pytest.skip(
            "Debian's chromium is needed for the dashboard browser test (.ci/run installs it)"
        )
    TOOL_DIR.mkdir(parents=True, exist_ok=True)
    lock = (TOOL_SOURCE / "package-lock.json").read_bytes()
    installed_lock = TOOL_DIR / "package-lock.json"
    installed = (TOOL_DIR / "node_modules" / "playwright-core" / "package.json").is_file()
    if not installed or not installed_lock.is_file() or installed_lock.read_bytes() != lock:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(TOOL_SOURCE / name, TOOL_DIR / name)
        result = subprocess.run(
            [npm, "ci", "--prefix", str(TOOL_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    script = TOOL_DIR / "check.mjs"
    shutil.copyfile(TOOL_SOURCE / "check.mjs", script)
    return script


@pytest.fixture(scope="module")
async def demo_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database of its own, migrated and seeded with the demo through the CLI."""
    async with empty_database(backend, tmp_path_factory.mktemp("dashboard")) as url:
        env = _env(url, 8000)
        for args in (["migrate"], ["seed", "--demo"]):
            result = await asyncio.to_thread(_run, args, env)
            assert result.returncode == 0, result.stderr
        yield url


@pytest.fixture(scope="module")
def demo_server(demo_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``collabx serve`` in demo mode on a free port."""
    port = _free_port()
    env = _env(demo_database, port, COLLABX_DEMO="1")
    log_path = tmp_path_factory.mktemp("dashboard-server") / "uvicorn.log"
    log = log_path.open("w")
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
        log.close()


def _token(base: str, client_id: str) -> str:
    response = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, f"{client_id}-secret"),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _gql(base: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _expected(base: str, token: str, code: str) -> list[dict[str, Any]]:
    card = _gql(base, token, SCORECARD, {"code": code})["collaborative"]["scorecard"]
    return [
        {
            "measure": row["measure"]["code"],
            "rate": row["rate"],
            "goal": row["goal"],
            "teamsMeetingGoal": row["teamsMeetingGoal"],
        }
        for row in card["measures"]
    ]


def _shown(scorecard: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("measure", "rate", "goal", "teamsMeetingGoal")
    return [{key: row[key] for key in keys} for row in scorecard]


def _read_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        stderr = process.stderr.read() if process.stderr is not None else ""
        pytest.fail(f"the browser script ended without output:\n{stderr}")
    result: dict[str, Any] = json.loads(line)
    return result


def _change_a_point(base: str, reader: str, writer: str) -> None:
    """Resubmits the demo team's latest point of the measure with a different numerator."""
    variables = {"team": LIVE_TEAM, "measure": LIVE_MEASURE}
    series = _gql(base, reader, POINTS, variables)["team"]["measureSeries"]
    latest = [p for p in series["points"] if p["denominator"]][-1]
    numerator = latest["numerator"] - 1 if latest["numerator"] > 0 else 1
    row = {
        "team": LIVE_TEAM,
        "measure": LIVE_MEASURE,
        "period": latest["period"],
        "numerator": numerator,
        "denominator": latest["denominator"],
    }
    result = _gql(base, writer, SUBMIT, {"input": {"rows": [row]}})["submitMeasureData"]
    assert result["__typename"] == "MeasureDataReceipt", result
    assert result["updated"] == 1, result


@pytest.mark.timeout(240)
def test_dashboard_in_headless_chromium(demo_server: str, tmp_path: Path) -> None:
    script = _browser_script()
    screenshot = tmp_path / "dashboard.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    node = shutil.which("node")
    assert node is not None
    with subprocess.Popen(
        [node, str(script), demo_server, str(screenshot), str(profile), DEMO_COLLABORATIVE],
        cwd=TOOL_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            shown = _read_line(process)
            assert shown["problems"] == []
            assert shown["stored"] == 0, "the token must stay in memory"
            assert shown["charts"] >= 2, "a control chart and run charts are drawn"
            token = _token(demo_server, "demo-dashboard")
            code = shown["collaborative"]
            assert code == DEMO_COLLABORATIVE
            expected = _expected(demo_server, token, code)
            assert expected, "the demo collaborative has a scorecard"
            assert _shown(shown["scorecard"]) == expected
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            _change_a_point(demo_server, token, _token(demo_server, "demo-ehr"))
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
            updated = _read_line(process)
            assert updated["problems"] == []
            assert "refreshed" in updated["live"], updated["live"]
            assert _shown(updated["scorecard"]) == _expected(demo_server, token, code)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
