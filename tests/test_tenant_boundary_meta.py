"""Meta-tests: the tenant boundary cannot be forgotten by a new model or a new route."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from django.apps import apps
from django.db import connection

import tests
from tenants.api.base import MspWideMixin, TenantScopedMixin
from tenants.models import Tenant
from tenants.scoping import TenantOwnedModel, TenantScopedManager
from tests.conftest import requires_postgres
from tests.isolation import TenantIsolationTests, TenantSingletonIsolationTests
from tests.routes import url_routes

# Models that carry a tenant but *are* the boundary: who may reach which tenant is decided by
# reading them, before any tenant scope exists. Their routes still go through the scoped base.
BOUNDARY_MODELS = {
    "tenants.ServicePlan": "the tenant's own contract, one-to-one with the tenant row",
    "tenants.Membership": "read to resolve a client user's tenant",
    "tenants.StaffAssignment": "read to resolve a staff member's tenants",
    "tenants.ApiToken": "read to authenticate, before the tenant is known",
    "tenants.AuditEvent": "append-only, MSP-wide events have no tenant",
}


def _tenant_bound_models():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Tenant:
                yield model
                break


def test_every_tenant_bound_model_is_tenant_owned_or_a_declared_boundary_model():
    offenders = [
        model._meta.label
        for model in _tenant_bound_models()
        if not issubclass(model, TenantOwnedModel) and model._meta.label not in BOUNDARY_MODELS
    ]
    assert offenders == [], f"tenant-bound models outside the boundary: {offenders}"


def test_every_tenant_owned_model_has_the_fail_closed_default_manager():
    owned = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    assert owned, "no tenant-owned models found"
    offenders = [
        m._meta.label for m in owned if not isinstance(m._default_manager, TenantScopedManager)
    ]
    assert offenders == []


def _api_routes():
    for route, pattern in url_routes():
        if route.startswith("api/v1/"):
            view_class = getattr(pattern.callback, "cls", None) or getattr(
                pattern.callback, "view_class", None
            )
            yield route, view_class


def _tenant_routes():
    """Routes under /api/v1/tenants/{slug}/… (the tenant resource itself is MSP-wide)."""
    return [(route, view) for route, view in _api_routes() if "tenant_slug" in route]


def _msp_wide_routes():
    return [(route, view) for route, view in _api_routes() if "tenant_slug" not in route]


def _not_on(base: type, routes) -> list:
    return [
        (route, getattr(view, "__name__", view))
        for route, view in routes
        if view is None or not issubclass(view, base)
    ]


def test_every_tenant_route_is_served_by_the_scoped_base():
    routes = _tenant_routes()
    assert routes
    offenders = _not_on(TenantScopedMixin, routes)
    assert offenders == [], f"tenant routes not served by TenantScopedMixin: {offenders}"


def test_every_other_api_route_is_served_by_the_msp_wide_base():
    # Outside a tenant's prefix, the token's scopes and tenant binding still apply; the
    # per-route proofs are in tests/test_msp_wide_boundary.py.
    routes = _msp_wide_routes()
    assert any(route.startswith("api/v1/audit") for route, _view in routes)
    offenders = _not_on(MspWideMixin, routes)
    assert offenders == [], f"API routes on neither base: {offenders}"


def _isolation_test_classes():
    for module_info in pkgutil.walk_packages(tests.__path__, "tests."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, (TenantIsolationTests, TenantSingletonIsolationTests))
                and value not in (TenantIsolationTests, TenantSingletonIsolationTests)
            ):
                yield value


_RESOURCE = re.compile(r"api/v1/tenants/(?:\(\?P<tenant_slug>[^)]*\)|<slug:tenant_slug>)/([-\w]+)")


def test_every_scoped_resource_route_has_an_isolation_test_class():
    covered = {cls.resource for cls in _isolation_test_classes()}
    resources = set()
    for route, view in _tenant_routes():
        if view is not None and issubclass(view, TenantScopedMixin):
            match = _RESOURCE.match(route)
            assert match, f"unexpected tenant route shape: {route}"
            resources.add(match.group(1))
    assert resources
    assert resources - covered == set(), "tenant routes without an isolation test class"


def test_scoped_views_refuse_to_override_the_scoping():
    from django.core.exceptions import ImproperlyConfigured

    from tenants.api.base import TenantScopedViewSet

    with pytest.raises(ImproperlyConfigured, match="get_queryset"):

        class Leaky(TenantScopedViewSet):
            def get_queryset(self):
                return []

    class Sneaky:
        def get_object(self):
            return None

    with pytest.raises(ImproperlyConfigured, match="get_object"):

        class LeakyThroughMixin(Sneaky, TenantScopedViewSet):
            pass


def test_msp_wide_views_refuse_to_override_the_token_checks():
    from django.core.exceptions import ImproperlyConfigured

    from tenants.api.base import MspWideAPIView, MspWideViewSet

    with pytest.raises(ImproperlyConfigured, match="initial"):

        class Careless(MspWideViewSet):
            def initial(self, request, *args, **kwargs):
                pass

    class Lenient:
        def check_token(self, request):
            return None

    with pytest.raises(ImproperlyConfigured, match="check_token"):

        class LenientThroughMixin(Lenient, MspWideAPIView):
            pass


@requires_postgres
@pytest.mark.django_db
def test_every_tenant_owned_table_has_forced_row_level_security():
    owned = [m._meta.db_table for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
            "AND relrowsecurity AND relforcerowsecurity "
            "AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = pg_class.oid)",
            [owned],
        )
        protected = {row[0] for row in cursor.fetchall()}
        # A view counts when it runs as the caller (security_invoker) and every table it reads
        # is protected itself: their row-level security applies underneath.
        cursor.execute(
            "SELECT v.relname FROM pg_class v WHERE v.relname = ANY(%s) AND v.relkind = 'v' "
            "AND 'security_invoker=true' = ANY(v.reloptions) "
            "AND NOT EXISTS ("
            "SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass "
            "AND d.objid = r.oid JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE r.ev_class = v.oid AND t.oid <> v.oid AND t.relkind IN ('r', 'p') "
            "AND NOT (t.relrowsecurity AND t.relforcerowsecurity "
            "AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = t.oid)))",
            [owned],
        )
        protected |= {row[0] for row in cursor.fetchall()}
    assert set(owned) - protected == set()
