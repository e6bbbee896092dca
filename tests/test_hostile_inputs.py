"""Every route of both URL confs, with every method it serves, against a table of hostile inputs.

The routes come from Django's URL resolver (``config.urls_public`` and ``config.urls_tenant``),
so a new route is swept without touching this file; a route whose parameters the sample
table cannot fill fails the test instead of being skipped.

Each request goes in signed in (token, session and CSRF token of alice on acme, of the staff
user on the public host), so the hostile part reaches the parsers, the cookies, the headers
and the database instead of stopping at a 401. Promises checked for every answer:

- no 5xx;
- on API routes (``/api/...``, ``/admin/...``; not ``/django-admin/``) the answer is JSON,
  and an error is ``{"error": "..."}``;
- a refused request (4xx) wrote nothing: no row inserted, updated or deleted in any schema
  (PostgreSQL's per-transaction table statistics, which see every table of every schema),
  except the counters of the rate limit and of the sign-in throttle, whose job is to count
  refused requests too.

Not a full cross product: every route meets every hostile input once, the route's methods
taken in turn (inputs that are bodies go to the methods that take one), so every method of
every route is swept too. Each request runs in a savepoint that is rolled back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from tenants.models import Plan, StaffToken

pytestmark = pytest.mark.django_db

CSRF_SECRET = "hostileinputsweepcsrfsecret00001"  # 32 characters: a valid unmasked CSRF secret
BODY_METHODS = ("POST", "PUT", "PATCH")
# Tables whose whole point is to count requests, refused ones included.
COUNTER_TABLES = re.compile(r"ratelimit|signin|throttle|attempt", re.IGNORECASE)


# --- Routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    urlconf: str
    pattern: str  # the full pattern, as the resolver shows it
    path: str  # a concrete path that resolves to it, with existing objects in its parameters
    params: dict[str, str]
    methods: tuple[str, ...]
    callback: Callable

    @property
    def is_api(self) -> bool:
        return self.path in ("/api", "/admin") or self.path.startswith(("/api/", "/admin/"))

    @property
    def tenant(self) -> bool:
        return self.urlconf == settings.ROOT_URLCONF

    def with_params(self, segment: str) -> str:
        """The path with every parameter replaced by ``segment`` (already percent-encoded)."""
        return _fill(self.pattern, dict.fromkeys(self.params, segment))


_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")
_ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def _fill(pattern: str, values: dict[str, str]) -> str:
    path = _REGEX_GROUP.sub(lambda match: values[match.group(1)], pattern)
    path = _ROUTE_PARAM.sub(lambda match: values[match.group(1)], path)
    path = path.replace("^", "").replace("$", "").replace("/?", "")
    return "/" + path


def _param_names(pattern: str) -> list[str]:
    return _REGEX_GROUP.findall(pattern) + _ROUTE_PARAM.findall(pattern)


def _samples(pattern: str) -> dict[str, str]:
    """Existing objects for a route's parameters; a parameter nobody thought of fails loudly."""
    staff = get_user_model().objects.get(username="admin")
    by_model = {
        "tenants/tenant/": "acme",
        "tenants/plan/": Plan.objects.order_by("pk").first().pk,
        "tenants/stafftoken/": str(StaffToken.objects.order_by("pk").first().pk),
        "auth/user/": str(staff.pk),
        "auth/group/": "1",
        # Whether a row exists or not: the sweep looks for 5xx and half-writes.
        "tenants/tenanttombstone/": "1",
        "jobs/job/": "1",
        "procrastinate/procrastinatejob/": "1",
        "/r/": "acme",  # the admin's "view on site" of a tenant (its content type below)
    }
    values = {}
    for name in _param_names(pattern):
        if name == "object_id":
            values[name] = next(value for model, value in by_model.items() if model in pattern)
        elif name in ("id",):  # the admin's password change of a user
            values[name] = str(staff.pk)
        elif name == "tenant_id":
            values[name] = "acme"
        elif name == "user_id":
            values[name] = "2"  # bob, acme's member
        elif name in ("job_id", "key_id"):
            values[name] = "1"  # whether one exists or not: the sweep looks for 5xx and half-writes
        elif name == "content_type_id":
            values[name] = str(ContentType.objects.get_by_natural_key("tenants", "tenant").pk)
        elif name == "app_label":
            values[name] = "tenants"
        elif name == "url":
            values[name] = "nowhere/"
        else:
            raise AssertionError(f"no sample value for the URL parameter {name!r} of {pattern!r}")
    return values


def _methods(callback: Callable) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset's route: the methods its router mapped, and OPTIONS (and HEAD with GET)
        methods = [method.upper() for method in actions]
        return (*methods, "OPTIONS", *(["HEAD"] if "GET" in methods else []))
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        # A function view (the admin's, the tenant's forms): pages take GET and POST.
        return ("GET", "POST")
    served = [method.upper() for method in view_class.http_method_names if hasattr(view_class, method)]
    return tuple(method for method in served if method != "TRACE")


def _leaves(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _leaves(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def all_routes() -> list[Route]:
    routes = []
    for urlconf in (settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF):
        for pattern, leaf in _leaves(get_resolver(urlconf).url_patterns):
            params = _samples(pattern)
            path = _fill(pattern, params)
            # The built path must reach this very route, or the sweep would test another one twice.
            assert resolve(path, urlconf).func is leaf.callback, (pattern, path)
            routes.append(Route(urlconf, pattern, path, params, _methods(leaf.callback), leaf.callback))
    return routes


# --- Requests -------------------------------------------------------------------------------


@dataclass
class Shot:
    """One request, built from a route and its identity, then changed by a hostile input."""

    method: str
    path: str
    host: str
    headers: dict[str, str]
    cookies: dict[str, str]
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def send(self) -> object:
        extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in self.headers.items()}
        extra["HTTP_HOST"] = self.host
        extra["HTTP_COOKIE"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if self.query:
            extra["QUERY_STRING"] = self.query
        extra.update(self.meta)
        client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        content_type = self.content_type or "application/octet-stream"
        return client.generic(self.method, self.path, data=self.body, content_type=content_type, **extra)


@dataclass(frozen=True)
class Identity:
    host: str
    token: str
    session: str


def _session_of(user: object, schema: str, backend: str) -> str:
    client = Client()
    with schema_context(schema):
        client.force_login(user, backend=backend)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _base_shot(route: Route, method: str, identity: Identity) -> Shot:
    headers = {"X-CSRFToken": CSRF_SECRET, "Accept": "application/json" if route.is_api else "text/html"}
    if route.is_api:
        headers["Authorization"] = f"Token {identity.token}"
    shot = Shot(
        method,
        route.path,
        identity.host,
        headers,
        {settings.SESSION_COOKIE_NAME: identity.session, settings.CSRF_COOKIE_NAME: CSRF_SECRET},
    )
    if method in BODY_METHODS:
        # A body that every write of the project refuses, so the hostile part is the only variable.
        if route.is_api:
            shot.body, shot.content_type = b"{}", "application/json"
        else:
            shot.body, shot.content_type = b"", "application/x-www-form-urlencoded"
    return shot


# --- The hostile inputs ----------------------------------------------------------------------

HUGE = 64 * 1024
PLAUSIBLE_KEYS = (
    "id",
    "name",
    "plan",
    "username",
    "password",
    "email",
    "role",
    "display_name",
    "timezone",
    "theme_color",
    "max_users",
    "features",
    "rate_limit_per_minute",
    "admin",
)
FORM_KEYS = (*PLAUSIBLE_KEYS, "action", "_selected_action", "select_across", "q", "password1", "password2")


def _nested(depth: int) -> str:
    return '{"name": ' * depth + "1" + "}" * depth


def _deep_json(route: Route) -> bytes:
    return ("[" * 5000 + "]" * 5000).encode() if route.tenant else _nested(1500).encode()


def _set_header(name: str, value: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.headers[name] = value

    return change


def _set_cookie(name: str, value: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.cookies[name] = value

    return change


def _set_host(value: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.host = value

    return change


def _on_public_host_as(tenant_header: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.host = "localhost"
        shot.headers["X-Tenant-ID"] = tenant_header

    return change


def _query(value: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.query = value

    return change


def _path_params(segment: str) -> Callable[[Shot, Route], None]:
    """Every URL parameter becomes ``segment`` (percent-encoded); a route without any gets it appended."""

    def change(shot: Shot, route: Route) -> None:
        shot.path = route.with_params(segment) if route.params else shot.path.rstrip("/") + "/" + segment

    return change


def _body(content: bytes | Callable[[Route], bytes], content_type: str = "application/json"):
    def change(shot: Shot, route: Route) -> None:
        shot.body = content(route) if callable(content) else content
        shot.content_type = content_type

    return change


def _meta(**values: str) -> Callable[[Shot, Route], None]:
    def change(shot: Shot, route: Route) -> None:
        shot.meta.update(values)

    return change


@dataclass(frozen=True)
class Hostile:
    name: str
    change: Callable[[Shot, Route], None]
    needs_body: bool = False
    browser: bool = False  # asks for HTML: on API routes DRF's browsable API answers, a page by design


def _form(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


HOSTILE_INPUTS = [
    # Headers
    Hostile("host not allowed", _set_host("evil.example.com")),
    Hostile("host empty", _set_host("")),
    Hostile("host with NUL", _set_host("acme\x00.localhost")),
    Hostile("host huge", _set_host("a" * HUGE + ".localhost")),
    Hostile("X-Tenant-ID with NUL", _on_public_host_as("ac\x00me")),
    Hostile("X-Tenant-ID huge", _on_public_host_as("a" * HUGE)),
    Hostile("X-Tenant-ID not a tenant id", _on_public_host_as("../public; DROP SCHEMA acme")),
    Hostile("Authorization with NUL", _set_header("Authorization", "Token abc\x00def")),
    Hostile("Authorization huge", _set_header("Authorization", "Token " + "a" * HUGE)),
    Hostile("Authorization not ASCII", _set_header("Authorization", "Token ÿþé")),
    Hostile("Authorization many parts", _set_header("Authorization", "Token a b c")),
    Hostile("Accept with NUL", _set_header("Accept", "application/json\x00")),
    Hostile("Accept text/html, as a browser", _set_header("Accept", "text/html,*/*;q=0.8"), browser=True),
    Hostile("Accept of nothing known", _set_header("Accept", "application/xml")),
    Hostile("?format=api, the browsable API", _query("format=api"), browser=True),
    Hostile("Content-Type with NUL", _body(b"{}", "application/json\x00")),
    Hostile("Content-Type unknown charset", _body(b'{"name": "x"}', "application/json; charset=nope"), True),
    Hostile("Content-Type utf-32", _body(b'{"name": "x"}', "application/json; charset=utf-32"), True),
    Hostile("Content-Type multipart without boundary", _body(b"--x\r\n\r\n", "multipart/form-data"), True),
    Hostile("Content-Type multipart broken", _body(b"--x\r\nbroken", "multipart/form-data; boundary=x"), True),
    Hostile("Content-Type text/plain", _body(b"name=x", "text/plain"), True),
    Hostile("Content-Length not a number", _meta(CONTENT_LENGTH="abc")),
    Hostile("Content-Length negative", _meta(CONTENT_LENGTH="-1")),
    Hostile("Content-Length huge", _meta(CONTENT_LENGTH="9" * 30)),
    Hostile("X-Forwarded-For with NUL", _set_header("X-Forwarded-For", "1.2.3.4\x00")),
    Hostile("User-Agent huge", _set_header("User-Agent", "a" * HUGE)),
    # Cookies
    Hostile("sessionid with NUL", _set_cookie(settings.SESSION_COOKIE_NAME, "abcdefghijklmnop\x00qrstuvwxyz012345")),
    Hostile("csrftoken with NUL", _set_cookie(settings.CSRF_COOKIE_NAME, "abcdefghijklmnop\x00qrstuvwxyz01234")),
    Hostile("sessionid huge", _set_cookie(settings.SESSION_COOKIE_NAME, "a" * HUGE)),
    Hostile("csrftoken huge", _set_cookie(settings.CSRF_COOKIE_NAME, "a" * HUGE)),
    Hostile("sessionid not ASCII", _set_cookie(settings.SESSION_COOKIE_NAME, "ÿ" * 40)),
    Hostile("cookie header garbage", _set_header("Cookie", '=;;"\x01\x7f; sessionid="\\000"')),
    # Query strings
    Hostile("unknown ?format=", _query("format=xyz")),
    Hostile("?format= of another view", _query("format=openapi")),
    Hostile("more than 1,000 parameters", _query("&".join(f"p{n}=1" for n in range(1200)))),
    Hostile("NUL in the query string", _query("limit=1%00&offset=%00&q=a%00b&plan__id__exact=a%00b&o=%00")),
    Hostile("huge offset and limit", _query(f"offset={10**30}&limit={10**30}")),
    Hostile("invalid UTF-8 in the query string", _query("q=%ff%fe&limit=%c3")),
    Hostile("huge query value", _query("q=" + "a" * HUGE)),
    # Paths
    Hostile("NUL in the path", _path_params("a%00b")),
    Hostile("huge path parameter", _path_params("9" * 5000)),
    Hostile("invalid UTF-8 in the path", _path_params("%FF%FE")),
    # Bodies
    Hostile("JSON nested 1,000+ levels", _body(_deep_json), True),
    Hostile("JSON nested in a value", _body(('{"max_users": ' + "[" * 3000 + "]" * 3000 + "}").encode()), True),
    Hostile("NUL bytes in JSON strings", _body(json.dumps({key: "a\x00b" for key in PLAUSIBLE_KEYS}).encode()), True),
    Hostile("NUL byte in a JSON key", _body(b'{"na\\u0000me": "x"}'), True),
    Hostile("invalid UTF-8 in JSON", _body(b'{"name": "\xff\xfe\xfd"}'), True),
    Hostile("huge numbers", _body(('{"max_users": 1' + "0" * 5000 + ', "name": 1e999}').encode()), True),
    Hostile("huge float values", _body(json.dumps({key: 1e308 for key in PLAUSIBLE_KEYS}).encode()), True),
    Hostile("wrong types", _body(json.dumps({key: [{"a": None}] for key in PLAUSIBLE_KEYS}).encode()), True),
    Hostile("JSON array body", _body(b"[1, 2, 3]"), True),
    Hostile("JSON string body", _body(b'"just a string"'), True),
    Hostile("JSON null body", _body(b"null"), True),
    Hostile("JSON with NaN", _body(b'{"max_users": NaN, "name": Infinity}'), True),
    Hostile("truncated JSON", _body(b'{"name": "x'), True),
    Hostile("body over the size limit", _body(lambda route: b" " * (settings.MAX_REQUEST_BODY_BYTES + 1)), True),
    Hostile(
        "form with NUL bytes",
        _body(_form([(key, "a\x00b") for key in FORM_KEYS]), "application/x-www-form-urlencoded"),
        True,
    ),
    Hostile(
        "form with NUL in names",
        _body(b"na%00me=x&%00=%00&action=suspend&_selected_action=a%00b", "application/x-www-form-urlencoded"),
        True,
    ),
    Hostile(
        "form with invalid UTF-8",
        _body(b"name=%ff%fe&username=%c3&q=%80", "application/x-www-form-urlencoded"),
        True,
    ),
    Hostile(
        "form with more than 1,000 fields",
        _body(_form([(f"f{n}", "1") for n in range(1200)]), "application/x-www-form-urlencoded"),
        True,
    ),
    Hostile(
        "form with huge numbers",
        _body(
            _form([(key, "9" * 5000) for key in ("max_users_override", "rate_limit_override", "max_users", "id")]),
            "application/x-www-form-urlencoded",
        ),
        True,
    ),
]


# --- What the database saw ---------------------------------------------------------------------


def _writes() -> Counter:
    """Rows inserted, updated and deleted so far in this transaction, per table of any schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del "
            "FROM pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
        )
        return Counter(dict(cursor.fetchall()))


def _written(before: Counter, after: Counter) -> list[str]:
    return sorted(table for table in after if after[table] != before[table] and not COUNTER_TABLES.search(table))


# --- The sweep ---------------------------------------------------------------------------------


def _group(route: Route) -> str:
    """Routes served by the same machinery: each hostile input meets every group at least once."""
    if route.path.startswith("/django-admin/"):
        return "django admin"
    if route.is_api:
        return ("tenant" if route.tenant else "public") + " API"
    return ("tenant" if route.tenant else "public") + " pages"


def _plan(routes: list[Route]) -> list[tuple[Route, str, Hostile | None]]:
    """Every hostile input on every group of routes, spread over the group's routes and their methods.

    Within a group the inputs go to the routes in turn, and each route's methods are taken in
    turn too; a route that got fewer inputs than it has methods gets more, so every method of
    every route is swept. Inputs that are bodies go to the methods that take one.
    """
    plan: list[tuple[Route, str, Hostile | None]] = []
    groups: dict[str, list[Route]] = {}
    for route in routes:
        groups.setdefault(_group(route), []).append(route)
    for members in groups.values():
        sent: dict[int, list[str]] = {id(route): [] for route in members}
        turn = 0
        for hostile in HOSTILE_INPUTS:
            takers = [r for r in members if not hostile.needs_body or set(r.methods) & set(BODY_METHODS)]
            if not takers:
                continue
            route = takers[turn % len(takers)]
            turn += 1
            choices = [m for m in route.methods if m in BODY_METHODS] if hostile.needs_body else list(route.methods)
            unused = [method for method in choices if method not in sent[id(route)]]
            method = unused[0] if unused else choices[len(sent[id(route)]) % len(choices)]
            sent[id(route)].append(method)
            plan.append((route, method, hostile))
        for route in members:
            for method in [m for m in route.methods if m not in sent[id(route)]]:
                fits = [h for h in HOSTILE_INPUTS if method in BODY_METHODS or not h.needs_body]
                plan.append((route, method, fits[turn % len(fits)]))
                turn += 1
    return plan


def _problems(route: Route, method: str, hostile: Hostile | None, response, written: list[str]) -> list[str]:
    problems = []
    status = response.status_code
    if status >= 500:
        problems.append(f"{status}")
    body = b"" if method == "HEAD" else b"".join(response) if response.streaming else response.content
    documentation = route.path.startswith(("/api/schema", "/api/docs")) and status < 400
    browsable = hostile is not None and hostile.browser and response.get("Content-Type", "").startswith("text/html")
    if route.is_api and body and not documentation and not browsable:
        if not response.get("Content-Type", "").startswith("application/json"):
            problems.append(f"{status} not JSON ({response.get('Content-Type')}): {body[:80]!r}")
        elif status >= 400:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if not (isinstance(payload, dict) and isinstance(payload.get("error"), str)):
                problems.append(f"{status} error without 'error': {body[:80]!r}")
    if status >= 400 and written:
        problems.append(f"{status} but wrote to {', '.join(written)}")
    return problems


def test_the_sweep_covers_both_url_confs_with_every_method():
    routes = all_routes()
    urlconfs = {route.urlconf for route in routes}
    assert urlconfs == {settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF}
    paths = {route.path for route in routes}
    assert {"/admin/tenants", "/api/users", "/django-admin/login/", "/login", "/api-auth/login/"} <= paths
    plan = _plan(routes)
    for route in routes:
        assert {method for r, method, _ in plan if r is route} == set(route.methods), route.pattern
    for group in {_group(route) for route in routes}:
        takes_bodies = any(set(route.methods) & set(BODY_METHODS) for route in routes if _group(route) == group)
        expected = {hostile.name for hostile in HOSTILE_INPUTS if takes_bodies or not hostile.needs_body}
        assert {hostile.name for route, _, hostile in plan if _group(route) == group} == expected, group


def test_hostile_inputs_on_every_route(keys):
    staff = get_user_model().objects.get(username="admin")
    with schema_context("acme"):
        alice = TenantUser.objects.get(username="alice")
    identities = {
        settings.PUBLIC_SCHEMA_URLCONF: Identity(
            "localhost", keys.admin, _session_of(staff, "public", "accounts.backends.PlatformStaffBackend")
        ),
        settings.ROOT_URLCONF: Identity(
            "acme.localhost", keys.alice, _session_of(alice, "acme", "accounts.backends.TenantUserBackend")
        ),
    }
    routes = all_routes()
    plan = _plan(routes)
    failures: list[str] = []
    statuses: Counter = Counter()
    plain = {}
    for route in routes:
        if route.path in ("/api/me", "/", "/admin/tenants", "/django-admin/"):
            plan.insert(0, (route, "GET", None))
    for route, method, hostile in plan:
        shot = _base_shot(route, method, identities[route.urlconf])
        if hostile is not None:
            hostile.change(shot, route)
        with transaction.atomic():
            before = _writes()
            response = shot.send()
            written = _written(before, _writes())
            transaction.set_rollback(True)
        connection.set_schema_to_public()
        statuses[response.status_code // 100 * 100] += 1
        if hostile is None:
            plain[(route.tenant, route.path, method)] = response.status_code
        for problem in _problems(route, method, hostile, response, written):
            failures.append(f"{method} {route.path} [{hostile.name if hostile else 'plain'}]: {problem}")
    print(f"\nhostile sweep: {len(plan)} requests over {len(routes)} routes; by status class {dict(statuses)}")
    # The identities really sign in: the plain requests get in.
    assert plain[(True, "/api/me", "GET")] == 200
    assert plain[(True, "/", "GET")] == 200  # alice's dashboard
    assert plain[(False, "/admin/tenants", "GET")] == 200
    assert plain[(False, "/django-admin/", "GET")] == 200
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:80])
