"""The recommendations page of the client portal: the client's own recommendations with their
evidence and savings, decisions through the audited services, and the same 404 for foreign and
missing."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from operations.optimisation.models import Recommendation
from operations.optimisation.portal import urls as portal_urls
from tenants.models import MspRole, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_member, make_staff
from tests.optimisation.test_api import make_recommendation

pytestmark = pytest.mark.django_db


def list_url(tenant, **params) -> str:
    url = reverse("portal_recommendations:list", kwargs={"slug": tenant.slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def act_url(tenant, rec, action: str) -> str:
    return reverse(
        "portal_recommendations:act", kwargs={"slug": tenant.slug, "pk": rec.pk, "action": action}
    )


def status_of(rec) -> str:
    with tenant_scope(rec.tenant_id):
        return Recommendation.objects.get(pk=rec.pk).status


@pytest.fixture
def client_admin(client, admin_a):
    client.force_login(admin_a.user)
    return client


def test_every_route_goes_through_the_portal_gate():
    assert all(getattr(p.callback, "portal_tenant_view", False) for p in portal_urls.urlpatterns)


def test_the_page_lists_own_recommendations_with_savings_and_evidence(
    client_admin, tenant_a, tenant_b
):
    make_recommendation(tenant_a, 3, title="acme-gpu-idle-01 is idle")
    make_recommendation(tenant_b, 4, title="borealis secret node is idle")
    response = client_admin.get(list_url(tenant_a))
    body = response.content.decode()
    assert response.status_code == 200
    assert "acme-gpu-idle-01 is idle" in body
    assert "borealis secret node" not in body
    assert "USD 300.00" in body
    # The evidence is drawn on the recommendation's own page, linked from the list.
    assert "utilisation_mean" not in body
    assert "#evidence" in body
    assert "Accept" in body


def test_foreign_and_missing_tenants_and_objects_are_the_same_404(client_admin, tenant_a, tenant_b):
    foreign = make_recommendation(tenant_b)
    assert client_admin.get(list_url(tenant_b)).status_code == 404
    missing = client_admin.post(
        reverse(
            "portal_recommendations:act",
            kwargs={"slug": tenant_a.slug, "pk": 987654, "action": "accept"},
        )
    )
    crossing = client_admin.post(
        reverse(
            "portal_recommendations:act",
            kwargs={"slug": tenant_a.slug, "pk": foreign.pk, "action": "accept"},
        )
    )
    assert missing.status_code == crossing.status_code == 404
    # The pages differ only in the per-response CSRF token of the sign-out form.
    scrub = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub(b"", missing.content) == scrub.sub(b"", crossing.content)
    assert status_of(foreign) == "open"


def test_a_client_decides_through_the_lifecycle(client_admin, tenant_a):
    rec = make_recommendation(tenant_a)
    response = client_admin.post(act_url(tenant_a, rec, "accept"), {"state": "open"}, follow=True)
    assert status_of(rec) == "accepted"
    assert "Accepted: node-1 is idle" in response.content.decode()
    refused = client_admin.post(act_url(tenant_a, rec, "accept"), follow=True)
    assert "Cannot accept a recommendation that is accepted" in refused.content.decode()
    no_reason = client_admin.post(act_url(tenant_a, rec, "dismiss"), {"reason": " "}, follow=True)
    assert "Say why" in no_reason.content.decode()
    assert status_of(rec) == "accepted"
    client_admin.post(act_url(tenant_a, rec, "dismiss"), {"reason": "Budget already cut"})
    assert status_of(rec) == "dismissed"
    page = client_admin.get(list_url(tenant_a, state="dismissed")).content.decode()
    assert "Budget already cut" in page


@pytest.mark.parametrize("who", ["viewer", "staff"])
def test_viewers_and_msp_staff_only_read(client, tenant_a, who):
    if who == "viewer":
        user = make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    else:
        user = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    login_verified(client, user)
    rec = make_recommendation(tenant_a)
    page = client.get(list_url(tenant_a))
    assert page.status_code == 200
    assert "node-1 is idle" in page.content.decode()
    assert act_url(tenant_a, rec, "accept") not in page.content.decode()
    assert client.post(act_url(tenant_a, rec, "accept")).status_code == 403
    assert status_of(rec) == "open"


def test_the_page_costs_the_same_queries_for_one_or_many(
    client_admin, tenant_a, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts, made = [], 0
    client_admin.get(list_url(tenant_a))
    for rows in (1, 20):
        while made < rows:
            made += 1
            make_recommendation(tenant_a, made)
        with CaptureQueriesContext(connection) as captured:
            assert client_admin.get(list_url(tenant_a)).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
