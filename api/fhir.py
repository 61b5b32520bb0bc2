"""FHIR R4 MeasureReport exchange: summary reports in (one, or a batch Bundle), out (search and
read), and the CapabilityStatement.

Endpoints (all answer ``application/fhir+json``; errors are an ``OperationOutcome`` whose issues
carry a FHIR issue code, a FHIRPath ``expression`` naming the element and, in ``details``, our
own code — the ingest's per-row codes of API.md or one of the ``DEQM_*`` codes below):

- ``POST /fhir/MeasureReport`` (scope ``data:write``) — one summary MeasureReport, parsed and
  validated with ``fhir.resources.R4B`` (R5 is the package's default and rejects R4), checked
  against the DEQM rules fhir.resources does not check, mapped to rows and handed to
  :func:`db.ingest.submit_measure_data` — the same code as GraphQL — with source ``fhir``, as one
  atomic call. 201 with the stored report (200 when it replays an earlier identical call);
  ``Prefer: return=minimal`` answers no body and ``return=OperationOutcome`` an informational
  outcome, both with ``Location``. Errors: 400 malformed JSON or invalid resource, 403 missing
  scope or a team the client is not bound to, 409 idempotency mismatch / call in progress /
  period locked, 413 too many bundle entries, 415 media type, 422 business rules (DEQM, unknown
  measure or organization, ingest checks).
- ``POST /fhir`` — a ``batch`` Bundle of MeasureReports (at most :data:`MAX_BUNDLE_ENTRIES`);
  each entry runs as above in its own transaction and gets its own status in the
  ``batch-response`` Bundle.
- ``GET /fhir/MeasureReport?measure=&reporter=&period=&_count=&_cursor=`` (scope
  ``data:read``; EHR integrations see their own teams only) — a ``searchset`` Bundle of summary
  reports built from stored points, keyset-paged (``Bundle.link`` ``next``).
- ``GET /fhir/MeasureReport/{id}`` — one stored report.
- ``GET /fhir/metadata`` — the CapabilityStatement (no token needed).

Mapping rules (both ways, so that export → import is lossless):

- **Report ↔ points.** A report is one (team, measure, month). ``group[0]`` carries the
  all-patients point (stratum ``''``); each ``group[0].stratifier[].stratum[]`` one stratified
  point. A stratum ``payer:medicaid`` is exported as stratifier ``code.text = "payer"`` and
  stratum ``value.text = "medicaid"``; strata without a ``name:`` prefix sit in a stratifier
  coded :data:`STRATUM_MARKER`, whose values are taken whole. On import a stratum of any other
  stratifier becomes ``<stratifier code>:<value>``. Annotations travel in the extension
  :data:`EXT_ANNOTATION` of the group or stratum. A report updates the points it carries; strata
  it leaves out are not deleted (``deleteMeasureData`` does that).
- **Counts.** numerator = ``numerator`` - ``numerator-exclusion``; denominator =
  ``denominator`` - ``denominator-exclusion`` - ``denominator-exception`` (the eCQM performance
  rate); other population codes (``initial-population``…) are read but not stored. MEAN and
  COUNT measures carry their value in ``measureScore``; for proportions, rates and ratios the
  counts are the data and the score is derived (exported as n/d, x the multiplier for rates and
  ratios, to 6 decimals).
- **DEQM rules checked** (422, code in ``details``): ``type`` summary (DEQM_TYPE), ``status``
  complete (DEQM_STATUS), ``measure`` a versioned canonical ``…/Measure/<code>|<version>``
  (DEQM_MEASURE), ``date`` (DEQM_DATE) and ``reporter`` (DEQM_REPORTER) present, ``period``
  with start and end inside one calendar month (DEQM_PERIOD), exactly one group
  (DEQM_GROUP), population codes unique with counts ≥ 0 and exclusions not above their
  population (DEQM_POPULATION), the DEQM ``measureScoring`` extension, when given, matching the
  measure (DEQM_SCORING), and for proportions a ``measureScore`` in [0, 1]
  (DEQM_SCORE_RANGE) consistent with the counts (DEQM_SCORE_MISMATCH): |score - n/d| at most
  half a unit of the score's last decimal place, and never more than :data:`MAX_SCORE_TOLERANCE`
  (so ``0.678`` fits 156/230 = 0.67826…, ``0.7`` does not). Scores of rates and ratios are not
  checked (their multiplier is a display choice).
- **Measure.** The canonical's URL is looked up among the URLs our measure versions declare
  (``fhirCanonical``, with or without ``|version``); when none declares it, its last path
  segment is the measure code. The version must be the measure's current one (ingest records
  points under the current definition): the exact ``|version`` a version declares, or our
  version number written ``N``, ``N.0`` or ``N.0.0``. Otherwise 422 UNKNOWN_MEASURE /
  NOT_CURRENT_VERSION.
- **Reporter → team.** ``reporter.reference`` ``Organization/<code>`` (relative or absolute) or
  else ``reporter.identifier.value`` names an organization by code. Its team is the one
  enrolled in a collaborative whose measure set has the measure. When several are: those the
  client is bound to (EHR integrations), then those not withdrawn before the month; if still
  several, 422 AMBIGUOUS_REPORTER — the extension :data:`EXT_TEAM` (``valueString``, a team code
  of that organization) names the team and always wins; exports always carry it.
- **Idempotency.** The first ``identifier`` with a value is the idempotency key
  (``fhir:<system>|<value>``), else the resource ``id`` (``fhir:MeasureReport/<id>``); keys
  longer than 255 characters are hashed. Same key and same content: the first outcome again;
  same key, other content: 409 IDEMPOTENCY_MISMATCH.
- **Balancing measures** have no FHIR measure-type code: the extension :data:`EXT_MEASURE_TYPE`
  carries ``outcome``/``process``/``structure`` from the HL7 measure-type system and
  ``balancing`` from :data:`CS_MEASURE_TYPE`.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from fhir.resources.R4B.measurereport import (
    MeasureReport,
    MeasureReportGroup,
    MeasureReportGroupStratifierStratum,
)
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.json_encoding import encode_json
from api.state import AppState
from db import ingest
from db.enums import ImprovementDirection, MeasureType, Scoring
from db.errors import DomainError, InvalidInput
from db.ingest import IngestOptions, RowInput
from db.models.exchange import IDEMPOTENCY_KEY_LENGTH
from db.queries.audit import Actor
from db.queries.data import Receipt, ReceiptStatus
from db.queries.exchange import (
    FhirMeasure,
    ReporterTeam,
    ReportFilter,
    ReportKey,
    ReportPoint,
    measure_by_code,
    measures_for_canonical,
    organization_teams,
    report_page,
)
from schema.principal import Principal

logger = logging.getLogger("collabx.fhir")

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
NS = "https://collabx.example.org/fhir"
"""Namespace of CollabX's own FHIR canonicals (extensions, code systems, naming systems)."""
EXT_TEAM = f"{NS}/StructureDefinition/team"
EXT_ANNOTATION = f"{NS}/StructureDefinition/annotation"
EXT_MEASURE_TYPE = f"{NS}/StructureDefinition/measure-type"
CS_MEASURE_TYPE = f"{NS}/CodeSystem/measure-type"
CS_STRATIFIER = f"{NS}/CodeSystem/stratifier"
CS_ISSUE = f"{NS}/CodeSystem/issue"
ORGANIZATION_SYSTEM = f"{NS}/NamingSystem/organization-code"
MEASURE_BASE = f"{NS}/Measure"
"""Canonical base of measures that declare no ``fhirCanonical`` of their own."""
STRATUM_MARKER = "stratum"
"""Code (in :data:`CS_STRATIFIER`) of the stratifier whose values are whole strata."""

DEQM_SUMMARY_PROFILE = (
    "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/summary-measurereport-deqm"
)
DEQM_SCORING_EXT = (
    "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"
)
CS_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
CS_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
CS_IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
CS_HL7_MEASURE_TYPE = "http://terminology.hl7.org/CodeSystem/measure-type"

MAX_BUNDLE_ENTRIES = 1_000
"""Most MeasureReports in one batch Bundle (each runs in its own transaction)."""
DEFAULT_PAGE = 50
MAX_SCORE_TOLERANCE = Fraction(5, 1000)
"""Largest accepted |measureScore - numerator/denominator| of a proportion."""
SCORE_DECIMALS = 6

FHIR_SCORING = {
    Scoring.PROPORTION: "proportion",
    Scoring.RATE: "ratio",
    Scoring.RATIO: "ratio",
    Scoring.MEAN: "continuous-variable",
    Scoring.COUNT: "cohort",
}
"""Our scorings as the HL7 measure-scoring codes (rates are ratios with a multiplier)."""

_ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REPORT_ID = re.compile(r"[a-z2-7]{56}")
_VERSION = re.compile(r"(\d{1,9})(?:\.0){0,2}")
_PREFIXED = re.compile(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4}(?:-\d{2}(?:-\d{2})?)?)(T.*)?")


# --- errors and OperationOutcome --------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue: FHIR issue type, our code, where, why."""

    code: str
    message: str
    expression: str | None = None
    detail: str | None = None
    severity: str = "error"

    def as_json(self) -> dict[str, Any]:
        """The issue as FHIR JSON."""
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.message,
        }
        if self.detail is not None:
            issue["details"] = {
                "coding": [{"system": CS_ISSUE, "code": self.detail}],
                "text": self.message,
            }
        if self.expression is not None:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    """A request answered with an OperationOutcome and an HTTP status."""

    def __init__(
        self, status: int, issues: Sequence[Issue], *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(issues[0].message if issues else str(status))
        self.status = status
        self.issues = list(issues)
        self.headers = headers or {}


def _fail(
    status: int, code: str, message: str, *, expression: str | None = None, detail: str | None
) -> FhirError:
    return FhirError(status, [Issue(code, message, expression, detail)])


def outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource of ``issues``."""
    return {"resourceType": "OperationOutcome", "issue": [issue.as_json() for issue in issues]}


def fhir_response(
    body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR JSON response (no body for ``None``)."""
    content = b"" if body is None else encode_json(body)  # orjson: UTF-8, compact
    return Response(
        content,
        status_code=status,
        media_type=f"{FHIR_JSON}; charset=utf-8" if body is not None else None,
        headers=headers,
    )


def _error_response(error: FhirError) -> Response:
    return fhir_response(outcome(error.issues), error.status, error.headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """FhirError → its OperationOutcome; anything unexpected → 500 (logged with the request
    id, which the outcome carries)."""

    async def run(request: Request) -> Response:
        if request.method == "POST":
            # Read (and cache) the body outside the guard: a body over the size limit and a
            # client that went away are the edge middleware's to answer, not a 500 here.
            await request.body()
        try:
            return await endpoint(request)
        except FhirError as error:
            return _error_response(error)
        except Exception:
            request_id = request.scope.get("state", {}).get("request_id", "")
            logger.exception("FHIR request failed (request %s)", request_id)
            return _error_response(
                FhirError(
                    500,
                    [Issue("exception", f"Unexpected error (request {request_id}).")],
                )
            )

    return run


# --- request plumbing -------------------------------------------------------------------------


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.collabx
    return state


def _principal(request: Request, scope: str) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise _fail(401, "login", "a bearer token is required", detail="UNAUTHENTICATED")
    if not principal.has_scope(scope):
        raise _fail(
            403, "forbidden", f"this operation requires the scope '{scope}'", detail="FORBIDDEN"
        )
    return principal


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(
        client_id=principal.client_id,
        kind=principal.kind.value,
        sponsor_id=principal.sponsor_id,
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _json_body(request: Request) -> Any:
    """The request's JSON (decimals kept exact), or 415/400."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (FHIR_JSON, "application/json"):
        raise _fail(
            415,
            "not-supported",
            "send application/fhir+json (or application/json)",
            detail="UNSUPPORTED_MEDIA_TYPE",
        )
    raw = await request.body()
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _fail(
            400, "structure", f"the body is not valid JSON: {exc}"[:300], detail="INVALID_JSON"
        ) from exc


def _prefer(request: Request) -> str:
    """The ``Prefer: return=`` choice: representation (default), minimal or OperationOutcome."""
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            wanted = value.strip().strip('"')
            if wanted in ("minimal", "OperationOutcome", "representation"):
                return wanted
    return "representation"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


# --- parsing and the DEQM rules -------------------------------------------------------------


def _expression(loc: Sequence[int | str], root: str) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_measure_report(data: Any, root: str = "MeasureReport") -> MeasureReport:
    """The R4 MeasureReport of a JSON value, or 400 with one issue per invalid element."""
    if not isinstance(data, dict) or data.get("resourceType") != "MeasureReport":
        found = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise _fail(
            400,
            "invalid",
            f"expected a MeasureReport resource, got {str(found)[:40]!r}",
            expression=root,
            detail="INVALID_RESOURCE",
        )
    try:
        return MeasureReport.model_validate(data)
    except ValidationError as exc:
        issues = []
        for error in exc.errors()[:50]:
            kind = str(error.get("type", ""))
            code = "required" if "missing" in kind else "structure" if "extra" in kind else "value"
            issues.append(
                Issue(
                    code,
                    f"{error.get('msg', 'invalid')}"[:300],
                    _expression([p for p in error.get("loc", ()) if p != "__root__"], root),
                    "INVALID_RESOURCE",
                )
            )
        raise FhirError(400, issues) from exc


def _month_of(value: object) -> tuple[int, int] | None:
    """(year, month) of a FHIR date/dateTime as written (a year alone has no month)."""
    if isinstance(value, datetime | date):
        return value.year, value.month
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?(?:T.*)?", value)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def _sort_key(value: object) -> str:
    """A comparable text of a FHIR date/dateTime (for start ≤ end within one month)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Canonical:
    """A versioned measure canonical split up: URL, version, and the code its path ends in."""

    url: str
    version: str
    code: str


def split_canonical(measure: str) -> Canonical | None:
    """A versioned canonical ``<absolute url>|<version>`` as its parts (``code``: the segment
    after ``Measure/``, '' when the URL has none), or None when it is not one."""
    url, bar, version = measure.partition("|")
    if (
        not bar
        or not version
        or "|" in version
        or ":" not in url
        or any(character.isspace() for character in measure)
    ):
        return None
    head, marker, code = url.rpartition("Measure/")
    if not marker or "/" in code or (head and not head.endswith("/")):
        code = ""
    return Canonical(url=url, version=version, code=code)


def deqm_issues(report: MeasureReport) -> list[Issue]:
    """The DEQM summary rules fhir.resources does not check (all of them at once)."""
    issues: list[Issue] = []
    if report.type != "summary":
        issues.append(
            Issue(
                "business-rule",
                f"a summary MeasureReport has type 'summary', not {report.type!r}",
                "MeasureReport.type",
                "DEQM_TYPE",
            )
        )
    if report.status != "complete":
        issues.append(
            Issue(
                "business-rule",
                f"only complete reports are stored; status is {report.status!r}",
                "MeasureReport.status",
                "DEQM_STATUS",
            )
        )
    if split_canonical(str(report.measure or "")) is None:
        issues.append(
            Issue(
                "business-rule",
                "measure must be a versioned canonical '…/Measure/<code>|<version>'",
                "MeasureReport.measure",
                "DEQM_MEASURE",
            )
        )
    if report.date is None:
        issues.append(
            Issue("required", "date is required", "MeasureReport.date", "DEQM_DATE"),
        )
    reporter = report.reporter
    if reporter is None or not (
        reporter.reference or (reporter.identifier and reporter.identifier.value)
    ):
        issues.append(
            Issue(
                "required",
                "reporter (the organization, by reference or identifier) is required",
                "MeasureReport.reporter",
                "DEQM_REPORTER",
            )
        )
    issues += _period_issues(report)
    groups = report.group or []
    if len(groups) != 1:
        issues.append(
            Issue(
                "business-rule",
                f"a report of a CollabX measure has exactly one group, not {len(groups)}",
                "MeasureReport.group",
                "DEQM_GROUP",
            )
        )
    return issues


def _period_issues(report: MeasureReport) -> list[Issue]:
    period = report.period
    start = period.start if period is not None else None
    end = period.end if period is not None else None
    if start is None or end is None:
        return [
            Issue(
                "required",
                "period needs a start and an end",
                "MeasureReport.period",
                "DEQM_PERIOD",
            )
        ]
    first, last = _month_of(start), _month_of(end)
    if first is None or last is None or first != last:
        return [
            Issue(
                "business-rule",
                "period must lie within one calendar month (data are monthly)",
                "MeasureReport.period",
                "DEQM_PERIOD",
            )
        ]
    if _sort_key(start) > _sort_key(end):
        return [
            Issue(
                "business-rule",
                "period starts after it ends",
                "MeasureReport.period",
                "DEQM_PERIOD",
            )
        ]
    return []


def report_month(report: MeasureReport) -> str:
    """The ``YYYY-MM`` of a report whose period passed the DEQM rules."""
    assert report.period is not None
    found = _month_of(report.period.start)
    assert found is not None
    return f"{found[0]:04d}-{found[1]:02d}"


def idempotency_key(report: MeasureReport) -> str | None:
    """The key a report's identifier (or id) stands for; None without either."""
    key: str | None = None
    for identifier in report.identifier or []:
        if identifier.value:
            key = f"fhir:{identifier.system or ''}|{identifier.value}"
            break
    if key is None and report.id:
        key = f"fhir:MeasureReport/{report.id}"
    if key is not None and (len(key) > IDEMPOTENCY_KEY_LENGTH or "\x00" in key):
        key = "fhir:sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key


# --- rows of a report --------------------------------------------------------------------------


@dataclass
class _Row:
    """A row for ingest with the element paths its fields came from (for error expressions)."""

    row: RowInput
    base: str
    paths: dict[str, str] = field(default_factory=dict)


def _coding_code(concept: Any, system: str | None = None) -> str | None:
    """The first code of a CodeableConcept (of ``system`` when given; codings without a system
    count too)."""
    if concept is None:
        return None
    for coding in concept.coding or []:
        if coding.code and (system is None or coding.system in (None, system)):
            return str(coding.code)
    return None


def _extension_value(element: Any, url: str) -> Any:
    for extension in element.extension or []:
        if extension.url == url:
            return extension.valueString if extension.valueString is not None else extension
    return None


def _populations(element: Any, base: str, issues: list[Issue]) -> dict[str, tuple[int, int]]:
    """Population code → (count, index) of a group or stratum."""
    found: dict[str, tuple[int, int]] = {}
    for index, population in enumerate(element.population or []):
        path = f"{base}.population[{index}]"
        code = _coding_code(population.code, CS_POPULATION)
        if code is None:
            issues.append(
                Issue("required", "a population needs a code", f"{path}.code", "DEQM_POPULATION")
            )
            continue
        if code in found:
            issues.append(
                Issue(
                    "duplicate",
                    f"population {code!r} appears twice",
                    f"{path}.code",
                    "DEQM_POPULATION",
                )
            )
            continue
        count = population.count
        if count is None:
            issues.append(
                Issue(
                    "required",
                    f"population {code!r} has no count",
                    f"{path}.count",
                    "DEQM_POPULATION",
                )
            )
            continue
        if count < 0:
            issues.append(
                Issue(
                    "value",
                    f"population {code!r} has a negative count",
                    f"{path}.count",
                    "DEQM_POPULATION",
                )
            )
            continue
        found[code] = (int(count), index)
    return found


def _net(
    populations: dict[str, tuple[int, int]],
    name: str,
    minus: Sequence[str],
    base: str,
    issues: list[Issue],
) -> int | None:
    if name not in populations:
        return None
    count, index = populations[name]
    net = count - sum(populations[other][0] for other in minus if other in populations)
    if net < 0:
        issues.append(
            Issue(
                "business-rule",
                f"{' and '.join(minus)} exceed {name} ({count})",
                f"{base}.population[{index}]",
                "DEQM_POPULATION",
            )
        )
        return None
    return net


def _tolerance(score: Decimal) -> Fraction:
    """Half a unit of the score's last decimal place, at most MAX_SCORE_TOLERANCE."""
    exponent = score.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return min(Fraction(1, 2 * 10**places), MAX_SCORE_TOLERANCE)


def _score_issues(
    scoring: Scoring,
    score: Decimal | None,
    numerator: int | None,
    denominator: int | None,
    path: str,
) -> list[Issue]:
    if score is None or scoring is not Scoring.PROPORTION:
        return []
    if not score.is_finite() or score < 0 or score > 1:
        return [
            Issue(
                "business-rule",
                f"a proportion's measureScore is between 0 and 1, not {score}",
                path,
                "DEQM_SCORE_RANGE",
            )
        ]
    if numerator is None or not denominator:
        return []
    exact = Fraction(numerator, denominator)
    if abs(Fraction(score) - exact) > _tolerance(score):
        return [
            Issue(
                "business-rule",
                f"measureScore {score} does not match numerator/denominator "
                f"{numerator}/{denominator} = {float(exact):.6f}",
                path,
                "DEQM_SCORE_MISMATCH",
            )
        ]
    return []


def _score(element: Any) -> Decimal | None:
    quantity = element.measureScore
    if quantity is None or quantity.value is None:
        return None
    value = quantity.value
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _point_row(
    element: Any,
    base: str,
    *,
    team: str,
    measure: FhirMeasure,
    period: str,
    stratum: str,
    issues: list[Issue],
) -> _Row | None:
    """The row of a group or stratum; None when it carries no data."""
    populations = _populations(element, base, issues)
    numerator = _net(populations, "numerator", ("numerator-exclusion",), base, issues)
    denominator = _net(
        populations,
        "denominator",
        ("denominator-exclusion", "denominator-exception"),
        base,
        issues,
    )
    score = _score(element)
    issues += _score_issues(measure.scoring, score, numerator, denominator, f"{base}.measureScore")
    annotation = _extension_value(element, EXT_ANNOTATION)
    if annotation is not None and not isinstance(annotation, str):
        issues.append(
            Issue(
                "value",
                "the annotation extension carries a valueString",
                f"{base}.extension.where(url='{EXT_ANNOTATION}')",
                "INVALID_TEXT",
            )
        )
        annotation = None
    has_counts = "numerator" in populations or "denominator" in populations
    if not has_counts and score is None and annotation is None:
        return None
    value: float | None = None
    if measure.scoring not in ingest.RATIO_SCORINGS and score is not None:
        value = float(score)
    row = RowInput(
        team=team,
        measure=measure.code,
        period=period,
        numerator=numerator,
        denominator=denominator,
        value=value,
        stratum=stratum,
        annotation=annotation,
    )
    paths = {
        "team": "MeasureReport.reporter",
        "measure": "MeasureReport.measure",
        "period": "MeasureReport.period",
        "value": f"{base}.measureScore",
        "annotation": f"{base}.extension.where(url='{EXT_ANNOTATION}')",
    }
    for name in ("numerator", "denominator"):
        if name in populations:
            paths[name] = f"{base}.population[{populations[name][1]}]"
    if stratum:
        paths["stratum"] = f"{base}.value"
    return _Row(row=row, base=base, paths=paths)


def _stratum_name(stratum: MeasureReportGroupStratifierStratum) -> str | None:
    value = stratum.value
    if value is None:
        return None
    if value.text:
        return str(value.text)
    return _coding_code(value)


def report_rows(
    report: MeasureReport, *, team: str, measure: FhirMeasure, period: str
) -> list[_Row]:
    """Rows of a report that passed the DEQM rules, or 422 with every problem found."""
    issues: list[Issue] = []
    assert report.group is not None
    group: MeasureReportGroup = report.group[0]
    base = "MeasureReport.group[0]"
    rows: list[_Row] = []
    top = _point_row(
        group, base, team=team, measure=measure, period=period, stratum="", issues=issues
    )
    if top is not None:
        rows.append(top)
    for s_index, stratifier in enumerate(group.stratifier or []):
        codes = stratifier.code or []
        concept = codes[0] if codes else None
        marker = concept is not None and any(
            coding.system == CS_STRATIFIER and coding.code == STRATUM_MARKER
            for coding in concept.coding or []
        )
        prefix = None
        if concept is not None and not marker:
            prefix = concept.text or _coding_code(concept)
        for j_index, stratum in enumerate(stratifier.stratum or []):
            path = f"{base}.stratifier[{s_index}].stratum[{j_index}]"
            if stratum.component:
                issues.append(
                    Issue(
                        "not-supported",
                        "strata with components are not supported; use one stratifier per "
                        "characteristic",
                        f"{path}.component",
                        "DEQM_STRATUM",
                    )
                )
                continue
            name = _stratum_name(stratum)
            if name is None:
                issues.append(
                    Issue("required", "a stratum needs a value", f"{path}.value", "DEQM_STRATUM")
                )
                continue
            key = f"{prefix}:{name}" if prefix else name
            row = _point_row(
                stratum, path, team=team, measure=measure, period=period, stratum=key, issues=issues
            )
            if row is not None:
                rows.append(row)
    if not rows and not issues:
        issues.append(
            Issue(
                "required",
                "the group carries no population, score or stratum",
                base,
                "DEQM_GROUP",
            )
        )
    if issues:
        raise FhirError(422, issues)
    return rows


# --- measure and reporter ----------------------------------------------------------------------


def _version_number(text: str) -> int | None:
    match = _VERSION.fullmatch(text)
    return int(match.group(1)) if match else None


def _declared_version(measure: FhirMeasure, canonical: Canonical) -> int | None:
    """The version whose declared canonical is exactly ``url|version``, else our number."""
    wanted = f"{canonical.url}|{canonical.version}"
    for version, declared in measure.canonicals.items():
        if declared == wanted:
            return version
    return _version_number(canonical.version)


async def resolve_measure(
    state: AppState, sponsor_id: uuid.UUID, canonical: Canonical
) -> FhirMeasure:
    """The measure a canonical names at its current version, or 422."""
    async with state.sessionmaker() as session:
        candidates = await measures_for_canonical(session, sponsor_id, canonical.url)
        if not candidates and _findable(canonical.code):
            found = await measure_by_code(session, sponsor_id, canonical.code)
            candidates = [found] if found is not None else []
    if not candidates:
        raise _fail(
            422,
            "not-found",
            f"no measure declares the canonical {canonical.url[:200]!r}"
            + (f" and there is no measure {canonical.code[:64]!r}" if canonical.code else ""),
            expression="MeasureReport.measure",
            detail="UNKNOWN_MEASURE",
        )
    if len(candidates) > 1:
        codes = ", ".join(measure.code for measure in candidates)
        raise _fail(
            422,
            "business-rule",
            f"several measures declare this canonical: {codes}",
            expression="MeasureReport.measure",
            detail="UNKNOWN_MEASURE",
        )
    measure = candidates[0]
    version = _declared_version(measure, canonical)
    if version is None or version > measure.current_version or version < 1:
        raise _fail(
            422,
            "not-found",
            f"{canonical.version[:40]!r} is not a version of measure {measure.code!r} "
            f"(versions are N, N.0 or N.0.0; the current one is {measure.current_version})",
            expression="MeasureReport.measure",
            detail="UNKNOWN_MEASURE",
        )
    if version != measure.current_version:
        raise _fail(
            422,
            "business-rule",
            f"version {version} of {measure.code!r} is not the current one "
            f"({measure.current_version}); data are recorded under the current definition",
            expression="MeasureReport.measure",
            detail="NOT_CURRENT_VERSION",
        )
    return measure


def _findable(code: str) -> bool:
    return bool(code) and "\x00" not in code and len(code) <= 64


def reporter_code(report: MeasureReport) -> str:
    """The organization code a reporter names (reference first, then identifier), or 422."""
    reporter = report.reporter
    assert reporter is not None
    reference = reporter.reference
    if reference:
        path = str(reference).split("/_history/")[0].rstrip("/")
        kind, _, code = path.rpartition("/")
        kind = kind.rpartition("/")[2]
        if kind != "Organization" or not code:
            raise _fail(
                422,
                "business-rule",
                "reporter must reference an Organization ('Organization/<code>')",
                expression="MeasureReport.reporter.reference",
                detail="DEQM_REPORTER",
            )
        return code
    assert reporter.identifier is not None and reporter.identifier.value
    return str(reporter.identifier.value)


async def resolve_team(
    state: AppState,
    principal: Principal,
    report: MeasureReport,
    measure: FhirMeasure,
    period: str,
) -> ReporterTeam:
    """The team a report is for (rules in the module docstring), or 422/403."""
    organization_code = reporter_code(report)
    named = _extension_value(report, EXT_TEAM)
    organization = None
    if _findable(organization_code):
        async with state.sessionmaker() as session:
            organization = await organization_teams(
                session, principal.sponsor_id, organization_code, measure_id=measure.id
            )
    if organization is None:
        raise _fail(
            422,
            "not-found",
            f"no organization {organization_code[:64]!r}",
            expression="MeasureReport.reporter",
            detail="UNKNOWN_TEAM",
        )
    if named is not None:
        by_code = {team.code: team for team in organization.teams}
        if not isinstance(named, str) or named not in by_code:
            raise _fail(
                422,
                "not-found",
                f"{str(named)[:64]!r} is not a team of organization {organization.code!r}",
                expression=f"MeasureReport.extension.where(url='{EXT_TEAM}')",
                detail="UNKNOWN_TEAM",
            )
        return by_code[named]
    candidates = [team for team in organization.teams if team.has_measure]
    if not candidates:
        raise _fail(
            422,
            "business-rule",
            f"no team of organization {organization.code!r} is enrolled in a collaborative "
            f"whose measure set has {measure.code!r}",
            expression="MeasureReport.reporter",
            detail="NOT_ENROLLED",
        )
    if len(candidates) > 1 and principal.is_team_bound:
        bound = [team for team in candidates if team.id in principal.team_ids]
        if not bound:
            raise _fail(
                403,
                "forbidden",
                "this client may write for its own teams only",
                expression="MeasureReport.reporter",
                detail="FORBIDDEN",
            )
        candidates = bound
    if len(candidates) > 1:
        active = [
            team
            for team in candidates
            if team.withdrawn_on is None or f"{team.withdrawn_on:%Y-%m}" >= period
        ]
        candidates = active or candidates
    if len(candidates) > 1:
        codes = ", ".join(team.code for team in candidates)
        raise _fail(
            422,
            "business-rule",
            f"organization {organization.code!r} has several teams with this measure ({codes});"
            f" name one with the extension {EXT_TEAM}",
            expression="MeasureReport.reporter",
            detail="AMBIGUOUS_REPORTER",
        )
    return candidates[0]


def _check_scoring(report: MeasureReport, measure: FhirMeasure) -> None:
    declared = _extension_value(report, DEQM_SCORING_EXT)
    if declared is None or isinstance(declared, str):
        return
    code = _coding_code(declared.valueCodeableConcept, CS_SCORING)
    if code is not None and code != FHIR_SCORING[measure.scoring]:
        raise _fail(
            422,
            "business-rule",
            f"the report declares scoring {code!r}; measure {measure.code!r} is "
            f"{FHIR_SCORING[measure.scoring]!r}",
            expression=f"MeasureReport.extension.where(url='{DEQM_SCORING_EXT}')",
            detail="DEQM_SCORING",
        )


# --- ingest -----------------------------------------------------------------------------------


_ISSUE_CODES = {
    "FORBIDDEN": "forbidden",
    "PERIOD_LOCKED": "conflict",
    "UNKNOWN_TEAM": "not-found",
    "UNKNOWN_MEASURE": "not-found",
    "MISSING_VALUE": "required",
    "INVALID_COUNT": "value",
    "INVALID_PERIOD": "value",
    "INVALID_TEXT": "value",
    "DUPLICATE_ROW": "duplicate",
}


def _receipt_error(receipt: Receipt, rows: Sequence[_Row]) -> FhirError:
    """The OperationOutcome of a rejected ingest call: 403 when a row was forbidden, 409 when
    only locks stood in the way, 422 otherwise."""
    issues = []
    for conflict in receipt.conflicts:
        row = rows[conflict.index]
        # a duplicate is the whole group or stratum, not the field ingest names (period)
        where = row.base if conflict.code == "DUPLICATE_ROW" else row.paths.get(conflict.field)
        issues.append(
            Issue(
                _ISSUE_CODES.get(conflict.code, "business-rule"),
                conflict.message,
                where or row.base,
                conflict.code,
            )
        )
    codes = {conflict.code for conflict in receipt.conflicts}
    status = 403 if "FORBIDDEN" in codes else 409 if codes == {"PERIOD_LOCKED"} else 422
    return FhirError(status, issues)


def _domain_error(exc: DomainError) -> FhirError:
    if isinstance(exc, ingest.IdempotencyMismatch):
        return _fail(
            409,
            "conflict",
            exc.message + " (the identifier or id of a MeasureReport is its idempotency key)",
            expression="MeasureReport.identifier",
            detail=exc.code,
        )
    if isinstance(exc, ingest.InProgress):
        error = _fail(409, "transient", exc.message, detail=exc.code)
        error.headers["Retry-After"] = str(exc.retry_after)
        return error
    if isinstance(exc, ingest.BatchTooLarge):
        return _fail(413, "too-costly", exc.message, detail=exc.code)
    if isinstance(exc, InvalidInput):
        return _fail(400, "invalid", exc.message, detail=exc.code)
    return _fail(422, "business-rule", exc.message, detail=exc.code)


@dataclass(frozen=True)
class Stored:
    """A report that was ingested: its key, whether it replayed an earlier call, the report."""

    report_id: str
    replayed: bool
    resource: dict[str, Any] | None


async def ingest_report(
    state: AppState, request: Request, principal: Principal, data: Any, root: str
) -> Stored:
    """Parse, check, map and ingest one MeasureReport (one atomic ingest call)."""
    report = parse_measure_report(data, root)
    issues = deqm_issues(report)
    if issues:
        raise FhirError(422, issues)
    canonical = split_canonical(str(report.measure))
    assert canonical is not None
    period = report_month(report)
    measure = await resolve_measure(state, principal.sponsor_id, canonical)
    _check_scoring(report, measure)
    team = await resolve_team(state, principal, report, measure, period)
    rows = report_rows(report, team=team.code, measure=measure, period=period)
    options = IngestOptions(
        atomic=True,
        idempotency_key=idempotency_key(report),
        team_ids=principal.team_ids if principal.is_team_bound else None,
        source="fhir",
        max_rows=state.settings.max_batch_rows,
    )
    metrics = state.metrics
    try:
        async with state.sessionmaker.begin() as session:
            receipt = await ingest.submit_measure_data(
                session, _actor(request, principal), [row.row for row in rows], options
            )
    except DomainError as exc:
        if metrics is not None:
            metrics.observe_ingest_error("fhir", exc.code)
        raise _domain_error(exc) from exc
    if metrics is not None:
        metrics.observe_receipt("fhir", receipt)
    if receipt.status is not ReceiptStatus.COMPLETED:
        raise _receipt_error(receipt, rows)
    async with state.sessionmaker() as session:
        page = await report_page(
            session,
            principal.sponsor_id,
            filter=ReportFilter(key=(team.id, measure.id, period)),
            limit=1,
        )
    resource = build_report(page.reports[0]) if page.reports else None
    return Stored(
        report_id=report_id((team.id, measure.id, period)),
        replayed=receipt.replayed,
        resource=resource,
    )


# --- building reports from stored points -------------------------------------------------------


@functools.lru_cache(maxsize=65_536)  # a pure function, and pure-Python base32 is slow
def report_id(key: ReportKey) -> str:
    """A report's FHIR id: base32 of (team id, measure id, year, month), 56 characters."""
    team_id, measure_id, period = key
    year, month = int(period[:4]), int(period[5:7])
    raw = team_id.bytes + measure_id.bytes + year.to_bytes(2, "big") + bytes([month])
    return base64.b32encode(raw).decode("ascii").lower()


def parse_report_id(text: str) -> ReportKey | None:
    """The key of a report id, or None when it is not one of ours."""
    if not _REPORT_ID.fullmatch(text):
        return None
    try:
        raw = base64.b32decode(text.upper())
    except ValueError:
        return None
    year, month = int.from_bytes(raw[32:34], "big"), raw[34]
    if len(raw) != 35 or not 1 <= month <= 12 or year < 1900:
        return None
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32]), f"{year:04d}-{month:02d}"


def measure_canonical(point: ReportPoint) -> str:
    """The versioned canonical a point's measure version is exported under."""
    declared = point.fhir_canonical
    if declared:
        return declared if "|" in declared else f"{declared}|{point.measure_version}"
    return f"{MEASURE_BASE}/{point.measure_code}|{point.measure_version}"


def _quantized(value: Fraction) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-SCORE_DECIMALS)))


def _export_score(point: ReportPoint) -> float | None:
    if point.scoring in ingest.RATIO_SCORINGS:
        if point.numerator is None or not point.denominator:
            return None
        ratio = Fraction(point.numerator, point.denominator)
        if point.scoring is not Scoring.PROPORTION:
            try:
                ratio *= Fraction(Decimal(repr(point.multiplier)))
            except (InvalidOperation, ValueError):
                return None
        return _quantized(ratio)
    return point.value


def _point_element(point: ReportPoint) -> dict[str, Any]:
    element: dict[str, Any] = {}
    if point.annotation:
        element["extension"] = [{"url": EXT_ANNOTATION, "valueString": point.annotation}]
    populations = []
    for code, count in (("numerator", point.numerator), ("denominator", point.denominator)):
        if count is not None:
            populations.append(
                {"code": {"coding": [{"system": CS_POPULATION, "code": code}]}, "count": count}
            )
    if populations:
        element["population"] = populations
    score = _export_score(point)
    if score is not None:
        element["measureScore"] = {"value": score}
    return element


def _measure_type(measure_type: MeasureType) -> dict[str, Any]:
    if measure_type is MeasureType.BALANCING:
        coding = {"system": CS_MEASURE_TYPE, "code": "balancing", "display": "Balancing"}
    else:
        code = measure_type.value.lower()
        coding = {"system": CS_HL7_MEASURE_TYPE, "code": code, "display": code.capitalize()}
    return {"coding": [coding], "text": measure_type.value.lower()}


def _stratifiers(points: Sequence[ReportPoint]) -> list[dict[str, Any]]:
    by_name: dict[str | None, list[dict[str, Any]]] = {}
    for point in points:
        prefix, colon, rest = point.stratum.partition(":")
        if not colon or not prefix or not rest:
            prefix, rest = "", point.stratum
        stratum = _point_element(point)
        stratum["value"] = {"text": rest}
        by_name.setdefault(prefix or None, []).append(stratum)
    stratifiers = []
    for name, strata in by_name.items():
        if name is None:
            code = {
                "coding": [{"system": CS_STRATIFIER, "code": STRATUM_MARKER}],
                "text": STRATUM_MARKER,
            }
        else:
            code = {"text": name}
        stratifiers.append({"code": [code], "stratum": strata})
    return stratifiers


def build_report(points: Sequence[ReportPoint]) -> dict[str, Any]:
    """The DEQM summary MeasureReport of one (team, measure, month)'s stored points."""
    overall = next((point for point in points if point.stratum == ""), None)
    first = overall or points[0]
    year, month = int(first.period[:4]), int(first.period[5:7])
    last_day = calendar.monthrange(year, month)[1]
    updated = max(point.updated_at for point in points)
    reporter: dict[str, Any] = {
        "identifier": {"system": ORGANIZATION_SYSTEM, "value": first.organization_code},
        "display": first.organization_name,
    }
    if _ID_PATTERN.fullmatch(first.organization_code):
        reporter = {"reference": f"Organization/{first.organization_code}", **reporter}
    direction = (
        "increase" if first.improvement_direction is ImprovementDirection.INCREASE else ("decrease")
    )
    group: dict[str, Any] = {"code": {"text": first.measure_name}}
    if overall is not None:
        group.update(_point_element(overall))
    strata = [point for point in points if point.stratum != ""]
    if strata:
        group["stratifier"] = _stratifiers(strata)
    return {
        "resourceType": "MeasureReport",
        "id": report_id(first.key),
        "meta": {
            "profile": [DEQM_SUMMARY_PROFILE],
            "lastUpdated": updated.isoformat().replace("+00:00", "Z"),
        },
        "extension": [
            {
                "url": DEQM_SCORING_EXT,
                "valueCodeableConcept": {
                    "coding": [{"system": CS_SCORING, "code": FHIR_SCORING[first.scoring]}]
                },
            },
            {"url": EXT_MEASURE_TYPE, "valueCodeableConcept": _measure_type(first.measure_type)},
            {"url": EXT_TEAM, "valueString": first.team_code},
        ],
        "status": "complete",
        "type": "summary",
        "measure": measure_canonical(first),
        "date": updated.isoformat().replace("+00:00", "Z"),
        "reporter": reporter,
        "period": {"start": f"{first.period}-01", "end": f"{first.period}-{last_day:02d}"},
        "improvementNotation": {"coding": [{"system": CS_IMPROVEMENT, "code": direction}]},
        "group": [group],
    }


# --- endpoints: create and batch -----------------------------------------------------------------


def _bound_principal(request: Request) -> Principal:
    principal = _principal(request, "data:write")
    if principal.is_team_bound and not principal.team_ids:
        raise _fail(
            403,
            "forbidden",
            "this client is bound to no team, so it may not write data",
            detail="FORBIDDEN",
        )
    return principal


def _created(request: Request, stored: Stored) -> Response:
    location = f"{_base(request)}/MeasureReport/{stored.report_id}"
    status = 200 if stored.replayed else 201
    headers = {"Location": location}
    prefer = _prefer(request)
    if prefer == "minimal":
        return fhir_response(None, status, headers)
    if prefer == "OperationOutcome" or stored.resource is None:
        message = "replayed: the first outcome of this identifier" if stored.replayed else "stored"
        info = Issue("informational", f"{message}; see {location}", severity="information")
        return fhir_response(outcome([info]), status, headers)
    return fhir_response(stored.resource, status, headers)


@_guarded
async def create_measure_report(request: Request) -> Response:
    """``POST /fhir/MeasureReport``."""
    principal = _bound_principal(request)
    data = await _json_body(request)
    stored = await ingest_report(_state(request), request, principal, data, "MeasureReport")
    return _created(request, stored)


_STATUS_TEXT = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    403: "403 Forbidden",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    413: "413 Payload Too Large",
    422: "422 Unprocessable Entity",
    500: "500 Internal Server Error",
}


def _entry_error(error: FhirError) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": _STATUS_TEXT.get(error.status, str(error.status)),
        "outcome": outcome(error.issues),
    }
    return {"response": response}


async def _batch_entry(
    request: Request, principal: Principal, entry: Any, index: int, minimal: bool
) -> dict[str, Any]:
    root = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        return _entry_error(
            _fail(400, "required", "an entry needs a resource", expression=root, detail="BATCH")
        )
    entry_request = entry.get("request")
    if entry_request is not None:
        method = entry_request.get("method") if isinstance(entry_request, dict) else None
        url = entry_request.get("url") if isinstance(entry_request, dict) else None
        if method != "POST" or str(url).split("?")[0].rstrip("/") != "MeasureReport":
            return _entry_error(
                _fail(
                    405,
                    "not-supported",
                    "batch entries are POST MeasureReport",
                    expression=f"{root}.request",
                    detail="BATCH",
                )
            )
    try:
        stored = await ingest_report(
            _state(request), request, principal, entry["resource"], f"{root}.resource"
        )
    except FhirError as error:
        for i, issue in enumerate(error.issues):
            if issue.expression and issue.expression.startswith("MeasureReport"):
                moved = f"{root}.resource" + issue.expression[len("MeasureReport") :]
                error.issues[i] = Issue(
                    issue.code, issue.message, moved, issue.detail, issue.severity
                )
        return _entry_error(error)
    except Exception:
        request_id = request.scope.get("state", {}).get("request_id", "")
        logger.exception("FHIR batch entry %d failed (request %s)", index, request_id)
        return _entry_error(
            FhirError(500, [Issue("exception", f"Unexpected error (request {request_id}).")])
        )
    response = {
        "status": _STATUS_TEXT[200 if stored.replayed else 201],
        "location": f"MeasureReport/{stored.report_id}",
    }
    result: dict[str, Any] = {"response": response}
    if stored.resource is not None and not minimal:
        result = {
            "fullUrl": f"{_base(request)}/MeasureReport/{stored.report_id}",
            "resource": stored.resource,
            "response": response,
        }
    return result


@_guarded
async def batch(request: Request) -> Response:
    """``POST /fhir``: a batch Bundle of MeasureReports → a batch-response Bundle."""
    principal = _bound_principal(request)
    data = await _json_body(request)
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise _fail(
            400, "invalid", "POST /fhir takes a batch Bundle", expression="Bundle", detail="BATCH"
        )
    if data.get("type") != "batch":
        raise _fail(
            400,
            "not-supported",
            f"only 'batch' Bundles are processed, not {str(data.get('type'))[:20]!r}",
            expression="Bundle.type",
            detail="BATCH",
        )
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise _fail(400, "structure", "entry is a list", expression="Bundle.entry", detail="BATCH")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise _fail(
            413,
            "too-costly",
            f"a batch holds at most {MAX_BUNDLE_ENTRIES} entries; this one has {len(entries)}",
            expression="Bundle.entry",
            detail="BATCH_TOO_LARGE",
        )
    minimal = _prefer(request) == "minimal"
    results = [
        await _batch_entry(request, principal, entry, index, minimal)
        for index, entry in enumerate(entries)
    ]
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "batch-response",
        "entry": results,
    }
    return fhir_response(body)


# --- endpoints: search and read ------------------------------------------------------------------


SEARCH_PARAMETERS = frozenset({"measure", "reporter", "period", "_count", "_cursor", "_format"})


def _period_bounds(values: Sequence[str]) -> tuple[str | None, str | None]:
    """(from, to) months of ``period`` search values (ANDed); 400 on a malformed one."""
    low: str | None = None
    high: str | None = None
    for raw in values:
        match = _PREFIXED.fullmatch(raw)
        if match is None:
            raise _fail(
                400,
                "invalid",
                f"period {raw[:40]!r} is not [eq|ge|gt|le|lt]YYYY[-MM[-DD]]",
                expression="period",
                detail="INVALID_PARAMETER",
            )
        prefix, text = match.group(1) or "eq", match.group(2)
        year = int(text[:4])
        first = f"{year:04d}-{text[5:7]}" if len(text) >= 7 else f"{year:04d}-01"
        last = f"{year:04d}-{text[5:7]}" if len(text) >= 7 else f"{year:04d}-12"
        if prefix in ("gt", "sa"):
            first = _shift(last, 1)
            last = "9999-12"
        elif prefix == "ge":
            last = "9999-12"
        elif prefix in ("lt", "eb"):
            last = _shift(first, -1)
            first = "0000-01"
        elif prefix == "le":
            first = "0000-01"
        elif prefix != "eq":
            raise _fail(
                400,
                "not-supported",
                f"the period prefix {prefix!r} is not supported (eq, ge, gt, le, lt)",
                expression="period",
                detail="INVALID_PARAMETER",
            )
        low = first if low is None else max(low, first)
        high = last if high is None else min(high, last)
    return low, high


def _shift(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _encode_cursor(key: ReportKey) -> str:
    raw = json.dumps([str(key[0]), str(key[1]), key[2]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> ReportKey:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        team_id, measure_id, period = json.loads(raw)
        key = (uuid.UUID(team_id), uuid.UUID(measure_id), str(period))
    except (ValueError, TypeError) as exc:
        raise _fail(
            400, "invalid", "malformed _cursor", expression="_cursor", detail="INVALID_PARAMETER"
        ) from exc
    if ingest.period_problem(key[2]) is not None:
        raise _fail(
            400, "invalid", "malformed _cursor", expression="_cursor", detail="INVALID_PARAMETER"
        )
    return key


def _split(values: Sequence[str]) -> list[str]:
    """FHIR search values: repeated parameters AND, commas OR; here every value is one OR list
    (measure and reporter take one value each, so AND of several is their intersection)."""
    return [part for value in values for part in value.split(",") if part]


async def _search_filter(
    session: AsyncSession, principal: Principal, request: Request
) -> ReportFilter | None:
    """The filter of a search's parameters; None when it can match nothing."""
    params = request.query_params
    unknown = sorted(set(params.keys()) - SEARCH_PARAMETERS)
    if unknown:
        raise _fail(
            400,
            "not-supported",
            f"unknown search parameter(s): {', '.join(name[:40] for name in unknown)}; "
            f"supported: {', '.join(sorted(SEARCH_PARAMETERS))}",
            detail="INVALID_PARAMETER",
        )
    measure_ids: set[uuid.UUID] | None = None
    version: int | None = None
    measures = params.getlist("measure")
    if measures:
        measure_ids = set()
        for value in _split(measures):
            found, wanted_version = await _search_measure(session, principal.sponsor_id, value)
            if found is not None:
                measure_ids.add(found.id)
                version = wanted_version if wanted_version is not None else version
    team_ids: set[uuid.UUID] | None = None
    reporters = params.getlist("reporter")
    if reporters:
        team_ids = set()
        for value in _split(reporters):
            code = value.split("/_history/")[0].rstrip("/").rpartition("/")[2]
            if not _findable(code):
                continue
            organization = await organization_teams(session, principal.sponsor_id, code)
            if organization is not None:
                team_ids.update(team.id for team in organization.teams)
    if principal.is_team_bound:
        team_ids = set(principal.team_ids) if team_ids is None else team_ids & principal.team_ids
    low, high = _period_bounds(params.getlist("period"))
    if (measure_ids is not None and not measure_ids) or (team_ids is not None and not team_ids):
        return None
    return ReportFilter(
        team_ids=frozenset(team_ids) if team_ids is not None else None,
        measure_ids=frozenset(measure_ids) if measure_ids is not None else None,
        measure_version=version,
        from_period=low,
        to_period=high,
    )


async def _search_measure(
    session: AsyncSession, sponsor_id: uuid.UUID, value: str
) -> tuple[FhirMeasure | None, int | None]:
    """A ``measure`` search value: a canonical (with or without ``|version``) or a code."""
    url, bar, version_text = value.partition("|")
    candidates = await measures_for_canonical(session, sponsor_id, url)
    if not candidates:
        code = url.rpartition("Measure/")[2] if "Measure/" in url else url
        found = await measure_by_code(session, sponsor_id, code) if _findable(code) else None
        candidates = [found] if found is not None else []
    if len(candidates) != 1:
        return None, None
    measure = candidates[0]
    if not bar:
        return measure, None
    canonical = Canonical(url=url, version=version_text, code=measure.code)
    version = _declared_version(measure, canonical)
    return (measure, version) if version is not None else (None, None)


def _page_size(request: Request, state: AppState) -> int:
    raw = request.query_params.get("_count")
    if raw is None:
        return min(DEFAULT_PAGE, state.settings.max_page_size)
    if not raw.isdigit() or not 1 <= int(raw) <= state.settings.max_page_size:
        raise _fail(
            400,
            "invalid",
            f"_count is a whole number from 1 to {state.settings.max_page_size}",
            expression="_count",
            detail="INVALID_PARAMETER",
        )
    return int(raw)


@_guarded
async def search_measure_reports(request: Request) -> Response:
    """``GET /fhir/MeasureReport``: a searchset Bundle of stored reports."""
    principal = _principal(request, "data:read")
    state = _state(request)
    size = _page_size(request, state)
    cursor = request.query_params.get("_cursor")
    after = _decode_cursor(cursor) if cursor is not None else None
    query_format = request.query_params.get("_format")
    if query_format is not None and "json" not in query_format:
        raise _fail(
            400, "not-supported", "only JSON is served", expression="_format", detail="FORMAT"
        )
    reports: list[list[ReportPoint]] = []
    has_next = False
    async with state.sessionmaker() as session:  # one session (one connection) per search
        filter = await _search_filter(session, principal, request)
        if filter is not None:
            page = await report_page(
                session, principal.sponsor_id, filter=filter, limit=size, after=after
            )
            reports, has_next = page.reports, page.has_next
    base = _base(request)
    self_url = str(request.url)
    links = [{"relation": "self", "url": self_url}]
    if has_next and reports:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
        params.append(("_cursor", _encode_cursor(reports[-1][0].key)))
        query = "&".join(f"{k}={_quote(v)}" for k, v in params)
        links.append({"relation": "next", "url": f"{base}/MeasureReport?{query}"})
    body = {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/MeasureReport/{report_id(points[0].key)}",
                "resource": build_report(points),
                "search": {"mode": "match"},
            }
            for points in reports
        ],
    }
    if not body["entry"]:
        del body["entry"]
    return fhir_response(body)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="|:/,")


@_guarded
async def read_measure_report(request: Request) -> Response:
    """``GET /fhir/MeasureReport/{id}``."""
    principal = _principal(request, "data:read")
    state = _state(request)
    text = str(request.path_params["id"])
    key = parse_report_id(text)
    not_found = _fail(
        404,
        "not-found",
        f"no MeasureReport {text[:64]!r}",
        expression="MeasureReport.id",
        detail="NOT_FOUND",
    )
    if key is None or (principal.is_team_bound and key[0] not in principal.team_ids):
        raise not_found
    async with state.sessionmaker() as session:
        page = await report_page(
            session, principal.sponsor_id, filter=ReportFilter(key=key), limit=1
        )
    if not page.reports:
        raise not_found
    return fhir_response(build_report(page.reports[0]))


# --- CapabilityStatement -----------------------------------------------------------------------


def capability_statement(base: str, token_url: str) -> dict[str, Any]:
    """What this FHIR endpoint does (R4, JSON, MeasureReport create/search/read, batch)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01",
        "publisher": "CollabX",
        "kind": "instance",
        "software": {"name": "CollabX"},
        "implementation": {
            "description": "CollabX measure data exchange (DEQM summary MeasureReports)",
            "url": base,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Summary MeasureReports (Da Vinci DEQM) in and out. Reporter: an "
                    "Organization by code; measure: a versioned canonical; period: one month."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "OAuth 2.0 client credentials: POST form grant_type=client_credentials "
                        f"to {token_url}; send 'Authorization: Bearer <token>'. Scopes: "
                        "data:write (create, batch), data:read (search, read)."
                    ),
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                            "oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                },
                "resource": [
                    {
                        "type": "MeasureReport",
                        "supportedProfile": [DEQM_SUMMARY_PROFILE],
                        "interaction": [
                            {"code": "create"},
                            {"code": "read"},
                            {"code": "search-type"},
                        ],
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "searchParam": [
                            {
                                "name": "measure",
                                "type": "reference",
                                "documentation": "A measure canonical (optionally |version) "
                                "or a measure code; commas OR.",
                            },
                            {
                                "name": "reporter",
                                "type": "reference",
                                "documentation": "Organization/<code> or an organization "
                                "code; commas OR.",
                            },
                            {
                                "name": "period",
                                "type": "date",
                                "documentation": "[eq|ge|gt|le|lt]YYYY[-MM[-DD]], by month; "
                                "repeat to AND.",
                            },
                            {"name": "_count", "type": "number", "documentation": "Page size."},
                        ],
                    }
                ],
                "interaction": [{"code": "batch"}],
            }
        ],
    }


async def metadata(request: Request) -> Response:
    """``GET /fhir/metadata`` (open: no token)."""
    token_url = str(request.base_url).rstrip("/") + "/oauth/token"
    return fhir_response(capability_statement(_base(request), token_url))


def fhir_routes() -> list[Route]:
    """The FHIR routes, mounted by the app factory."""
    return [
        Route("/fhir/metadata", metadata, methods=["GET"]),
        Route("/fhir/MeasureReport", create_measure_report, methods=["POST"]),
        Route("/fhir/MeasureReport", search_measure_reports, methods=["GET"]),
        Route("/fhir/MeasureReport/{id}", read_measure_report, methods=["GET"]),
        Route("/fhir", batch, methods=["POST"]),
    ]
