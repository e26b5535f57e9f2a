"""Pages show times in the viewer's zone (a client's tenant's, a staff member's own), in one
format that names the zone; the API stays in UTC."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.urls import reverse

from tenants import services
from tenants.models import AuditEvent, MspRole, ServicePlan
from tests.factories import login_verified, make_staff
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db

RAISED = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)


def detail(incident) -> str:
    return reverse(
        "portal_incidents:detail", kwargs={"slug": incident.tenant.slug, "number": incident.number}
    )


def shown(client, url) -> str:
    return html.unescape(client.get(url).content.decode())


@pytest.fixture
def incident(tenant_a):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="Europe/Paris")
    return make_incident(tenant_a, at=RAISED)


def test_a_client_sees_times_in_the_tenants_zone_with_the_zone_named(client, admin_a, incident):
    login_verified(client, admin_a.user)
    page = shown(client, detail(incident))
    assert "14 Jan 2026 11:00 CET" in page
    assert "10:00 UTC" not in page
    assert "Times are shown in Europe/Paris." in page


def test_staff_see_times_in_their_own_zone_or_utc(client, tenant_a, incident):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-ny")
    login_verified(client, engineer)
    assert "14 Jan 2026 10:00 UTC" in shown(client, detail(incident))

    services.user_timezone_set(user=engineer, timezone="America/New_York")
    page = shown(client, detail(incident))
    assert "14 Jan 2026 05:00 EST" in page
    assert "Times are shown in America/New_York." in page
    # The console follows the same setting.
    admin_page = shown(client, reverse("admin:incidents_incident_change", args=[incident.pk]))
    assert "14 Jan 2026 05:00 EST" in admin_page


def test_the_api_answers_in_utc_whoever_asks(client, admin_a, incident):
    login_verified(client, admin_a.user)
    url = reverse(
        "tenant-incident-detail", kwargs={"tenant_slug": incident.tenant.slug, "pk": incident.pk}
    )
    body = client.get(url).json()
    assert body["created_at"] in ("2026-01-14T10:00:00Z", "2026-01-14T10:00:00+00:00")


def test_staff_choose_their_zone_and_clients_are_told_theirs(client, tenant_a, admin_a):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-tz")
    login_verified(client, engineer)
    url = reverse("portal:preferences")
    response = client.post(url, {"timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    engineer.refresh_from_db()
    assert engineer.timezone == "Asia/Tokyo"
    event = AuditEvent.objects.get(object_type="tenants.User", action="update")
    assert event.changes == {"timezone": ["", "Asia/Tokyo"]}
    bad = client.post(url, {"timezone": "Mars/Olympus_Mons"})
    assert bad.status_code == 200
    assert bad.context["form"].errors
    engineer.refresh_from_db()
    assert engineer.timezone == "Asia/Tokyo"

    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="Europe/Paris")
    login_verified(client, admin_a.user)
    page = shown(client, url)
    assert "your organisation's time zone, <strong>Europe/Paris</strong>" in page
    client.post(url, {"timezone": "Asia/Tokyo"})
    admin_a.user.refresh_from_db()
    assert admin_a.user.timezone == ""
