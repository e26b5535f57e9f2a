"""The values read path of lists (``msp.api.values``) answers what the serializer answers.

Every tenant route whose list can take the path is listed twice on the demo estate, once with
``API_VALUES_LISTS`` off (DRF's serializer on model instances) and once on: the bodies must be
equal, key order included. A route that stops taking the path is caught too, so a serializer
change cannot quietly send a list back to the slow path.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers

from msp.api.values import ComputedField, ValuesListModelMixin, values_plan
from operations.compliance.demo import seed_compliance
from operations.incidents.demo import seed_incidents
from operations.inventory.demo import seed_inventory
from operations.inventory.models import CloudAccount, ComputeResource
from tenants.models import Tenant, TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor, shared_rows
from tests.factories import TenantFactory, make_member, make_token

# Lists that must answer from rows (the hot reads); a route here that falls back fails.
MUST_TAKE_THE_PATH = {"sites", "links", "cloud-accounts", "compute", "datasets"}


def _list_routes():
    """(resource, view class) of every ``/api/v1/tenants/{slug}/<resource>/`` list route on
    the values path's mixin."""
    found = {}

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                cls = getattr(entry.callback, "cls", None)
                actions = getattr(entry.callback, "actions", {}) or {}
                route = prefix + str(entry.pattern)
                on_path = cls and issubclass(cls, ValuesListModelMixin)
                if on_path and actions.get("get") == "list" and "(?P<tenant_slug>" in route:
                    resource = route.split(")/", 1)[1].removesuffix("$").removesuffix("/?")
                    found[resource] = cls

    walk(get_resolver().url_patterns)
    return found


ROUTES = _list_routes()


def test_the_hot_inventory_lists_are_on_the_values_path():
    assert set(ROUTES) >= MUST_TAKE_THE_PATH, sorted(ROUTES)
    refused = [
        name for name in MUST_TAKE_THE_PATH if values_plan(ROUTES[name].serializer_class) is None
    ]
    assert refused == []


@pytest.fixture(scope="module")
def demo_rows(django_db_setup, django_db_blocker) -> tuple[int, int, str]:
    """The demo estate of tenant A and its admin's token, made once for the module (the lists
    only read it): (tenant id, admin's id, token)."""

    def make() -> tuple[int, int, str]:
        tenant = TenantFactory(name="Acme Analytics", slug="acme")
        admin = make_member(tenant, TenantRole.ADMIN, username="acme-admin")
        seed_inventory(tenant, profile="finance")
        seed_incidents(tenant)
        seed_compliance(tenant)
        with tenant_scope(tenant.id):
            # A node with neither site, cluster nor account: the null links of every chain.
            ComputeResource.objects.create(tenant=tenant, hostname="bare-01", kind="cpu_node")
        return tenant.pk, admin.pk, make_token(admin)

    yield from shared_rows(django_db_blocker, make)


@pytest.fixture
def tenant_a(demo_rows, db):
    return Tenant.objects.get(pk=demo_rows[0])


@pytest.fixture
def estate(demo_rows, db) -> Actor:
    """Tenant A's admin, on the demo estate."""
    _tenant_id, user_id, token = demo_rows
    return Actor(get_user_model().objects.get(pk=user_id), token)


@pytest.mark.parametrize("resource", sorted(ROUTES))
def test_a_list_on_the_values_path_answers_what_the_serializer_answers(
    estate, tenant_a, settings, resource
):
    url = f"/api/v1/tenants/{tenant_a.slug}/{resource}/?page_size=500"
    settings.API_VALUES_LISTS = False
    expected = estate.client.get(url)
    settings.API_VALUES_LISTS = True
    answered = estate.client.get(url)
    assert expected.status_code == answered.status_code == 200, answered.content[:300]
    assert expected.json()["count"] > 0, f"{resource}: the demo estate has no rows to compare"
    assert list(answered.json()["results"]) == list(expected.json()["results"])
    assert answered.content == expected.content


def test_the_path_refuses_what_needs_model_instances():
    class Method(serializers.ModelSerializer):
        label = serializers.SerializerMethodField()

        class Meta:
            model = CloudAccount
            fields = ["id", "label"]

        def get_label(self, obj):
            return str(obj)

    class Property(serializers.ModelSerializer):
        key = serializers.CharField(source="natural_key_text", read_only=True)

        class Meta:
            model = CloudAccount
            fields = ["id", "key"]

    class Computed(serializers.ModelSerializer):
        key = ComputedField(paths=("provider", "account_id"), function=lambda p, a: f"{p}:{a}")

        class Meta:
            model = CloudAccount
            fields = ["id", "key"]

    assert values_plan(Method) is None
    # A property is not a column: the plan wants an annotation the queryset does not have.
    plan = values_plan(Property)
    assert plan is not None
    assert plan.annotations == {"natural_key_text"}
    assert not plan.applies_to(CloudAccount.objects.unscoped())
    assert values_plan(Computed).annotations == frozenset()
