"""The isolation harness: every tenant-scoped endpoint's tests inherit ``TenantIsolationTests``.

A subclass declares the route and how to make one object in a tenant; the mixin proves that
tenant A's caller never sees, changes, deletes or acts on tenant B's objects, that a foreign
object and a missing one give byte-identical 404s, and that creates land in the URL's tenant.
The meta-test in ``tests/test_tenant_boundary_meta.py`` fails when a tenant route has no such
test class.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.db import models

from tenants.scoping import TenantOwnedModel, tenant_scope

MISSING_ID = 987654321


class TenantIsolationTests:
    #: Route name after the tenant, e.g. "members" for /api/v1/tenants/{slug}/members/
    resource: str
    #: Model behind the route.
    model: type[models.Model]
    #: Fixture name of the caller in tenant A (an ``Actor`` with a token).
    actor_fixture = "admin_a"
    #: Which generic operations the route supports.
    can_update = True
    can_delete = True
    can_create = True
    #: Detail actions (POST) to prove 404 on, e.g. ["revoke"].
    detail_actions: tuple[str, ...] = ()
    #: Body for a PATCH that would be valid on an own object.
    update_payload: dict = {}
    #: The list answers ``?format=csv`` (``msp.api.csv_download``): prove every row is the
    #: URL tenant's, whatever the page size, and that a foreign tenant's CSV is the same 404.
    csv_list = False
    #: Who downloads the CSV when not ``actor_fixture`` (the audit log's is for MSP staff).
    csv_actor_fixture: str | None = None

    def csv_key(self, obj) -> str:
        """The first CSV column's value for ``obj`` (its id unless the route says otherwise)."""
        return str(obj.pk)

    # --- to implement -------------------------------------------------------------------------
    def make_object(self, tenant) -> models.Model:
        raise NotImplementedError

    def create_payload(self, tenant) -> dict:
        raise NotImplementedError

    # --- plumbing -----------------------------------------------------------------------------
    def url(self, tenant_slug: str, pk=None, action: str | None = None) -> str:
        url = f"/api/v1/tenants/{tenant_slug}/{self.resource}/"
        if pk is not None:
            url += f"{pk}/"
        if action:
            url += f"{action}/"
        return url

    @pytest.fixture
    def caller(self, request):
        return request.getfixturevalue(self.actor_fixture)

    @pytest.fixture
    def objects(self, tenant_a, tenant_b):
        own = self.make_object(tenant_a)
        foreign = self.make_object(tenant_b)
        return own, foreign

    def rows_of(self, tenant) -> set:
        manager = self.model.objects
        if issubclass(self.model, TenantOwnedModel):
            with tenant_scope(tenant.id):
                return set(manager.values_list("pk", flat=True))
        return set(manager.filter(tenant=tenant).values_list("pk", flat=True))

    def snapshot(self, obj) -> dict:
        if issubclass(self.model, TenantOwnedModel):
            with tenant_scope(obj.tenant_id):
                fresh = self.model.objects.filter(pk=obj.pk).values().first()
        else:
            fresh = self.model._default_manager.filter(pk=obj.pk).values().first()
        return fresh

    def not_found_body(self, caller, tenant_a) -> bytes:
        response = caller.client.get(self.url(tenant_a.slug, MISSING_ID))
        assert response.status_code == 404
        return response.content

    # --- the proofs -----------------------------------------------------------------------------
    def test_list_never_shows_foreign_rows(self, caller, objects, tenant_a):
        own, foreign = objects
        response = caller.client.get(self.url(tenant_a.slug), {"page_size": 500})
        assert response.status_code == 200, response.content
        ids = {row["id"] for row in response.json()["results"]}
        assert own.pk in ids
        assert foreign.pk not in ids
        assert ids <= self.rows_of(tenant_a)

    def test_csv_list_never_shows_foreign_rows(self, request, objects, tenant_a, tenant_b):
        if not self.csv_list:
            pytest.skip("route answers no CSV")
        caller = request.getfixturevalue(self.csv_actor_fixture or self.actor_fixture)
        own, foreign = objects
        response = caller.client.get(self.url(tenant_a.slug), {"format": "csv", "page_size": 1})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
        keys = {row[0] for row in rows[1:]}
        assert self.csv_key(own) in keys
        assert self.csv_key(foreign) not in keys
        assert len(rows) - 1 == len(self.rows_of(tenant_a))  # every page, this tenant's only
        foreign_csv = caller.client.get(self.url(tenant_b.slug), {"format": "csv"})
        missing_csv = caller.client.get(self.url("no-such-tenant"), {"format": "csv"})
        assert foreign_csv.status_code == missing_csv.status_code == 404
        assert foreign_csv.content == missing_csv.content == self.not_found_body(caller, tenant_a)

    def test_foreign_detail_is_the_same_404_as_missing(self, caller, objects, tenant_a):
        _own, foreign = objects
        response = caller.client.get(self.url(tenant_a.slug, foreign.pk))
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)

    def test_other_tenants_url_is_the_same_404_as_a_missing_tenant(
        self, caller, objects, tenant_a, tenant_b
    ):
        _own, foreign = objects
        foreign_tenant = caller.client.get(self.url(tenant_b.slug))
        missing_tenant = caller.client.get(self.url("no-such-tenant"))
        foreign_object = caller.client.get(self.url(tenant_b.slug, foreign.pk))
        assert foreign_tenant.status_code == missing_tenant.status_code == 404
        assert foreign_tenant.content == missing_tenant.content == foreign_object.content
        assert foreign_tenant.content == self.not_found_body(caller, tenant_a)

    def test_foreign_update_is_404_and_changes_nothing(self, caller, objects, tenant_a):
        if not self.can_update:
            pytest.skip("route has no update")
        _own, foreign = objects
        before = self.snapshot(foreign)
        response = caller.client.patch(self.url(tenant_a.slug, foreign.pk), self.update_payload)
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        assert self.snapshot(foreign) == before

    def test_foreign_delete_is_404_and_deletes_nothing(self, caller, objects, tenant_a):
        if not self.can_delete:
            pytest.skip("route has no delete")
        _own, foreign = objects
        response = caller.client.delete(self.url(tenant_a.slug, foreign.pk))
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        assert self.snapshot(foreign) is not None

    def test_foreign_actions_are_404_and_change_nothing(self, caller, objects, tenant_a):
        if not self.detail_actions:
            pytest.skip("route has no detail actions")
        _own, foreign = objects
        before = self.snapshot(foreign)
        for action in self.detail_actions:
            response = caller.client.post(self.url(tenant_a.slug, foreign.pk, action), {})
            assert response.status_code == 404, action
            assert response.content == self.not_found_body(caller, tenant_a)
        assert self.snapshot(foreign) == before

    def test_create_lands_in_the_url_tenant_only(self, caller, tenant_a, tenant_b):
        if not self.can_create:
            pytest.skip("route has no create")
        before_b = self.rows_of(tenant_b)
        payload = self.create_payload(tenant_a)
        # The tenant never comes from the body: naming another tenant is refused outright.
        smuggled = caller.client.post(self.url(tenant_a.slug), {**payload, "tenant": tenant_b.pk})
        assert smuggled.status_code == 400
        assert "tenant" in smuggled.json()["error"]["fields"]
        assert self.rows_of(tenant_b) == before_b

        before_a = self.rows_of(tenant_a)
        created = caller.client.post(self.url(tenant_a.slug), payload)
        assert created.status_code == 201, created.content
        assert self.rows_of(tenant_a) - before_a == {created.json()["id"]}
        assert self.rows_of(tenant_b) == before_b

        into_b = caller.client.post(self.url(tenant_b.slug), self.create_payload(tenant_b))
        assert into_b.status_code == 404
        assert self.rows_of(tenant_b) == before_b


class TenantSingletonIsolationTests:
    """The same proofs for a one-per-tenant resource such as ``/plan/``."""

    resource: str
    actor_fixture = "admin_a"
    update_payload: dict = {}

    def url(self, tenant_slug: str) -> str:
        return f"/api/v1/tenants/{tenant_slug}/{self.resource}/"

    def state_of(self, tenant) -> dict:
        raise NotImplementedError

    @pytest.fixture
    def caller(self, request):
        return request.getfixturevalue(self.actor_fixture)

    def test_own_is_readable(self, caller, tenant_a):
        assert caller.client.get(self.url(tenant_a.slug)).status_code == 200

    def test_foreign_is_the_same_404_as_a_missing_tenant(self, caller, tenant_a, tenant_b):
        foreign = caller.client.get(self.url(tenant_b.slug))
        missing = caller.client.get(self.url("no-such-tenant"))
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content

    def test_foreign_update_is_404_and_changes_nothing(self, caller, tenant_b):
        before = self.state_of(tenant_b)
        response = caller.client.patch(self.url(tenant_b.slug), self.update_payload)
        assert response.status_code == 404
        assert self.state_of(tenant_b) == before
