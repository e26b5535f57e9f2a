"""Every route under ``/api/v1/`` outside ``/api/v1/tenants/{slug}/`` honours a token's scopes
and its tenant binding: an under-scoped token is refused, a tenant-bound token sees only its
tenant or is refused.

The routes come from the URL resolver: a route (or a method of one) without a probe here fails
``test_every_msp_wide_route_has_a_probe``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.urls import URLPattern

from operations.compliance.models import Framework
from operations.events.services import endpoint_create, endpoint_send_test
from operations.readiness.catalogue import readiness_frameworks_load
from operations.readiness.selectors import readiness_framework_current
from tenants.audit import audit_record
from tenants.models import AuditAction, Tenant
from tests.conftest import Actor
from tests.factories import make_token
from tests.isolation import MISSING_ID
from tests.routes import url_routes

pytestmark = pytest.mark.django_db

# What a token bound to tenant A gets on a route:
OWN_TENANT_ONLY = "own tenant only"  # 200, and the data names tenant A alone
FOREIGN_NOT_FOUND = "foreign not found"  # tenant B's object is the same 404 as a missing one
REFUSED = "refused"  # 403: the action is MSP-wide
CATALOGUE = "catalogue"  # 200, the same bytes as an unbound token: no tenant data


@dataclass(frozen=True)
class Probe:
    path: str  # "{tenant}", "{event}" and "{framework}" are filled per tenant
    bound: str
    ok_status: int = 200
    body: dict | None = None
    tenants_shown: Callable[[dict], set] | None = None


_TENANT_BODY = {"name": "Acme Renamed", "industry": "Retail", "region": "eu-west"}

PROBES: dict[tuple[str, str], Probe] = {
    ("me", "get"): Probe(
        "/api/v1/me/",
        OWN_TENANT_ONLY,
        tenants_shown=lambda body: {row["slug"] for row in body["tenants"]},
    ),
    ("tenant-list", "get"): Probe(
        "/api/v1/tenants/",
        OWN_TENANT_ONLY,
        tenants_shown=lambda body: {row["slug"] for row in body["results"]},
    ),
    ("tenant-list", "post"): Probe(
        "/api/v1/tenants/", REFUSED, 201, body={"name": "Cobalt Care", "slug": "cobalt"}
    ),
    ("tenant-detail", "get"): Probe("/api/v1/tenants/{tenant}/", FOREIGN_NOT_FOUND),
    ("tenant-detail", "put"): Probe(
        "/api/v1/tenants/{tenant}/", FOREIGN_NOT_FOUND, body=_TENANT_BODY
    ),
    ("tenant-detail", "patch"): Probe(
        "/api/v1/tenants/{tenant}/", FOREIGN_NOT_FOUND, body={"name": "Renamed"}
    ),
    ("tenant-transition", "post"): Probe(
        "/api/v1/tenants/{tenant}/transition/", FOREIGN_NOT_FOUND, body={"status": "onboarding"}
    ),
    ("audit-list", "get"): Probe(
        "/api/v1/audit/",
        OWN_TENANT_ONLY,
        tenants_shown=lambda body: {row["tenant"] for row in body["results"]},
    ),
    ("audit-detail", "get"): Probe("/api/v1/audit/{event}/", FOREIGN_NOT_FOUND),
    ("incident-fleet-metrics", "get"): Probe(
        "/api/v1/incidents/metrics",
        OWN_TENANT_ONLY,
        tenants_shown=lambda body: {row["tenant"]["slug"] for row in body["results"]},
    ),
    ("alert-rule-defaults", "get"): Probe("/api/v1/alert-rules/defaults", CATALOGUE),
    ("readiness-pipeline", "get"): Probe(
        "/api/v1/readiness/pipeline",
        OWN_TENANT_ONLY,
        tenants_shown=lambda body: (
            {row["slug"] for row in body["tenants"]}
            | {row["tenant"]["slug"] for row in body["results"]}
        ),
    ),
    ("compliance-check-catalogue", "get"): Probe("/api/v1/compliance/checks/", CATALOGUE),
    ("compliance-framework-list", "get"): Probe("/api/v1/compliance/frameworks/", CATALOGUE),
    ("compliance-framework-detail", "get"): Probe(
        "/api/v1/compliance/frameworks/{framework}/", CATALOGUE
    ),
    ("readiness-framework-list", "get"): Probe("/api/v1/readiness/frameworks/", CATALOGUE),
    ("readiness-framework-detail", "get"): Probe(
        "/api/v1/readiness/frameworks/{readiness_framework}/", CATALOGUE
    ),
    ("event-catalogue", "get"): Probe("/api/v1/events/catalogue/", CATALOGUE),
    ("oncall", "get"): Probe("/api/v1/oncall/", REFUSED),
    # MSP-wide webhooks act on the MSP, not on a tenant: a bound token is refused them all.
    ("msp-webhook-list", "get"): Probe("/api/v1/webhooks/", REFUSED),
    ("msp-webhook-list", "post"): Probe(
        "/api/v1/webhooks/", REFUSED, 201, body={"url": "http://127.0.0.1:9/psa"}
    ),
    ("msp-webhook-detail", "get"): Probe("/api/v1/webhooks/{webhook}/", REFUSED),
    ("msp-webhook-detail", "put"): Probe(
        "/api/v1/webhooks/{webhook}/", REFUSED, body={"url": "http://127.0.0.1:9/psa2"}
    ),
    ("msp-webhook-detail", "patch"): Probe(
        "/api/v1/webhooks/{webhook}/", REFUSED, body={"description": "PSA"}
    ),
    ("msp-webhook-detail", "delete"): Probe("/api/v1/webhooks/{webhook}/", REFUSED, 204),
    ("msp-webhook-rotate-secret", "post"): Probe(
        "/api/v1/webhooks/{webhook}/rotate-secret/", REFUSED
    ),
    ("msp-webhook-send-test", "post"): Probe("/api/v1/webhooks/{webhook}/send-test/", REFUSED, 202),
    ("msp-webhook-redeliver-failed", "post"): Probe(
        "/api/v1/webhooks/{webhook}/redeliver-failed/", REFUSED
    ),
    ("msp-webhook-delivery-list", "get"): Probe("/api/v1/webhook-deliveries/", REFUSED),
    ("msp-webhook-delivery-detail", "get"): Probe(
        "/api/v1/webhook-deliveries/{delivery}/", REFUSED
    ),
    ("msp-webhook-delivery-redeliver", "post"): Probe(
        "/api/v1/webhook-deliveries/{delivery}/redeliver/", REFUSED
    ),
}


def _methods(pattern: URLPattern) -> list[str]:
    # HEAD and OPTIONS follow GET and the route; DRF adds "head" to a viewset's actions once
    # it has served a request, so leave it out of both kinds of view.
    view = getattr(pattern.callback, "cls", None) or pattern.callback.view_class
    actions = getattr(pattern.callback, "actions", None) or {
        method: method for method in view.http_method_names if hasattr(view, method)
    }
    return sorted(set(actions) - {"head", "options"})


def msp_wide_routes() -> list[tuple[str, str, str]]:
    """(route, url name, method) for every API route outside a tenant's prefix."""
    return [
        (route, pattern.name, method)
        for route, pattern in url_routes()
        if route.startswith("api/v1/") and "tenant_slug" not in route
        for method in _methods(pattern)
    ]


def test_every_msp_wide_route_has_a_probe():
    found = {(name, method) for _route, name, method in msp_wide_routes()}
    assert ("audit-list", "get") in found  # the walk itself works
    missing = sorted(found - set(PROBES), key=str)
    assert missing == [], f"MSP-wide routes without a boundary probe below: {missing}"
    assert set(PROBES) - found == set(), "probes for routes that no longer exist"


@pytest.fixture
def world(tenant_a, tenant_b, msp_admin, settings):
    """Audit events in both tenants and one MSP-wide; ids to fill the probes' paths."""
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    with transaction.atomic():
        webhook, _secret = endpoint_create(tenant=None, url="http://127.0.0.1:9/psa")
        delivery = endpoint_send_test(tenant=None, endpoint=webhook)
    msp = {"webhook": webhook.pk, "delivery": delivery.pk}
    own = audit_record(tenant=tenant_a, action=AuditAction.UPDATE, instance=tenant_a)
    foreign = audit_record(tenant=tenant_b, action=AuditAction.UPDATE, instance=tenant_b)
    audit_record(tenant=None, action=AuditAction.UPDATE, instance=msp_admin.user)
    framework = Framework.objects.order_by("pk").first()
    assert framework is not None, "the frameworks migration loads the catalogue"
    readiness_frameworks_load()  # a transactional test may have flushed the migration's row
    catalogues = {
        "framework": framework.pk,
        "readiness_framework": readiness_framework_current().pk,
    }
    return {
        "own": {"tenant": tenant_a.slug, "event": own.pk, **catalogues, **msp},
        "foreign": {"tenant": tenant_b.slug, "event": foreign.pk, **catalogues, **msp},
        "missing": {"tenant": "no-such-tenant", "event": MISSING_ID, **catalogues, **msp},
    }


def _call(actor: Actor, method: str, probe: Probe, ids: dict):
    return getattr(actor.client, method)(probe.path.format(**ids), probe.body)


def _tenant_rows() -> list[dict]:
    return list(Tenant.objects.order_by("pk").values())


@pytest.mark.parametrize(("name", "method"), sorted(PROBES, key=str))
def test_an_under_scoped_token_is_refused(name, method, msp_admin, world):
    probe = PROBES[name, method]
    needed = "read" if method == "get" else "write"
    lacking = [scope for scope in ("read", "write", "ingest") if scope != needed]
    under_scoped = Actor(msp_admin.user, make_token(msp_admin.user, scopes=lacking))
    before = _tenant_rows()

    response = _call(under_scoped, method, probe, world["own"])

    assert response.status_code == 403, response.content
    assert response.json()["error"]["message"] == f"This API token lacks the '{needed}' scope."
    assert _tenant_rows() == before
    # The same call with the scope is served: the refusal is the scope's, not the route's.
    assert _call(msp_admin, method, probe, world["own"]).status_code == probe.ok_status


@pytest.mark.parametrize(("name", "method"), sorted(PROBES, key=str))
def test_a_tenant_bound_token_reaches_its_tenant_only(name, method, msp_admin, tenant_a, world):
    probe = PROBES[name, method]
    bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
    before = _tenant_rows()

    if probe.bound == OWN_TENANT_ONLY:
        unbound_sees = probe.tenants_shown(_call(msp_admin, method, probe, world["own"]).json())
        assert {"acme", "borealis"} <= unbound_sees  # there is something to hide
        response = _call(bound, method, probe, world["own"])
        assert response.status_code == 200, response.content
        assert probe.tenants_shown(response.json()) == {"acme"}

    elif probe.bound == FOREIGN_NOT_FOUND:
        foreign = _call(bound, method, probe, world["foreign"])
        missing = _call(bound, method, probe, world["missing"])
        assert foreign.status_code == missing.status_code == 404, foreign.content
        assert foreign.content == missing.content
        assert _tenant_rows() == before
        assert _call(bound, method, probe, world["own"]).status_code == probe.ok_status

    elif probe.bound == REFUSED:
        response = _call(bound, method, probe, world["own"])
        assert response.status_code == 403, response.content
        assert "bound to one tenant" in response.json()["error"]["message"]
        assert _tenant_rows() == before

    else:
        assert probe.bound == CATALOGUE
        response = _call(bound, method, probe, world["own"])
        assert response.status_code == 200, response.content
        assert response.content == _call(msp_admin, method, probe, world["own"]).content
