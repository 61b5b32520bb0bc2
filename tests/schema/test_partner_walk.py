"""The adversarial partner walk (issue 5's "done when").

Sponsor A shares one collaborative and one measure with sponsor B at TEAM_DEIDENTIFIED. Clients
of B — a PARTNER and B's own ADMIN — then call **every query root** of the schema, each with
arguments aimed at A's data (A's slug, codes of A's shared and private collaboratives, teams,
organizations and measures, A's global ids, federation keys, filters and searches for A's team
names), selecting every field the answer's type offers down to a depth. The answers must not
contain anything A did not share: no team code or name, nothing of the private collaborative or
of the unshared measure, no global id of A's objects, no private value. The roots are read from
the schema itself, so a query added later is walked too. Subscriptions, FHIR search and the bulk
export are tried the same way. What the agreement does allow is checked to arrive.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from asgi_lifespan import LifespanManager
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
    is_required_argument,
    parse,
    validate,
)
from starlette.applications import Starlette

from api.app import create_app
from db.enums import ClientKind
from schema.schema import schema as collabx_schema
from tests.conftest import make_settings
from tests.factories import Tenant, TenantFactory
from tests.live import AsgiWebSocket
from tests.schema.sharing_setup import (
    MEASURE,
    OTHER_MEASURE,
    PRIVATE,
    PRIVATE_DENOMINATOR,
    PRIVATE_NUMERATOR,
    PRIVATE_TEAM,
    SECRET_TEAM_NAME,
    SHARED,
    SHARED_TEAMS,
    build_grantor,
    share,
)
from tests.schema.test_charts import data

pytestmark = pytest.mark.timeout(300)

MAX_DEPTH = 4
ALLOWED_ERROR_CODES = {"FORBIDDEN", "NOT_FOUND", "VALIDATION"}


def _fields_of(named: GraphQLObjectType | GraphQLInterfaceType) -> dict[str, GraphQLField]:
    return {
        name: field
        for name, field in named.fields.items()
        if not any(_required(arg) for arg in field.args.values())
    }


def _required(arg: GraphQLArgument) -> bool:
    return is_required_argument(arg)


def selection(type_: Any, depth: int, member: str | None = None) -> str:
    """Every field reachable without required arguments, ``depth`` levels down. An abstract
    type selects the fields of ``member`` (one of its types), else only ``__typename``: the
    members' fields may clash in one document (the walk sends one document per member)."""
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
        return ""
    if depth == 0:
        return "{ __typename }"
    if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
        if member is None:
            return "{ __typename }"
        concrete = collabx_schema._schema.get_type(member)
        return f"{{ __typename ... on {member} {selection(concrete, depth)} }}"
    parts = ["__typename"]
    for name, field in _fields_of(named).items():
        parts.append(f"{name} {selection(field.type, depth - 1)}".strip())
    return "{ " + " ".join(parts) + " }"


def _query_roots() -> dict[str, GraphQLField]:
    query = collabx_schema._schema.query_type
    assert query is not None
    return dict(query.fields)


def members(type_: Any) -> list[str | None]:
    """The concrete types to walk a root's answer as (None: it is concrete)."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
        return [t.name for t in collabx_schema._schema.get_possible_types(named)]
    return [None]


class Targets:
    """What of sponsor A the walk aims at, and what must never come back."""

    def __init__(self, grantor: Tenant, grantee: Tenant, ids: dict[str, list[str]]) -> None:
        self.grantor = grantor
        self.grantee = grantee
        self.ids = ids
        self.team_codes = [*SHARED_TEAMS, PRIVATE_TEAM]
        self.organization_codes = [f"{SHARED}-org", f"{PRIVATE}-org"]

    def secret_ids(self) -> list[str]:
        """Global ids of A's objects that nothing shares (the shared measure's id may show)."""
        return [i for kind, ids in self.ids.items() if kind != "SharedMeasure" for i in ids]

    def markers(self) -> list[str]:
        return [
            SECRET_TEAM_NAME,
            PRIVATE,
            OTHER_MEASURE,
            str(PRIVATE_NUMERATOR),
            str(PRIVATE_DENOMINATOR),
            *self.team_codes,
            *self.organization_codes,
            *self.secret_ids(),
        ]

    def values_for(self, root: str, name: str, arg: GraphQLArgument) -> list[Any]:
        """Argument values aimed at A for argument ``name`` of root field ``root``."""
        a = self.grantor.slug
        every_id = [i for ids in self.ids.values() for i in ids]
        codes = {
            "collaborative": [SHARED, PRIVATE],
            "team": self.team_codes,
            "organization": self.organization_codes,
            "measure": [MEASURE, OTHER_MEASURE],
            "instrument": ["acic", "pdsa"],
        }
        by_name: dict[str, list[Any]] = {
            "id": every_id,
            "ids": [every_id],
            "slug": [a],
            "sponsor": [a],
            "measure": [MEASURE, OTHER_MEASURE],
            "collaborative": [SHARED, PRIVATE],
            "code": codes.get(root, [SHARED, PRIVATE, MEASURE, *self.team_codes]),
            "webhook": self.ids["Collaborative"],
            "agreement": self.ids["Collaborative"],
            "representations": [self.representations()],
            "scope": [
                {"sponsors": [a]},
                {"sponsors": [a], "collaboratives": [PRIVATE]},
                {"sponsors": [a, self.grantee.slug], "collaboratives": [SHARED, PRIVATE]},
            ],
            "stratum": [""],
        }
        if name in by_name:
            return by_name[name]
        named = get_named_type(arg.type)
        if isinstance(named, GraphQLInputObjectType):
            return self.filters(named)
        if isinstance(named, GraphQLEnumType):
            return list(named.values)
        if named.name == "Boolean":
            return [False]
        return [None]

    def filters(self, named: GraphQLInputObjectType) -> list[dict[str, Any]]:
        """Filter inputs naming A's sponsor, codes and team names, one per code list."""
        variants: list[dict[str, Any]] = []
        for code in [SHARED, PRIVATE, *self.team_codes]:
            value: dict[str, Any] = {}
            for field_name, field in named.fields.items():
                inner = get_named_type(field.type)
                if field_name == "sponsor":
                    value[field_name] = self.grantor.slug
                elif field_name in ("collaborative", "team", "organization"):
                    value[field_name] = code
                elif field_name == "measure":
                    value[field_name] = MEASURE
                elif field_name == "search":
                    value[field_name] = SECRET_TEAM_NAME.split()[0]
                elif inner.name == "String" and isinstance(field.type, GraphQLList):
                    value[field_name] = [code]
            variants.append(value)
        return variants

    def representations(self) -> list[dict[str, str]]:
        a = self.grantor.slug
        keys = [{"__typename": "Sponsor", "slug": a}]
        for typename, codes in (
            ("Collaborative", [SHARED, PRIVATE]),
            ("Team", self.team_codes),
            ("Organization", self.organization_codes),
            ("Measure", [MEASURE, OTHER_MEASURE]),
        ):
            keys += [{"__typename": typename, "sponsorSlug": a, "code": c} for c in codes]
        return keys


def variants(targets: Targets, root: str, field: GraphQLField) -> list[dict[str, Any]]:
    """Argument sets for one root: every candidate value of every argument appears once."""
    candidates = {
        name: targets.values_for(root, name, arg)
        for name, arg in field.args.items()
        if name not in ("first", "after", "orderBy", "from", "to", "version")
    }
    if not candidates:
        return [{}]
    longest = max(len(values) for values in candidates.values())
    return [
        {name: values[i % len(values)] for name, values in candidates.items()}
        for i in range(longest)
    ]


def document(
    root: str, field: GraphQLField, arguments: dict[str, Any], depth: int, member: str | None
) -> str:
    declared = ", ".join(f"${name}: {field.args[name].type}" for name in arguments)
    passed = ", ".join(f"{name}: ${name}" for name in arguments)
    head = f"query Walk({declared})" if declared else "query Walk"
    call = f"{root}({passed})" if passed else root
    return f"{head} {{ {call} {selection(field.type, depth, member)} }}"


async def _walk_root(
    targets: Targets, token: str, root: str, field: GraphQLField
) -> list[dict[str, Any]]:
    """Every variant of one root, at the deepest selection the query limits accept."""
    answers = []
    for arguments, member in itertools.product(variants(targets, root, field), members(field.type)):
        for depth in range(MAX_DEPTH, 0, -1):
            body = await targets.grantee.gql(
                document(root, field, arguments, depth, member), arguments, token=token
            )
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
            if "QUERY_TOO_COMPLEX" not in codes:
                break
        assert codes <= ALLOWED_ERROR_CODES, (root, arguments, body)
        answers.append(body)
    return answers


def _leaks(targets: Targets, answer: Any) -> list[str]:
    """The markers found in an answer: text anywhere, numbers only as whole numbers (a mean
    such as 0.23249999999999998 or an id does not contain the count 9999)."""
    text = json.dumps(answer)
    found = []
    for marker in targets.markers():
        if marker.isdigit():
            if re.search(rf"(?<![\w.]){marker}(?![\w.])", text):
                found.append(marker)
        elif marker in text:
            found.append(marker)
    return found


async def _targets(grantor: Tenant, grantee: Tenant) -> Targets:
    """A's ids of everything the walk aims at (read as A's admin)."""
    body = await grantor.gql(
        """{
          collaboratives { nodes { id code teams { nodes { id code organization { id } } } } }
          measures { nodes { id code } }
          dataPoints(first: 5) { nodes { id } }
        }"""
    )
    found = data(body)
    ids: dict[str, list[str]] = {
        "Collaborative": [],
        "Team": [],
        "Organization": [],
        "Measure": [],
        "SharedMeasure": [],
    }
    for collaborative in found["collaboratives"]["nodes"]:
        ids["Collaborative"].append(collaborative["id"])
        for team in collaborative["teams"]["nodes"]:
            ids["Team"].append(team["id"])
            ids["Organization"].append(team["organization"]["id"])
    for measure in found["measures"]["nodes"]:
        ids["SharedMeasure" if measure["code"] == MEASURE else "Measure"].append(measure["id"])
    ids["DataPoint"] = [node["id"] for node in found["dataPoints"]["nodes"]]
    ids["Organization"] = sorted(set(ids["Organization"]))
    return Targets(grantor, grantee, ids)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    """The app without rate limits: the walk sends hundreds of deep queries as one client."""
    application = create_app(make_settings(database_url, rate_limit_enabled=False))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def walk(tenants: TenantFactory) -> Targets:
    grantor, grantee = await tenants.create("Grantor"), await tenants.create("Grantee")
    await build_grantor(grantor)
    await share(grantor, grantee, level="TEAM_DEIDENTIFIED")
    return await _targets(grantor, grantee)


async def _clients(targets: Targets) -> dict[str, str]:
    partner_id, partner_secret = await targets.grantee.add_client(ClientKind.PARTNER)
    return {
        "partner": await targets.grantee.token(partner_id, partner_secret),
        "admin": await targets.grantee.token(),
    }


@pytest.mark.slow
async def test_every_query_root_shows_a_partner_only_what_is_shared(walk: Targets) -> None:
    targets = walk
    roots = _query_roots()
    assert {"aggregate", "sharedTeamSeries", "node", "_entities", "team"} <= set(roots)
    for who, token in (await _clients(targets)).items():
        allowed_seen = set()
        for root, field in roots.items():
            if root == "_service":
                continue
            for answer in await _walk_root(targets, token, root, field):
                assert _leaks(targets, answer) == [], (who, root, answer)
                if answer.get("data", {}) and answer["data"].get(root):
                    allowed_seen.add(root)
        # what the agreement allows does arrive (the walk is not passing by seeing nothing)
        assert {"aggregate", "sharedTeamSeries", "sharingAgreements", "sponsors"} <= allowed_seen


async def test_what_is_shared_arrives_and_nothing_else(walk: Targets) -> None:
    """The fast core of the walk: the shared paths answer, the others answer null, for a
    PARTNER and for the grantee's own ADMIN (which also holds program:read for ``nodes``)."""
    targets = walk
    a = targets.grantor.slug
    variables = {"a": a, "ids": targets.secret_ids()[:100], "reps": targets.representations()}
    for who, token in (await _clients(targets)).items():
        with_nodes = "nodes(ids: $ids) { __typename }" if who == "admin" else ""
        ids_declared = ", $ids: [ID!]!" if who == "admin" else ""
        body = await targets.grantee.gql(
            f"""query ($a: String!, $reps: [_Any!]! {ids_declared}) {{
              aggregate(measure: "m-prop", sponsor: $a) {{ points {{ teamsReporting }} }}
              hidden: aggregate(measure: "m-private", sponsor: $a) {{ exact }}
              sharedTeamSeries(sponsor: $a, collaborative: "shared-prog", measure: "m-prop") {{
                nodes {{ team points {{ numerator }} }} }}
              privateSeries: sharedTeamSeries(sponsor: $a, collaborative: "hidden-prog",
                                              measure: "m-prop") {{ totalCount }}
              _entities(representations: $reps) {{ __typename }}
              {with_nodes}
            }}""",
            variables if who == "admin" else {k: v for k, v in variables.items() if k != "ids"},
            token=token,
        )
        # a partner lacks program:read, which entities need: each is null with FORBIDDEN
        errors = body.pop("errors", [])
        assert all(e["extensions"]["code"] == "FORBIDDEN" for e in errors), errors
        assert all(e["path"][0] == "_entities" for e in errors) and (who == "partner") == bool(
            errors
        )
        got = data(body)
        assert got["aggregate"]["points"][0]["teamsReporting"] == len(SHARED_TEAMS), who
        assert got["hidden"] is None and got["privateSeries"] is None
        assert len(got["sharedTeamSeries"]["nodes"]) == len(SHARED_TEAMS)
        assert got["_entities"] == [None] * len(targets.representations())
        if who == "admin":
            assert got["nodes"] == [None] * len(targets.secret_ids()[:100])
        assert _leaks(targets, body) == [], who


async def test_other_paths_show_a_partner_nothing(app: Starlette, walk: Targets) -> None:
    """Subscriptions, FHIR search and the bulk export stay inside the caller's sponsor."""
    targets = walk
    tokens = await _clients(targets)
    admin = tokens["admin"]
    http = targets.grantee.factory.http
    for token, allowed in ((tokens["partner"], {403}), (admin, {200})):
        for path in (
            "/fhir/MeasureReport",
            f"/fhir/MeasureReport?measure=http://x.test/Measure/{MEASURE}|1",
            f"/export/data-points?collaborative={SHARED}",
            f"/export/data-points?collaborative={PRIVATE}&format=csv",
        ):
            response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code in allowed | {400, 404}, (path, response.text)
            assert _leaks(targets, response.text) == [], (path, response.text)
    async with AsgiWebSocket(app) as ws:
        assert await ws.init({"Authorization": f"Bearer {admin}"}) == {"type": "connection_ack"}
        for number, collaborative in enumerate(targets.ids["Collaborative"]):
            await ws.subscribe(
                str(number),
                "subscription ($c: ID!) { measureDataSubmitted(collaborative: $c) { receiptId } }",
                {"c": collaborative},
            )
            message = await ws.receive_json()
            assert message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND", message


def test_the_walk_builds_valid_documents_for_every_root() -> None:
    """Every generated document validates against the schema (the walk cannot silently skip a
    root because its query is malformed)."""
    placeholder = Tenant(  # only its slug is read while documents are built
        slug="a",
        sponsor_id=uuid.uuid4(),
        factory=cast(TenantFactory, None),
        admin_id="",
        admin_secret="",
    )
    ids = {"Collaborative": ["x"], "Team": ["y"], "Measure": [], "SharedMeasure": []}
    targets = Targets(placeholder, placeholder, ids)
    for root, field in _query_roots().items():
        for arguments in itertools.islice(variants(targets, root, field), 2):
            for member in members(field.type):
                text = document(root, field, arguments, MAX_DEPTH, member)
                errors = validate(collabx_schema._schema, parse(text))
                assert errors == [], (root, member, errors)
