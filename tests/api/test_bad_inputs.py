"""The bad-input catalogue: every category answers a 4xx or an error with a code, never a 500 or
a masked ``INTERNAL_SERVER_ERROR``, writes nothing (row counts of every tenant table are
compared) and leaves the server serving (a valid request succeeds afterwards). Both backends.

Where each category is tested (here unless a file is named):

- malformed JSON, non-object bodies, batches: test_graphql_over_http.py::
  test_malformed_requests_are_400_with_a_json_body;
- NaN / Infinity literals, duplicate JSON keys:
  test_json_that_python_accepts_but_json_does_not_is_400;
- wrong content types: test_graphql_over_http.py::test_unsupported_content_types_are_415;
- GraphQL syntax errors, unknown fields: test_syntax_and_validation_errors_are_coded;
- unknown operations: test_graphql_over_http.py::
  test_request_errors_are_400_only_for_graphql_response_clients (UNKNOWN_OPERATION);
- variables of the wrong type: test_variables_of_the_wrong_type_are_validation_errors;
- huge strings: test_hostile_text_in_every_filter_and_lookup,
  test_control_characters_and_huge_text_in_mutations; bodies over 4 MiB: test_query_limits.py::
  test_body_over_the_limit_with_content_length;
- NUL bytes: test_hostile_text_in_every_filter_and_lookup,
  test_control_characters_and_huge_text_in_mutations; test_edge_regressions.py::
  test_nul_in_a_mutation_lookup_is_a_typed_error; INVALID_TEXT rows in test_measure_data.py;
- invalid UTF-8 and lone surrogates: test_text_that_is_not_unicode_is_400;
- control characters: test_hostile_text_in_every_filter_and_lookup,
  test_control_characters_and_huge_text_in_mutations;
- SQL metacharacters in every filter, search and lookup argument:
  test_hostile_text_in_every_filter_and_lookup (and test_filters_match_literally);
- negative / huge / NaN / infinite numbers (first, goal, multiplier, counts):
  test_numbers_out_of_range;
- dates out of range, periods like 2025-13 or 0000-01: test_dates_and_periods_out_of_range;
- ids of the wrong type or of another tenant: test_ids_of_the_wrong_type_or_another_tenant;
- cursor tampering: test_edge_regressions.py::test_tampered_cursors_are_validation_errors and
  ::test_nested_team_cursor_tampering_is_a_validation_error;
- oversized batches: test_measure_data.py::test_batch_over_the_configured_limit_is_a_clear_error;
  test_query_limits.py::test_streamed_body_over_the_limit_without_content_length;
- duplicate keys: test_json_that_python_accepts_but_json_does_not_is_400 (JSON objects),
  test_syntax_and_validation_errors_are_coded (GraphQL input fields and arguments),
  DUPLICATE_ROW in test_measure_data.py::test_every_row_code_is_explained_and_valid_rows_...;
- token attacks: test_bearer_validation.py (none, expired, wrong aud/iss/typ, unknown kid, HS256
  with the EC public key, revoked client); test_tokens_not_yet_valid_or_with_a_forged_kid_are_401
  (nbf and iat in the future, forged kid); test_hs_rs_confusion_with_an_rs256_server_is_401;
- header bombs: test_query_limits.py::test_header_bomb_is_431,
  test_header_bombs_of_every_shape_are_431.

Reads with hostile text answer normally: the text is matched literally (no row matches it), or a
VALIDATION error for NUL bytes and text over 1,000 characters.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select
from starlette.applications import Starlette

from api.app import create_app
from api.state import AppState
from db.base import Base
from db.migrations import upgrade_to_head
from tests.api.test_bearer_validation import _assert_401, _call, _claims, _forge
from tests.conftest import empty_database, make_settings
from tests.factories import Tenant, TenantFactory
from tests.programs import build_program

VIEWER = "{ viewer { clientId } }"
HOSTILE_TEXT = [
    "' OR '1'='1",
    "'; DROP TABLE teams; --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "%_\\%",
    "') UNION SELECT id, secret_hash FROM clients --",
    "\x01\x1b[2J\x7f",
    "Ω≈ç√∫ 💥 ﷽",
]
TOO_LONG = "x" * 1_001
NUL = "a\x00b"
LIST_FILTERS = {
    "collaboratives": ["sponsor", "topic", "search"],
    "organizations": ["search", "state"],
    "teams": ["collaborative", "organization", "state", "search"],
    "measures": ["sponsor", "collaborative", "search"],
    "resources": ["topic", "collaborative", "search"],
    "dataPoints": ["collaborative", "measure", "team"],
}
LOOKUPS = {
    "collaborative(code)": "query($v: String) { collaborative(code: $v) { code } }",
    "collaborative(sponsor)": (
        'query($v: String) { collaborative(code: "prog", sponsor: $v) { code } }'
    ),
    "team(code)": "query($v: String) { team(code: $v) { code } }",
    "organization(code)": "query($v: String) { organization(code: $v) { code } }",
    "measure(code)": "query($v: String!) { measure(code: $v) { code } }",
    "sponsor(slug)": "query($v: String!) { sponsor(slug: $v) { slug } }",
    "collaborative.teams": (
        'query($v: String) { collaborative(code: "prog") { teams(filter: {search: $v}) {'
        " totalCount } } }"
    ),
    "collaborative.teams(organization)": (
        'query($v: String) { collaborative(code: "prog") {'
        " teams(filter: {organization: $v}) { totalCount } } }"
    ),
    "node": "query($v: ID!) { node(id: $v) { id } }",
    "receipt": "query($v: ID!) { receipt(id: $v) { receiptId } }",
    "after": "query($v: String) { collaboratives(after: $v) { totalCount } }",
}
SUBMIT = """
mutation($input: SubmitMeasureDataInput!) {
  submitMeasureData(input: $input) {
    __typename
    ... on MeasureDataReceipt { status created rejected conflicts { index code field } }
    ... on Error { code message }
  }
}
"""
ROW = {"team": "prog-team-0", "measure": "prog-control", "period": "2024-01"}


# --- helpers -----------------------------------------------------------------------------------


async def _counts(app: Starlette, tenant: Tenant) -> dict[str, int]:
    """Rows of every table that carries the tenant's sponsor_id."""
    state: AppState = app.state.collabx
    counts: dict[str, int] = {}
    async with state.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            if "sponsor_id" in table.c:
                counted = await session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.sponsor_id == tenant.sponsor_id)
                )
                counts[table.name] = int(counted or 0)
    return counts


def _without(counts: dict[str, int], *tables: str) -> dict[str, int]:
    return {name: count for name, count in counts.items() if name not in tables}


async def _still_serving(tenant: Tenant) -> None:
    body = await tenant.gql(VIEWER)
    assert body == {"data": {"viewer": {"clientId": tenant.admin_id}}}, body


async def _raw(
    http: httpx.AsyncClient, tenant: Tenant, content: bytes | str, **headers: str
) -> httpx.Response:
    """POST a body as given (not re-encoded by the client) to /graphql."""
    return await http.post(
        "/graphql",
        content=content.encode() if isinstance(content, str) else content,
        headers={
            "Authorization": f"Bearer {await tenant.token()}",
            "Content-Type": "application/json",
            **headers,
        },
    )


def _body(query: str, variables: str) -> str:
    """A request body with ``variables`` spliced in as raw JSON text (NaN, 1e999, ...)."""
    return '{"query": ' + json.dumps(query) + ', "variables": ' + variables + "}"


def _codes(body: dict[str, Any]) -> list[str]:
    """The codes of a response's errors; fails on an error without one or a masked one."""
    codes = []
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, f"an error without a code: {error}"
        assert code != "INTERNAL_SERVER_ERROR", f"a masked server error: {error}"
        codes.append(code)
    return codes


def _http_error(response: httpx.Response, status: int = 400, code: str = "BAD_REQUEST") -> str:
    assert response.status_code == status, response.text[:500]
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code, error
    message: str = error["message"]
    return message


@pytest.fixture
async def program(tenant: Tenant) -> Tenant:
    """The tenant with a small program: collaborative prog, team prog-team-0, measure
    prog-control (PROPORTION), one resource."""
    await build_program(tenant)
    return tenant


# --- transport and document ----------------------------------------------------------------


async def test_json_that_python_accepts_but_json_does_not_is_400(
    app: Starlette, http: httpx.AsyncClient, program: Tenant
) -> None:
    before = await _counts(app, program)
    mutation = 'mutation($g: Float) { addMeasureToCollaborative(input: {collaborative: "prog",'
    mutation += ' measure: "prog-control", goal: $g}) { __typename } }'
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = _body(mutation, '{"g": ' + constant + "}")
        assert "not a JSON value" in _http_error(await _raw(http, program, body))
    duplicates = [
        '{"query": "{ viewer { clientId } }", "query": "mutation { __typename }"}',
        _body(mutation, '{"g": 1, "g": 2}'),
    ]
    for body in duplicates:
        assert "appears twice" in _http_error(await _raw(http, program, body))
    assert await _counts(app, program) == before
    await _still_serving(program)


async def test_text_that_is_not_unicode_is_400(
    app: Starlette, http: httpx.AsyncClient, program: Tenant
) -> None:
    before = await _counts(app, program)
    search = "query($s: String) { collaboratives(filter: {search: $s}) { totalCount } }"
    create = 'mutation($n: String!) { createOrganization(input: {code: "o-1", name: $n})'
    create += " { __typename } }"
    bodies = [
        _body(search, '{"s": "\\ud800"}'),
        _body(search, '{"s": "x\\udfffy"}'),
        _body(create, '{"n": "\\udc80"}'),
        _body(search, '{"\\ud800": 1}'),
    ]
    for body in bodies:
        assert "not valid Unicode" in _http_error(await _raw(http, program, body))
    invalid_utf8 = b'{"query": "{ viewer { clientId } }", "variables": {"s": "\xc3\x28"}}'
    assert "not valid JSON" in _http_error(await _raw(http, program, invalid_utf8))
    token = await program.token()
    response = await http.get(
        "/graphql",
        params={"query": search, "variables": '{"s": "\\ud800"}'},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "not valid Unicode" in _http_error(response)
    # A surrogate pair is fine.
    ok = await _raw(http, program, _body(search, '{"s": "\\ud83d\\udca5"}'))
    assert ok.json() == {"data": {"collaboratives": {"totalCount": 0}}}
    assert await _counts(app, program) == before
    await _still_serving(program)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{", "GRAPHQL_PARSE_FAILED"),
        ("query { viewer { clientId }", "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { clientId } } }", "GRAPHQL_PARSE_FAILED"),
        ('{ collaborative(code: "\\ud800") { code } }', "GRAPHQL_PARSE_FAILED"),
        ("mutation { createOrganization(input: {code: }) { __typename } }", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ viewer }", "GRAPHQL_VALIDATION_FAILED"),
        ('{ collaborative(code: "a", code: "b") { code } }', "GRAPHQL_VALIDATION_FAILED"),
        (
            'mutation { createOrganization(input: {code: "o-1", code: "o-2", name: "x"})'
            " { __typename } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "query A { viewer { clientId } } query A { viewer { kind } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("fragment F on Query { ...F } { ...F }", "GRAPHQL_VALIDATION_FAILED"),
        (
            '{ collaboratives(filter: {activeOn: "2024-02-30"}) { totalCount } }',
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ],
)
async def test_syntax_and_validation_errors_are_coded(
    app: Starlette, tenant: Tenant, document: str, code: str
) -> None:
    before = await _counts(app, tenant)
    body = await tenant.gql(document)
    assert body["data"] is None
    assert _codes(body) == [code] * len(body["errors"]), body
    assert await _counts(app, tenant) == before
    await _still_serving(tenant)


async def test_variables_of_the_wrong_type_are_validation_errors(
    app: Starlette, http: httpx.AsyncClient, program: Tenant
) -> None:
    before = await _counts(app, program)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("query($n: Int) { collaboratives(first: $n) { totalCount } }", {"n": "ten"}),
        ("query($n: Int) { collaboratives(first: $n) { totalCount } }", {"n": 1.5}),
        ("query($n: Int) { collaboratives(first: $n) { totalCount } }", {"n": 2**40}),
        ("query($n: Int) { collaboratives(first: $n) { totalCount } }", {"n": [1]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": {"an": "object"}}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": True}),
        ("query($id: ID!) { node(id: $id) { id } }", {}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": None}),
        (
            "query($s: CollaborativeStatus) { collaboratives(filter: {status: $s}) {"
            " totalCount } }",
            {"s": "NOPE"},
        ),
        (
            "query($f: CollaborativeFilter) { collaboratives(filter: $f) { totalCount } }",
            {"f": {"unknownField": 1}},
        ),
        (
            "query($f: CollaborativeFilter) { collaboratives(filter: $f) { totalCount } }",
            {"f": "search"},
        ),
        ("query($b: Boolean) { teams(filter: {active: $b}) { totalCount } }", {"b": "yes"}),
        (
            "mutation($i: SubmitMeasureDataInput!) { submitMeasureData(input: $i) { __typename } }",
            {"i": {"rows": [{**ROW, "numerator": "5", "denominator": 10}]}},
        ),
        (
            "mutation($i: SubmitMeasureDataInput!) { submitMeasureData(input: $i) { __typename } }",
            {"i": {"rows": {"not": "a list"}}},
        ),
        (
            "mutation($i: SubmitMeasureDataInput!) { submitMeasureData(input: $i) { __typename } }",
            {"i": {"rows": [{**ROW, "atomic": "sure"}]}},
        ),
    ]
    for document, variables in cases:
        body = await program.gql(document, variables)
        assert body["data"] is None, (document, variables, body)
        codes = _codes(body)
        assert codes and set(codes) <= {"VALIDATION", "GRAPHQL_VALIDATION_FAILED"}, body
    assert await _counts(app, program) == before
    await _still_serving(program)


# --- text --------------------------------------------------------------------------------------


def _filter_cases() -> list[tuple[str, str]]:
    cases = [
        (name, f"query($v: String) {{ {name}(filter: {{{argument}: $v}}) {{ totalCount }} }}")
        for name, arguments in LIST_FILTERS.items()
        for argument in arguments
    ]
    return [
        (f"{name}.{document.split('{')[2].split(':')[0].strip()}", document)
        for name, document in cases
    ] + list(LOOKUPS.items())


@pytest.mark.parametrize(("label", "document"), _filter_cases(), ids=lambda v: str(v)[:40])
async def test_hostile_text_in_every_filter_and_lookup(
    app: Starlette, program: Tenant, label: str, document: str
) -> None:
    before = await _counts(app, program)
    for value in HOSTILE_TEXT:
        body = await program.gql(document, {"v": value})
        codes = _codes(body)
        if codes:  # e.g. an unknown sponsor slug or a malformed id or cursor
            assert set(codes) <= {"VALIDATION", "NOT_FOUND", "FORBIDDEN"}, (label, value, body)
            continue
        data = body["data"]
        text = json.dumps(data)
        assert '"code": "prog"' not in text or label.startswith("collaborative("), (label, data)
        for count in _total_counts(data):
            assert count == 0, (label, value, data)
    for value, reason in ((NUL, "NUL"), (TOO_LONG, "1000 characters")):
        body = await program.gql(document, {"v": value})
        assert _codes(body) == ["VALIDATION"], (label, body)
        assert reason in body["errors"][0]["message"]
    assert await _counts(app, program) == before
    # Nothing was dropped or leaked: the program is still there, whole.
    listed = await program.gql("{ collaboratives { totalCount } teams { totalCount } }")
    assert listed["data"] == {"collaboratives": {"totalCount": 1}, "teams": {"totalCount": 1}}


def _total_counts(data: object) -> list[int]:
    if isinstance(data, dict):
        found = [data["totalCount"]] if isinstance(data.get("totalCount"), int) else []
        return found + [c for value in data.values() for c in _total_counts(value)]
    return []


async def test_filters_match_literally(program: Tenant) -> None:
    """The control for the test above: plain text matches, LIKE wildcards do not."""
    for search, expected in (("Program", 1), ("rog", 1), ("%", 0), ("_rogram", 0), ("P%m", 0)):
        body = await program.gql(
            "query($s: String) { collaboratives(filter: {search: $s}) { totalCount } }",
            {"s": search},
        )
        assert body["data"]["collaboratives"]["totalCount"] == expected, (search, body)


async def test_control_characters_and_huge_text_in_mutations(
    app: Starlette, program: Tenant
) -> None:
    before = await _counts(app, program)
    create = """mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) {
        __typename ... on Error { code } ... on ValidationError { field } } }"""
    for name, field in (
        ("bad\x01name", "name"),
        ("\x1b[31mred\x1b[0m", "name"),
        ("del\x7f", "name"),
        ("x" * 1_000_000, "name"),
        ("a\x00b", "name"),
    ):
        body = await program.gql(create, {"input": {"code": "org-x", "name": name}})
        result = body["data"]["createOrganization"]
        assert result == {"__typename": "ValidationError", "code": "VALIDATION", "field": field}
    for code in ("UPPER", "with space", "a" * 65, "\x01", "-lead", "ünï"):
        body = await program.gql(create, {"input": {"code": code, "name": "Org"}})
        assert body["data"]["createOrganization"]["code"] == "VALIDATION", (code, body)
    huge_rows = {"rows": [{**ROW, "numerator": 1, "denominator": 2, "annotation": "y" * 1_000_000}]}
    receipt = (await program.gql(SUBMIT, {"input": huge_rows}))["data"]["submitMeasureData"]
    assert receipt["status"] == "REJECTED"
    assert receipt["conflicts"] == [{"index": 0, "code": "INVALID_TEXT", "field": "annotation"}]
    after = await _counts(app, program)
    # A rejected batch keeps its receipt and audit event; no data were written.
    ignored = ("measure_data_receipts", "audit_events")
    assert _without(after, *ignored) == _without(before, *ignored)
    # Tabs and line breaks are text, not control characters.
    fine = await program.gql(create, {"input": {"code": "org-ok", "name": "Line\tone\nTwo"}})
    assert fine["data"]["createOrganization"]["__typename"] == "CreateOrganizationSuccess"


# --- numbers, dates, periods -----------------------------------------------------------------


async def test_numbers_out_of_range(
    app: Starlette, http: httpx.AsyncClient, program: Tenant
) -> None:
    define = """mutation($m: Float!) { defineMeasure(input: {code: "extra", name: "Extra",
        type: PROCESS, scoring: PROPORTION, numerator: "a", denominator: "b", multiplier: $m,
        improvementDirection: INCREASE}) { __typename ... on Error { code }
        ... on ValidationError { field } } }"""
    before = await _counts(app, program)
    for multiplier in (-1, 0, 1e308, 2e6):
        body = await program.gql(define, {"m": multiplier})
        result = body["data"]["defineMeasure"]
        assert result == {
            "__typename": "ValidationError",
            "code": "VALIDATION",
            "field": "multiplier",
        }, (multiplier, body)
    literal = define.replace("($m: Float!)", "").replace("$m", "1e999")
    assert (await program.gql(literal))["data"]["defineMeasure"]["field"] == "multiplier"
    page_sizes: list[tuple[str, str]] = [
        ("{ collaboratives(first: -1) { totalCount } }", "VALIDATION"),
        ("{ collaboratives(first: 2147483648) { totalCount } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ collaboratives(first: 101) { totalCount } }", "QUERY_TOO_COMPLEX"),
        ("{ teams(first: -2147483648) { totalCount } }", "VALIDATION"),
    ]
    for document, code in page_sizes:
        assert _codes(await program.gql(document)) == [code], document
    first = "query($n: Int) { collaboratives(first: $n) { totalCount } }"
    body = (await _raw(http, program, _body(first, '{"n": 1e999}'))).json()
    assert _codes(body) == ["VALIDATION"]
    goal = (
        'mutation($g: Float) { addMeasureToCollaborative(input: {collaborative: "prog",'
        ' measure: "prog-control", goal: $g}) { __typename } }'
    )
    body = (await _raw(http, program, _body(goal, '{"g": -1e999}'))).json()
    assert _codes(body) == ["VALIDATION"]
    rows = [
        {**ROW, "period": "2024-01", "numerator": -1, "denominator": 10},
        {**ROW, "period": "2024-02", "numerator": 1, "denominator": 1.5},
        {**ROW, "period": "2024-03", "numerator": 1, "denominator": 2**70},
        {**ROW, "period": "2024-04", "numerator": "INF", "denominator": 10},
        {**ROW, "period": "2024-05", "numerator": 1, "denominator": 0},
    ]
    submit = json.dumps({"query": SUBMIT, "variables": {"input": {"rows": rows}}})
    submit = submit.replace('"INF"', "1e999")
    receipt = (await _raw(http, program, submit)).json()["data"]["submitMeasureData"]
    assert receipt["status"] == "REJECTED" and receipt["created"] == 0
    assert [(c["index"], c["code"]) for c in receipt["conflicts"]] == [
        (0, "INVALID_COUNT"),
        (1, "INVALID_COUNT"),
        (2, "INVALID_COUNT"),
        (3, "INVALID_COUNT"),
        (4, "ZERO_DENOMINATOR"),
    ]
    ignored = ("measure_data_receipts", "audit_events")
    assert _without(await _counts(app, program), *ignored) == _without(before, *ignored)
    await _still_serving(program)


async def test_dates_and_periods_out_of_range(
    app: Starlette, http: httpx.AsyncClient, program: Tenant
) -> None:
    before = await _counts(app, program)
    active_on = "query($d: Date) { collaboratives(filter: {activeOn: $d}) { totalCount } }"
    for value in (
        "0000-01-01",
        "10000-01-01",
        "2024-02-30",
        "2024-13-01",
        "",
        "2024-1-1",
        20240101,
    ):
        assert _codes(await program.gql(active_on, {"d": value})) == ["VALIDATION"], value
    since = "query($d: DateTime) { dataPoints(filter: {updatedSince: $d}) { totalCount } }"
    for value in (
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "yesterday",
        "2024-02-30T00:00:00Z",
    ):
        assert _codes(await program.gql(since, {"d": value})) == ["VALIDATION"], value
    edges = await program.gql(active_on, {"d": "9999-12-31"})
    assert edges["data"]["collaboratives"]["totalCount"] == 1  # the far future is a date
    points = "query($p: Period) { dataPoints(filter: {from: $p}) { totalCount } }"
    for value in ("2025-13", "0000-01", "1899-12", "2024-1", "2024-00", "10000-01", "", "2024-01 "):
        assert _codes(await program.gql(points, {"p": value})) == ["VALIDATION"], value
        literal = '{ dataPoints(filter: {to: "' + value + '"}) { totalCount } }'
        assert _codes(await program.gql(literal)) == ["VALIDATION"], value
    lock = 'mutation($t: Period!) { lockPeriods(input: {collaborative: "prog", through: $t})'
    lock += " { __typename } }"
    assert _codes(await program.gql(lock, {"t": "2025-13"})) == ["VALIDATION"]
    create = """mutation($s: Date) { createCollaborative(input: {code: "dated", name: "Dated",
        topic: "Asthma", startDate: $s}) { __typename } }"""
    assert _codes(await program.gql(create, {"s": "2024-02-30"})) == ["VALIDATION"]
    rows = [
        {**ROW, "period": period, "numerator": 1, "denominator": 2}
        for period in ("2025-13", "0000-01", "1899-12", "2024-1", "9999-12")
    ]
    receipt = (await program.gql(SUBMIT, {"input": {"rows": rows}}))["data"]["submitMeasureData"]
    assert receipt["status"] == "REJECTED"
    assert [c["code"] for c in receipt["conflicts"]] == ["INVALID_PERIOD"] * 4 + ["FUTURE_PERIOD"]
    ignored = ("measure_data_receipts", "audit_events")
    assert _without(await _counts(app, program), *ignored) == _without(before, *ignored)
    await _still_serving(program)


# --- ids ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS* token made the way an attacker would, with any bytes as the secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), digest[header["alg"]]).digest()
    return f"{signing_input}.{_b64(signature)}"


def _global_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_ids_of_the_wrong_type_or_another_tenant(
    app: Starlette, tenants: TenantFactory, program: Tenant
) -> None:
    other = await tenants.create()
    await build_program(other, "theirs")
    theirs = (await other.gql('{ collaborative(code: "theirs") { id teams { nodes { id } } } }'))[
        "data"
    ]["collaborative"]
    their_team = theirs["teams"]["nodes"][0]["id"]
    mine = (await program.gql('{ collaborative(code: "prog") { id } }'))["data"]["collaborative"]
    mine_before, theirs_before = await _counts(app, program), await _counts(app, other)
    nulls = [
        ("query($v: ID!) { node(id: $v) { id } }", theirs["id"]),
        ("query($v: ID!) { node(id: $v) { id } }", their_team),
        ("query($v: ID!) { node(id: $v) { id } }", "garbage"),
        ("query($v: ID!) { node(id: $v) { id } }", _global_id("Team:not-a-uuid")),
        ("query($v: ID!) { node(id: $v) { id } }", _global_id(f"NoSuchType:{uuid.uuid4()}")),
        ("query($v: ID!) { node(id: $v) { id } }", _global_id(f"Team:{uuid.UUID(int=0)}")),
        ("query($v: ID) { collaborative(id: $v) { id } }", theirs["id"]),
        ("query($v: ID) { team(id: $v) { id } }", mine["id"]),  # a collaborative's id
        ("query($v: ID) { organization(id: $v) { id } }", their_team),
        ("query($v: String) { team(code: $v) { id } }", "theirs-team-0"),
        ("query($v: ID!) { receipt(id: $v) { receiptId } }", str(uuid.uuid4())),
        ("query($v: ID!) { resource(id: $v) { id } }", mine["id"]),
    ]
    for document, value in nulls:
        body = await program.gql(document, {"v": value})
        codes = _codes(body)
        assert codes in ([], ["VALIDATION"]), (document, value, body)
        if not codes:
            assert next(iter(body["data"].values())) is None, (document, value, body)
    body = await program.gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [theirs["id"], their_team, "garbage", mine["id"]]},
    )
    assert body["data"]["nodes"] == [None, None, None, {"id": mine["id"]}]
    assert _codes(await program.gql("{ node(id: 12345) { id } }")) in ([], ["VALIDATION"])
    enroll = """mutation { enrollTeam(input: {collaborative: "theirs", organization: "prog-org",
        code: "sneaky", name: "Sneaky"}) { __typename ... on Error { code } } }"""
    assert (await program.gql(enroll))["data"]["enrollTeam"]["code"] == "NOT_FOUND"
    rows = [
        {
            "team": "theirs-team-0",
            "measure": "theirs-control",
            "period": "2024-01",
            "numerator": 1,
            "denominator": 2,
        }
    ]
    receipt = (await program.gql(SUBMIT, {"input": {"rows": rows}}))["data"]["submitMeasureData"]
    assert receipt["status"] == "REJECTED"
    assert {c["code"] for c in receipt["conflicts"]} == {"UNKNOWN_TEAM", "UNKNOWN_MEASURE"}
    ignored = ("measure_data_receipts", "audit_events")
    assert _without(await _counts(app, program), *ignored) == _without(mine_before, *ignored)
    assert await _counts(app, other) == theirs_before
    await _still_serving(program)


# --- tokens and headers ------------------------------------------------------------------------


async def test_tokens_not_yet_valid_or_with_a_forged_kid_are_401(
    app: Starlette, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = await _counts(app, tenant)
    later = int(time.time()) + 600
    for claims in (
        await _claims(tenant, nbf=later),
        await _claims(tenant, iat=later, exp=later + 300),
        await _claims(tenant, nbf="tomorrow"),
        await _claims(tenant, iat=float("inf")),
    ):
        _assert_401(await _call(http, await _forge(app, claims)))
    valid = await _claims(tenant, nbf=int(time.time()) - 5)
    assert (await _call(http, await _forge(app, valid))).status_code == 200
    for kid in ("../../../../etc/passwd", "' OR '1'='1", "x" * 5_000, "kid\x00nul", ""):
        token = await _forge(app, await _claims(tenant), kid=kid)
        _assert_401(await _call(http, token))
    claims_part = _b64(json.dumps(await _claims(tenant)).encode())
    for odd_kid in (12345, None, ["a"], {"$ne": None}, True):
        header = _b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": odd_kid}).encode())
        _assert_401(await _call(http, f"{header}.{claims_part}.{_b64(b'signature')}"))
    assert await _counts(app, tenant) == before
    await _still_serving(tenant)


@pytest.fixture(scope="module")
async def rs256_app(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """An app whose database's first signing key is RS256."""
    async with empty_database(backend, tmp_path_factory.mktemp("rs256")) as url:
        await asyncio.to_thread(upgrade_to_head, url)
        application = create_app(make_settings(url, signing_alg="RS256"))
        async with LifespanManager(application):
            yield application


async def test_hs_rs_confusion_with_an_rs256_server_is_401(rs256_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=rs256_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collabx.test") as http:
        tenant = await TenantFactory(rs256_app, http).create()
        token = await tenant.token()
        assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "RS256"
        assert (await _call(http, token)).status_code == 200
        public = (await http.get("/.well-known/jwks.json")).json()["keys"][0]
        assert public["kty"] == "RSA"
        state: AppState = rs256_app.state.collabx
        key, _ = await state.keys.signing_key()
        claims = await _claims(tenant)
        secrets = [
            json.dumps(public, sort_keys=True).encode(),
            json.dumps(public).encode(),
            key.as_pem(private=False),
            base64.urlsafe_b64decode(public["n"] + "=="),
        ]
        for secret in secrets:
            for alg in ("HS256", "HS384", "HS512"):
                header = {"alg": alg, "typ": "at+jwt", "kid": public["kid"]}
                _assert_401(await _call(http, _hmac_token(header, claims, secret)))
        control = await _forge(rs256_app, claims, alg="RS256")
        assert (await _call(http, control)).status_code == 200  # the control: the real algorithm
        header = {"alg": "PS256", "typ": "at+jwt", "kid": public["kid"]}
        unbound = RSAKey.import_key(
            {k: v for k, v in key.as_dict(private=True).items() if k != "alg"}
        )
        ps = jwt.encode(header, claims, unbound, algorithms=["PS256"])
        _assert_401(await _call(http, ps))
        assert (await _call(http, token)).status_code == 200


async def test_header_bombs_of_every_shape_are_431(http: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await tenant.token()
    shapes: list[dict[str, str]] = [
        {f"X-Tiny-{number}": "b" for number in range(2_000)},
        {"Authorization": f"Bearer {token}{'x' * 20_000}"},
        {"Cookie": "; ".join(f"c{number}=v" for number in range(4_000))},
        {"X-Long": "a" * 17_000},
    ]
    for headers in shapes:
        response = await http.post("/graphql", json={"query": VIEWER}, headers=headers)
        assert response.status_code == 431
        assert response.json()["errors"][0]["extensions"]["code"] == "HEADERS_TOO_LARGE"
    await _still_serving(tenant)
