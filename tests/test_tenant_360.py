"""The tenant 360 page: everything about one client on one page, for MSP staff only."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse

from msp.console import urls as console_urls
from tests.factories import login_verified, make_staff
from tests.incidents.factories import make_incident
from tests.tenants.test_fleet_dashboard import give_figures


def _url(tenant) -> str:
    return reverse("console:tenant-360", kwargs={"slug": tenant.slug})


def test_every_console_route_goes_through_the_portal_gate():
    routes = [p for p in console_urls.urlpatterns if isinstance(p, URLPattern)]
    assert routes
    for pattern in routes:
        assert "<slug:slug>" in str(pattern.pattern)
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_staff_see_every_section_with_data(client, engineer_a, tenant_a, tenant_b):
    give_figures(tenant_a, severity="SEV1", compliance=45.0, level=2)
    give_figures(tenant_b)
    incident = make_incident(tenant_a, title="GPU node unreachable", severity="SEV2")
    login_verified(client, engineer_a.user)
    response = client.get(_url(tenant_a))
    assert response.status_code == 200
    text = response.content.decode()
    for section in ("lifecycle", "readiness", "incidents", "compliance", "estate"):
        assert f'id="{section}"' in text
    for section in ("recommendations", "jobs", "audit", "team"):
        assert f'id="{section}"' in text
    assert "Open incidents (2)" in text
    assert incident.reference in text
    assert reverse("portal_incidents:detail", args=["acme", incident.number]) in text
    # Live SLA clocks, as the incident list draws them.
    assert "Acknowledge by" in text
    assert "2 of 5" in text  # readiness level
    assert "Idle GPUs" in text
    assert "compliance_scan" in text
    assert "eng-a" in text  # the account team
    assert "GPU utilisation, last 7 days" in text
    assert "<svg" in text
    assert reverse("admin:tenants_tenant_change", args=[tenant_a.pk]) in text
    assert response.context["estate"]["compute"] == 1
    assert response.context["estate"]["gpus_in_service"] == 8
    assert [s["score"] for s in response.context["scores"]] == [45.0]
    # Only this tenant's rows.
    assert all(run.tenant_id == tenant_a.id for run in response.context["job_runs"])
    assert all(event.tenant_id == tenant_a.id for event in response.context["audit_events"])


def test_clients_and_unassigned_staff_get_the_same_404(
    client, admin_a_signed_in, engineer_a, tenant_a, tenant_b
):
    client.force_login(admin_a_signed_in.user)
    own = client.get(_url(tenant_a))
    assert own.status_code == 404
    login_verified(client, engineer_a.user)
    foreign = client.get(_url(tenant_b))
    missing = client.get("/portal/no-such-tenant/360/")
    assert foreign.status_code == missing.status_code == 404
    assert [t.name for t in foreign.templates] == [t.name for t in missing.templates]


def test_analysts_read_it_too(client, analyst_a, tenant_a):
    login_verified(client, analyst_a.user)
    assert client.get(_url(tenant_a)).status_code == 200


def test_the_query_count_does_not_grow_with_the_tenants_data(client, msp_admin, tenant_a):
    login_verified(client, msp_admin.user)
    give_figures(tenant_a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(_url(tenant_a)).status_code == 200
        return len(captured)

    few = queries()
    for _ in range(6):
        give_figures(tenant_a, severity="SEV2")
    make_staff(tenant_a, username="second-engineer")
    assert queries() == few


@pytest.mark.django_db
def test_the_sidebar_links_the_360_page_for_staff_only(client, engineer_a, admin_a, tenant_a):
    login_verified(client, engineer_a.user)
    overview = client.get(reverse("portal:overview", kwargs={"slug": "acme"})).content.decode()
    assert _url(tenant_a) in overview
    client.force_login(admin_a.user)
    overview = client.get(reverse("portal:overview", kwargs={"slug": "acme"})).content.decode()
    assert _url(tenant_a) not in overview
