"""Conformance: what the sandbox answers over real HTTP validates against Strava's schemas.

The schemas are vendored in tests/data/strava_schema/ (its README.md names the sources): JSON
Schemas generated from stravalib's pydantic model of developers.strava.com/swagger (activities,
athletes, Fault), the swagger itself (which endpoint answers which schema, and Strava's example
answers), and the token answers written from Strava's Authentication documentation. They are
kept as Strava publishes them; where the sandbox disagrees, the sandbox is wrong.

On top of the schemas (which require nothing and allow null everywhere) the test expects a few
things Strava's own examples always show (`EXPECTED`): the ids, the `resource_state` of each
representation, and a Fault's `message` and `errors[]` of `{code, field, resource}`. API answers
must carry the rate-limit headers of Strava's "Rate Limits" page. Every violation is reported
with the endpoint, the object and the JSON path; the counts of validated objects are printed
per endpoint ("conformance: N SummaryActivity, ... validated").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from sync_assets_sandbox import AthleteHandle, RateLimits, SandboxServer, StravaSandbox

SCHEMA_DIR = Path(__file__).parent / "data" / "strava_schema"
GENERATED = ("SummaryActivity", "DetailedActivity", "SummaryAthlete", "DetailedAthlete", "Fault")
WRITTEN = ("TokenExchange", "TokenRefresh")
ORDER = (*GENERATED, *WRITTEN)
ACTIVITIES = "/api/v3/athlete/activities"
ACTIVITY = "/api/v3/activities/{id}"
ATHLETE = "/api/v3/athlete"
TOKEN = "/oauth/token"
JSON_TYPE = "application/json; charset=utf-8"
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Usage",
    "X-ReadRateLimit-Limit",
    "X-ReadRateLimit-Usage",
)
FIFTEEN_MIN_AND_DAY = re.compile(r"[0-9]+,[0-9]+\Z")
BOUNDS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum"})
RATE_LIMITED = ("Application", "rate limit", "exceeded")
MIDDAY = 1_780_315_200  # 2026-06-01T12:00:00Z, the start of a 15-minute window
ROOMY = RateLimits(
    overall_15min=1_000_000, overall_daily=1_000_000, read_15min=1_000_000, read_daily=1_000_000
)
# What Strava's example answers in the swagger always show, beyond the (all-optional) schemas;
# `test_vendored_schemas_match_the_swagger` checks the examples themselves against these.
_ID = {"type": "integer"}
_NON_EMPTY = {"type": "string", "minLength": 1}
EXPECTED: dict[str, dict[str, Any]] = {
    "SummaryActivity": {
        "required": ["id", "resource_state", "athlete"],
        "properties": {
            "id": _ID,
            "resource_state": {"const": 2},
            "athlete": {"required": ["id"], "properties": {"id": _ID}},
        },
    },
    "DetailedActivity": {
        "required": ["id", "resource_state", "athlete"],
        "properties": {
            "id": _ID,
            "resource_state": {"const": 3},
            "athlete": {"required": ["id"], "properties": {"id": _ID}},
        },
    },
    "SummaryAthlete": {
        "required": ["id", "resource_state"],
        "properties": {"id": _ID, "resource_state": {"const": 2}},
    },
    "DetailedAthlete": {
        "required": ["id", "resource_state"],
        "properties": {"id": _ID, "resource_state": {"const": 3}},
    },
    "Fault": {
        "required": ["message", "errors"],
        "properties": {
            "message": _NON_EMPTY,
            "errors": {
                "minItems": 1,
                "items": {
                    "required": ["code", "field", "resource"],
                    "properties": {"code": _NON_EMPTY, "field": _NON_EMPTY, "resource": _NON_EMPTY},
                },
            },
        },
    },
}


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


OFFICIAL = {name: _validator(_load(name)) for name in ORDER}
EXPECTATIONS = {name: _validator(schema) for name, schema in EXPECTED.items()}


# -- recording ----------------------------------------------------------------------------
@dataclass
class Violation:
    source: str  # "SummaryActivity" (the schema), "expected SummaryActivity", "headers"
    where: str  # the request and the object in its answer
    path: str  # JSON path in the object
    value: Any
    message: str


@dataclass
class Conformance:
    """Validated objects per (endpoint, schema), header checks, and every violation."""

    validated: Counter[tuple[str, str]] = field(default_factory=Counter)
    headers_checked: int = 0
    violations: list[Violation] = field(default_factory=list)

    def check(self, schema: str, instance: Any, endpoint: str, where: str) -> None:
        self.validated[endpoint, schema] += 1
        for source, validator in (
            (schema, OFFICIAL[schema]),
            (f"expected {schema}", EXPECTATIONS.get(schema)),
        ):
            if validator is None:
                continue
            for error in validator.iter_errors(instance):
                for leaf, nullable in _leaves(error):
                    self.violations.append(
                        Violation(
                            source, where, _json_path(leaf), leaf.instance, _explain(leaf, nullable)
                        )
                    )

    def check_api_headers(self, response: httpx.Response, where: str) -> None:
        """Strava's "Rate Limits" headers ("15-minute,daily") and a JSON content type."""
        self.headers_checked += 1
        for name in RATE_HEADERS:
            value = response.headers.get(name)
            if value is None or not FIFTEEN_MIN_AND_DAY.match(value):
                self.violations.append(
                    Violation("headers", where, name, value, 'missing or not "n,n"')
                )
        content_type = response.headers.get("content-type")
        if content_type != JSON_TYPE:
            self.violations.append(
                Violation("headers", where, "Content-Type", content_type, f"is not {JSON_TYPE}")
            )

    def merge(self, other: Conformance) -> None:
        self.validated.update(other.validated)
        self.headers_checked += other.headers_checked
        self.violations.extend(other.violations)

    def summary(self) -> list[str]:
        per_schema: Counter[str] = Counter()
        for (_, schema), n in self.validated.items():
            per_schema[schema] += n
        counts = ", ".join(f"{per_schema[s]} {s}" for s in ORDER if per_schema[s])
        lines = [
            f"conformance: {counts or 'nothing'} validated; rate-limit headers checked on "
            f"{self.headers_checked} API answers; {len(self.violations)} violations"
        ]
        endpoints = sorted({e for e, _ in self.validated})
        for endpoint in endpoints:
            counted = [(s, self.validated[endpoint, s]) for s in ORDER]
            parts = [f"{n} {s}" for s, n in counted if n]
            lines.append(f"  {endpoint}: {', '.join(parts)}")
        return lines

    def report(self, limit: int = 40) -> str:
        """Violations grouped by (source, path, message): how many, which values, an example."""
        groups: dict[tuple[str, str, str], list[Violation]] = {}
        for v in self.violations:
            key = (v.source, re.sub(r"\[\d+\]", "[*]", v.path), v.message)
            groups.setdefault(key, []).append(v)
        ranked = sorted(groups.items(), key=lambda group: -len(group[1]))
        lines = [f"{len(self.violations)} violations in {len(groups)} kinds:"]
        for (source, path, message), items in ranked[:limit]:
            values = list(dict.fromkeys(json.dumps(v.value, ensure_ascii=False) for v in items))
            more = f" (+{len(values) - 4} more)" if len(values) > 4 else ""
            shown = ", ".join(values[:4]) + more
            lines.append(
                f"- {source}: {path} = {shown}: {message} [{len(items)}x, e.g. {items[0].where}]"
            )
        if len(ranked) > limit:
            lines.append(f"... and {len(ranked) - limit} more kinds")
        return "\n".join(lines)

    def assert_conforms(self) -> None:
        print("\n".join(self.summary()))
        if self.violations:
            pytest.fail(self.report(), pytrace=False)


def _json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _is_null_branch(error: ValidationError) -> bool:
    return error.validator == "type" and error.validator_value == "null"


def _leaves(
    error: ValidationError, nullable: bool = False
) -> Iterator[tuple[ValidationError, bool]]:
    """The innermost errors: through `anyOf: [X, null]` (pydantic's `X | None`) to what X
    said, with whether null would have done."""
    branches = [c for c in error.context or () if not _is_null_branch(c)]
    if not branches:
        yield error, nullable
        return
    allows_null = len(branches) < len(error.context or ())
    for branch in branches:
        yield from _leaves(branch, allows_null)


def _explain(error: ValidationError, nullable: bool) -> str:
    """The message without the value (reported apart), cut short (enums are long)."""
    message = error.message
    shown = repr(error.instance)
    if message.startswith(shown):
        message = message[len(shown) :].strip()
    if len(message) > 120:
        message = message[:117] + "..."
    if error.validator in BOUNDS:
        message += f" ({error.validator} {error.validator_value})"
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if title and error.validator != "required":
        message += f" for {title}"
    return f"{message} (nor null)" if nullable else message


TOTALS = Conformance()


@pytest.fixture(scope="module", autouse=True)
def _print_totals(request: pytest.FixtureRequest) -> Iterator[None]:
    """The module's counts, shown in the test output even when stdout is captured."""
    yield
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(TOTALS.summary()))
        return
    with capture.global_and_fixture_disabled():  # what `capsys.disabled()` does
        reporter.write("\n")
        for line in TOTALS.summary():
            reporter.write_line(line)


@pytest.fixture
def conformance() -> Iterator[Conformance]:
    record = Conformance()
    yield record
    TOTALS.merge(record)


# -- HTTP ---------------------------------------------------------------------------------
class Client:
    """Real HTTP to the sandbox, every API answer header-checked."""

    def __init__(self, server: SandboxServer, sandbox: StravaSandbox, record: Conformance):
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.sandbox = sandbox
        self.record = record

    def api(self, path: str, token: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.get(path, params=params, headers=headers)
        self.record.check_api_headers(response, self.where(response))
        return response

    def token(self, **form: str) -> httpx.Response:
        data = {"client_id": self.sandbox.client_id, "client_secret": self.sandbox.client_secret}
        data.update(form)
        return self.http.post(TOKEN, data=data)

    @staticmethod
    def where(response: httpx.Response) -> str:
        url = response.request.url
        query = f"?{url.query.decode()}" if url.query else ""
        return f"{response.request.method} {url.path}{query} -> {response.status_code}"


@pytest.fixture
def client(
    server: SandboxServer, sandbox: StravaSandbox, conformance: Conformance
) -> Iterator[Client]:
    sandbox.set_limits(ROOMY)
    c = Client(server, sandbox, conformance)
    yield c
    c.http.close()


# Athletes of several sizes, seeds and scopes: (activities, seed, scopes).
ATHLETES = (
    (0, 3, "read,activity:read_all"),
    (1, 5, "read,activity:read"),
    (48, 7, "read,activity:read"),
    (130, 11, "read,activity:read_all,profile:read_all"),
    (700, 1234, "read,activity:read_all"),
)


def _athletes(sandbox: StravaSandbox) -> list[AthleteHandle]:
    return [sandbox.add_athlete(n, seed=seed, scopes=scopes) for n, seed, scopes in ATHLETES]


def _date(response: httpx.Response) -> int:
    return int(parsedate_to_datetime(response.headers["date"]).timestamp())


# -- the schemas themselves ---------------------------------------------------------------
def test_vendored_schemas_match_the_swagger() -> None:
    """The swagger answers each endpoint with the schema this test uses, Strava's own examples
    validate against the vendored schemas (and EXPECTED), and date-times are really checked."""
    swagger = _load("strava_swagger")
    answers = {
        "/athlete/activities": "SummaryActivity",
        "/activities/{id}": "DetailedActivity",
        "/athlete": "DetailedAthlete",
    }
    for path, schema in answers.items():
        responses = swagger["paths"][path]["get"]["responses"]
        ok = responses["200"]["schema"]
        ref = ok["items"]["$ref"] if ok.get("type") == "array" else ok["$ref"]
        assert ref.endswith(f"#/{schema}"), (path, ref)
        assert responses["default"]["schema"]["$ref"].endswith("#/Fault"), path
        example = responses["200"]["examples"]["application/json"]
        for item in example if isinstance(example, list) else [example]:
            for validator in (OFFICIAL[schema], EXPECTATIONS[schema]):
                errors = [f"{_json_path(e)}: {e.message}" for e in validator.iter_errors(item)]
                assert not errors, (path, errors)
    for name in GENERATED:
        assert _load(name)["title"] == name
    # Without rfc3339-validator, FormatChecker silently accepts any date-time.
    bad = {"start_date": "2018-13-02T12:15:09Z"}
    assert not OFFICIAL["SummaryActivity"].is_valid(bad)
    assert OFFICIAL["SummaryActivity"].is_valid({"start_date": "2018-05-02T12:15:09Z"})
    # The official LatLng: two numbers, or null; never an empty list.
    assert OFFICIAL["SummaryActivity"].is_valid({"start_latlng": None})
    assert not OFFICIAL["SummaryActivity"].is_valid({"start_latlng": []})


# -- activities ---------------------------------------------------------------------------
def test_activity_list_pages_are_summary_activities(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    """Every activity of athletes of several sizes, with and without `activity:read_all`,
    through pages of several sizes and bounds, is a SummaryActivity."""
    for handle in _athletes(sandbox):
        truth = sandbox.activities(handle.athlete_id)
        read_all = "activity:read_all" in handle.scopes.split(",")
        visible = {a["id"] for a in truth if read_all or not a.get("private")}
        now = int(sandbox.now())
        for params, max_pages in (
            ({"per_page": 200}, None),
            ({}, None),  # Strava's default of 30
            ({"per_page": 1}, 3),
            ({"per_page": 50, "after": 0}, None),  # oldest first
            ({"per_page": 75, "before": now + 1, "after": 0}, None),
        ):
            seen: list[int] = []
            page = 1
            while max_pages is None or page <= max_pages:
                response = client.api(ACTIVITIES, handle.access_token, page=page, **params)
                assert response.status_code == 200, response.text
                items = response.json()
                assert isinstance(items, list)
                where = client.where(response)
                for i, item in enumerate(items):
                    ident = item.get("id") if isinstance(item, dict) else None
                    conformance.check(
                        "SummaryActivity", item, f"GET {ACTIVITIES}", f"{where} [{i}] (id {ident})"
                    )
                    seen.append(ident)
                if len(items) < params.get("per_page", 30):
                    break
                page += 1
            if max_pages is None:
                assert sorted(seen) == sorted(visible), params
            else:
                assert len(seen) == min(max_pages, len(visible))
    assert conformance.validated[f"GET {ACTIVITIES}", "SummaryActivity"] > 1_000
    conformance.assert_conforms()


def test_activity_details_are_detailed_activities(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    """`GET /activities/{id}` of a spread of activities (private, manual, indoor, outdoor...)
    of each athlete is a DetailedActivity."""
    for handle in _athletes(sandbox):
        truth = sandbox.activities(handle.athlete_id)
        read_all = "activity:read_all" in handle.scopes.split(",")
        visible = [a for a in truth if read_all or not a.get("private")]
        stride = max(1, len(visible) // 40)
        for activity in visible[::stride]:
            response = client.api(f"/api/v3/activities/{activity['id']}", handle.access_token)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body.get("id") == activity["id"]
            conformance.check("DetailedActivity", body, f"GET {ACTIVITY}", client.where(response))
    assert conformance.validated[f"GET {ACTIVITY}", "DetailedActivity"] > 80
    conformance.assert_conforms()


# -- the athlete --------------------------------------------------------------------------
def test_athlete_is_detailed_with_profile_read_all_and_summary_without(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    for seed, scopes, schema in (
        (3, "read,activity:read_all,profile:read_all", "DetailedAthlete"),
        (5, "read,profile:read_all", "DetailedAthlete"),
        (7, "read,activity:read_all", "SummaryAthlete"),
        (11, "read", "SummaryAthlete"),
        (13, "activity:read", "SummaryAthlete"),
    ):
        handle = sandbox.add_athlete(n_activities=25, seed=seed, scopes=scopes)
        response = client.api(ATHLETE, handle.access_token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("id") == handle.athlete_id
        conformance.check(schema, body, f"GET {ATHLETE}", f"{client.where(response)} ({scopes})")
    conformance.assert_conforms()


# -- OAuth --------------------------------------------------------------------------------
def test_token_answers_follow_the_authentication_docs(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    """A code exchange answers TokenExchange with a SummaryAthlete, each refresh TokenRefresh;
    `expires_at - expires_in` is the issuing time, and the new access token works."""
    for n, seed, scopes in ATHLETES[:4]:
        handle = sandbox.add_athlete(n, seed=seed, scopes=scopes)
        response = client.token(grant_type="authorization_code", code=handle.authorization_code)
        assert response.status_code == 200, response.text
        body = response.json()
        where = client.where(response)
        conformance.check("TokenExchange", body, f"POST {TOKEN} (code)", where)
        conformance.check(
            "SummaryAthlete", body.get("athlete"), f"POST {TOKEN} (code)", f"{where} athlete"
        )
        assert body["athlete"]["id"] == handle.athlete_id
        assert abs(body["expires_at"] - body["expires_in"] - _date(response)) <= 2
        refresh_token = body["refresh_token"]
        for _ in range(2):  # rotated refresh tokens keep working one after the other
            response = client.token(grant_type="refresh_token", refresh_token=refresh_token)
            assert response.status_code == 200, response.text
            body = response.json()
            conformance.check(
                "TokenRefresh", body, f"POST {TOKEN} (refresh)", client.where(response)
            )
            assert abs(body["expires_at"] - body["expires_in"] - _date(response)) <= 2
            refresh_token = body["refresh_token"]
            assert client.api(ATHLETE, body["access_token"]).status_code == 200
    conformance.assert_conforms()


# -- errors -------------------------------------------------------------------------------
def _fault(
    conformance: Conformance,
    response: httpx.Response,
    status: int,
    endpoint: str,
    error: tuple[str, str, str],
) -> None:
    """A Fault with this status; its first error is (resource, field, code)."""
    where = Client.where(response)
    assert response.status_code == status, f"{where}: {response.text}"
    body = response.json()
    conformance.check("Fault", body, endpoint, where)
    first = (body.get("errors") or [{}])[0]
    assert (first.get("resource"), first.get("field"), first.get("code")) == error, where


def test_error_answers_are_faults(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    def bad(parameter: str) -> tuple[str, str, str]:
        return ("Application", parameter, "invalid")

    reader = sandbox.add_athlete(n_activities=150, seed=17, scopes="read,activity:read")
    no_activity_scope = sandbox.add_athlete(n_activities=5, seed=19, scopes="read")
    private = next(a for a in sandbox.activities(reader.athlete_id) if a.get("private"))
    api = (
        (ATHLETE, "not-a-token", {}, 401, ("Athlete", "access_token", "invalid")),
        (ATHLETE, "", {}, 401, ("Athlete", "access_token", "invalid")),  # no Authorization
        (ACTIVITIES, "not-a-token", {}, 401, ("Athlete", "access_token", "invalid")),
        (
            ACTIVITIES,
            no_activity_scope.access_token,
            {},
            401,
            ("AccessToken", "activity:read_permission", "missing"),
        ),
        (
            "/api/v3/activities/1",
            no_activity_scope.access_token,
            {},
            401,
            ("AccessToken", "activity:read_permission", "missing"),
        ),
        ("/api/v3/no/such/path", reader.access_token, {}, 404, ("resource", "path", "invalid")),
        ("/api/v3/activities/1", reader.access_token, {}, 404, ("Activity", "id", "invalid")),
        (
            f"/api/v3/activities/{private['id']}",  # private, and the token lacks read_all
            reader.access_token,
            {},
            404,
            ("Activity", "id", "invalid"),
        ),
        (ACTIVITIES, reader.access_token, {"per_page": 0}, 400, bad("per_page")),
        (ACTIVITIES, reader.access_token, {"page": "two"}, 400, bad("page")),
        (ACTIVITIES, reader.access_token, {"before": "yesterday"}, 400, bad("before")),
    )
    for path, token, params, status, error in api:
        response = client.api(path, token, **params)
        endpoint = ACTIVITY if path.startswith("/api/v3/activities/") else path
        _fault(conformance, response, status, f"GET {endpoint}", error)
    code_used = client.token(grant_type="authorization_code", code=reader.authorization_code)
    assert code_used.status_code == 200
    oauth = (
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, 400, "RefreshToken"),
        ({"grant_type": "authorization_code", "code": reader.authorization_code}, 400, "code"),
        ({"grant_type": "refresh_token", "client_secret": "wrong"}, 401, "client_secret"),
    )
    for form, status, what in oauth:
        response = client.token(**form)
        if what == "RefreshToken":
            error = ("RefreshToken", "refresh_token", "invalid")
        elif what == "code":  # codes are single use
            error = ("AuthorizationCode", "code", "invalid")
        else:
            error = ("Application", "client_secret", "invalid")
        assert response.headers.get("content-type") == JSON_TYPE
        _fault(conformance, response, status, f"POST {TOKEN}", error)
    assert conformance.validated.total() == len(api) + len(oauth)
    conformance.assert_conforms()


def test_rate_limited_answers_are_faults_with_headers(
    sandbox: StravaSandbox, client: Client, conformance: Conformance
) -> None:
    """Over the read limit: 429 Faults, with the headers showing limits and usage."""
    sandbox.set_clock(MIDDAY + 60)  # well inside a 15-minute window: no reset mid-test
    handle = sandbox.add_athlete(n_activities=10, seed=23)
    sandbox.set_limits(RateLimits(overall_15min=6, overall_daily=50, read_15min=3, read_daily=40))
    sandbox.reset_usage()
    statuses = []
    for path in (ATHLETE, ACTIVITIES, ATHLETE, ACTIVITIES, ATHLETE):
        response = client.api(path, handle.access_token)
        statuses.append(response.status_code)
        if response.status_code == 429:
            _fault(conformance, response, 429, f"GET {path}", RATE_LIMITED)
            assert response.headers["X-ReadRateLimit-Limit"] == "3,40"
            assert response.headers["X-RateLimit-Limit"] == "6,50"
    assert statuses == [200, 200, 200, 429, 429]
    last = client.api(ATHLETE, handle.access_token)
    assert last.headers["X-ReadRateLimit-Usage"] == "6,6"
    assert last.headers["X-RateLimit-Usage"] == "6,6"
    _fault(conformance, last, 429, f"GET {ATHLETE}", RATE_LIMITED)
    conformance.assert_conforms()
