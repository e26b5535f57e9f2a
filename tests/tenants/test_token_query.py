"""The bearer token's one query (``tenants.selectors.api_token_by_prefix``): the token, its
user, its tenant and, for a bound token, the user's role and staff assignment there, as the
ORM would load them; the tenant access then needs no query of its own, and still answers as
it did with the separate reads (role, assignment, offboarded tenant)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.models import ApiToken, Membership, MspRole, StaffAssignment, TenantRole
from tenants.selectors import PlaceInTenant, api_token_by_prefix, tenant_access_for
from tests.conftest import Actor
from tests.factories import make_staff, make_token

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/tenants/acme/members/"


def _prefix(plaintext: str) -> str:
    return plaintext.split("_")[1]


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_one_query_loads_what_the_orm_loads(admin_a, tenant_a):
    prefix = _prefix(admin_a.token)
    expected = ApiToken.objects.select_related("user", "tenant").get(prefix=prefix)
    with CaptureQueriesContext(connection) as queries:
        token = api_token_by_prefix(prefix)
    assert len(queries.captured_queries) == 1
    assert _fields(token) == _fields(expected)
    assert token.scopes == ["read", "write", "ingest"]  # the JSON column, decoded
    assert _fields(token.user) == _fields(expected.user)
    assert _fields(token.tenant) == _fields(expected.tenant)
    assert token.place_in_tenant == PlaceInTenant(
        member_role=TenantRole.ADMIN, staff_assigned=False
    )
    with CaptureQueriesContext(connection) as queries:
        access = tenant_access_for(user=token.user, slug="acme", token=token)
    assert queries.captured_queries == []
    assert (access.tenant, access.role) == (tenant_a, TenantRole.ADMIN)


def test_an_unknown_prefix_is_none(admin_a):
    assert api_token_by_prefix("00000000") is None


def test_an_unbound_staff_token_has_no_tenant(msp_admin):
    token = api_token_by_prefix(_prefix(msp_admin.token))
    assert token.tenant is None
    assert token.tenant_id is None
    assert not hasattr(token, "place_in_tenant")
    assert token.user.msp_role == MspRole.ADMIN


def test_a_bound_staff_token_needs_the_assignment(tenant_a, tenant_b):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-bound")
    bound_a = Actor(engineer, make_token(engineer, tenant=tenant_a))
    bound_b = Actor(engineer, make_token(engineer, tenant=tenant_b))
    assert api_token_by_prefix(_prefix(bound_a.token)).place_in_tenant.staff_assigned
    assert not api_token_by_prefix(_prefix(bound_b.token)).place_in_tenant.staff_assigned
    assert bound_a.client.get(MEMBERS).status_code == 200
    assert bound_b.client.get("/api/v1/tenants/borealis/members/").status_code == 404
    StaffAssignment.objects.filter(user=engineer, tenant=tenant_a).delete()
    assert bound_a.client.get(MEMBERS).status_code == 404  # read again on every request


def test_the_role_is_read_again_on_every_request(admin_a):
    body = {"username": "new-member", "role": TenantRole.MEMBER}
    Membership.objects.filter(user=admin_a.user).update(role=TenantRole.VIEWER)
    response = admin_a.client.post(MEMBERS, body, format="json")
    assert response.status_code == 403
    assert "tenant_viewer" in response.json()["error"]["message"]


def test_an_offboarded_tenant_is_not_found_for_its_client_tokens(admin_a, tenant_a):
    assert admin_a.client.get(MEMBERS).status_code == 200
    type(tenant_a).objects.filter(pk=tenant_a.pk).update(status="offboarded")
    assert admin_a.client.get(MEMBERS).status_code == 404


def test_a_revoked_token_is_still_refused(admin_a):
    services.token_revoke(token=ApiToken.objects.get(user=admin_a.user))
    response = admin_a.client.get(MEMBERS)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
