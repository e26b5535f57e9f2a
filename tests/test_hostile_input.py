"""Hostile input on every API route that takes a body: always a clean 4xx, never a 500.

The routes are enumerated from the URL resolver (every DRF view answering POST, PUT or PATCH),
so a new route is covered without being listed. Each gets, from a tenant admin and from an MSP
admin: a body nested 5,000 deep, an empty object, a lone UTF-16 surrogate in every field its
request schema names (arrays and objects included), and ``1e400`` in every such field. Detail
routes get a real object of the tenant, made by the route's isolation test class, so the body
is really read.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest
from drf_spectacular.generators import SchemaGenerator

import tests
from tenants.models import MspRole, TenantRole
from tests.conftest import Actor, shared_rows
from tests.factories import TenantFactory, make_member, make_staff, make_token
from tests.isolation import TenantIsolationTests
from tests.routes import url_routes

WRITE_METHODS = ("post", "put", "patch")
NESTED = "[" * 5000 + "]" * 5000
SURROGATE = '"\\ud800"'  # JSON text for a lone surrogate, as a hostile client sends it
HUGE = "1e400"  # parses to float("inf") with Python's json


def _template(route: str) -> str:
    """A resolver route (``…/(?P<pk>[^/.]+)/?$``) as a URL template (``…/{pk}/``)."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    route = route.replace("^", "").replace("$", "").replace("/?", "/")
    return "/" + route.rstrip("/") + "/"


def write_routes() -> list[tuple[str, str]]:
    """(method, URL template) of every DRF route that takes a body."""
    found = set()
    for route, pattern in url_routes():
        view = getattr(pattern.callback, "cls", None)
        if view is None or "(?P<format>" in route or not route.startswith("api/"):
            continue
        actions = getattr(pattern.callback, "actions", None)
        methods = (
            [m for m in actions if m in WRITE_METHODS]
            if actions
            else [m for m in WRITE_METHODS if hasattr(view, m)]
        )
        found.update((method, _template(route)) for method in methods)
    return sorted(found)


ROUTES = write_routes()


def _isolation_classes_by_prefix() -> dict[str, type[TenantIsolationTests]]:
    """``/api/v1/tenants/{tenant_slug}/incidents/`` → an isolation class that makes such objects."""
    by_prefix = {}
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, TenantIsolationTests)
                and value is not TenantIsolationTests
                and value.make_object is not TenantIsolationTests.make_object
            ):
                prefix = value().url("{tenant_slug}")
                by_prefix.setdefault(prefix, value)
    return by_prefix


@pytest.fixture(scope="module")
def request_fields() -> dict[tuple[str, str], dict]:
    """(method, URL template) → the JSON properties of its request body, from the schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    fields = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema", {})
            if "$ref" in body:
                body = components[body["$ref"].rsplit("/", 1)[1]]
            fields[(method, path)] = body.get("properties", {})
    return fields


def _schema_path(template: str) -> str:
    return template.replace("{pk}", "{id}")


def _value(prop: dict, scalar: str) -> str:
    kind = prop.get("type")
    if kind == "array":
        return f"[{scalar}]"
    if kind == "object":
        return f'{{"key": {scalar}}}'
    return scalar


def hostile_body(properties: dict, scalar: str) -> str:
    """Every field of the request set to ``scalar`` (JSON text), arrays and objects holding it."""
    names = list(properties) or ["name"]
    return (
        "{"
        + ", ".join(f"{json.dumps(n)}: {_value(properties.get(n, {}), scalar)}" for n in names)
        + "}"
    )


def _msp_wide_objects() -> dict:
    """MSP-wide detail routes' prefixes → a maker of one object (no isolation class there)."""
    from tests.factories import make_webhook_delivery, make_webhook_endpoint

    return {
        "/api/v1/webhooks/": make_webhook_endpoint,
        "/api/v1/webhook-deliveries/": make_webhook_delivery,
    }


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """Tenant A and the two actors' users and tokens, made once for the module (each route's
    test undoes only what its own requests changed), and the isolation classes by prefix."""

    def make():
        tenant_a = TenantFactory(name="Acme Analytics", slug="acme")
        admin = make_member(tenant_a, TenantRole.ADMIN, username="acme-admin")
        staff = make_staff(role=MspRole.ADMIN, username="msp-admin")
        return {
            "tenant_a": tenant_a,
            "admin_a": (admin, make_token(admin)),
            "msp_admin": (staff, make_token(staff)),
            "classes": _isolation_classes_by_prefix(),
        }

    yield from shared_rows(django_db_blocker, make)


@pytest.fixture
def tenant_a(db, shared):
    return shared["tenant_a"]


@pytest.fixture
def admin_a(db, shared):
    return Actor(*shared["admin_a"])  # a fresh client each test


@pytest.fixture
def msp_admin(db, shared):
    return Actor(*shared["msp_admin"])


@pytest.fixture
def objects_of(tenant_a, shared):
    """URL template → a URL of a real object of tenant A (made on first use)."""
    classes = shared["classes"]
    made: dict[str, str] = {}

    def url_for(template: str) -> str:
        if template not in made:
            url = template.replace("{tenant_slug}", tenant_a.slug).replace("{slug}", tenant_a.slug)
            if "{pk}" in template:
                prefix = template.split("{pk}")[0]
                if prefix in classes:
                    made_object = classes[prefix]().make_object(tenant_a)
                else:
                    made_object = _msp_wide_objects()[prefix]()
                url = url.replace("{pk}", str(made_object.pk))
            made[template] = url
        return made[template]

    return url_for


def problem_of(response) -> str | None:
    """Why the response is not a clean answer (None when it is)."""
    if response.status_code >= 500:
        return f"{response.status_code} {response.content[:200]!r}"
    if response.status_code < 400:
        return None
    try:
        # The error body is UTF-8 JSON: nothing unencodable is echoed.
        error = json.loads(response.content.decode("utf-8"))["error"]
        assert error["status"] == response.status_code
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)
        for name, messages in error.get("fields", {}).items():
            assert isinstance(name, str)
            assert all(isinstance(message, str) for message in messages)
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        return f"not the error body ({exc!r}): {response.content[:200]!r}"
    return None


def send(actor, method: str, url: str, body: str):
    actor.client.raise_request_exception = False  # an unhandled error must show as its 500
    return getattr(actor.client, method)(url, data=body, content_type="application/json")


def test_the_walk_finds_the_write_routes():
    templates = {template for _method, template in ROUTES}
    assert len(ROUTES) >= 50
    assert "/api/v1/tenants/{tenant_slug}/incidents/" in templates
    assert "/api/v1/tenants/{tenant_slug}/inventory/import/" in templates
    assert "/api/v1/tenants/{tenant_slug}/members/{pk}/" in templates


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_hostile_bodies_get_a_clean_4xx(
    method, template, request_fields, objects_of, admin_a, msp_admin
):
    properties = request_fields.get((method, _schema_path(template)), {})
    url = objects_of(template)
    problems = []
    for actor in (admin_a, msp_admin):
        bodies = [("nested", NESTED), ("empty object", "{}")] + [
            (label, hostile_body(properties, scalar))
            for label, scalar in (("surrogate", SURROGATE), ("1e400", HUGE))
        ]
        for label, body in bodies:
            problem = problem_of(send(actor, method, url, body))
            if problem:
                problems.append(f"{actor.user.username} {label}: {problem}")
    assert problems == [], f"{method.upper()} {url}"
